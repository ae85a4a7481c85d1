"""Offline evaluation of recommenders on held-out interactions, and personalised search.

Relevance is binary: every held-out (test) engagement of a user is relevant. Recommendations
exclude the user's train items (the world has one row per user-item pair, so test items are
never train items). Slices: NEW items only (users without a NEW test item are skipped there) and
users with short train histories. Latency is measured single-threaded after a warm-up.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from engine.evaluation.metrics import (
    average_precision_at_k,
    latency_percentiles,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
)
from engine.recommend.base import Recommender, UnknownUserError, zscore
from engine.recommend.data import InteractionData


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """torch and BLAS limited to one thread (query-time conditions)."""
    import torch
    from threadpoolctl import threadpool_limits

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(prev)


def _mean(values: list[float]) -> float | None:
    """Rounded mean; None (not NaN, which is not JSON) when there is nothing to average."""
    return round(float(np.mean(values)), 4) if len(values) else None


def _slice(recs: Mapping[str, np.ndarray], qrels: Mapping[str, dict], k: int) -> dict[str, Any]:
    rows = [(recs[u], q) for u, q in qrels.items()]
    return {
        f"recall@{k}": _mean([recall_at_k(r, q, k) for r, q in rows]),
        f"ndcg@{k}": _mean([ndcg_at_k(r, q, k) for r, q in rows]),
        f"map@{k}": _mean([average_precision_at_k(r, q, k) for r, q in rows]),
        "users": len(rows),
    }


def test_qrels(test_interactions: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Every held-out engagement of a user is relevant: ``{user: {item: 1}}``."""
    qrels: dict[str, dict[str, int]] = {}
    for u, i in zip(
        test_interactions["user_id"].astype(str), test_interactions["item_id"].astype(str)
    ):
        qrels.setdefault(u, {})[i] = 1
    return qrels


def score_rankings(
    recs: Mapping[str, np.ndarray], qrels: Mapping[str, dict], k: int
) -> dict[str, Any]:
    """recall/NDCG/MAP@k of fixed rankings (a ceiling or floor) on the users of ``qrels``."""
    return _slice({u: recs.get(u, np.array([])) for u in qrels}, qrels, k)


def latency_ms(model: Recommender, users: list[str], k: int = 10, warmup: int = 10) -> dict:
    """Per-call ``recommend`` latency percentiles (ms), single-threaded, after ``warmup`` calls."""
    with single_thread():
        for u in users[:warmup]:
            model.recommend(u, k)
        samples = []
        for u in users:
            t0 = time.perf_counter()
            model.recommend(u, k)
            samples.append((time.perf_counter() - t0) * 1000)
    return {
        key: round(v, 3) if isinstance(v, float) else v
        for key, v in latency_percentiles(samples).items()
    }


def evaluate_recommenders(
    models: dict[str, Recommender],
    data: InteractionData,
    test_interactions: pd.DataFrame,
    *,
    k: int = 10,
    new_item_ids: set[str] | np.ndarray | None = None,
    short_history_max: int = 5,
    latency_users: int = 300,
    max_users: int | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """recall/NDCG/MAP@k overall, on NEW items and for short histories; coverage, popularity
    bias (mean train-popularity percentile of recommended items), NEW-item share and latency."""
    new = set(map(str, new_item_ids if new_item_ids is not None else data.item_ids[data.is_new]))
    known = test_interactions["user_id"].astype(str).isin(data.user_index)
    qrels: dict[str, dict[str, int]] = {}
    for u, i in zip(
        test_interactions["user_id"][known].astype(str),
        test_interactions["item_id"][known].astype(str),
    ):
        qrels.setdefault(u, {})[i] = 1
    skipped = int(test_interactions.loc[~known, "user_id"].nunique())
    rng = np.random.default_rng(seed)
    users = sorted(qrels)
    if max_users is not None and len(users) > max_users:
        users = sorted(rng.choice(users, max_users, replace=False).tolist())
    qrels = {u: qrels[u] for u in users}
    cold = {u: c for u, q in qrels.items() if (c := {i: g for i, g in q.items() if i in new})}
    short = {
        u: q
        for u, q in qrels.items()
        if data.history_lengths[data.user_index[u]] <= short_history_max
    }
    ranks = pd.Series(data.popularity).rank(method="average").to_numpy() / data.n_items
    pop_pct = dict(zip(data.item_ids, ranks))
    lat_users = rng.choice(users, min(latency_users, len(users)), replace=False).tolist()
    out: dict[str, Any] = {
        "k": k,
        "test_users": len(qrels),
        "unknown_users_skipped": skipped,
        "models": {},
    }
    for name, model in models.items():
        with single_thread():
            recs = {u: ids for u, (ids, _) in zip(users, model.recommend_many(users, k))}
        flat = np.concatenate([r for r in recs.values()]) if recs else np.empty(0, str)
        res = _slice(recs, qrels, k)
        res["cold_start"] = _slice(recs, cold, k)
        res["short_history"] = {
            **_slice(recs, short, k),
            "max_train_interactions": short_history_max,
        }
        res["coverage"] = round(len(set(flat.tolist())) / data.n_items, 4)
        res["popularity_percentile"] = _mean([pop_pct[i] for i in flat])
        res["new_item_share"] = _mean([i in new for i in flat])
        res["latency_ms"] = latency_ms(model, lat_users, k) if lat_users else None
        out["models"][name] = res
    return out


def personalized_rerank(
    rows_item_ids: np.ndarray,
    base_scores: np.ndarray,
    user_id: str,
    model: Recommender,
    weight: float,
) -> np.ndarray:
    """The order (indices into the inputs) of z(search score) + weight · z(model score).

    ``rows_item_ids`` are catalog rows (ints: the model's item indices) or item ids (str).
    An unknown user (e.g. anonymous) keeps the search order.
    """
    ids = np.asarray(rows_item_ids)
    base = np.asarray(base_scores, dtype=np.float64)
    if len(ids) == 0:
        return np.empty(0, dtype=np.int64)
    idx = (
        ids.astype(np.int64)
        if ids.dtype.kind in "iu"
        else np.array([model.item_row(i) for i in ids])
    )
    blended = np.nan_to_num(zscore(base))
    with contextlib.suppress(UnknownUserError):  # anonymous: the search order as it is
        blended = blended + weight * np.nan_to_num(zscore(model.score_items(user_id, idx)))
    return np.lexsort((np.arange(len(ids)), -blended)).astype(np.int64)


def evaluate_personalized_search(
    sessions: pd.DataFrame,
    search: Callable[[str], Any],
    model: Recommender,
    *,
    weight: float = 0.5,
    k: int = 10,
) -> dict[str, Any]:
    """MRR and recall@k of each session's converted item, without and with personalisation.

    ``search(query)`` returns the top-N item ids, or ``(item_ids, scores)``; without scores the
    search score is the rank discount 1/log2(rank + 1). Use held-out (test) sessions.
    """
    stats: dict[str, dict[str, list[float]]] = {"search": {}, "personalized": {}}
    in_top_n = []
    for user, query, item in zip(sessions["user_id"], sessions["query"], sessions["item_id"]):
        res = search(query)
        ids, scores = res if isinstance(res, tuple) else (res, None)
        ids = np.asarray(ids).astype(str)
        if scores is None:
            scores = 1.0 / np.log2(np.arange(len(ids)) + 2)
        qrels = {str(item): 1}
        order = personalized_rerank(ids, scores, str(user), model, weight)
        in_top_n.append(str(item) in set(ids.tolist()))
        for label, ranking in (("search", ids), ("personalized", ids[order])):
            stats[label].setdefault("mrr", []).append(reciprocal_rank(ranking, qrels))
            stats[label].setdefault(f"recall@{k}", []).append(recall_at_k(ranking, qrels, k))
    return {
        "sessions": len(in_top_n),
        "weight": weight,
        "converted_in_candidates": _mean(in_top_n),
        **{label: {m: _mean(v) for m, v in s.items()} for label, s in stats.items()},
    }
