"""Vector indexes written by build steps: flat, HNSW, IVF (and the catalog's served kind, e.g.
``hnsw-sq8``) over one embedding matrix, each approximate index tuned to the recall target.

Tuning (``engine.indexes.tuning``): efSearch / nprobe is the smallest ladder value whose
recall@10 against the flat index reaches ``IndexConfig.recall_target`` on 500 of the catalog's
own vectors (seed 42) *and* on the step's real query vectors. The chosen value and the measured
recall are saved beside each index file (``<prefix>_<kind>.faiss.json``, read back by
``VectorIndex.load``) and in the step's info (``<kind>_tuning``), i.e. the build manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import IndexConfig
from engine.index_kinds import ALWAYS_BUILT
from engine.indexes.tuning import tune_index
from engine.indexes.vector import VectorIndex, recall_vs_exact
from engine.runtime import set_threads


def built_kinds(index: IndexConfig) -> tuple[str, ...]:
    """The kinds a build writes: flat, HNSW and IVF, plus the served kind."""
    return ALWAYS_BUILT + (() if index.kind in ALWAYS_BUILT else (index.kind,))


def build_vector_indexes(
    vectors: np.ndarray,
    queries: np.ndarray,
    out: Path,
    prefix: str,
    log: Callable[[str], None],
    index: IndexConfig | None = None,
) -> dict[str, Any]:
    """Build, tune and save the indexes over ``vectors``; report build time, tuned knob, size
    and recall@10 on ``queries`` (the step's real query vectors) at the tuned value."""
    cfg = index or IndexConfig()
    info: dict[str, Any] = {"served_kind": cfg.kind, "recall_target": cfg.recall_target}
    built: dict[str, VectorIndex] = {}
    for kind in built_kinds(cfg):
        t0 = time.perf_counter()
        built[kind] = VectorIndex.build(vectors, kind)
        info[f"{kind}_build_seconds"] = round(time.perf_counter() - t0, 3)
    set_threads(1)
    flat = built["flat"]
    for kind, approx in built.items():
        if kind != "flat":
            t0 = time.perf_counter()
            tuning = tune_index(approx, flat, vectors, queries, target=cfg.recall_target)
            seconds = round(time.perf_counter() - t0, 3)
            info[f"{kind}_tuning"] = {**tuning.to_dict(), "seconds": seconds}
            info[f"{kind}_recall@10"] = recall_vs_exact(approx, flat, queries, k=10)
            flag = "" if tuning.met else f"  (target {cfg.recall_target} NOT met)"
            log(
                f"  {prefix} {kind}: {tuning.knob}={tuning.value}, recall@10 vs exact "
                f"{min(tuning.recall.values()):.3f}{flag}"
            )
        approx.save(out / f"{prefix}_{kind}.faiss")
        info[f"{kind}_bytes"] = approx.serialized_bytes()
    return info
