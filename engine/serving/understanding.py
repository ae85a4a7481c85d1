"""What the pages and the API show of query understanding: the interpretation of a text."""

from __future__ import annotations

from engine.catalog import Catalog
from engine.components import query_understanding
from engine.search import clean_query_text


def interpret_text(catalog: Catalog, text: str | None):
    """The interpretation of ``text`` on ``catalog`` (None when the catalog does not understand
    queries or the text is empty). Bad text raises :class:`engine.search.QueryError`."""
    text = clean_query_text(text)
    qu = query_understanding(catalog) if text else None
    return qu.interpret(text) if qu is not None else None


def dropped(chip_ids: list[str], kept: list[str] | None) -> tuple[str, ...]:
    """The chips a person removed: every chip not in ``kept`` (None: nothing removed yet)."""
    if kept is None:
        return ()
    return tuple(c for c in chip_ids if c not in set(kept))
