"""Finding methods: ``list_retrievers()``, ``available_retrievers(catalog)``, ``retriever_class``,
``create_retriever`` and ``shared_retriever`` (the one instance per catalog that serving uses).

Methods are discovered from ``engine/retrieval/`` (see :class:`engine.registry.Registry`); the
order is each class's ``order`` then its name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.retrieval.base import RETRIEVERS, Retriever, register_retriever

if TYPE_CHECKING:
    from engine.catalog import Catalog

__all__ = [
    "available_retrievers",
    "create_retriever",
    "list_retrievers",
    "register_retriever",
    "retriever_class",
    "shared_retriever",
]


def _ordered() -> list[type[Retriever]]:
    return sorted(RETRIEVERS, key=lambda c: (c.order, c.name))


def list_retrievers(modality: str | None = None) -> list[str]:
    """Registered method names, optionally only those that can use ``modality``."""
    return [c.name for c in _ordered() if modality is None or modality in c.modalities]


def available_retrievers(
    catalog: Catalog, modality: str | None = None, *, mixing: bool = False
) -> list[str]:
    """Methods whose build steps ``catalog`` has (optionally only those using ``modality``, or
    with ``mixing`` only those that blend a text and an image in one query)."""
    built = catalog.built_steps
    return [
        c.name
        for c in _ordered()
        if (mods := c.built_modalities(built))
        and (modality is None or modality in mods)
        and (not mixing or c.mixes_modalities)
    ]


def retriever_class(name: str) -> type[Retriever]:
    """The class registered as ``name``; unknown names list the valid choices."""
    if name not in RETRIEVERS:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(list_retrievers())}")
    return RETRIEVERS.get(name)


def create_retriever(name: str, catalog: Catalog, **params: Any) -> Retriever:
    """A new retriever ``name`` over ``catalog`` (``params`` override its declared defaults)."""
    return retriever_class(name)(catalog, **params)


def shared_retriever(catalog: Catalog, name: str) -> Retriever:
    """The catalog's one shared instance of ``name`` with default parameters (created once)."""
    cls = retriever_class(name)
    return catalog.cached(f"retriever:{name}", lambda: cls(catalog))
