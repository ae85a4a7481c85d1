"""PyTorch vs ONNX Runtime for Sentence-BERT queries, side by side, in every ``make bench``.

Both runtimes encode the catalog's text test queries one at a time (taking turns on each query,
after a warm-up, one thread) and search the catalog's stored SBERT item vectors exactly, so any
difference is the runtime's alone: latency of the encoding and of encoding plus search, NDCG@k,
how far the query vectors agree and how often the top-k lists are identical. The methods in the
main tables use the configured runtime (ONNX by default); this section shows what it changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.benchmark.int8 import agreement, mean_ndcg, search_queries
from engine.catalog import Catalog

RUNTIMES = ("torch", "onnx")


def compare_query_runtimes(
    catalog: Catalog, queries: Sequence[tuple[str, str]], k: int = 10
) -> dict[str, Any] | None:
    """The side-by-side figures on ``queries`` (``(query_id, text)``); None when the catalog's
    text encoder has no ONNX variant (not fp32 MiniLM)."""
    from engine.components import embeddings, text_precision
    from engine.encoders.onnx_text import query_text_encoder
    from engine.encoders.text import FP32, MINILM, create_text_encoder

    name = catalog.config["text"]["sbert_model"]
    if name != MINILM or text_precision(catalog) != FP32 or not queries:
        return None
    encoders = {"torch": create_text_encoder(name),
                "onnx": query_text_encoder(name, runtime_name="onnx")}
    if getattr(encoders["onnx"], "runtime", None) != "onnx":
        return {"unavailable": "ONNX Runtime could not be used here (the log says why)"}
    items = embeddings(catalog, "sbert")
    qids, texts = [q for q, _ in queries], [t for _, t in queries]
    measured = search_queries(encoders, {r: items for r in RUNTIMES}, texts, k)
    out: dict[str, Any] = {
        "k": k,
        "n_queries": len(texts),
        "search": "literal query text, exact inner product over the stored item vectors",
    }
    for r in RUNTIMES:
        vecs, runs, latency = measured[r]
        out[r] = {f"ndcg@{k}": mean_ndcg(runs, qids, catalog.item_ids, catalog.qrels("text"), k),
                  **latency}
    (va, ra, _), (vb, rb, _) = measured["torch"], measured["onnx"]
    out["query_cosine"] = agreement(va, vb)
    out["max_abs_diff"] = float(np.abs(va - vb).max())
    out[f"top{k}_identical"] = round(
        float(np.mean([list(a) == list(b) for a, b in zip(ra, rb)])), 4)
    out["encode_p95_speedup"] = round(
        out["torch"]["encode_ms"]["p95"] / max(out["onnx"]["encode_ms"]["p95"], 1e-9), 2)
    out["encode_p50_speedup"] = round(
        out["torch"]["encode_ms"]["p50"] / max(out["onnx"]["encode_ms"]["p50"], 1e-9), 2)
    return out


def query_runtime_md(c: dict[str, Any]) -> list[str]:
    """Markdown lines for benchmark.md."""
    if "unavailable" in c:
        return ["## Query encoder: PyTorch vs ONNX Runtime", "", c["unavailable"] + ".", ""]
    k = c["k"]
    lines = [
        "## Query encoder: PyTorch vs ONNX Runtime",
        "",
        f"The same MiniLM weights on two runtimes, {c['n_queries']} text test queries one at a "
        f"time, taking turns on each query, one thread; {c['search']}.",
        "",
        f"| runtime | NDCG@{k} | encode p50 ms | encode p95 ms | encode+search p95 ms |",
        "|---|---|---|---|---|",
    ]
    for r in RUNTIMES:
        x = c[r]
        lines.append(f"| {r} | {x[f'ndcg@{k}']:.4f} | {x['encode_ms']['p50']:.1f} | "
                     f"{x['encode_ms']['p95']:.1f} | {x['encode_search_ms']['p95']:.1f} |")
    q = c["query_cosine"]
    lines += [
        "",
        f"Encode speed-up (PyTorch ÷ ONNX): p50 {c['encode_p50_speedup']:.2f}×, p95 "
        f"{c['encode_p95_speedup']:.2f}×; query vectors' cosine mean {q['mean']:.5f} (min "
        f"{q['min']:.5f}), largest element difference {c['max_abs_diff']:.1e}; identical top-{k} "
        f"lists on {c[f'top{k}_identical']:.1%} of queries.",
        "",
    ]
    return lines
