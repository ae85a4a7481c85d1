"""One JSON shape for every error, and the mapping from engine exceptions to HTTP status codes.

``{"error": {"code": "bad_query", "message": "Type something to search for."}}`` (plus ``fix``,
the one command that repairs the catalog, when there is one). Bad input is a 4xx with the engine's
own message, the one the CLI prints; a genuine bug is a 500 whose body names no traceback (the
server log has it).

=========================  ======  ==========================================================
exception                  status  code
=========================  ======  ==========================================================
ApiError                   its own its own (unknown_method, method_not_built, too_large, ...)
QueryError                 400     bad_query
ImageInputError            400     bad_image
ValueError (other)         400     bad_input (e.g. an unknown recommender, with the choices)
RequestValidationError     422     invalid_request (schema: a missing field, a wrong type)
ArtifactError              503     artifacts_unavailable (with ``fix``)
OSError                    503     server_storage_error
HTTPException              its own not_found, method_not_allowed, ...
anything else              500     internal_error
=========================  ======  ==========================================================
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.artifacts import ArtifactError
from engine.imageio import ImageInputError
from engine.search import QueryError

log = logging.getLogger("engine.api")

_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


JSON_HINT = ("Send a JSON object with the header Content-Type: application/json, e.g. "
             """curl -H 'Content-Type: application/json' -d '{"query": "red boots"}'.""")


class ApiError(Exception):
    """An error with its HTTP status, a stable code and a message written for people."""

    def __init__(self, status: int, code: str, message: str, *, fix: str | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fix = status, code, message, fix
        self.extra = extra or {}


def error_body(code: str, message: str, fix: str | None = None, **extra: Any) -> dict[str, Any]:
    """``{"error": {"code", "message"[, "fix"]}, **extra}``: the shape of every error."""
    err: dict[str, Any] = {"code": code, "message": message}
    if fix:
        err["fix"] = fix
    return {"error": err, **extra}


def error_response(status: int, code: str, message: str, fix: str | None = None,
                   headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, fix, **extra), status_code=status,
                        headers=headers)


def artifact_error(exc: ArtifactError) -> ApiError:
    """A catalog that cannot be served: 503 with the reason and the rebuild command."""
    return ApiError(503, "artifacts_unavailable", exc.reason, fix=exc.fix)


def _where(loc: tuple | list) -> tuple[str, str]:
    """("JSON field", "query") from a pydantic location such as ("body", "query")."""
    kinds = {"body": "JSON field", "query": "query parameter", "path": "path parameter",
             "header": "header", "cookie": "cookie"}
    parts = [str(p) for p in loc]
    kind = kinds.get(parts[0], "field") if parts else "field"
    return kind, ".".join(parts[1:])


def validation_message(errors: list[dict[str, Any]]) -> str:
    """A readable sentence for FastAPI's validation errors (one per field, at most three)."""
    out, seen = [], set()
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if loc[:2] in seen:  # a union reports each member: one sentence per field is enough
            continue
        seen.add(loc[:2])
        kind, name = _where(loc[:2])
        etype = err.get("type", "")
        if etype == "json_invalid":
            ctx = err.get("ctx", {}).get("error", "")
            out.append(f"The request body is not valid JSON ({ctx or 'syntax error'}).")
        elif etype == "missing":
            out.append(f"Missing {kind} '{name}'." if name else "The request body is missing.")
        elif etype == "extra_forbidden":
            out.append(f"Unknown {kind} '{name}' (see /docs for the fields).")
        elif etype == "model_attributes_type" or not name:
            out.append("The request body must be a JSON object (see /docs for the fields).")
        else:
            out.append(f"{kind[0].upper()}{kind[1:]} '{name}': {err.get('msg', 'is not valid')}.")
    if len(out) > 3:
        out = out[:3] + [f"({len(out) - 3} more problem(s).)"]
    return " ".join(out)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the one JSON error shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.fix, **exc.extra)

    @app.exception_handler(QueryError)
    async def _query(request: Request, exc: QueryError) -> JSONResponse:
        return error_response(400, "bad_query", str(exc))

    @app.exception_handler(ImageInputError)
    async def _image(request: Request, exc: ImageInputError) -> JSONResponse:
        return error_response(400, "bad_image", str(exc))

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        return error_response(400, "bad_input", str(exc))

    @app.exception_handler(ArtifactError)
    async def _artifact(request: Request, exc: ArtifactError) -> JSONResponse:
        err = artifact_error(exc)
        return error_response(err.status, err.code, err.message, err.fix)

    @app.exception_handler(OSError)
    async def _os(request: Request, exc: OSError) -> JSONResponse:
        from engine.errors import os_error_message

        log.error("storage error on %s %s: %s", request.method, request.url.path, exc)
        return error_response(503, "server_storage_error", os_error_message(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        ctype = request.headers.get("content-type", "")
        if request.method == "POST" and not ctype.startswith("application/json"):
            return error_response(422, "invalid_request", JSON_HINT)
        return error_response(422, "invalid_request", validation_message(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "The request body could not be read as JSON (UTF-8 text expected)."
        elif exc.status_code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}. See /docs."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}. See /docs."
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(
            500, "internal_error",
            f"Internal error ({type(exc).__name__}); the server log has the details.",
        )
