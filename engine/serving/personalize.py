"""Personalised search: a search's top results re-ranked for one user by a recommender."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.catalog import Catalog
from engine.search import search

BASE_METHOD = "bm25"
POOL = 50


@dataclass
class PersonalizedResults:
    """The unpersonalised results and the same pool re-ranked for the user."""

    method: str
    rows: np.ndarray  # unpersonalised, best first
    scores: np.ndarray
    personalized_rows: np.ndarray  # the same rows re-ranked for the user
    notes: tuple[str, ...] = ()  # the search's own notes (e.g. why nothing matched)


def personalized_search(
    catalog: Catalog,
    service,
    user_id: str,
    query: str,
    *,
    model: str,
    weight: float,
    method: str = BASE_METHOD,
    pool: int = POOL,
) -> PersonalizedResults:
    """Search ``query`` with ``method`` (top ``pool``); re-rank it with ``model`` for the user."""
    from engine.recommend.evaluate import personalized_rerank

    base = search(catalog, method, text=query, k=pool)
    order = personalized_rerank(base.rows, base.scores, user_id, service.model(model), weight)
    rows = base.rows[np.asarray(order, int)]
    return PersonalizedResults(method, base.rows, base.scores, rows, tuple(base.notes))
