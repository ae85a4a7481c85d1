"""The recommender registry: ``create_recommender(name, **params)`` and ``list_recommenders()``."""

from __future__ import annotations

import importlib
from pathlib import Path

from engine.recommend.base import Recommender

_REGISTRY: dict[str, type[Recommender]] = {}
_BUILTIN = ("popularity", "als", "content", "two_tower", "fm", "hybrid")


def register_recommender(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make ``cls`` creatable by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"recommender {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    # Importing the modules registers their classes (in this order).
    for module in _BUILTIN:
        importlib.import_module(f"engine.recommend.{module}")


def list_recommenders() -> list[str]:
    """Registered recommender names."""
    _load_builtin()
    return list(_REGISTRY)


def recommender_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; unknown names list the valid choices."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown recommender {name!r}; valid: {', '.join(list_recommenders())}")
    return _REGISTRY[name]


def create_recommender(name: str, **params) -> Recommender:
    """An unfitted recommender ``name`` with the given hyper-parameters."""
    return recommender_class(name)(**params)


def load_recommender(folder: Path) -> Recommender:
    """Load any saved recommender (its class is read from ``meta.json``)."""
    return Recommender.load(Path(folder))
