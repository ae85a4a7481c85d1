"""The benchmark harness: every method on the same test queries, quality and latency, one run.

``run_benchmark(catalog)`` returns a JSON-ready report; ``python -m engine bench`` writes it to
``reports/benchmark.json`` and a readable ``reports/benchmark.md``. Queries run one at a time on
one thread after a warm-up, as the app runs them. Nothing here is hand-set: every figure in the
docs is copied from the file this writes.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from engine.catalog import Catalog
from engine.evaluation.metrics import evaluate_run, latency_percentiles
from engine.retrieval.registry import available_retrievers
from engine.schema import RELEVANT_GRADE
from engine.search import search

K = 10
WARMUP = 5
ProgressFn = Callable[[Iterable, int, str], Iterable]


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _run_method(
    catalog: Catalog, method: str, queries: list[dict], progress: ProgressFn, k: int
) -> tuple[dict[str, list], dict[str, list[float]]]:
    """Search every query with one method; returns the run (item ids) and stage timings."""
    for q in queries[:WARMUP]:
        search(catalog, method, k=k, **q["input"])
    run: dict[str, list] = {}
    stages: dict[str, list[float]] = {}
    for q in progress(queries, len(queries), method):
        result = search(catalog, method, k=k, **q["input"])
        run[q["query_id"]] = [catalog.item_ids[r] for r in result.rows]
        for stage, ms in {**result.timings_ms, "total": result.total_ms}.items():
            stages.setdefault(stage, []).append(ms)
    return run, stages


def _slices(queries: list[dict], qrels: dict, new_ids: set[str]) -> dict[str, dict]:
    """Named subsets of the judgments: by query type, wording, visual, and NEW vs existing items."""
    out: dict[str, dict] = {}
    for q in queries:
        names = [f"type={q['type']}", f"visual={q['visual']}"]
        if q.get("wording"):
            names.append(f"wording={q['wording']}")
        for name in names:
            out.setdefault(name, {})[q["query_id"]] = qrels.get(q["query_id"], {})
    for name, keep in (("items=new", True), ("items=existing", False)):
        sub = {}
        for q in queries:
            judged = {
                i: g for i, g in qrels.get(q["query_id"], {}).items() if (i in new_ids) == keep
            }
            if any(g >= RELEVANT_GRADE for g in judged.values()):
                sub[q["query_id"]] = judged
        out[name] = sub
    return out


def _evaluate(run: dict, qrels: dict) -> dict[str, float]:
    sub_run = {q: run.get(q, []) for q in qrels}
    return {
        k: round(v, 4)
        for k, v in evaluate_run(sub_run, qrels, ks=(K,), threshold=RELEVANT_GRADE).items()
    }


def _text_queries(catalog: Catalog, split: str, limit: int | None) -> list[dict]:
    df = catalog.table("queries")
    df = df[df["split"] == split].head(limit) if limit else df[df["split"] == split]
    out = []
    for row in df.itertuples():
        attrs = json.loads(row.attributes)
        # Catalogs built before the wording column had a boolean "paraphrase" column instead.
        old = "paraphrase" if getattr(row, "paraphrase", False) else "catalog"
        out.append(
            {
                "query_id": row.query_id,
                "type": row.type,
                "wording": str(getattr(row, "wording", old)),
                "visual": bool({"colour", "pattern"} & set(attrs)),
                "text": row.query,
                "input": {"text": row.query},
            }
        )
    return out


def _image_queries(catalog: Catalog, split: str, limit: int | None) -> list[dict]:
    from engine.imageio import load_image

    df = catalog.table("image_queries")
    df = df[df["split"] == split].head(limit) if limit else df[df["split"] == split]
    return [
        {
            "query_id": r.query_id,
            "type": "image",
            "wording": None,
            "visual": True,
            "input": {"image": load_image(catalog.world_dir / r.image_path)},
        }
        for r in df.itertuples()
    ]


def _evaluate_set(catalog, queries, qrels, methods, progress, k) -> dict[str, Any]:
    new_ids = set(catalog.items.loc[catalog.items["is_new"], "item_id"])
    slices = _slices(queries, qrels, new_ids)
    q_ids = {q["query_id"] for q in queries}
    overall = {q: qrels.get(q, {}) for q in q_ids}
    out: dict[str, Any] = {"n_queries": len(queries), "methods": {}}
    for method in methods:
        run, stages = _run_method(catalog, method, queries, progress, k)
        out["methods"][method] = {
            "overall": _evaluate(run, overall),
            "slices": {name: _evaluate(run, sub) for name, sub in slices.items() if sub},
            "latency_ms": {
                s: {m: round(v, 3) for m, v in latency_percentiles(x).items()}
                for s, x in stages.items()
            },
        }
    out["slice_sizes"] = {name: len(sub) for name, sub in slices.items()}
    return out


def recommend_section(catalog: Catalog) -> dict[str, Any] | None:
    """The recommenders' evaluation, as measured by the build on the chronological test split."""
    rec = catalog.manifest["steps"].get("recommend")
    if rec is None or "recommend" not in catalog.built_steps:
        return None
    info = rec.get("info", {})
    return {
        "measured_by": "the recommend build step, on the test split after the cutoff",
        "built_at": rec.get("finished_at"),
        **info,
    }


def ann_sweep(catalog: Catalog, queries: list[dict], k: int = K) -> dict[str, Any]:
    """Recall@k against exact search and latency for HNSW efSearch and IVF nprobe settings."""
    from engine.components import clip_encoder, text_encoder, vector_index
    from engine.indexes.vector import recall_vs_exact

    texts = [q["text"] for q in queries if q.get("text")][:200]
    spaces = {"sbert": ("sbert", "sbert", lambda: text_encoder(catalog).encode_texts(texts))}
    if "visual" in catalog.built_steps:
        spaces["clip"] = ("visual", "clip", lambda: clip_encoder(catalog).encode_texts(texts))
    out: dict[str, Any] = {}
    for name, (step, prefix, encode) in spaces.items():
        vecs = encode()
        flat = vector_index(catalog, step, prefix, "flat")
        hnsw = vector_index(catalog, step, prefix, "hnsw")
        ivf = vector_index(catalog, step, prefix, "ivf")
        t_flat = recall_vs_exact(flat, flat, vecs, k=k)["ms_per_query"]
        out[name] = {
            "flat_ms_per_query": t_flat,
            "hnsw": [
                {"ef_search": ef, **recall_vs_exact(hnsw, flat, vecs, k=k, ef_search=ef)}
                for ef in (8, 16, 32, 64, 128, 256)
            ],
            "ivf": [
                {"nprobe": n, **recall_vs_exact(ivf, flat, vecs, k=k, nprobe=n)}
                for n in (1, 2, 4, 8, 16, 32)
            ],
        }
    return out


def run_benchmark(
    catalog: Catalog,
    *,
    split: str = "test",
    limit: int | None = None,
    progress: ProgressFn = lambda it, n, d: it,
    k: int = K,
) -> dict[str, Any]:
    """Benchmark every built method of ``catalog`` on its ``split`` query sets."""
    from engine.runtime import set_threads

    set_threads(1)
    t0 = time.perf_counter()
    text_q = _text_queries(catalog, split, limit)
    image_q = _image_queries(catalog, split, limit)
    report: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": _git_commit(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "threads": 1,
            "note": "single-threaded queries, after a warm-up",
        },
        "catalog": {
            "name": catalog.name,
            "preset": catalog.manifest["preset"],
            "items": len(catalog.items),
            "config_hash": catalog.manifest["config_hash"],
            "built_at": catalog.manifest["built_at"],
        },
        "k": k,
        "relevant_grade": RELEVANT_GRADE,
        "split": split,
        "text": _evaluate_set(
            catalog,
            text_q,
            catalog.qrels("text"),
            available_retrievers(catalog, "text"),
            progress,
            k,
        ),
        "image": _evaluate_set(
            catalog,
            image_q,
            catalog.qrels("image"),
            available_retrievers(catalog, "image"),
            progress,
            k,
        ),
        "ann": ann_sweep(catalog, text_q, k),
        "recommend": recommend_section(catalog),
        "build": {
            s: {"seconds": r["seconds"], "info": r.get("info", {})}
            for s, r in catalog.manifest["steps"].items()
        },
    }
    report["bench_seconds"] = round(time.perf_counter() - t0, 1)
    return report


def disagreement(
    catalog: Catalog, methods: tuple[str, ...], *, split: str = "test", k: int = K
) -> pd.DataFrame:
    """Per-query NDCG@k of each method on a text query set, sorted by max − min (largest first)."""
    from engine.evaluation.metrics import ndcg_at_k

    qrels = catalog.qrels("text")
    rows = []
    for q in _text_queries(catalog, split, None):
        rec = {"query_id": q["query_id"], "query": q["text"]}
        for m in methods:
            result = search(catalog, m, text=q["text"], k=k)
            rec[m] = ndcg_at_k(
                [catalog.item_ids[r] for r in result.rows], qrels.get(q["query_id"], {}), k=k
            )
        rows.append(rec)
    df = pd.DataFrame(rows)
    df["disagreement"] = df[list(methods)].max(axis=1) - df[list(methods)].min(axis=1)
    return df.sort_values("disagreement", ascending=False, kind="stable").reset_index(drop=True)
