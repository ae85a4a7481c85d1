"""The "Vector store: FAISS vs Milvus" section of benchmark.md, drawn from
``reports/vector_stores.json`` (written by ``python -m engine bench-stores``,
``engine/benchmark/stores.py``) whenever that file is there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE = "vector_stores.json"


def read_stores(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / FILE
    return json.loads(path.read_text()) if path.is_file() else None


def stores_md(r: dict[str, Any]) -> list[str]:
    """The "FAISS vs Milvus" section of benchmark.md."""
    from engine.benchmark.int8 import MAX_LOAD

    m = r["machine"]
    before = m.get("load_average_before") or [0.0]
    busy = before[0] > MAX_LOAD  # agreement and NDCG hold on a busy machine; latency does not
    lines = [
        "## Vector store: FAISS vs Milvus",
        "",
        f"`python -m engine bench-stores --catalog {r['catalog']}`, {r['measured_at']}, commit "
        f"{r['commit']}, one thread, {r['n_queries']} test queries on {r['n_items']:,} products, "
        f"{r['milvus']}; 1-min load before/after {_load(m.get('load_average_before'))} / "
        f"{_load(m.get('load_average_after'))}. Served index: FAISS {r['served_kind']['faiss']}, "
        f"Milvus {r['served_kind']['milvus']}, each tuned at build to recall@10 ≥ the target.",
        "",
        "| method | top-10 overlap [95% CI] | identical top-10 | NDCG@10 FAISS | NDCG@10 Milvus "
        "| search p95 FAISS / Milvus (ms) | total p95 FAISS / Milvus (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, rec in r["methods"].items():
        o, n, lat = rec["top10_overlap"], rec["ndcg@10"], rec["latency_ms"]
        speed = (
            "busy machine | busy machine" if busy else
            f"{lat['faiss']['search']['p95']:.1f} / {lat['milvus']['search']['p95']:.1f} "
            f"| {lat['faiss']['total']['p95']:.1f} / {lat['milvus']['total']['p95']:.1f}"
        )
        lines.append(
            f"| {method} | {o['mean']:.3f} [{o['low']:.3f}, {o['high']:.3f}] "
            f"| {rec['identical_top10_share']:.0%} "
            f"| {_ci(n['faiss'])} | {_ci(n['milvus'])} | {speed} |"
        )
    if busy:
        lines += ["", f"Latency is not published from this run: the 1-minute load average was "
                      f"{before[0]:.2f} (> {MAX_LOAD}) when it started. Top-10 overlap and NDCG "
                      "do not depend on load."]
    return [*lines, ""]


def _ci(i: dict[str, float]) -> str:
    return f"{i['mean']:.3f} [{i['low']:.3f}, {i['high']:.3f}]"


def _load(v: list[float] | None) -> str:
    return " ".join(f"{x:.2f}" for x in v) if v else "?"
