"""Tables and chart data built from a benchmark report (``reports/benchmark.json``).

The report writer, the Benchmarks page and the README section all read the report through
these, so a figure is reshaped in one place.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def recommend_table(section: dict[str, Any]) -> pd.DataFrame:
    """One row per recommender: overall, cold-start and short-history quality, coverage, latency."""
    ev = section["evaluation"]
    k = ev["k"]
    rows = []
    for name, m in ev["models"].items():
        rows.append(
            {
                "model": name,
                f"recall@{k}": m[f"recall@{k}"],
                f"ndcg@{k}": m[f"ndcg@{k}"],
                f"map@{k}": m[f"map@{k}"],
                f"cold-start recall@{k}": m["cold_start"][f"recall@{k}"],
                f"short-history recall@{k}": m["short_history"][f"recall@{k}"],
                "coverage": m["coverage"],
                "popularity pct": m["popularity_percentile"],
                "p95 ms": m["latency_ms"]["p95"],
            }
        )
    ceil = ev.get("ceilings") or {}
    for name, label in (("random", "(random ranking)"), ("oracle", "(oracle: true tastes)")):
        if name in ceil:
            c = ceil[name]
            rows.append(
                {
                    "model": label,
                    f"recall@{k}": c[f"recall@{k}"],
                    f"ndcg@{k}": c[f"ndcg@{k}"],
                    f"map@{k}": c[f"map@{k}"],
                }
            )
    return pd.DataFrame(rows)


def mean(value: Any) -> float:
    """A figure's point value: the mean of an interval, or a plain number (older reports)."""
    return float(value["mean"]) if isinstance(value, dict) else float(value)


def with_interval(value: Any) -> str:
    """"0.583 [0.550, 0.612]" (or "0.583" for a figure without an interval)."""
    if isinstance(value, dict):
        return f"{value['mean']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"
    return f"{float(value):.3f}"


def methods_table(
    section: dict[str, Any],
    metrics=("ndcg@10", "mrr", "recall@10", "precision@10", "map@10"),
    *,
    intervals: bool = False,
) -> pd.DataFrame:
    """One row per method: overall metrics (means; with ``intervals`` "mean [low, high]"
    strings) and p50/p95 total latency."""
    show = with_interval if intervals else mean
    rows = []
    for method, r in section["methods"].items():
        lat = r["latency_ms"]["total"]
        rows.append(
            {
                "method": method,
                **{m: show(r["overall"][m]) for m in metrics},
                "p50 ms": lat["p50"],
                "p95 ms": lat["p95"],
            }
        )
    return pd.DataFrame(rows)


def interval_frame(section: dict[str, Any], metric: str = "ndcg@10") -> pd.DataFrame:
    """method, mean, low, high of one overall metric (for charts with error bars)."""
    rows = []
    for method, r in section["methods"].items():
        v = r["overall"][metric]
        lo, hi = (v["low"], v["high"]) if isinstance(v, dict) else (mean(v), mean(v))
        rows.append({"method": method, "mean": mean(v), "low": lo, "high": hi})
    return pd.DataFrame(rows)


def slices_table(
    section: dict[str, Any], metric: str = "ndcg@10", *, intervals: bool = False
) -> pd.DataFrame:
    """One row per method, one column per slice, of one metric (with ``intervals`` as
    "mean [low, high]" strings)."""
    show = with_interval if intervals else mean
    data = {
        m: {s: show(v[metric]) for s, v in r["slices"].items()}
        for m, r in section["methods"].items()
    }
    return pd.DataFrame(data).T.reset_index(names="method")


def best_of(section: dict[str, Any], metric: str = "ndcg@10") -> tuple[str, float]:
    """The method with the highest overall ``metric`` (its mean)."""
    method = max(section["methods"], key=lambda m: mean(section["methods"][m]["overall"][metric]))
    return method, mean(section["methods"][method]["overall"][metric])


def wording_table(section: dict[str, Any], metric: str = "ndcg@10") -> pd.DataFrame:
    """Per method: the metric on each wording slice with understanding and without it
    (``literal``), when the report ran both."""
    rows = []
    for method, r in section["methods"].items():
        row: dict[str, Any] = {"method": method}
        for name in ("wording=catalog", "wording=paraphrase", "wording=wild"):
            if name not in r["slices"]:
                continue
            word = name.split("=")[1]
            row[word] = with_interval(r["slices"][name][metric])
            lit = r.get("literal", {}).get("slices", {}).get(name)
            if lit:
                row[f"{word}, literal"] = with_interval(lit[metric])
        silent = r.get("title_silent")
        if silent:
            row["title-silent hit@10"] = with_interval(next(iter(silent.values())))
        rows.append(row)
    return pd.DataFrame(rows)


def latency_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per (query set, method, stage) with p50/p95/p99 milliseconds."""
    rows = []
    for section in ("text", "image"):
        for method, m in report[section]["methods"].items():
            for stage, p in m["latency_ms"].items():
                rows.append({"queries": section, "method": method, "stage": stage, **p})
    return pd.DataFrame(rows)


def ann_points(sweep: dict[str, Any]) -> pd.DataFrame:
    """The ANN sweep of one embedding space: recall@10 and ms/query per index setting."""
    pts = [
        {
            "index": "HNSW",
            "setting": f"ef={x['ef_search']}",
            "recall@10": x["recall_at_k"],
            "ms/query": x["ms_per_query"],
        }
        for x in sweep["hnsw"]
    ]
    pts += [
        {
            "index": "IVF",
            "setting": f"nprobe={x['nprobe']}",
            "recall@10": x["recall_at_k"],
            "ms/query": x["ms_per_query"],
        }
        for x in sweep["ivf"]
    ]
    pts.append(
        {
            "index": "Flat (exact)",
            "setting": "exact",
            "recall@10": 1.0,
            "ms/query": sweep["flat_ms_per_query"],
        }
    )
    return pd.DataFrame(pts)


def live_vs_benchmark(live: list[dict[str, Any]], report: dict[str, Any] | None) -> pd.DataFrame:
    """The app's live latency rows (method, stage, ...) with the benchmark's p50/p95 beside them."""
    df = pd.DataFrame(live)
    if report is not None and len(df):
        bench = {
            (m, s): p
            for sec in ("text", "image")
            for m, v in report[sec]["methods"].items()
            for s, p in v["latency_ms"].items()
        }
        df["bench p50"] = [bench.get((m, s), {}).get("p50") for m, s in zip(df.method, df.stage)]
        df["bench p95"] = [bench.get((m, s), {}).get("p95") for m, s in zip(df.method, df.stage)]
    return df
