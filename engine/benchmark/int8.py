"""Sentence-BERT int8 vs fp32: encode speed, query latency, vector agreement and search quality.

Two entry points share the measurements below:

- :func:`probe` takes any item texts and judged queries: ``e2e/int8_probe.py`` feeds it a
  synthetic 2,000-product world (texts only, no images, no build) and writes
  ``reports/int8_probe.json``;
- :func:`compare_on_catalog` runs on a built catalog's text test queries: its stored item vectors
  for the precision it was built with, the other precision's re-encoded here
  (``python -m engine bench-int8`` writes ``reports/int8.json``; benchmark.md shows it).

Search here is plain dense retrieval (the literal query text, exact inner product over every
item), the same for both precisions, so the difference is the encoder's alone. Single thread.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.evaluation.metrics import jaccard_at_k, latency_percentiles, ndcg_at_k

K = 10
WARMUP = 10
PRECISIONS = ("fp32", "int8")


def encode_rate(encoder, texts: Sequence[str], batch_size: int = 128) -> tuple[np.ndarray, dict]:
    """Encode ``texts`` in batches; returns the vectors and ``{texts, seconds, texts_per_s}``."""
    encoder.encode_texts(list(texts[:batch_size]), batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    vecs = encoder.encode_texts(list(texts), batch_size=batch_size)
    seconds = time.perf_counter() - t0
    return vecs, {
        "texts": len(texts),
        "seconds": round(seconds, 2),
        "texts_per_s": round(len(texts) / max(seconds, 1e-9), 1),
    }


def top_k(items: np.ndarray, query: np.ndarray, k: int = K) -> np.ndarray:
    """Rows of the ``k`` items with the largest inner product with ``query``, best first."""
    scores = items @ query
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def search_queries(
    encoders: Mapping[str, Any],
    items: Mapping[str, np.ndarray],
    queries: Sequence[str],
    k: int = K,
) -> dict[str, tuple[np.ndarray, list[np.ndarray], dict]]:
    """Each query one at a time (encode + exact search) with every precision, after a warm-up.

    The precisions take turns on every query (alternating who goes first), so a machine that
    gets busier or quieter during the run affects both alike. Returns, per precision, the query
    vectors, each query's top-k rows and latency percentiles (ms) of the encoding alone and of
    encoding plus search.
    """
    names = list(encoders)
    for q in queries[:WARMUP]:
        for p in names:
            top_k(items[p], encoders[p].encode_texts([q])[0], k)
    vecs: dict[str, list] = {p: [] for p in names}
    runs: dict[str, list] = {p: [] for p in names}
    enc_ms: dict[str, list] = {p: [] for p in names}
    total_ms: dict[str, list] = {p: [] for p in names}
    for i, q in enumerate(queries):
        for p in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            vec = encoders[p].encode_texts([q])[0]
            t1 = time.perf_counter()
            runs[p].append(top_k(items[p], vec, k))
            t2 = time.perf_counter()
            vecs[p].append(vec)
            enc_ms[p].append((t1 - t0) * 1000)
            total_ms[p].append((t2 - t0) * 1000)
    out = {}
    for p in names:
        latency = {
            name: {m: round(v, 2) if isinstance(v, float) else v
                   for m, v in latency_percentiles(x).items()}
            for name, x in (("encode_ms", enc_ms[p]), ("encode_search_ms", total_ms[p]))
        }
        out[p] = (np.asarray(vecs[p], dtype=np.float32), runs[p], latency)
    return out


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Cosine between matching rows of two L2-normalised matrices: mean, 5th percentile, min."""
    cos = np.sum(a.astype(np.float64) * b.astype(np.float64), axis=1)
    return {
        "mean": round(float(cos.mean()), 5),
        "p5": round(float(np.percentile(cos, 5)), 5),
        "min": round(float(cos.min()), 5),
    }


def mean_ndcg(
    runs: Sequence[np.ndarray],
    query_ids: Sequence[str],
    item_ids: np.ndarray,
    qrels: Mapping[str, Mapping[str, int]],
    k: int = K,
) -> float:
    """Mean NDCG@k of per-query top-k rows against graded judgments."""
    scores = [
        ndcg_at_k([item_ids[r] for r in rows], qrels.get(qid, {}), k=k)
        for rows, qid in zip(runs, query_ids)
    ]
    return round(float(np.mean(scores)), 4) if scores else float("nan")


def side_by_side(
    encoders: Mapping[str, Any],
    item_vectors: Mapping[str, np.ndarray],
    item_ids: np.ndarray,
    queries: Sequence[tuple[str, str]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int = K,
) -> dict[str, Any]:
    """Every precision's NDCG@k and latency on the same queries, and how far they agree.

    ``item_vectors`` holds each precision's item matrix; ``queries`` is ``(query_id, text)``.
    """
    qids, texts = [q for q, _ in queries], [t for _, t in queries]
    out: dict[str, Any] = {"k": k, "n_queries": len(queries), "n_items": len(item_ids)}
    measured = search_queries(encoders, item_vectors, texts, k)
    vecs = {p: measured[p][0] for p in PRECISIONS}
    runs = {p: measured[p][1] for p in PRECISIONS}
    for p in PRECISIONS:
        out[p] = {f"ndcg@{k}": mean_ndcg(runs[p], qids, item_ids, qrels, k), **measured[p][2]}
    a, b = PRECISIONS
    out["ndcg_change"] = round(out[b][f"ndcg@{k}"] - out[a][f"ndcg@{k}"], 4)
    out["p95_speedup"] = round(
        out[a]["encode_search_ms"]["p95"] / max(out[b]["encode_search_ms"]["p95"], 1e-9), 2
    )
    out["query_cosine"] = agreement(vecs[a], vecs[b])
    out["item_cosine"] = agreement(item_vectors[a], item_vectors[b])
    out[f"top{k}_jaccard"] = round(
        float(np.mean([jaccard_at_k(list(x), list(y), k) for x, y in zip(runs[a], runs[b])])), 4
    )
    return out


def load_encoders(model: str = "all-MiniLM-L6-v2") -> tuple[dict[str, Any], dict[str, float]]:
    """Both precisions of the Sentence-BERT encoder, and how long each took to load (s)."""
    from engine.encoders.text import create_text_encoder

    encoders, seconds = {}, {}
    for p in PRECISIONS:
        t0 = time.perf_counter()
        encoders[p] = create_text_encoder(model, precision=p)
        seconds[p] = round(time.perf_counter() - t0, 2)
    return encoders, seconds


def probe(
    texts: Sequence[str],
    item_ids: np.ndarray,
    queries: Sequence[tuple[str, str]],
    qrels: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    """fp32 vs int8 on some catalog's item texts and judged ``(query_id, text)`` queries:
    encode rate (each precision twice, A B B A, averaged), single-query latency, cosine
    agreement and NDCG@10 of both."""
    from engine.runtime import set_threads

    set_threads(1)
    encoders, load_s = load_encoders()
    vectors: dict[str, np.ndarray] = {}
    runs: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    for p in [*PRECISIONS, *PRECISIONS[::-1]]:  # A B B A: drift in load affects both alike
        vectors[p], rate = encode_rate(encoders[p], texts)
        runs[p].append(rate)
    rates = {
        p: {
            "texts": len(texts),
            "seconds": [r["seconds"] for r in runs[p]],
            "texts_per_s": round(float(np.mean([r["texts_per_s"] for r in runs[p]])), 1),
        }
        for p in PRECISIONS
    }
    out = side_by_side(encoders, vectors, item_ids, queries, qrels)
    for p in PRECISIONS:
        out[p] = {"load_s": load_s[p], "encode": rates[p], **out[p]}
    a, b = PRECISIONS
    out["encode_speedup"] = round(
        rates[b]["texts_per_s"] / max(rates[a]["texts_per_s"], 1e-9), 2
    )
    return out


MAX_LOAD = 1.5  # 1-min load average above which a measurement is flagged, not published


def provenance() -> dict[str, Any]:
    """When, at which commit and on how busy a machine a measurement starts."""
    import os
    import platform

    from engine.benchmark.gitinfo import git_commit as _git_commit
    from engine.runtime import load_average

    load = load_average()
    return {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": _git_commit(),
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": 1,
        "load_average_before": load,
        "machine_busy": bool(load and load[0] > MAX_LOAD),
    }


def write_probe(command: str, out, measure, *, force: bool = False) -> dict[str, Any]:
    """A probe's report: :func:`provenance`, then ``measure()`` under ``probe`` and the load
    average after, unless the machine is busy (a warning on stderr; ``force`` measures anyway,
    still flagged busy). Written atomically to ``out``; returned."""
    import sys

    from engine.artifacts import atomic_write_json
    from engine.runtime import load_average

    report = {"command": command, **provenance()}
    if report["machine_busy"]:
        print(f"warning: 1-min load average {report['load_average_before'][0]:.2f} > {MAX_LOAD}:"
              f" {'measuring anyway (flagged busy)' if force else 'not measuring'}",
              file=sys.stderr)
    if force or not report["machine_busy"]:
        report["probe"] = measure()
        report["load_average_after"] = load_average()
    atomic_write_json(out, report)
    print(f"wrote {out}")
    return report
