"""What the endpoints share: catalogs opened once per process, method defaults and result items.

:class:`CatalogPool` opens each catalog once (``Catalog.open``: the same checks as the CLI) and
reopens it only when its manifest changes (a rebuild). Retrievers, indexes, models and the
recommendation service live in the catalog's own thread-safe cache (``Catalog.cached``, the one
``engine.search.get_retriever`` uses), so every request of every client shares them.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any
from urllib.parse import quote

from engine.api.errors import ApiError
from engine.catalog import Catalog
from engine.imageio import DecodedImage, load_image
from engine.paths import artifacts_dir
from engine.retrieval.registry import available_retrievers, list_retrievers
from engine.search import QueryError, get_retriever
from engine.serving import built_catalogs, open_catalog

log = logging.getLogger("engine.api")

# Preferred defaults, best first (reports/benchmark.json); the first one built is used.
TEXT_DEFAULTS = ("hybrid", "fusion-early", "keyword", "sbert", "bm25")
IMAGE_DEFAULTS = ("clip", "fusion-mlp", "fusion-early", "colour")
# Methods that weigh a text and an image together (image_weight): the multimodal page's list.
MULTIMODAL = ("clip", "fusion-early", "fusion-late", "fusion-mlp")
RECOMMEND_DEFAULT = "hybrid"
ITEM_FIELDS = ("title", "price", "category", "brand", "is_new")  # catalog data, never truth
DECODE_SLOTS = 2  # images decoded at once (each may hold up to 40 MP while decoding)

_decode_gate = threading.BoundedSemaphore(DECODE_SLOTS)


class CatalogPool:
    """Catalogs opened once per process and shared; ``default`` is the one the server serves."""

    def __init__(self, default: str):
        self.default = default
        self._lock = threading.Lock()
        self._open: dict[str, tuple[float | None, Catalog]] = {}

    def get(self, name: str | None = None) -> Catalog:
        """The opened catalog ``name`` (default: the served one).

        An unknown name is a 404 (``unknown_catalog``); a catalog that cannot be served raises
        :class:`ArtifactError` (503 with the rebuild command), as ``Catalog.open`` does.
        """
        name = name or self.default
        manifest = artifacts_dir(name) / "manifest.json"  # ValueError (400) for a bad name
        try:
            mtime: float | None = manifest.stat().st_mtime
        except OSError:
            mtime = None
        if mtime is None and name != self.default:
            built = ", ".join(built_catalogs()) or "none"
            raise ApiError(404, "unknown_catalog",
                           f"No built catalog named '{name}'; built: {built}.")
        with self._lock:
            cached = self._open.get(name)
            if cached is not None and cached[0] == mtime:
                return cached[1]
            catalog = open_catalog(name)
            self._open[name] = (mtime, catalog)
            return catalog


def default_method(catalog: Catalog, kind: str) -> str | None:
    """The default method of an endpoint (``text``, ``image``, ``multimodal``) on ``catalog``."""
    if kind == "multimodal":
        return next(iter(multimodal_methods(catalog)), None)
    built = available_retrievers(catalog, kind)
    prefs = TEXT_DEFAULTS if kind == "text" else IMAGE_DEFAULTS
    return next((m for m in prefs if m in built), built[0] if built else None)


def multimodal_methods(catalog: Catalog) -> list[str]:
    """Built methods that weigh a text and an image together."""
    both = set(available_retrievers(catalog, "text")) & set(available_retrievers(catalog, "image"))
    return [m for m in MULTIMODAL if m in both]


def resolve_method(catalog: Catalog, method: str | None, kind: str) -> str:
    """The method to run: the default when none is given; unknown or unbuilt ones are refused.

    An unknown name is a 400 with the CLI's message listing the valid names; a known method whose
    artifacts this catalog lacks is a 409 listing the methods it has.
    """
    if method is None:
        method = default_method(catalog, kind)
        if method is None:
            raise ApiError(
                409, "method_not_built",
                f"The '{catalog.name}' catalog has no method built for {kind} queries.",
                fix=catalog.store.default_fix(catalog.manifest),
            )
    try:
        get_retriever(catalog, method)
    except QueryError as exc:
        known = method in list_retrievers()
        raise ApiError(409 if known else 400, "method_not_built" if known else "unknown_method",
                       str(exc)) from None
    if kind == "multimodal" and method not in multimodal_methods(catalog):
        options = ", ".join(multimodal_methods(catalog)) or "none"
        raise ApiError(
            400, "bad_query",
            f"Method '{method}' cannot weigh a text and an image together. Methods for text + "
            f"image: {options} (or POST /search/text, /search/image for one of them).",
        )
    return method


def decode(data: bytes) -> DecodedImage:
    """``engine.imageio.load_image`` on the upload's bytes, in memory, a few at a time."""
    with _decode_gate:
        return load_image(data)


def _native(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def _records(catalog: Catalog) -> list[dict[str, Any]]:
    def build() -> list[dict[str, Any]]:
        cols = ["item_id", *(c for c in ITEM_FIELDS if c in catalog.items.columns)]
        rows = catalog.items[cols].to_dict("records")
        return [{k: _native(v) for k, v in row.items()} for row in rows]

    return catalog.cached("api:item_records", build)


def image_url(catalog_name: str, item_id: str, default: str) -> str:
    url = f"/items/{quote(str(item_id), safe='')}/image"
    return url if catalog_name == default else f"{url}?catalog={quote(catalog_name, safe='')}"


def items_view(catalog: Catalog, item_ids: list[str], scores: list[float],
               default: str) -> list[dict[str, Any]]:
    """The result rows as JSON objects: rank, id, score, title, price, category, ... image_url."""
    records, row_of = _records(catalog), catalog.row_of
    return [
        {"rank": rank, **records[row_of[item_id]], "score": score,
         "image_url": image_url(catalog.name, item_id, default)}
        for rank, (item_id, score) in enumerate(zip(item_ids, scores), 1)
    ]


def recommendation_service(catalog: Catalog):
    """The catalog's shared RecommendationService (409 when it has no recommenders)."""
    from engine.recommend.service import RecommendationService

    if "recommend" not in catalog.built_steps:
        raise ApiError(
            409, "recommenders_unavailable",
            f"the '{catalog.name}' catalog has no recommenders: {catalog.unavailable('recommend')}",
        )
    return catalog.cached("recommendation_service",
                          lambda: RecommendationService.for_catalog(catalog))


def warm_up(pool: CatalogPool) -> None:
    """Open the served catalog and load the default methods' models and indexes (at start-up).

    Failures are logged, not raised: the server still starts and /health says what is wrong.
    """
    try:
        catalog = pool.get()
        methods = {default_method(catalog, kind) for kind in ("text", "image", "multimodal")}
        for method in sorted(m for m in methods if m):
            get_retriever(catalog, method).warm_up()
        if "recommend" in catalog.built_steps:
            service = recommendation_service(catalog)
            if RECOMMEND_DEFAULT in service.models():
                service.model(RECOMMEND_DEFAULT)
        _records(catalog)
        log.info("catalog '%s' warmed up: %s", catalog.name, ", ".join(sorted(filter(None,
                                                                                  methods))))
    except Exception as exc:  # reported by /health; the server keeps running
        log.warning("the '%s' catalog cannot be served yet (GET /health says why): %s",
                    pool.default, exc)
