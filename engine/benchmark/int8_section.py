"""The "SBERT int8 vs fp32" comparison on a built catalog, and its section of benchmark.md.

:func:`compare_on_catalog` re-encodes the catalog's items in the precision it was not built with
(its stored vectors serve the other) and runs the text test queries through both: NDCG@10 and
p95 latency side by side. ``python -m engine bench-int8`` (``engine/benchmark/int8_cli.py``)
writes it to ``reports/int8.json``;
:func:`int8_md` renders it into benchmark.md whenever that file (or the report's own ``int8``
key) is there, so the section exists exactly when a measurement does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.benchmark.int8 import PRECISIONS, K, load_encoders, side_by_side
from engine.catalog import Catalog
from engine.progress import ProgressFn, no_progress

FILE = "int8.json"


def compare_on_catalog(
    catalog: Catalog,
    *,
    split: str = "test",
    limit: int | None = None,
    progress: ProgressFn = no_progress,
    k: int = K,
) -> dict[str, Any]:
    """SBERT fp32 vs int8 on ``catalog``'s text queries (literal text, exact dense search)."""
    from engine.benchmark.harness import _text_queries
    from engine.components import embeddings, text_precision
    from engine.runtime import set_threads
    from engine.schema import item_texts

    set_threads(1)
    built = text_precision(catalog)
    encoders, load_s = load_encoders(catalog.config["text"]["sbert_model"])
    vectors = {built: embeddings(catalog, "sbert")}
    texts = item_texts(catalog.items)
    batch = int(catalog.config["text"].get("encode_batch_size", 128))
    other = next(p for p in PRECISIONS if p != built)
    t0 = time.perf_counter()
    chunks = [texts[i : i + batch * 8] for i in range(0, len(texts), batch * 8)]
    parts = [
        encoders[other].encode_texts(c, batch_size=batch)
        for c in progress(
            chunks, len(texts), f"encode items ({other})", unit="texts", size=len
        )
    ]
    vectors[other] = np.concatenate(parts).astype(np.float32)
    reencode_s = time.perf_counter() - t0
    queries = [(q["query_id"], q["text"]) for q in _text_queries(catalog, split, limit)]
    out = side_by_side(encoders, vectors, catalog.item_ids, queries, catalog.qrels("text"), k)
    out.update(
        catalog=catalog.name,
        split=split,
        built_precision=built,
        reencoded=other,
        reencode_seconds=round(reencode_s, 1),
        reencode_texts_per_s=round(len(texts) / max(reencode_s, 1e-9), 1),
        load_seconds=load_s,
        search="literal query text, exact inner product over every item, one thread",
    )
    return out


def read_int8(folder: Path) -> dict[str, Any] | None:
    """The int8 comparison written to ``folder`` by ``bench-int8``, or None."""
    path = folder / FILE
    return json.loads(path.read_text()) if path.exists() else None


def int8_md(c: dict[str, Any]) -> list[str]:
    """Markdown lines: provenance, the side-by-side table and the agreement figures."""
    k = c["k"]
    load = c.get("load_average_before")
    busy = " **(machine busy: not a clean measurement)**" if c.get("machine_busy") else ""
    when = f"Measured {c['measured_at']} at commit `{c['commit']}`" if "measured_at" in c else ""
    lines = [
        "## SBERT int8 vs fp32",
        "",
        f"{when}{f' (load average {load})' if load else ''}{busy}. Catalog `{c['catalog']}` "
        f"({c['n_items']:,} items, built {c['built_precision']}; {c['reencoded']} item vectors "
        f"re-encoded in {c['reencode_seconds']:.0f} s), {c['n_queries']} {c['split']} text "
        f"queries: {c['search']}. Latency is one query: encode, then search.",
        "",
        f"| precision | NDCG@{k} | encode p50 ms | encode p95 ms | encode+search p95 ms |",
        "|---|---|---|---|---|",
    ]
    for p in PRECISIONS:
        r = c[p]
        lines.append(
            f"| {p} | {r[f'ndcg@{k}']:.4f} | {r['encode_ms']['p50']:.1f} | "
            f"{r['encode_ms']['p95']:.1f} | {r['encode_search_ms']['p95']:.1f} |"
        )
    q, i = c["query_cosine"], c["item_cosine"]
    lines += [
        "",
        f"NDCG@{k} change (int8 − fp32): {c['ndcg_change']:+.4f}; p95 speed-up "
        f"{c['p95_speedup']:.2f}×; top-{k} overlap (Jaccard) {c[f'top{k}_jaccard']:.3f}; cosine "
        f"fp32↔int8 of query vectors mean {q['mean']:.4f} (min {q['min']:.4f}), of item "
        f"vectors mean {i['mean']:.4f} (min {i['min']:.4f}).",
        "",
    ]
    return lines

