"""The benchmark harness: every method on the same test queries, quality and latency, one run.

``run_benchmark(catalog)`` returns a JSON-ready report; ``python -m engine bench`` writes it to
``reports/benchmark.json`` and a readable ``reports/benchmark.md``. Queries run one at a time on
one thread after a warm-up, as the app runs them. Nothing here is hand-set: every figure in the
docs is copied from the file this writes.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import pandas as pd

from engine.benchmark.ann import ann_sweep, index_tunings
from engine.benchmark.comparisons import headline_comparisons
from engine.benchmark.gitinfo import git_commit
from engine.benchmark.quality import evaluate, slices
from engine.catalog import Catalog
from engine.evaluation.metrics import latency_percentiles
from engine.progress import ProgressFn, no_progress
from engine.retrieval.registry import available_retrievers
from engine.runtime import load_average
from engine.schema import RELEVANT_GRADE
from engine.search import search

K = 10
WARMUP = 5
FORMAT = 2  # 2: every metric with a 95 % bootstrap interval over queries


def _run_method(
    catalog: Catalog,
    method: str,
    queries: list[dict],
    progress: ProgressFn,
    k: int,
    *,
    understand: bool = True,
) -> tuple[dict[str, list], dict[str, list[float]]]:
    """Search every query with one method; returns the run (item ids) and stage timings."""
    for q in queries[:WARMUP]:
        search(catalog, method, k=k, understand=understand, **q["input"])
    run: dict[str, list] = {}
    stages: dict[str, list[float]] = {}
    label = method if understand else f"{method} (literal)"
    for q in progress(queries, len(queries), label):
        result = search(catalog, method, k=k, understand=understand, **q["input"])
        run[q["query_id"]] = [catalog.item_ids[r] for r in result.rows]
        for stage, ms in {**result.timings_ms, "total": result.total_ms}.items():
            stages.setdefault(stage, []).append(ms)
    return run, stages


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
                "subtype": str(getattr(row, "subtype", "") or ""),
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


def _silent_items(catalog: Catalog) -> dict[str, set[str]]:
    """Per text query: its relevant items whose title and description do not name the colour or
    pattern it asks for (``qrels.title_silent``, written by the world; empty when absent)."""
    q = catalog.table("qrels")
    if "title_silent" not in q:
        return {}
    silent = q[(q["grade"] >= RELEVANT_GRADE) & q["title_silent"]]
    return {qid: set(group) for qid, group in silent.groupby("query_id")["item_id"]}


def _latency(stages: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        s: {m: round(v, 3) for m, v in latency_percentiles(x).items()} for s, x in stages.items()
    }


def _evaluate_set(
    catalog, queries, qrels, methods, progress, k, *, literal: bool = False, silent=None
) -> dict[str, Any]:
    """Every method on one query set; with ``literal`` also without query understanding."""
    new_ids = set(catalog.items.loc[catalog.items["is_new"], "item_id"])
    out: dict[str, Any] = {
        "n_queries": len(queries),
        "query_ids": [q["query_id"] for q in queries],
        "slice_sizes": {name: len(ids) for name, ids in slices(queries).items()},
        "slice_members": slices(queries),
        "methods": {},
    }
    for method in methods:
        run, stages = _run_method(catalog, method, queries, progress, k)
        rec = evaluate(run, qrels, queries, k=k, silent=silent, new_ids=new_ids)
        rec["latency_ms"] = _latency(stages)
        if literal:
            lit_run, lit_stages = _run_method(
                catalog, method, queries, progress, k, understand=False
            )
            lit = evaluate(lit_run, qrels, queries, k=k, silent=silent)
            rec["literal"] = {
                "overall": {f"ndcg@{k}": lit["overall"][f"ndcg@{k}"]},
                "slices": {n: {f"ndcg@{k}": v[f"ndcg@{k}"]} for n, v in lit["slices"].items()},
                "per_query": lit["per_query"],
                "latency_ms": {"total": _latency(lit_stages)["total"]},
            }
        out["methods"][method] = rec
    return out


def recommend_section(catalog: Catalog, k: int = K) -> dict[str, Any] | None:
    """The recommenders' evaluation, as measured by the build on the chronological test split,
    with the random and oracle ceilings measured here on the same engagements."""
    from engine.benchmark.ceilings import ceilings

    rec = catalog.manifest["steps"].get("recommend")
    if rec is None or "recommend" not in catalog.built_steps:
        return None
    info = json.loads(json.dumps(rec.get("info", {})))  # a copy: the manifest stays as built
    evaluation = info.get("evaluation")
    if evaluation:
        evaluation["ceilings"] = ceilings(catalog, k=evaluation.get("k", k))
    return {
        "measured_by": "the recommend build step, on the test split after the cutoff",
        "built_at": rec.get("finished_at"),
        **info,
    }


def run_benchmark(
    catalog: Catalog,
    *,
    split: str = "test",
    limit: int | None = None,
    progress: ProgressFn = no_progress,
    k: int = K,
    literal: bool = True,
    settle: bool = False,
) -> dict[str, Any]:
    """Benchmark every built method of ``catalog`` on its ``split`` query sets.

    With ``settle`` (the CLI's default) it first waits for the machine to look idle
    (``wait_for_idle``) and records the wait in ``machine.idle_wait``.

    With ``literal`` every text method also runs without query understanding, so the report
    shows what understanding changes on each slice (catalog words vs wild wording).
    """
    from engine.runtime import set_serving_threads

    set_serving_threads(1)
    idle = wait_for_idle() if settle else {"settled": None, "waited_s": 0.0}
    t0 = time.perf_counter()
    load_before = load_average()
    text_q = _text_queries(catalog, split, limit)
    image_q = _image_queries(catalog, split, limit)
    understands = "query" in catalog.built_steps
    report: dict[str, Any] = {
        "format": FORMAT,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": git_commit(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "threads": 1,
            "note": "single-threaded queries, after a warm-up",
            "load_average_before": load_before,
            "idle_wait": idle,
        },
        "catalog": {
            "name": catalog.name,
            "preset": catalog.manifest["preset"],
            "items": len(catalog.items),
            "config_hash": catalog.manifest["config_hash"],
            "built_at": catalog.manifest["built_at"],
            "step_hashes": {s: r.get("hash") for s, r in catalog.manifest["steps"].items()},
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
            literal=literal and understands,
            silent=_silent_items(catalog),
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
        "query_runtime": _query_runtime(catalog, text_q, k),
        "image_runtime": _image_runtime(catalog, image_q, k),
        "indexes": index_tunings(catalog),
        "recommend": recommend_section(catalog, k),
        "build_run": {
            "built_at": catalog.manifest.get("built_at"),
            "seconds": catalog.manifest.get("build_seconds"),
            **{
                k: catalog.manifest.get("machine", {}).get(k)
                for k in ("load_average_at_start", "peak_rss_mb")
            },
        },
        "build": {
            s: {"seconds": r["seconds"], "hash": r.get("hash"), "info": r.get("info", {}),
                "peak_rss_mb": r.get("peak_rss_mb")}
            for s, r in catalog.manifest["steps"].items()
        },
    }
    report["comparisons"] = headline_comparisons(report)
    report["machine"]["load_average_after"] = load_average()
    report["bench_seconds"] = round(time.perf_counter() - t0, 1)
    return report


def _query_runtime(catalog: Catalog, text_q: list[dict], k: int) -> dict[str, Any] | None:
    """PyTorch vs ONNX Runtime for the SBERT query encoder (None without an sbert step)."""
    from engine.benchmark.query_runtime import compare_query_runtimes

    if "sbert" not in catalog.built_steps:
        return None
    return compare_query_runtimes(catalog, [(q["query_id"], q["text"]) for q in text_q], k)


def _image_runtime(catalog: Catalog, image_q: list[dict], k: int) -> dict[str, Any] | None:
    """PyTorch vs ONNX Runtime for the compact CLIP's image tower (None without its export)."""
    from engine.benchmark.query_runtime import compare_image_runtimes

    if "visual" not in catalog.built_steps:
        return None
    images = [(q["query_id"], getattr(q["input"]["image"], "image", q["input"]["image"]))
              for q in image_q]  # the decoded PIL image, as the search methods get it
    return compare_image_runtimes(catalog, images, k)


IDLE_LOAD = 1.0  # the 1-minute load average a 2-core machine shows with one busy thread or less
IDLE_WAIT_CAP_S = 240.0


def wait_for_idle(
    threshold: float = IDLE_LOAD,
    cap_s: float = IDLE_WAIT_CAP_S,
    *,
    poll_s: float = 5.0,
    clock=time.monotonic,
    sleep=time.sleep,
    load=lambda: os.getloadavg()[0],
) -> dict[str, Any]:
    """Wait (up to ``cap_s``) for the 1-minute load average to fall to ``threshold``.

    ``make bench`` runs the browser load test just before the benchmark; the load average lags
    by about a minute, so the latencies would otherwise start on a machine that looks busy.
    Returns what happened; ``settled`` is false when the cap was reached (the report says so).
    """
    start = clock()
    try:
        first = now = float(load())
    except OSError:  # pragma: no cover - not on every platform
        return {"settled": None, "waited_s": 0.0}
    while now > threshold and clock() - start < cap_s:
        sleep(poll_s)
        now = float(load())
    return {
        "settled": now <= threshold,
        "waited_s": round(clock() - start, 1),
        "threshold": threshold,
        "load_at_start": round(first, 2),
    }


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
