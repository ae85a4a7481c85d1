"""Vector indexes in Milvus, behind the same search interface as the FAISS ``VectorIndex``.

A URI picks the deployment:

* a local path ending in ``.db`` — **Milvus Lite**, embedded in this process. milvus-lite 3.x is
  pure Python: pymilvus starts a gRPC server on 127.0.0.1 in a background thread of *this*
  process (no child process) and the ``.db`` path is a *folder* holding Parquet segments and
  FAISS index files. The folder is locked (``flock`` on ``<path>/LOCK``) by the process that
  opened it: a second process cannot open it at the same time (:class:`VectorStoreError`).
* ``http://host:port`` or ``https://host:port`` — a Milvus standalone server or cluster. A token
  (``user:password`` or an API key) is read from ``PIXELMATCH_MILVUS_TOKEN`` when it is set.

One collection holds one index: an INT64 primary key ``id`` (the catalog row) and a FLOAT_VECTOR
field ``vector`` with a FLAT, HNSW or IVF_FLAT index and the IP metric, so scores are the same
inner products FAISS's ``METRIC_INNER_PRODUCT`` returns (cosine on L2-normalised vectors).

One ``MilvusClient`` per URI per process (:func:`client_for`); :func:`close` / :func:`close_all`
close it and, for Milvus Lite, stop the in-process server so the folder's lock is released.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.artifacts import ArtifactError
from engine.index_kinds import check_kind
from engine.indexes.vector import IndexParams

DEFAULT_PARAMS = IndexParams()
TOKEN_ENV = "PIXELMATCH_MILVUS_TOKEN"
PK_FIELD = "id"
VECTOR_FIELD = "vector"
METRIC = "IP"
MAX_TOPK = 16_384  # Milvus's limit on ``limit`` (top-k) and on queries per request
CONNECT_TIMEOUT = 10.0  # seconds to wait for a server
INDEX_TYPES = {"flat": "FLAT", "hnsw": "HNSW", "ivf": "IVF_FLAT"}
MILVUS_KINDS = tuple(INDEX_TYPES)  # hnsw-sq8 is FAISS-only
KIND_OF_INDEX_TYPE = {"FLAT": "flat", "BRUTE_FORCE": "flat", "HNSW": "hnsw", "IVF_FLAT": "ivf"}
# FAISS's padding for a missing inner-product result: id -1, score -FLT_MAX.
PAD_SCORE = np.float32(-np.finfo(np.float32).max)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SERVER_FIX = (
    "start the Milvus server or fix the URI (http://host:19530) and the token in "
    f"{TOKEN_ENV}; see docs/milvus.md"
)


class VectorStoreError(ArtifactError):
    """A vector store (Milvus Lite file or Milvus server) is missing, locked or unreachable.

    A subclass of :class:`ArtifactError`, so ``Catalog.cached`` passes it through unchanged and the
    app and CLI show its one-line message and fix.
    """


# -- URIs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MilvusTarget:
    """A parsed URI: a Milvus Lite folder (``path``) or a server address (``uri``)."""

    uri: str  # what pymilvus is given: the absolute .db path, or http(s)://host:port[/db]
    lite: bool

    @property
    def path(self) -> Path | None:
        return Path(self.uri) if self.lite else None

    @property
    def display(self) -> str:
        """The URI without credentials, for messages and manifests."""
        return self.uri if self.lite else re.sub(r"//[^/@]*@", "//", self.uri)


def parse_uri(uri: str | os.PathLike) -> MilvusTarget:
    """``*.db`` path → Milvus Lite; ``http(s)://host:port`` → server; anything else is an error."""
    text = os.fspath(uri).strip()
    if re.match(r"^(https?|tcp)://", text, flags=re.IGNORECASE):
        return MilvusTarget(text, lite=False)
    if "://" in text:
        raise ValueError(f"unsupported Milvus URI {text!r}: use http(s)://host:port or a .db path")
    if not text.endswith(".db"):
        raise ValueError(
            f"a Milvus Lite path must end in .db (got {text!r}); a server URI is http(s)://host:port"
        )
    return MilvusTarget(str(Path(text).expanduser().resolve()), lite=True)


def collection_name(catalog: str, prefix: str, kind: str, version: str = "") -> str:
    """A valid Milvus collection name for one index of one catalog.

    ``pm_<catalog>_<prefix>_<kind>_<hash8>``: letters, digits and underscores only (other
    characters become ``_``; the hash of the raw parts keeps e.g. ``a-b`` and ``a_b`` apart).
    ``version`` (a build step's config hash) gives each build its own collection, so a rebuild
    never overwrites the collection the current manifest points to.
    """
    digest = hashlib.sha256(f"{catalog}\0{prefix}\0{kind}\0{version}".encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9_]", "_", f"{catalog}_{prefix}_{kind}")[:200]
    name = f"pm_{readable}_{digest}"
    assert _NAME_RE.match(name), name
    return name


# -- one client per URI ------------------------------------------------------------------------
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _token() -> str:
    return os.environ.get(TOKEN_ENV, "")


def _lock_holder(path: Path) -> bool:
    """True when another process holds the Milvus Lite folder's lock."""
    lock = path / "LOCK"
    if not lock.is_file():
        return False
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def client_for(uri: str | os.PathLike | MilvusTarget, *, create: bool = False):
    """The process's ``MilvusClient`` for ``uri`` (created on first use, then shared).

    ``create=False`` refuses a Milvus Lite path that does not exist (instead of creating an empty
    database there). Connection failures raise :class:`VectorStoreError` with a fix.
    """
    target = uri if isinstance(uri, MilvusTarget) else parse_uri(uri)
    key = f"{target.uri}|{_token()}"
    client = _clients.get(key)  # lock-free fast path for searches (dict reads are atomic)
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            return client
        client = _connect(target, create=create)
        _clients[key] = client
        return client


def _connect(target: MilvusTarget, *, create: bool):
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if target.lite:
        path = target.path
        assert path is not None
        if not path.exists():
            if not create:
                raise VectorStoreError(
                    f"The Milvus Lite database {path} does not exist.",
                    fix="rebuild the catalog's vector indexes with --vector-store milvus",
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_dir():
            raise VectorStoreError(
                f"{path} is a file, not a Milvus Lite database (milvus-lite 3 keeps a folder).",
                fix="remove it or choose another .db path, then rebuild",
            )
        if _lock_holder(path):
            raise VectorStoreError(
                f"The Milvus Lite database {path} is open in another process (Milvus Lite allows "
                "one process per database).",
                fix="stop the other process (the app or a CLI command), or serve the database "
                f"once with `milvus-lite server --data-dir {path} --port 19530` and use "
                "--milvus-uri http://127.0.0.1:19530 in every process",
            )
        try:
            return MilvusClient(uri=str(path))
        except MilvusException as exc:
            raise VectorStoreError(
                f"Could not open the Milvus Lite database {path} ({exc.message}).",
                fix="check that the folder is a Milvus Lite database and is writable, or rebuild",
            ) from exc
    try:
        return MilvusClient(uri=target.uri, token=_token(), timeout=CONNECT_TIMEOUT)
    except MilvusException as exc:
        raise VectorStoreError(
            f"Could not connect to the Milvus server at {target.display} ({exc.message}).",
            fix=SERVER_FIX,
        ) from exc


def close(uri: str | os.PathLike) -> None:
    """Close the process's client for ``uri``; for Milvus Lite also stop the in-process server.

    Stopping the server releases the folder's lock, so another process (or a rename of the
    folder, as the artifact store does when a build step finishes) can take it over.
    """
    target = parse_uri(uri)
    with _clients_lock:
        for key in [k for k in _clients if k.split("|", 1)[0] == target.uri]:
            with contextlib.suppress(Exception):
                _clients.pop(key).close()
        if target.lite:
            with contextlib.suppress(ImportError):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(target.uri)


def close_all() -> None:
    """Close every client this module opened (registered at exit)."""
    with _clients_lock:
        uris = {k.split("|", 1)[0] for k in _clients}
    for uri in uris:
        close(uri)


atexit.register(close_all)


# -- the index ---------------------------------------------------------------------------------
def _ivf_nlist(n: int) -> int:
    """The same nlist as the FAISS IVF index (``VectorIndex.build``)."""
    return max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))


def _index_params(kind: str, n: int, params: IndexParams) -> dict[str, Any]:
    if kind == "hnsw":
        return {"M": params.hnsw_m, "efConstruction": params.hnsw_ef_construction}
    if kind == "ivf":
        return {"nlist": _ivf_nlist(n)}
    return {}


def _vector_index_params(kind: str, build: dict[str, Any], lite: bool):
    """pymilvus ``IndexParams`` for the vector field.

    pymilvus 3 sends build parameters as flat key/value pairs (``M=32``), which Milvus servers
    read; milvus-lite 3.2 reads only a JSON ``params`` pair (the older wire format) and silently
    builds with its defaults (M=16, nlist=128) otherwise. For Milvus Lite both are sent.
    """
    from pymilvus.milvus_client.index import IndexParam, IndexParams

    class _Param(IndexParam):
        def get_index_configs(self) -> dict[str, Any]:
            configs = dict(super().get_index_configs())
            if lite and build:
                configs["params"] = dict(build)
            return configs

    out = IndexParams()
    out.append(
        _Param(
            VECTOR_FIELD, INDEX_TYPES[kind], VECTOR_FIELD, metric_type=METRIC, params=dict(build)
        )
    )
    return out


def _missing(exc: Exception) -> bool:
    text = str(exc).lower()
    return "not exist" in text or "not found" in text or "can't find" in text


class MilvusIndex:
    """One Milvus collection searched like a FAISS :class:`~engine.indexes.vector.VectorIndex`.

    ``search(queries, k)`` returns ``(ids, scores)`` of shape ``(n, k)``, best first, ids int64
    (the catalog rows given at build time) padded with -1 and scores float32 inner products
    padded with -FLT_MAX, as FAISS pads. (``VectorIndex.search`` instead clamps ``k`` to
    ``ntotal``; ``dense_search`` drops the padding either way.) Safe to call from many threads.
    """

    def __init__(
        self,
        uri: str,
        collection: str,
        kind: str,
        ntotal: int,
        dim: int,
        params: IndexParams = DEFAULT_PARAMS,
    ):
        check_kind(kind, MILVUS_KINDS)
        self.target = parse_uri(uri)
        self.uri, self.collection, self.kind = self.target.uri, collection, kind
        self._ntotal, self.dim, self.params = int(ntotal), int(dim), params
        self.tuning: dict[str, Any] | None = None  # set by engine.indexes.tuning / the store

    def __repr__(self) -> str:
        return (
            f"MilvusIndex({self.target.display!r}, {self.collection!r}, kind={self.kind!r}, "
            f"ntotal={self.ntotal}, dim={self.dim})"
        )

    @property
    def ntotal(self) -> int:
        return self._ntotal

    @property
    def nlist(self) -> int | None:
        """The IVF lists :meth:`build` asked for (None for other kinds): nprobe's ceiling."""
        return _ivf_nlist(self.ntotal) if self.kind == "ivf" else None

    @property
    def client(self):
        return client_for(self.target)

    # -- writing -------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        uri: str | os.PathLike,
        collection: str,
        kind: str = "hnsw",
        params: IndexParams = DEFAULT_PARAMS,
        ids: np.ndarray | None = None,
        batch: int = 2_000,
        index_timeout: float = 600.0,
    ) -> MilvusIndex:
        """(Re)create ``collection`` with an index of ``kind`` over ``vectors`` (n, d) float32.

        Drops any collection of that name, creates it (``id`` INT64 primary key = ``ids`` or the
        row numbers 0..n-1, ``vector`` FLOAT_VECTOR(d)), creates the index (IP metric), inserts in
        batches of ``batch`` rows, flushes, waits until every row is indexed and loads it.
        """
        from pymilvus import DataType
        from pymilvus.exceptions import MilvusException

        check_kind(kind, MILVUS_KINDS)
        if not _NAME_RE.match(collection):
            raise ValueError(f"invalid Milvus collection name {collection!r}")
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"vectors must be a non-empty (n, d) array, got shape {x.shape}")
        n, d = x.shape
        rows = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        if rows.shape != (n,):
            raise ValueError(f"ids must have shape ({n},), got {rows.shape}")
        client = client_for(uri, create=True)
        target = parse_uri(uri)
        try:
            if client.has_collection(collection):
                client.drop_collection(collection)
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field(PK_FIELD, DataType.INT64, is_primary=True)
            schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=d)
            # Session consistency: this process reads its own writes at once; other processes
            # (the app) read without waiting for the server's time tick.
            client.create_collection(collection, schema=schema, consistency_level="Session")
            for start in range(0, n, batch):
                stop = min(n, start + batch)
                client.insert(
                    collection,
                    [
                        {PK_FIELD: int(r), VECTOR_FIELD: v}
                        for r, v in zip(rows[start:stop], x[start:stop])
                    ],
                )
            client.flush(collection)
            # The index is created after the data is flushed: Milvus Lite then builds it at once
            # (created before, Lite builds it in a background thread after the flush, and its
            # describe_index reports "Finished" while searches still run brute force).
            client.create_index(
                collection, _vector_index_params(kind, _index_params(kind, n, params), target.lite)
            )
            _wait_indexed(client, collection, n, index_timeout)
            client.load_collection(collection)
        except MilvusException as exc:
            raise VectorStoreError(
                f"Writing the Milvus collection {collection} at {target.display} failed "
                f"({exc.message}).",
                fix=SERVER_FIX if not target.lite else "check free disk space and rebuild",
            ) from exc
        return cls(target.uri, collection, kind, n, d, params)

    def drop(self) -> None:
        """Delete the collection."""
        self.client.drop_collection(self.collection)

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        uri: str | os.PathLike,
        collection: str,
        *,
        params: IndexParams = DEFAULT_PARAMS,
        expect_rows: int | None = None,
    ) -> MilvusIndex:
        """Open an existing collection (loading it into memory if needed).

        :class:`VectorStoreError` when the database or server is missing or unreachable, the
        collection does not exist, or it holds a different number of rows than ``expect_rows``
        (a partial build).
        """
        from pymilvus.exceptions import MilvusException

        target = parse_uri(uri)
        client = client_for(target.uri)
        where = f"{target.display}"
        try:
            if not client.has_collection(collection):
                raise VectorStoreError(
                    f"The Milvus collection {collection} does not exist at {where}.",
                    fix="rebuild the catalog's vector indexes with --vector-store milvus "
                    "(and the same --milvus-uri)",
                )
            info = client.describe_index(collection, index_name=VECTOR_FIELD) or {}
            if not info:
                raise VectorStoreError(
                    f"The Milvus collection {collection} at {where} has no vector index (an "
                    "interrupted build).",
                    fix="rebuild the catalog's vector indexes with --vector-store milvus",
                )
            kind = KIND_OF_INDEX_TYPE.get(str(info.get("index_type", "")).upper())
            if kind is None:
                raise VectorStoreError(
                    f"The Milvus collection {collection} at {where} has an index of type "
                    f"{info.get('index_type')!r}, not one of FLAT, HNSW, IVF_FLAT.",
                    fix="rebuild the catalog's vector indexes with --vector-store milvus",
                )
            fields = client.describe_collection(collection)["fields"]
            vec = next(f for f in fields if f["name"] == VECTOR_FIELD)
            dim = int(vec["params"]["dim"])
            client.load_collection(collection)
            ntotal = int(client.get_collection_stats(collection)["row_count"])
        except MilvusException as exc:
            if _missing(exc):
                raise VectorStoreError(
                    f"The Milvus collection {collection} at {where} is incomplete ({exc.message}).",
                    fix="rebuild the catalog's vector indexes with --vector-store milvus",
                ) from exc
            raise VectorStoreError(
                f"Could not open the Milvus collection {collection} at {where} ({exc.message}).",
                fix=SERVER_FIX if not target.lite else "rebuild the catalog's vector indexes",
            ) from exc
        if expect_rows is not None and ntotal != expect_rows:
            raise VectorStoreError(
                f"The Milvus collection {collection} at {where} holds {ntotal} vectors, "
                f"expected {expect_rows} (a partial or stale build).",
                fix="rebuild the catalog's vector indexes with --vector-store milvus",
            )
        return cls(target.uri, collection, kind, ntotal, dim, params)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, scores) per query row, best first, padded with -1 / -FLT_MAX."""
        from pymilvus.exceptions import MilvusException

        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        nq = q.shape[0]
        k = max(1, int(k))
        ids = np.full((nq, k), -1, dtype=np.int64)
        scores = np.full((nq, k), PAD_SCORE, dtype=np.float32)
        limit = min(k, self.ntotal, MAX_TOPK)
        if nq == 0 or limit == 0:
            return ids, scores
        if self.kind == "hnsw":
            search = {"ef": max(ef_search or self.params.hnsw_ef_search, limit)}
        elif self.kind == "ivf":
            search = {"nprobe": nprobe or self.params.ivf_nprobe}
        else:
            search = {}
        client = self.client
        for start in range(0, nq, MAX_TOPK):
            chunk = q[start : start + MAX_TOPK]
            try:
                hits = client.search(
                    self.collection,
                    data=[row for row in chunk],
                    limit=limit,
                    anns_field=VECTOR_FIELD,
                    search_params={"metric_type": METRIC, "params": search},
                    output_fields=[PK_FIELD],  # Milvus Lite returns every field when None
                )
            except MilvusException as exc:
                raise VectorStoreError(
                    f"Searching the Milvus collection {self.collection} at "
                    f"{self.target.display} failed ({exc.message}).",
                    fix=SERVER_FIX if not self.target.lite else "rebuild the vector indexes",
                ) from exc
            for i, row in enumerate(hits):
                m = len(row)
                if m:
                    ids[start + i, :m] = [h["id"] for h in row]
                    scores[start + i, :m] = [h["distance"] for h in row]
        return ids, scores


def _wait_indexed(client, collection: str, n: int, timeout: float) -> None:
    """Wait until the server has indexed all ``n`` rows (index builds are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        info = client.describe_index(collection, index_name=VECTOR_FIELD)
        done = int(info.get("indexed_rows", n)) >= n and not int(info.get("pending_index_rows", 0))
        if done or info.get("state") == "Finished":
            return
        if time.monotonic() > deadline:
            raise VectorStoreError(
                f"The Milvus index of {collection} was not built within {timeout:.0f} s "
                f"({info.get('indexed_rows')}/{n} rows).",
                fix="check the Milvus server's index nodes and retry the build",
            )
        time.sleep(0.2)
