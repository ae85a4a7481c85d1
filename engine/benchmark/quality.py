"""Quality of one method's run on a query set: every metric per query, then means with 95 %
bootstrap intervals over queries, overall and per slice.

Slices name subsets of the queries (``type=2-attr``, ``wording=wild``, ``visual=True``, ...);
each reports its number of distinct queries. Two figures answer questions the plain metrics
cannot:

* **title-silent hit@k** — for queries naming a colour or pattern: of the relevant items whose
  title and description do not name it (``qrels.title_silent``), the share found in the top k,
  normalised by ``min(k, their number)``: the visual gap that text alone cannot close;
* **NEW items** — the share of NEW items (launched after the cutoff) among a method's top-k
  relevant results against their share among all relevant items, so a method that never shows
  NEW items is visible (ranking all items and grading only NEW ones measured the base rate).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from engine.evaluation.metrics import per_query
from engine.evaluation.stats import bootstrap_ci
from engine.schema import RELEVANT_GRADE


def metric_names(k: int) -> tuple[str, ...]:
    return (f"ndcg@{k}", f"recall@{k}", f"precision@{k}", "mrr", f"map@{k}")


def slice_metric_names(k: int) -> tuple[str, ...]:
    return (f"ndcg@{k}", f"recall@{k}")


def slice_names(q: dict) -> list[str]:
    """The slices one query belongs to."""
    names = [f"type={q['type']}", f"visual={q['visual']}"]
    if q.get("wording"):
        names.append(f"wording={q['wording']}")
        if q.get("subtype"):
            names.append(f"wild={q['subtype']}")
    return names


def slices(queries: list[dict]) -> dict[str, list[str]]:
    """Slice name -> the query ids in it (query order)."""
    out: dict[str, list[str]] = {}
    for q in queries:
        for name in slice_names(q):
            out.setdefault(name, []).append(q["query_id"])
    return dict(sorted(out.items()))


def interval(values: Iterable[float]) -> dict[str, float | int]:
    return bootstrap_ci(list(values)).as_dict()


def per_query_metrics(
    run: dict[str, list], qrels: dict[str, dict[str, int]], query_ids: list[str], k: int
) -> dict[str, np.ndarray]:
    """Metric name -> one value per query of ``query_ids`` (unjudged = not relevant)."""
    rows = per_query(
        {q: run.get(q, []) for q in query_ids},
        {q: qrels.get(q, {}) for q in query_ids},
        ks=(k,),
        threshold=RELEVANT_GRADE,
    )
    return {m: np.array([rows[q][m] for q in query_ids]) for m in metric_names(k)}


def silent_hits(
    run: dict[str, list], silent: dict[str, set[str]], query_ids: list[str], k: int
) -> np.ndarray:
    """Per visual query: found silent relevant items in the top k / min(k, their number)."""
    out = []
    for q in query_ids:
        items = silent.get(q)
        if items:
            found = len(set(run.get(q, [])[:k]) & items)
            out.append(found / min(k, len(items)))
    return np.array(out)


def new_item_shares(
    run: dict[str, list], qrels: dict[str, dict[str, int]], new_ids: set[str], k: int
) -> dict[str, float]:
    """NEW items' share of the relevant results a method found in its top k, and of all the
    relevant items (the two are equal when the method treats NEW items like any other)."""
    found_new = found = rel_new = rel = 0
    for q, judged in qrels.items():
        relevant = {i for i, g in judged.items() if g >= RELEVANT_GRADE}
        hits = [i for i in run.get(q, [])[:k] if i in relevant]
        found += len(hits)
        found_new += sum(i in new_ids for i in hits)
        rel += len(relevant)
        rel_new += len(relevant & new_ids)
    return {
        "share_of_found": round(found_new / found, 4) if found else 0.0,
        "share_of_relevant": round(rel_new / rel, 4) if rel else 0.0,
        "found": found,
    }


def evaluate(
    run: dict[str, list],
    qrels: dict[str, dict[str, int]],
    queries: list[dict],
    *,
    k: int,
    silent: dict[str, set[str]] | None = None,
    new_ids: set[str] | None = None,
) -> dict[str, Any]:
    """Overall and per-slice means with intervals, title-silent hits, NEW shares, and the
    per-query NDCG (in query order) for paired comparisons."""
    ids = [q["query_id"] for q in queries]
    values = per_query_metrics(run, qrels, ids, k)
    where = {q: i for i, q in enumerate(ids)}
    out: dict[str, Any] = {
        "overall": {m: interval(values[m]) for m in metric_names(k)},
        "slices": {
            name: {
                m: interval(values[m][[where[q] for q in members]]) for m in slice_metric_names(k)
            }
            for name, members in slices(queries).items()
        },
        "per_query": {f"ndcg@{k}": [round(float(v), 4) for v in values[f"ndcg@{k}"]]},
    }
    if silent:
        hits = silent_hits(run, silent, [q["query_id"] for q in queries if q["visual"]], k)
        if len(hits):
            out["title_silent"] = {f"hit@{k}": interval(hits)}
            out["per_query"][f"title_silent_hit@{k}"] = [round(float(v), 4) for v in hits]
    if new_ids is not None:
        out["new_items"] = new_item_shares(run, {q: qrels.get(q, {}) for q in ids}, new_ids, k)
    return out
