"""Finding recommenders: ``list_recommenders()``, ``recommender_class``, ``create_recommender``.

Recommenders are discovered from ``engine/recommend/`` (see :class:`engine.registry.Registry`):
a new recommender is one module there that registers its class.
"""

from __future__ import annotations

from pathlib import Path

from engine.recommend.base import RECOMMENDERS, Recommender, register_recommender

__all__ = [
    "create_recommender",
    "fit_order",
    "list_recommenders",
    "load_recommender",
    "recommender_class",
    "register_recommender",
]


def list_recommenders() -> list[str]:
    """Registered recommender names."""
    return RECOMMENDERS.names()


def fit_order() -> list[str]:
    """Every recommender, each after the recommenders it blends (``fuses``)."""
    names, done = list_recommenders(), []
    while len(done) < len(names):
        ready = [
            n for n in names if n not in done and all(d in done for d in RECOMMENDERS.get(n).fuses)
        ]
        if not ready:
            raise ValueError(f"recommenders blend unknown or circular members: {names}")
        done.append(ready[0])
    return done


def recommender_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; unknown names list the valid choices."""
    return RECOMMENDERS.get(name)


def create_recommender(name: str, **params) -> Recommender:
    """An unfitted recommender ``name`` with the given hyper-parameters."""
    return recommender_class(name)(**params)


def load_recommender(folder: Path) -> Recommender:
    """Load any saved recommender (its class is read from ``meta.json``)."""
    return Recommender.load(Path(folder))
