"""Request bodies bounded in size, and multipart uploads parsed in memory (never on disk).

Starlette's own form parser spools every file over 1 MB to a temporary file on disk; an image
upload must never touch the disk (``docs/bad-input.md``), so multipart bodies are parsed here with
python-multipart's streaming parser into memory, counting bytes as they arrive:

- :class:`BodyLimit` (ASGI middleware) answers 413 before reading a body whose ``Content-Length``
  is over the limit, and stops a chunked body as soon as it passes it;
- :func:`read_form` refuses an image part over ``MAX_UPLOAD_BYTES`` (413, the same message as
  :func:`engine.imageio.load_image`), a text field over ``MAX_FIELD_BYTES``, too many parts,
  and anything that is not ``multipart/form-data``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.errors import ApiError, error_response
from engine.imageio import MAX_UPLOAD_BYTES

MAX_JSON_BYTES = 1024 * 1024  # a JSON search request is a query of <= 1,000 characters
MAX_FORM_OVERHEAD = 1024 * 1024  # multipart boundaries, headers and the text fields
MAX_FIELD_BYTES = 64 * 1024  # one text field of a form
MAX_PARTS = 16
IMAGE_FIELD = "image"


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB"


def too_large_message(limit: int, upload: bool) -> str:
    if upload:
        return (f"The request is larger than {_mb(limit)} (an image may be at most "
                f"{_mb(MAX_UPLOAD_BYTES)}); please upload a smaller image.")
    return f"The request body is larger than {_mb(limit)}; a search request is a short query."


class BodyLimit:
    """ASGI middleware: at most ``limit_for(path)`` bytes of request body, else 413 (JSON)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], tuple[int, bool]]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, upload = self.limit_for(scope["path"])
        message = too_large_message(limit, upload)
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                n = -1
            if n < 0:
                response = error_response(400, "bad_request", "Invalid Content-Length header.")
                await response(scope, receive, send)
                return
            if n > limit:  # refused before a byte of the body is read
                await error_response(413, "too_large", message)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, detail=message)
            return msg

        await self.app(scope, limited, send)


@dataclass
class Part:
    """One part of a multipart body, held in memory."""

    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Form:
    """The parts of a multipart body by name (the first part of each name)."""

    parts: dict[str, Part]

    def text(self, name: str, default: str | None = None) -> str | None:
        part = self.parts.get(name)
        if part is None:
            return default
        try:
            return part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "bad_request", f"Form field '{name}' is not UTF-8 text.") from None

    def file(self, name: str = IMAGE_FIELD) -> bytes:
        part = self.parts.get(name)
        if part is None:
            raise ApiError(
                422, "invalid_request",
                f"Missing form field '{name}': the query image as a file "
                f"(curl -F {name}=@photo.jpg).",
            )
        return bytes(part.data)


class _Collector:
    """python-multipart callbacks that build :class:`Part` objects in memory, with limits."""

    def __init__(self, file_limit: int):
        self.file_limit = file_limit
        self.parts: list[Part] = []
        self.current = Part()
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}

    def on_part_begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise ApiError(400, "bad_request", f"Too many form fields (at most {MAX_PARTS}).")
        self.current, self.headers = Part(), {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_name).lower()] = bytes(self.header_value)
        self.header_name, self.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition"))
        if b"name" not in options:
            raise ApiError(400, "bad_request", "A form part has no field name.")
        self.current.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            self.current.filename = options[b"filename"].decode("utf-8", "replace")
        if b"content-type" in self.headers:
            self.current.content_type = self.headers[b"content-type"].decode("latin-1")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.current
        part.data += data[start:end]
        is_file = part.filename is not None or part.name == IMAGE_FIELD
        if is_file and len(part.data) > self.file_limit:
            raise ApiError(
                413, "too_large",
                f"The file is larger than {_mb(self.file_limit)}; please upload a smaller image.",
            )
        if not is_file and len(part.data) > MAX_FIELD_BYTES:
            raise ApiError(
                413, "too_large",
                f"Form field '{part.name}' is larger than {MAX_FIELD_BYTES // 1024} KB.",
            )

    def on_part_end(self) -> None:
        self.parts.append(self.current)

    def callbacks(self) -> dict:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end")}


async def read_form(request: Request, allowed: set[str],
                    file_limit: int = MAX_UPLOAD_BYTES) -> Form:
    """The request's multipart form, parsed in memory; unknown field names are refused."""
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data":
        raise ApiError(
            415, "unsupported_media_type",
            "Send a multipart/form-data body with the image in a file field named 'image' "
            "(curl -F image=@photo.jpg).",
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_request", "The multipart body has no boundary.")
    collector = _Collector(file_limit)
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise ApiError(400, "bad_request", f"The multipart body is malformed ({exc}).") from None
    parts: dict[str, Part] = {}
    for part in collector.parts:
        if part.name not in allowed:
            valid = ", ".join(sorted(allowed))
            raise ApiError(422, "invalid_request",
                           f"Unknown form field '{part.name}'; valid: {valid}.")
        parts.setdefault(part.name, part)
    return Form(parts)
