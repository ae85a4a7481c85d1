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


ANN_LABELS = {"hnsw": "HNSW", "hnsw-sq8": "HNSW-SQ8", "ivf": "IVF"}
SETTING = {"ef_search": "ef", "nprobe": "nprobe"}


def _mb(n: int | None) -> float | None:
    return None if n is None else round(n / 1e6, 2)


def ann_points(sweep: dict[str, Any]) -> pd.DataFrame:
    """The ANN sweep of one embedding space: recall@10, ms/query and index MB per setting
    (older reports have no HNSW-SQ8 rows and no sizes)."""
    size = sweep.get("bytes", {})
    pts = []
    for kind, label in ANN_LABELS.items():
        for x in sweep.get(kind, []):
            knob = "ef_search" if "ef_search" in x else "nprobe"
            pts.append(
                {
                    "index": label,
                    "setting": f"{SETTING[knob]}={x[knob]}",
                    "recall@10": x["recall_at_k"],
                    "ms/query": x["ms_per_query"],
                    "MB": _mb(size.get(kind)),
                }
            )
    pts.append(
        {
            "index": "Flat (exact)",
            "setting": "exact",
            "recall@10": 1.0,
            "ms/query": sweep["flat_ms_per_query"],
            "MB": _mb(size.get("flat")),
        }
    )
    return pd.DataFrame(pts)


def ann_tuned_table(sweep: dict[str, Any]) -> pd.DataFrame:
    """Each approximate index of one space at its build-tuned setting, on the benchmark's
    queries, with its memory against the flat index's."""
    size = sweep.get("bytes", {})
    rows = [
        {
            "index": ANN_LABELS.get(kind, kind) + (" (served)" if kind == sweep["served"] else ""),
            "tuned setting": f"{SETTING[t['knob']]}={t['value']}"
            + ("" if t["recorded"] else " (default)"),
            "recall@10": t["recall_at_k"],
            "ms/query": t["ms_per_query"],
            "MB": _mb(size.get(kind)),
            "vs flat": (
                f"{size[kind] / size['flat']:.2f}x" if kind in size and size.get("flat") else None
            ),
        }
        for kind, t in sweep.get("tuned", {}).items()
    ]
    return pd.DataFrame(rows)


def index_tuning_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The efSearch / nprobe every built index recorded, and its recall@10 at tuning time
    (items: 500 catalog vectors, seed 42; queries: the build step's query vectors)."""
    return pd.DataFrame(
        [
            {
                "index": f"{r['index']}/{r['kind']}" + (" (served)" if r["served"] else ""),
                "tuned": "–" if r["value"] is None else f"{SETTING[r['knob']]}={r['value']}",
                "recall@10 items": r["recall"].get("items"),
                "recall@10 queries": r["recall"].get("queries"),
                "target": r["target"],
                "met": {True: "yes", False: "NO", None: "–"}[r["met"]],
                "MB": _mb(r["bytes"]),
            }
            for r in rows
        ]
    )


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
