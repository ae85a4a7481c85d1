"""The retriever registry: ``create_retriever(name, catalog)`` and ``list_retrievers()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.retrieval.base import Retriever

if TYPE_CHECKING:
    from engine.catalog import Catalog

_REGISTRY: dict[str, type[Retriever]] = {}


def register_retriever(cls: type[Retriever]) -> type[Retriever]:
    """Class decorator: make ``cls`` creatable by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"retriever {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    # Importing the modules registers their classes.
    from engine.retrieval import fusion, hybrid, lexical, rrf, semantic, visual  # noqa: F401


def list_retrievers(modality: str | None = None) -> list[str]:
    """Registered method names, optionally only those that can use ``modality``."""
    _load_builtin()
    return [n for n, c in _REGISTRY.items() if modality is None or modality in c.modalities]


def available_retrievers(catalog: Catalog, modality: str | None = None) -> list[str]:
    """Methods whose build steps ``catalog`` has (optionally only those using ``modality``)."""
    built = catalog.built_steps
    return [
        n
        for n in list_retrievers(modality)
        if (mods := _REGISTRY[n].built_modalities(built)) and (modality is None or modality in mods)
    ]


def retriever_class(name: str) -> type[Retriever]:
    """The class registered as ``name``; unknown names list the valid choices."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(list_retrievers())}")
    return _REGISTRY[name]


def create_retriever(name: str, catalog: Catalog) -> Retriever:
    """Create the retriever ``name`` over ``catalog``."""
    return retriever_class(name)(catalog)
