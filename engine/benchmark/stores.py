"""FAISS vs Milvus on a built catalog: do the dense methods return the same results, how good are
they, and how fast, side by side in one run.

The catalog must have been built with ``--vector-store milvus`` (the ``vectorstore`` step). Each
test query is searched with each method twice, once reading the FAISS files and once the Milvus
collections (alternating, one thread), with query understanding on, as the app searches. Per
method: top-10 overlap with FAISS (mean over queries, with a bootstrap interval), NDCG@10 of
each store with intervals and the paired difference, and the p50/p95 of the whole search and of
its index-search stage. ``python -m engine bench-stores`` writes ``reports/vector_stores.json``
and re-renders benchmark.md, whose section :func:`stores_md` draws.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.benchmark.gitinfo import git_commit as _git_commit
from engine.benchmark.harness import _text_queries
from engine.benchmark.stores_section import FILE
from engine.catalog import Catalog
from engine.evaluation.metrics import latency_percentiles, ndcg_at_k
from engine.evaluation.stats import bootstrap_ci, paired_test
from engine.progress import ProgressFn, no_progress

K = 10
# The methods whose results come from a dense vector index.
DENSE_METHODS = ("sbert", "clip", "fusion-early", "fusion-mlp", "fusion-late")


def _overlap(a: list[int], b: list[int], k: int = K) -> float:
    return len(set(a[:k]) & set(b[:k])) / k


def compare_stores(
    faiss_catalog: Catalog,
    milvus_catalog: Catalog,
    *,
    methods: tuple[str, ...] = DENSE_METHODS,
    limit: int | None = None,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Every dense method on the test queries, FAISS and Milvus side by side."""
    from engine.components import milvus_collections
    from engine.runtime import load_average, set_threads
    from engine.search import available_retrievers, search

    set_threads(1)
    queries = _text_queries(faiss_catalog, "test", limit)
    qrels = faiss_catalog.qrels("text")
    ids = faiss_catalog.item_ids
    built = set(available_retrievers(faiss_catalog))
    info = milvus_collections(milvus_catalog) or {}
    report: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": _git_commit(),
        "catalog": faiss_catalog.name,
        "n_items": len(ids),
        "n_queries": len(queries),
        "k": K,
        "milvus": "Milvus Lite (files in the catalog's vectorstore step)"
        if info.get("uri") is None else f"Milvus at {info['uri']}",
        "served_kind": {"faiss": faiss_catalog.config.get("index", {}).get("kind", "hnsw"),
                        "milvus": info.get("served_kind")},
        "build": {p: {k: v for k, v in rec.items() if k.endswith(("seconds", "overlap_with_faiss"))}
                  for p, rec in info.get("indexes", {}).items()},
        "machine": {"threads": 1, "load_average_before": load_average()},
        "methods": {},
    }
    stores = {"faiss": faiss_catalog, "milvus": milvus_catalog}
    for method in [m for m in methods if m in built]:
        for catalog in stores.values():  # load models and indexes before timing
            for q in queries[:3]:
                search(catalog, method, k=K, **q["input"])
        runs: dict[str, dict[str, list]] = {s: {} for s in stores}
        total: dict[str, list[float]] = {s: [] for s in stores}
        stage: dict[str, list[float]] = {s: [] for s in stores}
        for q in progress(queries, len(queries), method):
            for store, catalog in stores.items():
                result = search(catalog, method, k=K, **q["input"])
                runs[store][q["query_id"]] = [ids[r] for r in result.rows]
                total[store].append(result.total_ms)
                stage[store].append(result.timings_ms.get("search", 0.0))
        qids = [q["query_id"] for q in queries]
        ndcg = {s: [ndcg_at_k(runs[s][qid], qrels.get(qid, {}), K) for qid in qids] for s in stores}
        overlap = [_overlap(runs["faiss"][qid], runs["milvus"][qid]) for qid in qids]
        report["methods"][method] = {
            "top10_overlap": bootstrap_ci(overlap).as_dict(),
            "identical_top10_share": round(
                sum(runs["faiss"][q] == runs["milvus"][q] for q in qids) / max(len(qids), 1), 4
            ),
            "ndcg@10": {s: bootstrap_ci(v).as_dict() for s, v in ndcg.items()},
            "ndcg_difference": paired_test(ndcg["milvus"], ndcg["faiss"],
                                           names=("milvus", "faiss")).as_dict(),
            "latency_ms": {
                s: {"total": _round(latency_percentiles(total[s])),
                    "search": _round(latency_percentiles(stage[s]))}
                for s in stores
            },
        }
    report["machine"]["load_average_after"] = load_average()
    return report


def _round(d: dict[str, float]) -> dict[str, float]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}


def run_from_cli(args, progress: ProgressFn, log) -> int:
    """``python -m engine bench-stores``: wait for an idle machine, measure, write
    ``vector_stores.json`` beside the catalog's benchmark report and re-render benchmark.md."""
    from engine.artifacts import atomic_write_json
    from engine.benchmark.harness import wait_for_idle
    from engine.benchmark.int8 import MAX_LOAD
    from engine.benchmark.report import load_report, write_reports
    from engine.config import DEFAULT_PRESET
    from engine.paths import reports_dir
    from engine.serving import open_catalog

    faiss_catalog = open_catalog(args.catalog, vector_store="faiss")
    milvus_catalog = open_catalog(args.catalog, vector_store="milvus", milvus_uri=args.milvus_uri)
    folder = Path(args.out) if args.out else (
        reports_dir() if args.catalog == DEFAULT_PRESET
        else reports_dir() / "catalogs" / args.catalog
    )
    settle = wait_for_idle() if args.settle else None
    r = compare_stores(faiss_catalog, milvus_catalog, limit=args.limit, progress=progress)
    r["machine"]["settle"] = settle
    before = r["machine"]["load_average_before"]
    if before and before[0] > MAX_LOAD and not args.force:
        log(f"error: 1-min load average {before[0]:.2f} > {MAX_LOAD}; not publishing "
            f"({folder / FILE} left as it was; --force to write anyway)")
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / FILE, r)
    bench = load_report(folder)
    if bench is not None:
        write_reports(bench, folder)  # re-render benchmark.md with the new section
    for method, rec in r["methods"].items():
        lat, ndcg = rec["latency_ms"], rec["ndcg@10"]
        print(f"{method}: top-10 overlap {rec['top10_overlap']['mean']:.3f}, NDCG@10 FAISS "
              f"{ndcg['faiss']['mean']:.3f} / Milvus {ndcg['milvus']['mean']:.3f}"
              f", search p95 {lat['faiss']['search']['p95']:.1f} / "
              f"{lat['milvus']['search']['p95']:.1f} ms")
    print(f"wrote {folder / FILE}")
    return 0
