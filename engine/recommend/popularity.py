"""Popularity baseline: every user gets the most engaged-with items of the train period."""

from __future__ import annotations

import numpy as np

from engine.recommend.base import Recommender, register_recommender
from engine.recommend.data import InteractionData


@register_recommender
class PopularityRecommender(Recommender):
    """Scores = train-period interaction counts (ties broken by item order); not personalised.

    NEW items have zero train interactions, so they rank last (but are not excluded).
    ``similar_items`` returns the most popular other items: a baseline, not a similarity.
    """

    name = "popularity"
    description = "train-period interaction counts (non-personalised baseline)"

    def __init__(self) -> None:
        super().__init__()

    def _fit(self, data: InteractionData) -> None:
        pass  # the counts live in the data

    def _scores(self, user: int) -> np.ndarray:
        return self.data.popularity.astype(np.float64)

    def _similar(self, item: int) -> np.ndarray:
        return self.data.popularity.astype(np.float64)
