"""PyTorch vs ONNX Runtime for query encoders, side by side, in every ``make bench``: the
Sentence-BERT text encoder and the compact CLIP's image tower.

Both runtimes encode the catalog's test queries one at a time (taking turns on each query,
after a warm-up, one thread) and search the catalog's stored item vectors (SBERT or CLIP)
exactly, so any difference is the runtime's alone: latency of the encoding and of encoding
plus search, NDCG@k, how far the query vectors agree and how often the top-k lists are
identical. The methods in the main tables use the configured runtime (ONNX by default); these
sections show what it changed.
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
    from engine.runtime import torch_threads

    name = catalog.config["text"]["sbert_model"]
    if name != MINILM or text_precision(catalog) != FP32 or not queries:
        return None
    torch_threads()  # PyTorch on the serving thread count too (its default is every core)
    encoders = {"torch": create_text_encoder(name),
                "onnx": query_text_encoder(name, runtime_name="onnx")}
    if getattr(encoders["onnx"], "runtime", None) != "onnx":
        return {"unavailable": "ONNX Runtime could not be used here (the log says why)"}
    items = embeddings(catalog, "sbert")
    qids, texts = [q for q, _ in queries], [t for _, t in queries]
    measured = search_queries(encoders, {r: items for r in RUNTIMES}, texts, k)
    return _summary(catalog, measured, qids, "text", k, len(texts),
                    "literal query text, exact inner product over the stored item vectors")


class _ImageQueries:
    """An image encoder behind the ``encode_texts`` call :func:`search_queries` makes."""

    def __init__(self, encoder):
        self.encoder = encoder

    def encode_texts(self, images: list) -> np.ndarray:
        return self.encoder.encode_images(images)


def compare_image_runtimes(
    catalog: Catalog, queries: Sequence[tuple[str, Any]], k: int = 10
) -> dict[str, Any] | None:
    """The compact CLIP's image tower on PyTorch and on its ONNX export, side by side, on
    ``queries`` (``(query_id, PIL image)``); None when the catalog's CLIP has no ONNX export."""
    from engine.components import embeddings, text_encoder
    from engine.encoders.clip import load_clip_step
    from engine.encoders.onnx_clip import onnx_compact_clip
    from engine.runtime import torch_threads

    folder = catalog.step_dir("clip")
    fast = onnx_compact_clip(folder, text_encoder(catalog))
    if fast is None or not queries:
        return None
    torch_threads()  # PyTorch on the serving thread count too (its default is every core)
    encoders = {"torch": _ImageQueries(load_clip_step(folder, text_encoder(catalog))),
                "onnx": _ImageQueries(fast)}
    items = embeddings(catalog, "clip")
    qids, images = [q for q, _ in queries], [im for _, im in queries]
    measured = search_queries(encoders, {r: items for r in RUNTIMES}, images, k)
    return _summary(catalog, measured, qids, "image", k, len(images),
                    "the query image, exact inner product over the stored CLIP item vectors")


def _summary(catalog: Catalog, measured: dict, qids: list[str], qrels: str, k: int, n: int,
             search: str) -> dict[str, Any]:
    """NDCG, latency, agreement and speed-ups of a :func:`search_queries` run."""
    out: dict[str, Any] = {"k": k, "n_queries": n, "search": search}
    for r in RUNTIMES:
        vecs, runs, latency = measured[r]
        out[r] = {f"ndcg@{k}": mean_ndcg(runs, qids, catalog.item_ids, catalog.qrels(qrels), k),
                  **latency}
    (va, ra, _), (vb, rb, _) = measured["torch"], measured["onnx"]
    out["query_cosine"] = agreement(va, vb)
    out["max_abs_diff"] = float(np.abs(va - vb).max())
    out[f"top{k}_identical"] = round(
        float(np.mean([list(a) == list(b) for a, b in zip(ra, rb)])), 4)
    for pct in ("p95", "p50"):
        out[f"encode_{pct}_speedup"] = round(
            out["torch"]["encode_ms"][pct] / max(out["onnx"]["encode_ms"][pct], 1e-9), 2)
    return out


def query_runtime_md(c: dict[str, Any], *, what: str = "text") -> list[str]:
    """Markdown lines for benchmark.md (``what``: "text" for SBERT, "image" for CLIP)."""
    title = ("## Query encoder: PyTorch vs ONNX Runtime" if what == "text"
             else "## Image query encoder (compact CLIP): PyTorch vs ONNX Runtime")
    if "unavailable" in c:
        return [title, "", c["unavailable"] + ".", ""]
    k = c["k"]
    model = "MiniLM weights" if what == "text" else "compact CLIP image tower"
    lines = [
        title,
        "",
        f"The same {model} on two runtimes, {c['n_queries']} {what} test queries one at a "
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
