"""Inter-reviewer agreement: Cohen's kappa, unweighted and quadratic-weighted.

Two reviewers are compared on the results both of them graded (same catalog, query and item).
``kappa = 1 - sum(W * O) / sum(W * E)`` where ``O`` is the confusion matrix of their grades,
``E`` the matrix expected by chance (outer product of the two grade distributions over the
number of pairs), and ``W`` the disagreement weights: ``1`` off the diagonal (unweighted), or
``(i - j)**2`` between grades ``i`` and ``j`` (quadratic: 0 vs 3 is a worse disagreement than
2 vs 3). The grade scale is fixed at 0..3 so weights depend on the grades, not on which grades
happened to be used. This is scikit-learn's ``cohen_kappa_score(labels=[0, 1, 2, 3])``.

Kappa is undefined (NaN) when chance disagreement is zero — for instance when both reviewers
gave every result the same single grade. With three or more reviewers the summary is the mean of
the pairwise kappas (Light's kappa) over the pairs where kappa is defined.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

from engine.judgments.store import GRADES, Judgment

Weights = Literal["linear", "quadratic"] | None


def cohen_kappa(
    a: Sequence[int], b: Sequence[int], *, weights: Weights = None, labels=GRADES
) -> float:
    """Cohen's kappa of two equally long grade sequences (NaN when undefined; see module)."""
    if len(a) != len(b):
        raise ValueError(f"the two reviewers' grade lists differ in length ({len(a)} vs {len(b)})")
    if not len(a):
        raise ValueError("kappa needs at least one result graded by both reviewers")
    index = {label: i for i, label in enumerate(labels)}
    n_labels = len(labels)
    observed = np.zeros((n_labels, n_labels))
    for x, y in zip(a, b):
        if x not in index or y not in index:
            raise ValueError(f"grade {x if x not in index else y!r} is not one of {list(labels)}")
        observed[index[x], index[y]] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    i, j = np.indices((n_labels, n_labels))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    elif weights == "quadratic":
        w = ((i - j) ** 2).astype(float)
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    chance = float((w * expected).sum())
    if chance == 0.0:
        return math.nan
    return 1.0 - float((w * observed).sum()) / chance


def paired_grades(
    judgments: Iterable[Judgment], first: str, second: str
) -> tuple[list[int], list[int]]:
    """The grades two reviewers gave to the same (catalog, query, item), in a fixed order."""
    by_reviewer: dict[str, dict[tuple[str, str, str], int]] = {first: {}, second: {}}
    for j in judgments:
        if j.reviewer in by_reviewer:
            by_reviewer[j.reviewer][(j.catalog, j.query, j.item_id)] = j.grade
    shared = sorted(by_reviewer[first].keys() & by_reviewer[second].keys())
    return [by_reviewer[first][k] for k in shared], [by_reviewer[second][k] for k in shared]


def pairwise_agreement(judgments: Iterable[Judgment]) -> list[dict]:
    """One row per pair of reviewers: how many results both graded, kappa and weighted kappa."""
    judgments = list(judgments)
    reviewers = sorted({j.reviewer for j in judgments})
    rows = []
    for first, second in itertools.combinations(reviewers, 2):
        a, b = paired_grades(judgments, first, second)
        rows.append(
            {
                "reviewer_a": first,
                "reviewer_b": second,
                "both_rated": len(a),
                "kappa": cohen_kappa(a, b) if a else math.nan,
                "kappa_quadratic": cohen_kappa(a, b, weights="quadratic") if a else math.nan,
                "exact_agreement": float(np.mean(np.equal(a, b))) if a else math.nan,
            }
        )
    return rows


def mean_agreement(rows: Sequence[dict]) -> dict[str, float | int]:
    """Mean pairwise kappa (Light's kappa) of :func:`pairwise_agreement` rows, NaN-aware."""

    def mean(key: str) -> float:
        values = [r[key] for r in rows if not math.isnan(r[key])]
        return float(np.mean(values)) if values else math.nan

    return {
        "pairs": len(rows),
        "pairs_with_kappa": sum(not math.isnan(r["kappa"]) for r in rows),
        "kappa": mean("kappa"),
        "kappa_quadratic": mean("kappa_quadratic"),
    }
