"""FAISS vs Milvus, side by side: agreement (top-k overlap), recall vs exact, build time, latency.

``compare_with_faiss(vectors, queries)`` builds the same index kinds in FAISS and in Milvus (Milvus
Lite in a temporary folder unless a URI is given) and measures, per kind:

* ``overlap@k`` — mean ``|Milvus top-k ∩ FAISS top-k| / k`` (same kind, same parameters);
* ``recall@k`` of each against exact search (numpy brute force over the same vectors);
* ``max_score_error`` — the largest difference between a returned score and the exact inner
  product of that (query, id) pair;
* build seconds, and single-query latency p50/p95 (one query per call, one thread, after a
  warm-up), for FAISS and Milvus.

Run ``python -m engine.benchmark.vector_stores`` for the synthetic measurement (clustered,
L2-normalised vectors); each run is appended to ``reports/milvus_synthetic.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from engine.evaluation.metrics import index_recall_at_k
from engine.indexes.milvus import MILVUS_KINDS
from engine.indexes.vector import IndexParams, VectorIndex

DEFAULT_PARAMS = IndexParams()


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` (ids, scores), best first, by numpy brute force."""
    x = np.asarray(vectors, dtype=np.float32)
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    k = min(k, x.shape[0])
    scores = q @ x.T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return ids, np.take_along_axis(part_scores, order, axis=1)


def synthetic_vectors(
    n: int, dim: int, *, n_queries: int = 300, clusters: int = 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Clustered, L2-normalised vectors and queries (a stand-in for sentence embeddings).

    Cluster sizes are Zipf-like and cluster spreads vary, so neighbourhoods are uneven, as in a
    real catalog; members of a cluster have cosine ~0.3-0.7 to each other. Queries are drawn from
    the same clusters with their own noise (they are not copies of catalog vectors).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.8
    weights /= weights.sum()
    spread = rng.uniform(0.7, 1.5, size=clusters).astype(np.float32) / np.sqrt(dim)

    def draw(m: int) -> np.ndarray:
        c = rng.choice(clusters, size=m, p=weights)
        v = centres[c] + rng.normal(size=(m, dim)).astype(np.float32) * spread[c, None]
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(n_queries)


def _overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Mean ``|a[:k] ∩ b[:k]| / k`` over rows, ignoring -1 padding."""
    vals = []
    for ra, rb in zip(a, b):
        sa, sb = {int(i) for i in ra[:k] if i >= 0}, {int(i) for i in rb[:k] if i >= 0}
        vals.append(len(sa & sb) / max(1, min(k, len(sb))))
    return float(np.mean(vals)) if vals else 1.0


def _score_error(vectors: np.ndarray, queries: np.ndarray, ids: np.ndarray, scores: np.ndarray):
    """Largest |returned score - exact inner product| over the returned (non-padding) results."""
    worst = 0.0
    for q, row_ids, row_scores in zip(queries, ids, scores):
        keep = row_ids >= 0
        if keep.any():
            exact = vectors[row_ids[keep]] @ q
            worst = max(worst, float(np.max(np.abs(exact - row_scores[keep]))))
    return worst


def _latency_ms(index, queries: np.ndarray, k: int, warmup: int = 10, **kw) -> dict[str, float]:
    for q in queries[:warmup]:
        index.search(q, k, **kw)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, k, **kw)
        times.append((time.perf_counter() - t0) * 1000)
    t = np.asarray(times)
    return {
        "p50": round(float(np.percentile(t, 50)), 3),
        "p95": round(float(np.percentile(t, 95)), 3),
        "mean": round(float(t.mean()), 3),
        "n": len(t),
    }


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("faiss-cpu", "pymilvus", "milvus-lite"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def compare_with_faiss(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int = 10,
    kinds: tuple[str, ...] = MILVUS_KINDS,
    *,
    uri: str | None = None,
    params: IndexParams = DEFAULT_PARAMS,
    latency_queries: int = 200,
    threads: int = 1,
) -> dict[str, Any]:
    """FAISS vs Milvus for each index kind over the same vectors and queries; see module doc.

    ``uri=None`` uses a Milvus Lite database in a temporary folder (removed afterwards); a server
    URI writes (and then drops) temporary collections there.
    """
    import faiss

    from engine.indexes.milvus import MilvusIndex, close, collection_name

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    faiss.omp_set_num_threads(threads)  # also Milvus Lite's FAISS: it runs in this process
    exact_ids, _ = exact_top_k(x, q, k)
    tmp = None if uri is not None else tempfile.mkdtemp(prefix="pm-milvus-compare-")
    target = uri if uri is not None else str(Path(tmp) / "compare.db")
    lat_q = q[:latency_queries]
    report: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "data": {"n": int(x.shape[0]), "dim": int(x.shape[1]), "queries": int(q.shape[0]), "k": k},
        "milvus": "Milvus Lite (in-process, temporary folder)" if uri is None else "server",
        "params": {
            "hnsw_m": params.hnsw_m,
            "hnsw_ef_construction": params.hnsw_ef_construction,
            "hnsw_ef_search": params.hnsw_ef_search,
            "ivf_nprobe": params.ivf_nprobe,
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "threads": threads,
        },
        "versions": _versions(),
        "kinds": {},
    }
    try:
        t0 = time.perf_counter()
        from engine.indexes.milvus import client_for

        client_for(target, create=True)
        report["milvus_connect_seconds"] = round(time.perf_counter() - t0, 3)
        for kind in kinds:
            t0 = time.perf_counter()
            f_index = VectorIndex.build(x, kind, params)
            f_build = time.perf_counter() - t0
            name = collection_name("compare", "synthetic", kind, str(os.getpid()))
            t0 = time.perf_counter()
            m_index = MilvusIndex.build(x, uri=target, collection=name, kind=kind, params=params)
            m_build = time.perf_counter() - t0
            f_ids, f_scores = f_index.search(q, k)
            m_ids, m_scores = m_index.search(q, k)
            report["kinds"][kind] = {
                "overlap@k_milvus_vs_faiss": round(_overlap(m_ids, f_ids, k), 4),
                "identical_rankings": round(float(np.mean(np.all(m_ids == f_ids, axis=1))), 4),
                "recall@k_vs_exact": {
                    "faiss": round(index_recall_at_k(f_ids, exact_ids, k), 4),
                    "milvus": round(index_recall_at_k(m_ids, exact_ids, k), 4),
                },
                "max_score_error": {
                    "faiss": float(f"{_score_error(x, q, f_ids, f_scores):.2e}"),
                    "milvus": float(f"{_score_error(x, q, m_ids, m_scores):.2e}"),
                },
                "build_seconds": {"faiss": round(f_build, 3), "milvus": round(m_build, 3)},
                "latency_ms": {
                    "faiss": _latency_ms(f_index, lat_q, k),
                    "milvus": _latency_ms(m_index, lat_q, k),
                },
            }
            if uri is not None:
                m_index.drop()
        if uri is None:
            # Reopening cost: a fresh process pays the server start plus loading each collection.
            close(target)
            t0 = time.perf_counter()
            for kind in kinds:
                name = collection_name("compare", "synthetic", kind, str(os.getpid()))
                MilvusIndex.open(target, name).search(q[0], k)
            report["milvus_reopen_seconds"] = round(time.perf_counter() - t0, 3)
    finally:
        close(target)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    report["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--uri", default=None, help="a Milvus server (default: Milvus Lite, temp dir)")
    ap.add_argument("--out", default="reports/milvus_synthetic.json")
    args = ap.parse_args(argv)
    vectors, queries = synthetic_vectors(args.n, args.dim, n_queries=args.queries)
    report = compare_with_faiss(vectors, queries, k=args.k, uri=args.uri)
    report["data"]["kind"] = "synthetic: clustered, L2-normalised (engine.benchmark.vector_stores)"
    print(json.dumps(report, indent=2))
    if args.out:
        # Runs accumulate: on 2 shared cores, latencies depend on the other jobs' load, which
        # each run records (machine.load_average).
        out = Path(args.out)
        runs = json.loads(out.read_text()).get("runs", []) if out.is_file() else []
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"runs": [*runs, report]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
