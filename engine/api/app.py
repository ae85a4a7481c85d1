"""The FastAPI application: ``create_app(catalog)`` and its endpoints.

==========================  ================================================================
endpoint                    what it does
==========================  ================================================================
POST /search/text           JSON ``{query, method?, top_k?, catalog?}``; ``engine.search``
POST /search/image          multipart: file ``image``, fields ``method``, ``top_k``, ``catalog``
POST /search/multimodal     multipart: ``image`` + ``query``, ``image_weight``, ``method``, ...
GET  /recommend/{user_id}   ``?method=hybrid&top_k=10``; unknown users get cold-start items
GET  /methods               the search methods, what each takes on this catalog, the defaults
GET  /health                200 when the catalog can be served, else 503 with the rebuild command
GET  /items/{item_id}/image the catalog's image of a product
GET  /docs, /redoc, /openapi.json   the OpenAPI documentation (scripts served locally)
==========================  ================================================================

Search and recommendation calls are synchronous functions that FastAPI runs in its thread pool;
they call the engine exactly as ``python -m engine search`` / ``recommend`` do, so the answers
and the messages are the CLI's.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

import engine
from engine.api import errors
from engine.api.errors import ApiError
from engine.api.schemas import (
    ERRORS,
    HealthResponse,
    MethodsResponse,
    RecommendResponse,
    SearchResponse,
    TextSearchRequest,
    form_schema,
)
from engine.api.service import (
    RECOMMEND_DEFAULT,
    CatalogPool,
    decode,
    default_method,
    items_view,
    multimodal_methods,
    recommendation_service,
    resolve_method,
    warm_up,
)
from engine.api.uploads import MAX_FORM_OVERHEAD, MAX_JSON_BYTES, BodyLimit, Form, read_form
from engine.artifacts import ArtifactError
from engine.imageio import MAX_UPLOAD_BYTES
from engine.retrieval.base import SearchResult
from engine.runtime import QUERY_THREADS, set_serving_threads
from engine.search import QueryError, check_top_k, clean_query_text, search

UPLOAD_PATHS = ("/search/image", "/search/multimodal")
IMAGE_FIELDS = {"image", "method", "top_k", "catalog"}
MULTIMODAL_FIELDS = IMAGE_FIELDS | {"query", "image_weight"}
CatalogParam = Annotated[str | None, Query(description="Built catalog (default: the served one).")]


def _body_limit(path: str) -> tuple[int, bool]:
    if path in UPLOAD_PATHS:
        return MAX_UPLOAD_BYTES + MAX_FORM_OVERHEAD, True
    return MAX_JSON_BYTES, False


def create_app(catalog: str = "demo", *, warm: bool = False) -> FastAPI:
    """The API serving ``catalog`` (others built in the same data folder via ``catalog=``).

    The catalog is opened on first use (or at start-up with ``warm=True``, which also loads the
    default methods' models) and shared by every request; queries run single-threaded, as in the
    app (``engine.runtime.set_serving_threads``).
    """
    set_serving_threads(QUERY_THREADS)
    pool = CatalogPool(catalog)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            await run_in_threadpool(warm_up, pool)
        yield

    app = FastAPIOffline(  # FastAPI with /docs and /redoc scripts served locally, not from a CDN
        title="PixelMatch API",
        version=engine.__version__,
        description="Multimodal product search and recommendations over a built catalog. "
        'Every error is JSON: {"error": {"code", "message"}}.',
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.add_middleware(BodyLimit, limit_for=_body_limit)
    errors.install(app)

    def respond(cat, result: SearchResult, query: str | None = None) -> dict:
        out = result.to_dict(cat.item_ids)
        out["items"] = items_view(cat, out["item_ids"], out["scores"], pool.default)
        return {"catalog": cat.name, "query": query, **out}

    @app.post("/search/text", response_model=SearchResponse, responses=ERRORS,
              summary="Search by text")
    def search_text(req: TextSearchRequest) -> dict:
        """Search the catalog with a text query (``python -m engine search --query``)."""
        k = check_top_k(req.top_k)
        cat = pool.get(req.catalog)
        method = resolve_method(cat, req.method, "text")
        return respond(cat, search(cat, method, text=req.query, k=k), req.query)

    def _image_search(form: Form, kind: str) -> dict:
        k = check_top_k(form.text("top_k", "10"))
        cat = pool.get(form.text("catalog"))
        method = resolve_method(cat, form.text("method"), kind)
        text = None
        if kind == "multimodal":
            text = form.text("query")
            if text is None:
                raise ApiError(422, "invalid_request", "Missing form field 'query'.")
            if not clean_query_text(text):
                raise QueryError("Type something to search for, with the image (for an image "
                                 "alone, use POST /search/image).")
        decoded = decode(form.file("image"))
        result = search(cat, method, text=text, image=decoded, k=k,
                        image_weight=form.text("image_weight", "0.5"))
        return respond(cat, result, text)

    @app.post("/search/image", response_model=SearchResponse, responses=ERRORS,
              openapi_extra=form_schema(query=False, weight=False), summary="Search by image")
    async def search_image(request: Request) -> dict:
        """Products that look like the uploaded image (multipart; parsed in memory only)."""
        form = await read_form(request, IMAGE_FIELDS)
        return await run_in_threadpool(_image_search, form, "image")

    @app.post("/search/multimodal", response_model=SearchResponse, responses=ERRORS,
              openapi_extra=form_schema(query=True, weight=True),
              summary="Search by text and image together")
    async def search_multimodal(request: Request) -> dict:
        """A text and an image weighed together (``image_weight``: 0 text only, 1 image only)."""
        form = await read_form(request, MULTIMODAL_FIELDS)
        return await run_in_threadpool(_image_search, form, "multimodal")

    @app.get("/recommend/{user_id}", response_model=RecommendResponse, responses=ERRORS,
             summary="Recommend products for a user")
    def recommend(
        user_id: str,
        method: str = RECOMMEND_DEFAULT,
        top_k: Annotated[int | str, Query(description="Number of results, 1 to 500.")] = 10,
        catalog: CatalogParam = None,
    ) -> dict:
        """``python -m engine recommend --user``: unknown users get cold-start items and a note."""
        k = check_top_k(top_k)
        cat = pool.get(catalog)
        service = recommendation_service(cat)
        try:
            service.model(method)
        except ValueError as exc:
            raise ApiError(400, "unknown_method", str(exc)) from None
        recs = service.recommend(user_id, method, k=k)
        ids = [str(i) for i in recs.item_ids]
        scores = [round(float(s), 6) for s in recs.scores]
        return {
            "catalog": cat.name, "user_id": user_id, "method": method, "item_ids": ids,
            "scores": scores, "items": items_view(cat, ids, scores, pool.default),
            "latency_ms": round(recs.latency_ms, 3), "notes": recs.notes,
        }

    @app.get("/methods", response_model=MethodsResponse, responses=ERRORS,
             summary="List the search methods")
    def methods(catalog: CatalogParam = None) -> dict:
        """Every search method, the query kinds it takes, and which are built on this catalog."""
        from engine.retrieval.registry import list_retrievers, retriever_class

        cat = pool.get(catalog)
        multi = set(multimodal_methods(cat))
        out = []
        for name in list_retrievers():
            cls = retriever_class(name)
            out.append({
                "name": name, "description": cls.description,
                "modalities": sorted(cls.modalities),
                "available": sorted(cls.built_modalities(cat.built_steps)),
                "multimodal": name in multi,
            })
        recs = recommendation_service(cat).models() if "recommend" in cat.built_steps else []
        defaults = {kind: default_method(cat, kind) for kind in ("text", "image", "multimodal")}
        return {"catalog": cat.name, "methods": out, "defaults": defaults, "recommenders": recs}

    @app.get("/health", response_model=HealthResponse, response_model_exclude_none=True,
             summary="Can the catalog be served?",
             responses={503: {"model": HealthResponse, "description": "It cannot."}})
    def health(catalog: CatalogParam = None,
               deep: Annotated[bool, Query(description="Also verify every artifact file "
                                                       "(python -m engine status).")] = False):
        """200 when the catalog can be served; 503 with the problems and the rebuild command."""
        name = catalog or pool.default
        base = {"catalog": name, "version": engine.__version__}
        try:
            cat = pool.get(name)
            if deep:
                from engine.pipeline import check

                status = check(name)
                if not status.ok:
                    raise ArtifactError(" ".join(status.problems), fix=status.fix)
        except ArtifactError as exc:
            body = {**base, "ok": False, "problems": [exc.reason],
                    **errors.error_body("artifacts_unavailable", exc.reason, exc.fix)}
            return JSONResponse(body, status_code=503)
        steps = cat.manifest.get("steps", {})
        return {
            **base, "ok": True, "built_at": cat.manifest.get("built_at"), "items": len(cat.items),
            "steps": sorted(cat.built_steps),
            "unavailable": {s: cat.unavailable(s) for s in steps if cat.unavailable(s)},
            "vector_store": cat.vector_store.describe() if cat.vector_store else "FAISS files",
        }

    @app.get("/items/{item_id}/image", response_class=FileResponse, summary="A product's image",
             responses={200: {"content": {"image/jpeg": {}}}, **ERRORS})
    def item_image(item_id: str, catalog: CatalogParam = None) -> FileResponse:
        """The catalog's own image of a product (files inside the catalog folder only)."""
        cat = pool.get(catalog)
        row = cat.row_of.get(item_id)
        if row is None:
            raise ApiError(404, "unknown_item", f"No item '{item_id}' in the '{cat.name}' catalog.")
        path = cat.image_path(row)
        if not path.is_file():
            raise ArtifactError(f"The image of '{item_id}' is missing ({path.name}).",
                                fix=cat.store.default_fix(cat.manifest))
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=3600"})

    @app.get("/", include_in_schema=False)
    def root() -> dict:
        return {"name": "PixelMatch API", "version": engine.__version__,
                "catalog": pool.default, "docs": "/docs"}

    return app
