"""Recommendation engine: ALS, two-tower, content, FM/DeepFM, hybrid and popularity models.

``create_recommender(name, **params).fit(InteractionData.from_tables(items, interactions))``;
see :mod:`engine.recommend.base` for the contract and :mod:`engine.recommend.evaluate` for the
offline evaluation. Heavy modules (torch, implicit) load on first use of the registry.
"""

from engine.recommend.base import (
    NotFittedError,
    Recommender,
    UnknownItemError,
    UnknownUserError,
)
from engine.recommend.data import EVENT_WEIGHTS, InteractionData, content_features
from engine.recommend.registry import (
    create_recommender,
    list_recommenders,
    load_recommender,
    recommender_class,
)

__all__ = [
    "EVENT_WEIGHTS",
    "InteractionData",
    "NotFittedError",
    "Recommender",
    "UnknownItemError",
    "UnknownUserError",
    "content_features",
    "create_recommender",
    "list_recommenders",
    "load_recommender",
    "recommender_class",
]
