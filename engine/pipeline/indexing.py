"""Vector indexes written by build steps: flat, HNSW and IVF over one embedding matrix."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.indexes.vector import INDEX_KINDS, VectorIndex, recall_vs_exact
from engine.runtime import set_threads


def build_vector_indexes(
    vectors: np.ndarray, queries: np.ndarray, out: Path, prefix: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """Build flat, HNSW and IVF indexes over ``vectors``; report build time and recall@10."""
    info: dict[str, Any] = {}
    built = {}
    for kind in INDEX_KINDS:
        t0 = time.perf_counter()
        built[kind] = VectorIndex.build(vectors, kind)
        built[kind].save(out / f"{prefix}_{kind}.faiss")
        info[f"{kind}_build_seconds"] = round(time.perf_counter() - t0, 3)
    set_threads(1)
    for kind in ("hnsw", "ivf"):
        info[f"{kind}_recall@10"] = recall_vs_exact(built[kind], built["flat"], queries, k=10)
        recall = info[f"{kind}_recall@10"]["recall_at_k"]
        log(f"  {prefix} {kind}: recall@10 vs exact = {recall:.3f}")
    return info
