"""FAISS vector indexes over L2-normalised embeddings (inner product = cosine).

Three kinds, one wrapper: ``flat`` (exact), ``hnsw`` (M=32, efConstruction=200, efSearch set per
query) and ``ivf`` (IVF-Flat, nlist ~ 4 sqrt(n), nprobe set per query). Approximate indexes are
always measured against exact search (``recall_vs_exact``), as FAISS's own contrib tools do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from engine.evaluation.metrics import index_recall_at_k

INDEX_KINDS = ("flat", "hnsw", "ivf")


@dataclass(frozen=True)
class IndexParams:
    """Construction parameters of the approximate indexes."""

    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 64
    ivf_nprobe: int = 8


class VectorIndex:
    """One FAISS index plus the knobs needed to search it."""

    def __init__(self, kind: str, index: faiss.Index, params: IndexParams = IndexParams()):
        if kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {kind!r}; valid: {', '.join(INDEX_KINDS)}")
        self.kind, self.index, self.params = kind, index, params

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls, vectors: np.ndarray, kind: str, params: IndexParams = IndexParams()
    ) -> VectorIndex:
        """Build an index of ``kind`` over ``vectors`` (n, d) float32, L2-normalised."""
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = x.shape
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.hnsw_ef_construction
        elif kind == "ivf":
            nlist = max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(x)
        else:
            raise ValueError(f"unknown index kind {kind!r}; valid: {', '.join(INDEX_KINDS)}")
        index.add(x)
        return cls(kind, index, params)

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
        if self.kind == "hnsw":
            ef = max(ef_search or self.params.hnsw_ef_search, k)
            params = faiss.SearchParametersHNSW(efSearch=ef)
            scores, ids = self.index.search(q, k, params=params)
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=nprobe or self.params.ivf_nprobe)
            scores, ids = self.index.search(q, k, params=params)
        else:
            scores, ids = self.index.search(q, k)
        return ids, scores

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str, params: IndexParams = IndexParams()) -> VectorIndex:
        return cls(kind, faiss.read_index(str(path)), params)


def recall_vs_exact(
    approx: VectorIndex, exact: VectorIndex, queries: np.ndarray, k: int = 10, **search_kw
) -> dict[str, float]:
    """Recall@k of ``approx`` against exact search, with mean per-query latency (1 thread)."""
    exact_ids, _ = exact.search(queries, k)
    t0 = time.perf_counter()
    approx_ids, _ = approx.search(queries, k, **search_kw)
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(queries))
    recall = index_recall_at_k(approx_ids, exact_ids, k=k)
    return {"recall_at_k": round(recall, 4), "k": k, "ms_per_query": round(ms, 4)}
