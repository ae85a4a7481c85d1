"""The benchmark's vector-index section: recall@10 against exact search, ms/query and memory.

``ann_sweep`` measures, per embedding space (SBERT, CLIP), HNSW, HNSW-SQ8 (efSearch ladder) and
IVF (nprobe ladder) on the benchmark's text queries, each also at the value its build tuned (a
held-out check: the build tuned on other queries). Memory is the serialised index's bytes.
``index_tunings`` lists the tuned efSearch / nprobe every built index recorded
(``<prefix>_<kind>.faiss.json``). A catalog built before ``hnsw-sq8`` existed (or serving
another kind) gets its HNSW-SQ8 index built and tuned here, on the catalog's own vectors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from engine.benchmark.tables import ann_points, ann_tuned_table, index_tuning_table
from engine.index_kinds import DEFAULT_RECALL_TARGET, KNOBS

if TYPE_CHECKING:  # FAISS and the catalog load only when measuring, not when writing reports
    from engine.catalog import Catalog
    from engine.indexes.vector import VectorIndex

SWEEP = {
    "hnsw": (8, 16, 32, 64, 128, 256),
    "ivf": (1, 2, 4, 8, 16, 32),
    "hnsw-sq8": (8, 16, 32, 64, 128, 256),
}
# (build step, file prefix) of every vector index a build writes.
BUILT_INDEXES = (
    ("sbert", "sbert"),
    ("visual", "clip"),
    ("visual", "colour"),
    ("fusion", "early"),
    ("fusion", "mlp"),
)


def _index(catalog: Catalog, step: str, prefix: str, kind: str, space: str):
    """The built index of ``kind``; when the build did not write it, one built and tuned here."""
    from engine.components import embeddings, vector_index
    from engine.indexes.tuning import tune_index
    from engine.indexes.vector import VectorIndex

    path = catalog.step_dir(step) / f"{prefix}_{kind}.faiss"
    if path.is_file():
        return vector_index(catalog, step, prefix, kind), False
    vectors = embeddings(catalog, space)
    index = VectorIndex.build(vectors, kind)
    target = catalog.config.get("index", {}).get("recall_target", DEFAULT_RECALL_TARGET)
    tune_index(index, vector_index(catalog, step, prefix, "flat"), vectors, target=target)
    return index, True


def _tuned_point(index: VectorIndex, flat: VectorIndex, vecs, k: int, here: bool) -> dict:
    from engine.indexes.vector import recall_vs_exact

    knob = KNOBS[index.kind]
    value = index.params.hnsw_ef_search if knob == "ef_search" else index.params.ivf_nprobe
    t = index.tuning or {}
    return {
        "knob": knob,
        "value": value,
        "recorded": bool(t),  # False: an index built before tuning (the default value)
        "built_by_benchmark": here,
        "build_recall": t.get("recall"),
        "target": t.get("target"),
        "met": t.get("met"),
        **recall_vs_exact(index, flat, vecs, k=k),
    }


def ann_sweep(catalog: Catalog, queries: list[dict], k: int = 10) -> dict[str, Any]:
    """Recall@k vs exact search, latency and bytes per index kind and search setting."""
    from engine.components import clip_encoder, served_index_kind, text_encoder, vector_index
    from engine.indexes.vector import recall_vs_exact

    texts = [q["text"] for q in queries if q.get("text")][:200]
    spaces = {"sbert": ("sbert", "sbert", lambda: text_encoder(catalog).encode_texts(texts))}
    if "visual" in catalog.built_steps:
        spaces["clip"] = ("visual", "clip", lambda: clip_encoder(catalog).encode_texts(texts))
    out: dict[str, Any] = {}
    for name, (step, prefix, encode) in spaces.items():
        vecs = encode()
        flat = vector_index(catalog, step, prefix, "flat")
        rec: dict[str, Any] = {
            "flat_ms_per_query": recall_vs_exact(flat, flat, vecs, k=k)["ms_per_query"],
            "served": served_index_kind(catalog),
            "bytes": {"flat": flat.serialized_bytes()},
            "tuned": {},
        }
        for kind, ladder in SWEEP.items():
            index, here = _index(catalog, step, prefix, kind, name)
            knob = KNOBS[kind]
            rec[kind] = [
                {knob: v, **recall_vs_exact(index, flat, vecs, k=k, **{knob: v})} for v in ladder
            ]
            rec["bytes"][kind] = index.serialized_bytes()
            rec["tuned"][kind] = _tuned_point(index, flat, vecs, k, here)
        out[name] = rec
    return out


def index_tunings(catalog: Catalog) -> list[dict[str, Any]]:
    """The efSearch / nprobe each built approximate index recorded, with its measured recall."""
    from engine.components import served_index_kind
    from engine.indexes.vector import meta_path

    served = served_index_kind(catalog)
    rows = []
    for step, prefix in BUILT_INDEXES:
        if step not in catalog.built_steps:
            continue
        folder = catalog.step_dir(step)
        for kind in KNOBS:
            path = folder / f"{prefix}_{kind}.faiss"
            if not path.is_file():
                continue
            meta = meta_path(path)
            t = (json.loads(meta.read_text()) if meta.is_file() else {}).get("tuning") or {}
            rows.append(
                {
                    "index": prefix,
                    "kind": kind,
                    "served": kind == served and prefix != "colour",
                    "knob": KNOBS[kind],
                    "value": t.get("value"),
                    "recall": t.get("recall", {}),
                    "target": t.get("target"),
                    "met": t.get("met"),
                    "bytes": path.stat().st_size,
                }
            )
    return rows


def ann_md(r: dict[str, Any], md: Callable[[pd.DataFrame], str]) -> list[str]:
    """benchmark.md's vector-index section (``md`` renders a table): the tuned efSearch / nprobe
    per index, then each space's sweep."""
    out: list[str] = []
    if r.get("indexes"):
        out += [
            "## Vector indexes",
            "",
            "Search settings chosen by the build: the smallest efSearch / nprobe whose recall@10 "
            "against exact search reaches the target on 500 catalog vectors (seed 42) and on "
            "the step's query vectors; recorded beside each index file.",
            "",
            md(index_tuning_table(r["indexes"])),
            "",
        ]
    for space, sweep in r.get("ann", {}).items():
        out += [f"### {space}: recall@10 vs exact, latency and memory", ""]
        if sweep.get("tuned"):
            out += [
                "At the tuned settings, on the benchmark's text queries (held out from tuning):",
                "",
                md(ann_tuned_table(sweep)),
                "",
            ]
        out += [md(ann_points(sweep)), ""]
    return out
