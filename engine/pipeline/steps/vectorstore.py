"""Vector-store step: every dense FAISS index of the catalog, also written to Milvus.

With ``build --vector-store milvus`` (the config's ``vector_store`` section) this step reads the
vectors back from each ``<prefix>_flat.faiss`` that the SBERT, visual and fusion steps wrote and
writes them into Milvus collections of the kinds Milvus serves (flat, HNSW, IVF): Milvus Lite
databases inside this step's folder (``<prefix>.milvus.db``) by default, or the Milvus server or
cluster at ``vector_store.uri``. Each approximate collection's ``ef``/``nprobe`` is tuned to the
catalog's recall target against exact search, like the FAISS indexes, and the step records the
top-10 agreement of the served Milvus index with the served FAISS index on seeded catalog
vectors. With the default ``faiss`` store it writes nothing and takes no time.

Searches choose the store at query time (``search --vector-store milvus``, the app's setting,
``PIXELMATCH_VECTOR_STORE``); see ``engine.components.vector_index``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import stable_hash
from engine.index_kinds import MILVUS_WRITTEN, milvus_served_kind
from engine.pipeline.step import Step, StepContext, one_thread, register_step

INDEX_STEPS = ("sbert", "visual", "fusion")  # the steps that write dense FAISS indexes
AGREEMENT_QUERIES = 300


def flat_vectors(path: Path) -> np.ndarray:
    """Every vector of a flat FAISS index, in row order."""
    import faiss

    index = faiss.read_index(str(path))
    return index.reconstruct_n(0, index.ntotal).astype(np.float32)


def _faiss_knob(folder: Path, prefix: str, kind: str) -> int | None:
    """The efSearch / nprobe the FAISS twin was tuned to on the catalog's vectors *and* its
    real query vectors (which this step does not have: tuned on catalog vectors alone, queries
    that are not catalog rows would get less recall)."""
    from engine.indexes.vector import meta_path

    meta = meta_path(folder / f"{prefix}_{kind}.faiss")
    if not meta.is_file():
        return None
    tuning = json.loads(meta.read_text()).get("tuning") or {}
    return int(tuning["value"]) if "value" in tuning else None


def collection_version(ctx: StepContext) -> str:
    """A version for collection names: the input folders' names carry their step hashes."""
    return stable_hash({s: ctx.inputs[s].name for s in INDEX_STEPS})[:8]


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    """Write each dense index's vectors to Milvus (nothing for the FAISS store)."""
    from engine.evaluation.metrics import index_recall_at_k
    from engine.indexes.store import (
        VectorStoreConfig,
        open_vector_index,
        release_vector_indexes,
        write_vector_index,
    )
    from engine.indexes.vector import VectorIndex
    from engine.runtime import set_threads

    section = ctx.cfg.vector_store
    if section.kind != "milvus":
        info = {"vector_store": "faiss", "indexes": {}}
        (out / "vector_store.json").write_text(json.dumps(info) + "\n")  # what was chosen
        return info
    store = VectorStoreConfig("milvus", section.uri)
    served = milvus_served_kind(ctx.cfg.index.kind)
    version = collection_version(ctx)
    catalog = ctx.cfg.source.name if ctx.cfg.source else ctx.cfg.preset
    info: dict[str, Any] = {**store.to_dict(), "vector_store": "milvus", "version": version,
                            "catalog": catalog, "served_kind": served, "indexes": {}}
    set_threads(1)
    rng = np.random.default_rng(ctx.cfg.seed)
    try:
        for step in INDEX_STEPS:
            for flat_file in sorted(ctx.inputs[step].glob("*_flat.faiss")):
                prefix = flat_file.name.removesuffix("_flat.faiss")
                vectors = flat_vectors(flat_file)
                rec: dict[str, Any] = {"step": step, "n": int(vectors.shape[0]),
                                       "dim": int(vectors.shape[1])}
                for kind in MILVUS_WRITTEN:
                    t0 = time.perf_counter()
                    index = write_vector_index(
                        store, vectors, out, catalog, prefix, kind, version=version,
                        recall_target=ctx.cfg.index.recall_target,
                        knob_floor=_faiss_knob(ctx.inputs[step], prefix, kind),
                    )
                    rec[f"{kind}_seconds"] = round(time.perf_counter() - t0, 2)
                    if index.tuning:
                        rec[f"{kind}_tuning"] = index.tuning
                # Agreement with the FAISS index the catalog serves, on seeded catalog vectors.
                faiss_kind = ctx.cfg.index.kind
                faiss_index = VectorIndex.load(ctx.inputs[step] / f"{prefix}_{faiss_kind}.faiss",
                                               faiss_kind)
                milvus_index = open_vector_index(store, out, catalog, prefix, served,
                                                 version=version)
                sample = vectors[rng.choice(len(vectors), min(AGREEMENT_QUERIES, len(vectors)),
                                            replace=False)]
                rec["top10_overlap_with_faiss"] = round(
                    index_recall_at_k(milvus_index.search(sample, 10)[0],
                                      faiss_index.search(sample, 10)[0], 10), 4)
                info["indexes"][prefix] = rec
                ctx.log(f"  milvus {prefix}: {rec['n']:,} vectors, top-10 overlap with FAISS "
                        f"{rec['top10_overlap_with_faiss']:.3f}")
    finally:
        release_vector_indexes(store, out)
    (out / "vector_store.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


STEP = register_step(
    Step(
        "vectorstore",
        1,
        INDEX_STEPS,
        ("vector_store", "index"),
        run,
        "the dense indexes in Milvus (with --vector-store milvus; nothing otherwise)",
        ("indexes/milvus.py", "indexes/store.py", "indexes/tuning.py"),
        threads=one_thread,
    )
)
