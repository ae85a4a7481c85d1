"""Retrieval metrics recomputed from human judgments, with how much of the top k was judged.

A method's top-k results are scored against the qrels built from the reviewers' grades
(:mod:`engine.judgments.qrels`) with the same functions as the generated benchmark
(:mod:`engine.evaluation.metrics`): NDCG@k with graded gains, and precision@k, recall@k and MRR
with ``grade >= threshold`` as relevant (by default grade 3, as the generated benchmark does).

An unjudged result is scored as not relevant — but never silently: each summary also reports
``judged`` and ``unjudged`` (how many of the top-k results had / lacked a human grade) and
``coverage`` (judged / results returned in the top k). A low coverage means the numbers are a
lower bound: more reviewing is needed before trusting a comparison.

Only queries that have judgments are evaluated; the ideal DCG of a query uses every grade it was
given, whichever method's results were rated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engine.evaluation.metrics import (
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)
from engine.schema import RELEVANT_GRADE

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]


def query_metrics(
    ranking: Sequence[str], judged: Mapping[str, int], k: int = 10, threshold: int = RELEVANT_GRADE
) -> dict[str, float | int]:
    """One query's metrics and judged / unjudged counts among its top ``k`` results."""
    top = list(ranking)[:k]
    n_judged = sum(1 for item in top if item in judged)
    return {
        f"ndcg@{k}": ndcg_at_k(top, judged, k),
        f"precision@{k}": precision_at_k(top, judged, k, threshold=threshold),
        f"recall@{k}": recall_at_k(top, judged, k, threshold=threshold),
        "mrr": reciprocal_rank(top, judged, threshold=threshold),
        "returned": len(top),
        "judged": n_judged,
        "unjudged": len(top) - n_judged,
    }


def judged_metrics(
    run: Run, qrels: Qrels, k: int = 10, threshold: int = RELEVANT_GRADE
) -> dict[str, float | int]:
    """Mean metrics over the judged queries (those in ``qrels``), with coverage of the top k.

    A query missing from ``run`` counts as an empty ranking. ``coverage`` pools the queries:
    judged results / returned results (0.0 when nothing was returned).
    """
    if not qrels:
        raise ValueError("no judged queries to evaluate")
    rows = [query_metrics(run.get(q, ()), judged, k, threshold) for q, judged in qrels.items()]
    out = _means(rows, k)
    for key in ("returned", "judged", "unjudged"):
        out[key] = int(sum(r[key] for r in rows))
    out["coverage"] = out["judged"] / out["returned"] if out["returned"] else 0.0
    return out


def generated_metrics(
    run: Run, qrels: Qrels, k: int = 10, threshold: int = RELEVANT_GRADE
) -> dict[str, float | int] | None:
    """The same metrics against the catalog's generated grades (None when no query has any)."""
    if not qrels:
        return None
    return _means(
        [query_metrics(run.get(q, ()), judged, k, threshold) for q, judged in qrels.items()], k
    )


def _means(rows: list[dict], k: int) -> dict[str, float | int]:
    out: dict[str, float | int] = {"queries": len(rows)}
    for key in (f"ndcg@{k}", f"precision@{k}", f"recall@{k}", "mrr"):
        out[key] = float(np.mean([r[key] for r in rows]))
    return out
