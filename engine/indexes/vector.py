"""FAISS vector indexes over L2-normalised embeddings (inner product = cosine).

Four kinds, one wrapper: ``flat`` (exact), ``hnsw`` (M=32, efConstruction=200), ``ivf``
(IVF-Flat, nlist ~ 4 sqrt(n)) and ``hnsw-sq8`` (HNSW over 8-bit scalar-quantised vectors, the
compressed option). Approximate indexes are always measured against exact search
(``recall_vs_exact``), as FAISS's own contrib tools do, and a build picks their search knob
(efSearch, nprobe) by that measurement (``engine.indexes.tuning``). The chosen value is saved
beside the index (``<file>.json``) and used by every search that does not pass its own.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from engine.evaluation.metrics import index_recall_at_k
from engine.index_kinds import HNSW_KINDS, INDEX_KINDS, check_kind

__all__ = ["INDEX_KINDS", "IndexParams", "VectorIndex", "meta_path", "recall_vs_exact"]


@dataclass(frozen=True)
class IndexParams:
    """Construction parameters of the approximate indexes, and their search knobs.

    ``hnsw_ef_search`` and ``ivf_nprobe`` are the fallbacks for indexes saved without a tuned
    value (artifacts written before tuning); a tuned index records its own.
    """

    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 64
    ivf_nprobe: int = 8

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexParams:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: int(v) for k, v in d.items() if k in known})


def meta_path(path: Path) -> Path:
    """The JSON beside an index file: its kind, parameters and tuning record."""
    path = Path(path)
    return path.with_name(path.name + ".json")


class VectorIndex:
    """One FAISS index plus the knobs needed to search it (and how they were chosen)."""

    def __init__(
        self,
        kind: str,
        index: faiss.Index,
        params: IndexParams = IndexParams(),
        tuning: dict[str, Any] | None = None,
    ):
        self.kind, self.index, self.params = check_kind(kind), index, params
        self.tuning = tuning  # the record of engine.indexes.tuning.Tuning, when tuned

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls, vectors: np.ndarray, kind: str, params: IndexParams = IndexParams()
    ) -> VectorIndex:
        """Build an index of ``kind`` over ``vectors`` (n, d) float32, L2-normalised."""
        check_kind(kind)
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = x.shape
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.hnsw_ef_construction
        elif kind == "hnsw-sq8":
            index = faiss.IndexHNSWSQ(
                d, faiss.ScalarQuantizer.QT_8bit, params.hnsw_m, faiss.METRIC_INNER_PRODUCT
            )
            index.hnsw.efConstruction = params.hnsw_ef_construction
            index.train(x)  # the per-dimension ranges of the 8-bit codes
        else:  # ivf
            nlist = max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(x)
        index.add(x)
        return cls(kind, index, params)

    @property
    def nlist(self) -> int | None:
        """The number of IVF lists (None for other kinds)."""
        return int(faiss.extract_index_ivf(self.index).nlist) if self.kind == "ivf" else None

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, scores) per query row, best first; ids of -1 mark missing results."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.ntotal))
        if self.kind in HNSW_KINDS:
            ef = max(ef_search or self.params.hnsw_ef_search, k)
            params = faiss.SearchParametersHNSW(efSearch=ef)
            scores, ids = self.index.search(q, k, params=params)
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=nprobe or self.params.ivf_nprobe)
            scores, ids = self.index.search(q, k, params=params)
        else:
            scores, ids = self.index.search(q, k)
        return ids, scores

    def serialized_bytes(self) -> int:
        """The size of the serialised index (what it costs on disk and, loaded, in memory)."""
        return int(faiss.serialize_index(self.index).nbytes)

    def meta(self) -> dict[str, Any]:
        """What :meth:`save` writes beside the index file."""
        return {"kind": self.kind, "params": self.params.to_dict(), "tuning": self.tuning}

    def save(self, path: Path) -> None:
        """Write the index and, beside it, its kind, parameters and tuning (``<path>.json``)."""
        # The same bytes as faiss.write_index, written by Python: on a full disk FAISS's own
        # writer prints half a line to stderr before it raises, which garbles the CLI's message.
        with open(path, "wb") as f:
            faiss.serialize_index(self.index).tofile(f)
        meta_path(path).write_text(json.dumps(self.meta(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path, kind: str, params: IndexParams | None = None) -> VectorIndex:
        """Read an index; its recorded (tuned) parameters unless ``params`` are given.

        Files saved without a ``.json`` record (before tuning) search with ``IndexParams()``.
        """
        index = faiss.read_index(str(path))
        meta_file = meta_path(path)
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        if meta and meta.get("kind") != kind:
            raise ValueError(f"{path} holds a {meta.get('kind')!r} index, not {kind!r}")
        if params is None:
            params = IndexParams.from_dict(meta.get("params", {}))
        return cls(kind, index, params, meta.get("tuning"))


def recall_vs_exact(
    approx, exact: VectorIndex, queries: np.ndarray, k: int = 10, **search_kw
) -> dict[str, float]:
    """Recall@k of ``approx`` against exact search, with mean per-query latency (1 thread)."""
    exact_ids, _ = exact.search(queries, k)
    t0 = time.perf_counter()
    approx_ids, _ = approx.search(queries, k, **search_kw)
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(queries))
    recall = index_recall_at_k(approx_ids, exact_ids, k=k)
    return {"recall_at_k": round(recall, 4), "k": k, "ms_per_query": round(ms, 4)}
