"""Ranking evaluation metrics with graded relevance (pure Python + numpy).

Conventions
-----------
* A *ranking* is a sequence (list, tuple or 1-D ``np.ndarray``) of item ids (``str`` or
  ``int``), best first, without duplicates (duplicates raise ``ValueError``).
* *Judgments* (qrels) for one query are a ``dict[item_id, grade]`` with integer grades,
  normally 0..3 (negative grades raise ``ValueError``). Items missing from the dict have
  grade 0 (unjudged counts as non-relevant).
* Binary metrics (recall, precision, reciprocal rank, average precision) call an item
  *relevant* when ``grade >= threshold`` (default 1).
* Cut-offs ``k`` must be integers >= 1 (``ValueError`` when < 1, ``TypeError`` when not an
  integer). Non-integer grades likewise raise ``TypeError``.

Definitions follow trec_eval except where noted: DCG uses exponential gain, and MAP@k
normalises by ``min(R, k)`` instead of ``R``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np

Ranking = Sequence[Any] | np.ndarray
Qrels = Mapping[Any, int]

__all__ = [
    "average_precision_at_k",
    "dcg_at_k",
    "evaluate_run",
    "index_recall_at_k",
    "jaccard_at_k",
    "latency_percentiles",
    "ndcg_at_k",
    "per_query",
    "precision_at_k",
    "rank_biased_overlap",
    "recall_at_k",
    "reciprocal_rank",
]


# --------------------------------------------------------------------------- helpers


def _check_k(k: Any, name: str = "k") -> int:
    """Validate a cut-off: an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise TypeError(f"{name} must be an integer >= 1, got {k!r}")
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    return int(k)


def _as_list(ranking: Ranking) -> list[Any]:
    """Return the ranking as a list of plain Python ids, rejecting duplicates."""
    if isinstance(ranking, np.ndarray):
        if ranking.ndim != 1:
            raise ValueError(f"a ranking must be 1-D, got shape {ranking.shape}")
        items = ranking.tolist()
    elif isinstance(ranking, (str, bytes)):
        raise TypeError("a ranking must be a sequence of item ids, not a string")
    else:
        items = list(ranking)
    if len(set(items)) != len(items):
        raise ValueError("ranking contains duplicate item ids")
    return items


def _grades(qrels: Qrels) -> Qrels:
    """Validate judgments (non-negative integer grades) and return them."""
    for item, grade in qrels.items():
        # A plain int skips the abstract-class check: it cost most of a tuning loop's time
        # (a query's judgments are validated on every ranking scored against them).
        if type(grade) is not int and (isinstance(grade, bool) or not isinstance(grade, Integral)):
            raise TypeError(f"grade for item {item!r} must be an int, got {grade!r}")
        if grade < 0:
            raise ValueError(f"grade for item {item!r} must be >= 0, got {grade}")
    return qrels


def _n_relevant(qrels: Qrels, threshold: int) -> int:
    return sum(1 for g in qrels.values() if g >= threshold)


def _gain(grade: int) -> float:
    return float(2 ** int(grade) - 1)


def _dcg(grades: Iterable[int]) -> float:
    return sum(_gain(g) / math.log2(i + 2) for i, g in enumerate(grades))


# --------------------------------------------------------------------------- graded


def dcg_at_k(ranking: Ranking, qrels: Qrels, k: int) -> float:
    """Discounted cumulative gain of the top ``k`` results.

    Exponential-gain form (Burges et al. 2005): ``sum_{r=1..k} (2**grade_r - 1) / log2(r + 1)``
    where ``r`` is the 1-based rank. Unjudged items contribute 0.
    """
    k = _check_k(k)
    return _dcg_valid(_as_list(ranking), _grades(qrels), k)


def _dcg_valid(items: list, qrels: Qrels, k: int) -> float:
    """DCG@k of an already validated ranking and judgments."""
    return _dcg(qrels.get(item, 0) for item in items[:k])


def ndcg_at_k(ranking: Ranking, qrels: Qrels, k: int) -> float:
    """Normalised DCG@k: ``dcg_at_k / ideal DCG@k``.

    The ideal ranking sorts ALL judged grades of the query (not only the retrieved
    ones) in decreasing order. When the query has no item with grade > 0 the ideal DCG is 0
    and we return 0.0 (as trec_eval and scikit-learn do), so such queries pull means down
    rather than being dropped.
    """
    k = _check_k(k)
    qrels = _grades(qrels)
    items = _as_list(ranking)  # validated even when the ideal DCG is 0
    ideal = _dcg(heapq.nlargest(k, qrels.values()))
    if ideal == 0.0:
        return 0.0
    return _dcg_valid(items, qrels, k) / ideal


# --------------------------------------------------------------------------- binary


def recall_at_k(ranking: Ranking, qrels: Qrels, k: int, threshold: int = 1) -> float:
    """Fraction of the query's relevant items found in the top ``k``; 0.0 if none relevant."""
    k = _check_k(k)
    items = _as_list(ranking)[:k]
    qrels = _grades(qrels)
    n_rel = _n_relevant(qrels, threshold)
    if n_rel == 0:
        return 0.0
    hits = sum(1 for item in items if qrels.get(item, 0) >= threshold)
    return hits / n_rel


def precision_at_k(ranking: Ranking, qrels: Qrels, k: int, threshold: int = 1) -> float:
    """Relevant items in the top ``k`` divided by ``k`` (also when fewer than k are returned)."""
    k = _check_k(k)
    items = _as_list(ranking)[:k]
    qrels = _grades(qrels)
    hits = sum(1 for item in items if qrels.get(item, 0) >= threshold)
    return hits / k


def reciprocal_rank(
    ranking: Ranking, qrels: Qrels, threshold: int = 1, k: int | None = None
) -> float:
    """``1 / rank`` of the first relevant item (within the top ``k`` if given), else 0.0.

    MRR is the mean of this over queries.
    """
    items = _as_list(ranking)
    if k is not None:
        items = items[: _check_k(k)]
    qrels = _grades(qrels)
    for rank, item in enumerate(items, start=1):
        if qrels.get(item, 0) >= threshold:
            return 1.0 / rank
    return 0.0


def average_precision_at_k(
    ranking: Ranking, qrels: Qrels, k: int, threshold: int = 1
) -> float:
    """Average precision at cut-off ``k`` (the common "MAP@k" form).

    ``AP@k = sum_{r <= k, item_r relevant} P@r / min(R, k)`` where ``R`` is the number of
    relevant items of the query. Dividing by ``min(R, k)`` (not ``R`` as trec_eval's
    ``map_cut`` does) makes a perfect top-k score 1.0 even when ``R > k``.
    Returns 0.0 when the query has no relevant items.
    """
    k = _check_k(k)
    items = _as_list(ranking)[:k]
    qrels = _grades(qrels)
    n_rel = _n_relevant(qrels, threshold)
    if n_rel == 0:
        return 0.0
    hits = 0
    total = 0.0
    for rank, item in enumerate(items, start=1):
        if qrels.get(item, 0) >= threshold:
            hits += 1
            total += hits / rank
    return total / min(n_rel, k)


# --------------------------------------------------------------------------- runs


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    out = tuple(_check_k(k, "ks entry") for k in ks)
    if not out:
        raise ValueError("ks must contain at least one cut-off")
    return out


def _query_metrics(
    ranking: Ranking, qrels: Qrels, ks: tuple[int, ...], threshold: int
) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        out[f"ndcg@{k}"] = ndcg_at_k(ranking, qrels, k)
        out[f"recall@{k}"] = recall_at_k(ranking, qrels, k, threshold=threshold)
        out[f"precision@{k}"] = precision_at_k(ranking, qrels, k, threshold=threshold)
        out[f"map@{k}"] = average_precision_at_k(ranking, qrels, k, threshold=threshold)
    out["mrr"] = reciprocal_rank(ranking, qrels, threshold=threshold)
    return out


def per_query(
    run: Mapping[Any, Ranking],
    qrels: Mapping[Any, Qrels],
    ks: Iterable[int] = (10,),
    threshold: int = 1,
) -> dict[Any, dict[str, float]]:
    """Metrics for each query of ``qrels``.

    Keys per query: ``ndcg@k``, ``recall@k``, ``precision@k``, ``map@k`` for each ``k`` in
    ``ks``, plus ``mrr`` (reciprocal rank over the whole ranking, no cut-off). A query
    missing from ``run`` is scored as an empty ranking; queries only in ``run`` are ignored.
    """
    ks_t = _check_ks(ks)
    return {
        qid: _query_metrics(run.get(qid, ()), judged, ks_t, threshold)
        for qid, judged in qrels.items()
    }


def evaluate_run(
    run: Mapping[Any, Ranking],
    qrels: Mapping[Any, Qrels],
    ks: Iterable[int] = (10,),
    threshold: int = 1,
) -> dict[str, float]:
    """Mean of :func:`per_query` metrics over all queries in ``qrels`` (same keys).

    Raises ``ValueError`` when ``qrels`` is empty (a mean over no queries is undefined).
    """
    if not qrels:
        raise ValueError("qrels has no queries")
    rows = per_query(run, qrels, ks=ks, threshold=threshold)
    keys = next(iter(rows.values())).keys()
    return {key: float(np.mean([row[key] for row in rows.values()])) for key in keys}


# --------------------------------------------------------------------------- ranking overlap


def jaccard_at_k(a: Ranking, b: Ranking, k: int) -> float:
    """Jaccard similarity ``|A ∩ B| / |A ∪ B|`` of the two top-``k`` sets.

    Two empty rankings are identical: 1.0.
    """
    k = _check_k(k)
    sa = set(_as_list(a)[:k])
    sb = set(_as_list(b)[:k])
    union = sa | sb
    if not union:
        return 1.0
    return len(sa & sb) / len(union)


def rank_biased_overlap(a: Ranking, b: Ranking, p: float = 0.9, k: int | None = None) -> float:
    """Extrapolated rank-biased overlap, RBO_ext (Webber, Moffat & Zobel 2010, eq. 32).

    With ``S`` the shorter list (length ``s``), ``L`` the longer (length ``l``), and
    ``X_d = |S[:min(d, s)] ∩ L[:d]|``::

        RBO_ext = (1-p)/p * ( sum_{d=1..l} X_d/d * p**d
                              + sum_{d=s+1..l} X_s * (d-s) / (s*d) * p**d )
                  + ((X_l - X_s)/l + X_s/s) * p**l

    For lists of the same depth (``s == l``) this reduces to eq. 23,
    ``X_k/k * p**k + (1-p)/p * sum_{d=1..k} A_d p**d``. It is symmetric, equals 1.0 for
    identical lists and 0.0 for disjoint ones. Both lists are first truncated to ``k``
    when given. Two empty lists give 1.0; one empty list gives 0.0. ``0 < p < 1``.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    la = _as_list(a)
    lb = _as_list(b)
    if k is not None:
        k = _check_k(k)
        la, lb = la[:k], lb[:k]
    if not la or not lb:
        return 1.0 if not la and not lb else 0.0
    short, long_ = (la, lb) if len(la) <= len(lb) else (lb, la)
    s, ln = len(short), len(long_)

    seen_s: set[Any] = set()
    seen_l: set[Any] = set()
    overlap = 0
    x = [0] * (ln + 1)  # x[d] = X_d
    for d in range(1, ln + 1):
        item_l = long_[d - 1]
        if d <= s:
            item_s = short[d - 1]
            if item_s == item_l:
                overlap += 1
            else:
                overlap += (item_s in seen_l) + (item_l in seen_s)
            seen_s.add(item_s)
            seen_l.add(item_l)
        else:
            overlap += item_l in seen_s
        x[d] = overlap

    x_s, x_l = x[s], x[ln]
    sum1 = sum(x[d] / d * p**d for d in range(1, ln + 1))
    sum2 = sum(x_s * (d - s) / (s * d) * p**d for d in range(s + 1, ln + 1))
    tail = ((x_l - x_s) / ln + x_s / s) * p**ln
    return float((1.0 - p) / p * (sum1 + sum2) + tail)


# --------------------------------------------------------------------------- ANN / latency


def index_recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int) -> float:
    """ANN recall: mean over queries of ``|approx[:k] ∩ exact[:k]| / |exact[:k]|``.

    Both inputs are 2-D integer arrays with one row per query; ``-1`` marks padding and is
    ignored on both sides (padding in ``exact_ids`` shrinks the denominator). ``approx_ids``
    may have fewer than ``k`` columns (missing results count as misses); ``exact_ids`` must
    have at least ``k``. Queries whose exact row is all padding are skipped; if every query
    is skipped the result is 1.0 (nothing to find).
    """
    k = _check_k(k)
    approx = np.asarray(approx_ids)
    exact = np.asarray(exact_ids)
    if approx.ndim != 2 or exact.ndim != 2:
        raise ValueError("approx_ids and exact_ids must be 2-D (n_queries, k)")
    if approx.shape[0] != exact.shape[0]:
        raise ValueError(
            f"row count differs: approx {approx.shape[0]} vs exact {exact.shape[0]}"
        )
    if exact.shape[0] == 0:
        raise ValueError("no queries")
    if exact.shape[1] < k:
        raise ValueError(f"exact_ids has {exact.shape[1]} columns, fewer than k={k}")
    scores: list[float] = []
    for row_a, row_e in zip(approx[:, :k].tolist(), exact[:, :k].tolist(), strict=True):
        truth = {i for i in row_e if i != -1}
        if not truth:
            continue
        found = {i for i in row_a if i != -1} & truth
        scores.append(len(found) / len(truth))
    if not scores:
        return 1.0
    return float(np.mean(scores))


def latency_percentiles(samples_ms: Iterable[float] | np.ndarray) -> dict[str, float]:
    """Summary of latency samples (ms): ``p50``, ``p95``, ``p99``, ``mean`` and ``n``.

    Percentiles use ``np.percentile`` with linear interpolation; ``n`` is the sample count
    (an ``int``). Raises ``ValueError`` on no samples or non-finite values.
    """
    if not isinstance(samples_ms, np.ndarray):
        samples_ms = list(samples_ms)
    arr = np.asarray(samples_ms, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError("no latency samples")
    if not np.all(np.isfinite(arr)):
        raise ValueError("latency samples must be finite")
    p50, p95, p99 = np.percentile(arr, [50, 95, 99], method="linear")
    return {
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(arr.mean()),
        "n": int(arr.size),
    }
