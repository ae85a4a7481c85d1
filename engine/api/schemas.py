"""Request and response models of the HTTP API (they are also its OpenAPI schema at ``/docs``).

Requests are deliberately loose where the engine is the judge: ``top_k`` may arrive as any JSON
value and ``query`` as any text, so that ``engine.search`` refuses bad values with the same
message the CLI prints ("Top-k must be from 1 to 500 (got 0).") instead of a schema error.
Unknown fields are refused (a typo such as ``topk`` would otherwise be ignored silently).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TOP_K_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 500}


class TextSearchRequest(BaseModel):
    """``POST /search/text``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "navy polka dot backpack", "top_k": 5}]},
    )

    query: str = Field(description="What to search for (at most 1,000 characters).")
    method: str | None = Field(
        None, description="Search method (GET /methods); default: the best text method built."
    )
    top_k: Any = Field(10, description="Number of results, 1 to 500.",
                       json_schema_extra=TOP_K_SCHEMA)
    catalog: str | None = Field(None, description="Built catalog to search (default: served).")


class Item(BaseModel):
    """One product of a result list (absent attributes are omitted for ingested catalogs)."""

    model_config = ConfigDict(extra="allow")

    rank: int
    item_id: str
    score: float
    title: str
    price: float | None = None
    category: str | None = None
    image_url: str = Field(description="GET this path for the product's catalog image.")


class SearchResponse(BaseModel):
    """A ranked result list: ``item_ids`` and ``scores`` best first, ``items`` the same rows."""

    catalog: str
    method: str
    query: str | None = Field(None, description="The text query as given (text searches).")
    item_ids: list[str]
    scores: list[float]
    items: list[Item]
    timings_ms: dict[str, float] = Field(description="Milliseconds per stage of this query.")
    notes: list[str] = Field(description="What the user should know (e.g. 'rotated per EXIF').")
    interpretation: dict[str, Any] | None = Field(
        None,
        description="What the text was understood as (query understanding): the label, each "
        "understood part with its confidence and how it was found, price/NEW filters, free text. "
        "Absent for image-only searches or when understanding is off.",
    )


class RecommendResponse(BaseModel):
    """``GET /recommend/{user_id}``: the same fields as ``python -m engine recommend --json``."""

    catalog: str
    user_id: str
    method: str
    item_ids: list[str]
    scores: list[float]
    items: list[Item]
    latency_ms: float
    notes: list[str] = Field(description="E.g. that an unknown user got cold-start items.")


class MethodInfo(BaseModel):
    """One search method and the query kinds it can take on this catalog."""

    name: str
    description: str
    modalities: list[str] = Field(description="Query kinds the method can use at all.")
    available: list[str] = Field(description="Query kinds it can use on this catalog (built).")
    multimodal: bool = Field(description="Accepted by POST /search/multimodal.")


class MethodsResponse(BaseModel):
    """``GET /methods``."""

    catalog: str
    methods: list[MethodInfo]
    defaults: dict[str, str | None] = Field(description="The default method per endpoint.")
    recommenders: list[str] = Field(description="Recommenders built (empty: none).")


class HealthResponse(BaseModel):
    """``GET /health``: 200 when the catalog can be served, else 503 with ``error``."""

    ok: bool
    catalog: str
    version: str
    built_at: str | None = None
    items: int | None = None
    steps: list[str] = Field(default_factory=list, description="Build steps built.")
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="Steps that could not run on this catalog, and why."
    )
    vector_store: str | None = Field(
        None, description="Where the dense methods search: FAISS files or Milvus "
        "(python -m engine serve --vector-store)."
    )
    problems: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = None


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable code, e.g. bad_query, unknown_method, too_large.")
    message: str = Field(description="Written for people; the CLI prints the same text.")
    fix: str | None = Field(None, description="The command that repairs the catalog (503).")


class ErrorResponse(BaseModel):
    """Every error has this shape."""

    error: ErrorDetail


def form_schema(*, query: bool, weight: bool) -> dict[str, Any]:
    """The OpenAPI request body of a multipart search endpoint (parsed by engine.api.uploads)."""
    props: dict[str, Any] = {
        "image": {"type": "string", "format": "binary",
                  "description": "The query image (JPEG, PNG, WebP, GIF, BMP or TIFF; <= 20 MB)."},
    }
    if query:
        props["query"] = {"type": "string", "description": "Text to combine with the image."}
    if weight:
        props["image_weight"] = {"type": "number", "default": 0.5, "minimum": 0, "maximum": 1,
                                 "description": "0 = only the text counts, 1 = only the image."}
    props["method"] = {"type": "string", "description": "Search method (GET /methods)."}
    props["top_k"] = {"type": "integer", "default": 10, "minimum": 1, "maximum": 500}
    props["catalog"] = {"type": "string", "description": "Built catalog (default: served)."}
    required = ["image", "query"] if query else ["image"]
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {
                "schema": {"type": "object", "properties": props, "required": required},
            }},
        }
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "Bad input: the message says what is wrong (the CLI's message)."),
        (404, "Unknown catalog, item or endpoint."),
        (409, "The method or the recommenders are not built for this catalog."),
        (413, "The request or the image is too large."),
        (422, "The request does not match the schema (a missing or unknown field)."),
        (503, "The catalog cannot be served; error.fix is the rebuild command."),
    )
}
