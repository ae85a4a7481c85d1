"""The one entry point for searching a catalog, used by the CLI and the app.

It validates user input and turns every problem into a :class:`QueryError` whose message can be
shown to a person as it is: empty or absurdly long queries, control characters, a bad top-k, an
unknown method, or a method that cannot use the query given.
"""

from __future__ import annotations

import numbers
import re
import time
import unicodedata
from typing import TYPE_CHECKING

from engine.artifacts import ArtifactError
from engine.components import query_understanding
from engine.retrieval.base import Query, SearchResult
from engine.retrieval.registry import available_retrievers, retriever_class, shared_retriever
from engine.retrieval.understanding import make_query

if TYPE_CHECKING:
    from PIL import Image

    from engine.catalog import Catalog
    from engine.imageio import DecodedImage

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 500


class QueryError(ValueError):
    """A problem with the user's input; the message is written for the user."""


def clean_query_text(text: str | None) -> str:
    """Drop control/format characters, collapse white space; refuse empty or huge queries."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise QueryError("The query must be text.")
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"That query is {len(text):,} characters long; please keep it under "
            f"{MAX_QUERY_CHARS:,} characters."
        )
    return text


def check_top_k(k: object) -> int:
    """A valid number of results (1..MAX_TOP_K), or a QueryError saying what is allowed."""
    if isinstance(k, str) and re.fullmatch(r"\s*-?\d+\s*", k):
        k = int(k)
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise QueryError(f"Top-k must be a whole number from 1 to {MAX_TOP_K} (got {k!r}).")
    if not 1 <= int(k) <= MAX_TOP_K:
        raise QueryError(f"Top-k must be from 1 to {MAX_TOP_K} (got {k}).")
    return int(k)


def get_retriever(catalog: Catalog, method: str):
    """The catalog's shared retriever for ``method`` (created once)."""
    try:
        cls = retriever_class(method)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if not cls.built_modalities(catalog.built_steps):
        valid = ", ".join(available_retrievers(catalog))
        raise QueryError(
            f"Method '{method}' is not built for the '{catalog.name}' catalog; available: {valid}."
        )
    return shared_retriever(catalog, method)


def search(
    catalog: Catalog,
    method: str,
    *,
    text: str | None = None,
    image: Image.Image | DecodedImage | None = None,
    k: int = 10,
    image_weight: float = 0.5,
    understand: bool = True,
    drop: tuple[str, ...] = (),
) -> SearchResult:
    """Validate the input and run one search; raises :class:`QueryError` for bad input.

    The text is understood first (``engine.query``: rewrites and constraints) when the catalog
    has the query step; ``understand=False`` searches the typed words as they are, and ``drop``
    leaves pieces of the interpretation out (chip ids a person removed).
    """
    k = check_top_k(k)
    text = clean_query_text(text)
    try:
        image_weight = float(image_weight)
    except (TypeError, ValueError):
        raise QueryError(
            f"The image weight must be a number from 0 to 1 (got {image_weight!r})."
        ) from None
    if not 0.0 <= image_weight <= 1.0:  # also refuses NaN
        raise QueryError(f"The image weight must be from 0 to 1 (got {image_weight}).")
    decode_ms, image_notes = None, []
    if hasattr(image, "decode_ms"):  # an engine.imageio.DecodedImage: keep its timing and notes
        decode_ms, image_notes, image = image.decode_ms, list(image.notes), image.image
    retriever = get_retriever(catalog, method)
    query = Query(text=text or None, image=image, image_weight=float(image_weight))
    if not query.modalities:
        raise QueryError(
            "Type something to search for"
            + (" or add an image." if "image" in retriever.modalities else ".")
        )
    if not retriever.supports(query):
        needs = " and ".join(sorted(retriever.modalities))
        options = ", ".join(available_retrievers(catalog, next(iter(query.modalities))))
        raise QueryError(
            f"Method '{method}' needs a {needs} query. Methods for this query: {options}."
        )
    unavailable = None
    if understand and query.text:
        try:
            query_understanding(catalog)  # loaded once per catalog, not this query's time
        except ArtifactError as exc:  # e.g. the text encoder will not load: search as typed
            understand, unavailable = False, exc.reason
    t0 = time.perf_counter()
    query = make_query(
        catalog, query.text, image, query.image_weight, understand=understand, drop=tuple(drop)
    )
    understand_ms = (time.perf_counter() - t0) * 1000
    result = retriever.search(query, k)
    if unavailable:
        result.notes = [f"Searched the words as typed: query understanding is unavailable "
                        f"({unavailable})", *result.notes]
    if query.understood is not None:
        result.timings_ms = {"understand": understand_ms, **result.timings_ms}
        result.interpretation = query.understood
        result.notes = list(query.understood.notes) + result.notes
    if decode_ms is not None:
        result.timings_ms = {"decode": float(decode_ms), **result.timings_ms}
        result.notes = image_notes + result.notes
    return result
