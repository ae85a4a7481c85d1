"""What the pages and the API show of query understanding: the interpretation of a text."""

from __future__ import annotations

from engine.artifacts import ArtifactError
from engine.catalog import Catalog
from engine.components import query_understanding
from engine.search import QueryError, clean_query_text


def interpret_text(catalog: Catalog, text: str | None):
    """The interpretation of ``text`` on ``catalog``, or None when there is nothing to show: no
    text, bad text (the search itself says what is wrong), a catalog that does not understand
    queries, or query understanding that will not load (the search then says so)."""
    try:
        text = clean_query_text(text)
        qu = query_understanding(catalog) if text else None
    except (QueryError, ArtifactError):
        return None
    return qu.interpret(text) if qu is not None else None


def dropped(chip_ids: list[str], kept: list[str] | None) -> tuple[str, ...]:
    """The chips a person removed: every chip not in ``kept`` (None: nothing removed yet)."""
    if kept is None:
        return ()
    return tuple(c for c in chip_ids if c not in set(kept))
