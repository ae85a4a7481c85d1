"""Judgments from several reviewers turned into one grade per (query, item): the qrels.

Aggregation rule: the **lower median** of the reviewers' grades, ``sorted(grades)[(n - 1) // 2]``.
Equivalently, the highest grade that a strict majority of the reviewers gave or exceeded:

* one reviewer: their grade;
* two reviewers: the lower of the two (1 and 2 give 1) — a result gets credit only for what
  both agree on;
* three reviewers 0, 3, 3: 3 (one outlier does not drag the grade down, as a mean would);
* four reviewers 0, 1, 2, 3: 1.

It is an integer grade on the same 0..3 scale (metrics need no rounding rule), robust to one
outlying reviewer, and conservative on ties. When a reviewer graded the same result twice (for
instance in two imported files) only their latest grade counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine.judgments.store import Judgment

AGGREGATION = "lower median of the reviewers' grades (highest grade a strict majority met)"


def aggregate_grade(grades: Sequence[int]) -> int:
    """The lower median of one result's grades (see module)."""
    if not grades:
        raise ValueError("no grades to aggregate")
    return int(sorted(grades)[(len(grades) - 1) // 2])


def latest(judgments: Iterable[Judgment]) -> list[Judgment]:
    """One judgment per (catalog, query, item, reviewer): the most recent."""
    best: dict[tuple[str, str, str, str], Judgment] = {}
    for j in judgments:
        if j.key not in best or j.judged_at >= best[j.key].judged_at:
            best[j.key] = j
    return list(best.values())


def build_qrels(
    judgments: Iterable[Judgment], catalog: str | None = None
) -> dict[str, dict[str, int]]:
    """``{query: {item_id: grade}}`` aggregated over reviewers (of ``catalog`` if given)."""
    grades: dict[str, dict[str, list[int]]] = {}
    for j in latest(judgments):
        if catalog is None or j.catalog == catalog:
            grades.setdefault(j.query, {}).setdefault(j.item_id, []).append(j.grade)
    return {
        query: {item: aggregate_grade(g) for item, g in items.items()}
        for query, items in grades.items()
    }
