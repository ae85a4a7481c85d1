"""Where a catalog's vector indexes live: FAISS files (the default) or Milvus.

``VectorStoreConfig(kind="faiss")`` keeps today's layout: ``<step_dir>/<prefix>_<kind>.faiss``.
``VectorStoreConfig(kind="milvus")`` writes one Milvus collection per index:

* ``uri=None`` (the default) — **Milvus Lite**, one database per build step and prefix, inside the
  step's folder: ``<step_dir>/<prefix>.milvus.db`` (a folder; it holds the flat, HNSW and IVF
  collections of that prefix). It is versioned, published and garbage-collected with the step
  folder by the artifact store, exactly like the ``.faiss`` files, and a build writes a *new*
  step folder, so it never needs the lock of the database a running app has open.
* ``uri="http://host:19530"`` — a Milvus server or cluster (token from
  ``PIXELMATCH_MILVUS_TOKEN``). Collection names carry the catalog, prefix, kind and a
  ``version`` (the step's config hash), so builds with different configs never overwrite each
  other and the current manifest's collection stays intact while a new build runs.

Both stores return objects with the same ``search(queries, k, ef_search=, nprobe=)`` interface,
``ntotal`` and ``kind``. :func:`write_vector_index` tunes an approximate index's efSearch /
nprobe to a recall target against exact search (``engine.indexes.tuning``) and records it beside
the index (``<prefix>_<kind>.faiss.json`` or ``<prefix>_<kind>.milvus.json`` in the folder);
:func:`open_vector_index` searches with the recorded value. Milvus serves flat, hnsw and ivf
(``hnsw-sq8`` is FAISS-only).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import VectorStoreSection
from engine.index_kinds import DEFAULT_RECALL_TARGET, KNOBS, check_kind
from engine.indexes.vector import IndexParams, VectorIndex

DEFAULT_PARAMS = IndexParams()
STORE_ENV = "PIXELMATCH_VECTOR_STORE"  # faiss | milvus
URI_ENV = "PIXELMATCH_MILVUS_URI"  # empty: Milvus Lite inside the step folders
LITE_SUFFIX = ".milvus.db"


@dataclass(frozen=True)
class VectorStoreConfig:
    """The vector store of a catalog: ``faiss`` files, or ``milvus`` (Lite when ``uri`` is None)."""

    kind: str = "faiss"
    uri: str | None = None

    def __post_init__(self) -> None:
        VectorStoreSection(self.kind, self.uri)  # ValueError: unknown store, URI without milvus
        if self.uri is not None:
            from engine.indexes.milvus import parse_uri

            parse_uri(self.uri)  # ValueError on a malformed URI

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> VectorStoreConfig:
        """``PIXELMATCH_VECTOR_STORE`` (faiss|milvus) and ``PIXELMATCH_MILVUS_URI``."""
        env = os.environ if environ is None else environ
        kind = env.get(STORE_ENV, "").strip().lower() or "faiss"
        uri = env.get(URI_ENV, "").strip() or None
        return cls(kind, uri if kind == "milvus" else None)

    @property
    def is_milvus(self) -> bool:
        return self.kind == "milvus"

    @property
    def lite(self) -> bool:
        """Milvus Lite files inside the step folders, or an explicit ``*.db`` URI."""
        return self.is_milvus and (self.uri is None or self.uri.strip().endswith(".db"))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record for a manifest (never credentials: they come from the env)."""
        if not self.is_milvus:
            return {"kind": "faiss"}
        from engine.indexes.milvus import parse_uri

        return {"kind": "milvus", "uri": None if self.uri is None else parse_uri(self.uri).display}

    def describe(self) -> str:
        if not self.is_milvus:
            return "FAISS files"
        if self.uri is None:
            return "Milvus Lite (a database in each build step's folder)"
        return f"Milvus at {self.to_dict()['uri']}"


FAISS = VectorStoreConfig()


def faiss_path(folder: Path, prefix: str, kind: str) -> Path:
    return Path(folder) / f"{prefix}_{kind}.faiss"


def milvus_meta_path(folder: Path, prefix: str, kind: str) -> Path:
    """The parameters and tuning record of one Milvus index, kept in the step folder."""
    return Path(folder) / f"{prefix}_{kind}.milvus.json"


def lite_path(folder: Path, prefix: str) -> Path:
    """The default Milvus Lite database of one prefix in a step folder."""
    return Path(folder) / f"{prefix}{LITE_SUFFIX}"


def milvus_location(
    cfg: VectorStoreConfig,
    folder: Path,
    catalog_name: str,
    prefix: str,
    kind: str,
    version: str = "",
) -> tuple[str, str]:
    """``(uri, collection)`` of one index in Milvus."""
    from engine.indexes.milvus import collection_name

    uri = cfg.uri if cfg.uri is not None else str(lite_path(folder, prefix))
    return uri, collection_name(catalog_name, prefix, kind, version)


def write_vector_index(
    cfg: VectorStoreConfig,
    vectors: np.ndarray,
    folder: Path,
    catalog_name: str,
    prefix: str,
    kind: str,
    *,
    version: str = "",
    params: IndexParams = DEFAULT_PARAMS,
    queries: np.ndarray | None = None,
    recall_target: float | None = DEFAULT_RECALL_TARGET,
    knob_floor: int | None = None,
):
    """Build one index of ``kind`` over ``vectors`` in the configured store and return it.

    FAISS: ``<folder>/<prefix>_<kind>.faiss``. Milvus: the collection of
    :func:`milvus_location`. A Milvus Lite database stays open in this process until
    :func:`release_vector_indexes` (call it before the step folder is renamed into place).
    An approximate index is tuned to ``recall_target`` (None: keep ``params``) on seeded
    catalog rows and ``queries`` (see ``engine.indexes.tuning``), and the result recorded.
    ``knob_floor``: the tuned efSearch / nprobe is at least this (e.g. the value the FAISS twin
    of a Milvus index was tuned to on real query vectors, which this build does not have).
    """
    check_kind(kind)
    if not cfg.is_milvus:
        index = VectorIndex.build(vectors, kind, params)
        _tune(index, vectors, queries, recall_target)
        index.save(faiss_path(folder, prefix, kind))
        return index
    from engine.indexes.milvus import MilvusIndex

    uri, collection = milvus_location(cfg, folder, catalog_name, prefix, kind, version)
    index = MilvusIndex.build(vectors, uri=uri, collection=collection, kind=kind, params=params)
    _tune(index, vectors, queries, recall_target)
    _raise_to_floor(index, knob_floor)
    meta = {"kind": kind, "params": index.params.to_dict(), "tuning": index.tuning}
    milvus_meta_path(folder, prefix, kind).write_text(json.dumps(meta, indent=2) + "\n")
    return index


def _raise_to_floor(index, floor: int | None) -> None:
    """Search with at least ``floor`` as the tuned knob; the record keeps both values."""
    tuning = index.tuning
    if not floor or not tuning or int(tuning["value"]) >= floor:
        return
    import dataclasses

    field = "hnsw_ef_search" if tuning["knob"] == "ef_search" else "ivf_nprobe"
    index.params = dataclasses.replace(index.params, **{field: int(floor)})
    index.tuning = {**tuning, "value": int(floor), "tuned_value": int(tuning["value"]),
                    "raised_to": "the FAISS twin's value (tuned on real query vectors)"}


def _tune(index, vectors: np.ndarray, queries: np.ndarray | None, target: float | None) -> None:
    """Tune an approximate index against a flat FAISS index over the same vectors."""
    if target is None or index.kind not in KNOBS:
        return
    from engine.indexes.tuning import tune_index

    exact = VectorIndex.build(vectors, "flat")
    tune_index(index, exact, vectors, queries, target=target)


def open_vector_index(
    cfg: VectorStoreConfig,
    folder: Path,
    catalog_name: str,
    prefix: str,
    kind: str,
    *,
    version: str = "",
    params: IndexParams | None = None,
    expect_rows: int | None = None,
):
    """Open one index written by :func:`write_vector_index` with the same arguments.

    It searches with its recorded (tuned) parameters unless ``params`` are given; indexes
    written without a record use ``IndexParams()``. Milvus problems (missing database or
    collection, locked Lite database, unreachable server, row count different from
    ``expect_rows``) raise ``VectorStoreError``, an ``ArtifactError``.
    """
    check_kind(kind)
    if not cfg.is_milvus:
        return VectorIndex.load(faiss_path(folder, prefix, kind), kind, params)
    from engine.indexes.milvus import MilvusIndex

    meta_file = milvus_meta_path(folder, prefix, kind)
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    if params is None:
        params = IndexParams.from_dict(meta.get("params", {}))
    uri, collection = milvus_location(cfg, folder, catalog_name, prefix, kind, version)
    index = MilvusIndex.open(uri, collection, params=params, expect_rows=expect_rows)
    index.tuning = meta.get("tuning")
    return index


def release_vector_indexes(cfg: VectorStoreConfig, folder: Path) -> None:
    """Close the Milvus Lite databases of a step folder (no-op for FAISS and servers).

    Milvus Lite holds a lock on its database folder while open; a build must release it before
    the artifact store renames the step's temporary folder, and so must a test before removing it.
    """
    if not cfg.is_milvus or cfg.uri is not None:
        return
    from engine.indexes.milvus import close

    for db in sorted(Path(folder).glob(f"*{LITE_SUFFIX}")):
        close(db)
