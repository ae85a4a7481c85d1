"""The bad-input table: every malformed input a person can give, and what must happen to it.

One row per case. ``expect`` says what a correct system does: ``"answer"`` (a normal result,
possibly empty with a note saying why) or ``"refuse"`` (a clear message containing ``message``,
never a crash or a traceback). The same rows drive the engine and CLI tests, the AppTest tests
(``tests/test_bad_inputs.py``), the robustness figures of ``make bench``
(:mod:`engine.benchmark.robustness`) and the table in ``docs/bad-input.md``.

Kinds: ``query`` (search text), ``top_k``, ``method`` (search method), ``user`` (recommendation
user id), ``recommender`` (recommender name) and ``image`` (query image bytes, generated here:
no image file is committed).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class BadInput:
    """One bad input and the outcome a correct system gives it."""

    case: str  # stable id, used in test ids and in docs/bad-input.md
    kind: str  # query | top_k | method | user | recommender | image
    label: str  # what the input is, for people
    make: Callable[[], Any]  # the input value (bytes for images)
    expect: str  # "answer" or "refuse"
    message: str = ""  # text the refusal (or the answer's note) must contain
    ui: str | None = None  # page that accepts this input, or None when no widget can produce it
    ui_message: str | None = None  # what that page shows instead of ``message``, if different

    def value(self) -> Any:
        """A fresh copy of the input."""
        return self.make()


# -- image generators --------------------------------------------------------------------------
def _encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _noisy(w: int = 96, h: int = 72) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 100-byte PNG declaring 10 gigapixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _chunk(b"IEND", b"")
    )


def _truncated(fmt: str) -> bytes:
    data = _encode(_noisy(200, 150), fmt)
    return data[: len(data) // 2]


def _cmyk() -> bytes:
    return _encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95)


def _sixteen_bit() -> bytes:
    return _encode(Image.fromarray(np.full((48, 64), 40000, np.uint16)), "PNG")


def _transparent() -> bytes:
    img = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    img.paste((200, 30, 30, 255), (0, 0, 32, 48))
    return _encode(img, "PNG")


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 48), c) for c in ((220, 20, 20), (20, 200, 20), (20, 20, 220))]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _exif_rotated() -> bytes:
    img = Image.new("RGB", (96, 64), (255, 255, 255))
    img.paste((220, 20, 20), (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    return _encode(img, "JPEG", quality=95, exif=exif.tobytes())


def _large() -> bytes:
    return _encode(Image.linear_gradient("L").resize((2400, 1600)).convert("RGB"), "JPEG")


# -- the table ---------------------------------------------------------------------------------
_LONG = "boots " * 1666 + "xxxx"  # 10,000 characters
_HINT = "Type a query above to search the catalog."  # the text page's own hint

BAD_INPUTS: tuple[BadInput, ...] = (
    # search text
    BadInput("query-empty", "query", "empty query", lambda: "", "refuse", "Type something",
             "text_search", _HINT),
    BadInput("query-whitespace", "query", "white space only", lambda: "  \t\n  ", "refuse",
             "Type something", "text_search", _HINT),
    BadInput("query-invisible", "query", "only control / zero-width characters",
             lambda: "\x07\u200b\ufeff", "refuse", "Type something", "text_search"),
    BadInput("query-10k", "query", "10,000-character query", lambda: _LONG, "refuse",
             "10,000 characters", "text_search"),
    BadInput("query-emoji", "query", "emoji only", lambda: "🥾👢🔥", "answer", "",
             "text_search"),
    BadInput("query-control", "query", "control characters inside a query",
             lambda: "leather\x00\x07\nboots\x1b", "answer", "", "text_search"),
    BadInput("query-japanese", "query", "other language (Japanese)", lambda: "赤いスニーカー",
             "answer", "", "text_search"),
    BadInput("query-french", "query", "other language (French, accents)",
             lambda: "bottes en cuir marron", "answer", "", "text_search"),
    BadInput("query-markup", "query", "Markdown / HTML / LaTeX in the query",
             lambda: "**bold** [x](javascript:alert(1)) <script>alert(1)</script> $x^2$",
             "answer", "", "text_search"),
    # top-k
    BadInput("topk-zero", "top_k", "top-k 0", lambda: 0, "refuse", "Top-k must be from 1"),
    BadInput("topk-negative", "top_k", "top-k −5", lambda: -5, "refuse", "Top-k must be from 1"),
    BadInput("topk-huge", "top_k", "top-k 1,000,000,000", lambda: 10**9, "refuse",
             "Top-k must be from 1 to 500"),
    BadInput("topk-text", "top_k", "non-numeric top-k ('ten')", lambda: "ten", "refuse",
             "whole number"),
    BadInput("topk-fraction", "top_k", "fractional top-k (2.5)", lambda: 2.5, "refuse",
             "whole number"),
    # method
    BadInput("method-unknown", "method", "unknown method ('bm26')", lambda: "bm26", "refuse",
             "unknown method 'bm26'; valid: "),
    # recommendations
    BadInput("user-unknown", "user", "unknown user id", lambda: "u-no-such-user", "answer",
             "has no history", "for_you"),
    BadInput("user-empty", "user", "empty user id", lambda: "", "answer", "has no history",
             "for_you"),
    BadInput("user-markup", "user", "user id with Markdown and control characters",
             lambda: "**u1**\x00<b>", "answer", "has no history", "for_you"),
    BadInput("recommender-unknown", "recommender", "unknown recommender ('als2')",
             lambda: "als2", "refuse", "unknown recommender 'als2'; valid: "),
    # query images
    BadInput("image-text-file", "image", "not an image (a text file)",
             lambda: b"hello, I am a text file and not a picture\n" * 4, "refuse",
             "looks like a text file", "image_search"),
    BadInput("image-pdf", "image", "not an image (a PDF)",
             lambda: b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 3, "refuse",
             "looks like a PDF document", "image_search"),
    BadInput("image-empty", "image", "empty file", lambda: b"", "refuse", "The file is empty",
             "image_search"),
    BadInput("image-truncated-jpeg", "image", "truncated JPEG", lambda: _truncated("JPEG"),
             "refuse", "damaged or truncated", "image_search"),
    BadInput("image-truncated-png", "image", "truncated PNG", lambda: _truncated("PNG"),
             "refuse", "damaged or truncated", "image_search"),
    BadInput("image-bomb", "image", "decompression bomb (100,000×100,000 PNG, 100 bytes)",
             bomb_png, "refuse", "far too large", "image_search"),
    BadInput("image-1x1", "image", "1×1 image",
             lambda: _encode(Image.new("RGB", (1, 1), "red"), "PNG"), "refuse",
             "only 1×1 pixels", "image_search"),
    BadInput("image-aspect", "image", "extreme aspect ratio (2100×100)",
             lambda: _encode(Image.new("RGB", (2100, 100), "red"), "PNG"), "refuse",
             "aspect ratio", "image_search"),
    BadInput("image-cmyk", "image", "CMYK JPEG", _cmyk, "answer", "converted CMYK to RGB",
             "image_search"),
    BadInput("image-16bit", "image", "16-bit greyscale PNG", _sixteen_bit, "answer",
             "16-bit greyscale", "image_search"),
    BadInput("image-transparent", "image", "transparent PNG (RGBA)", _transparent, "answer",
             "composited transparent areas onto white", "image_search"),
    BadInput("image-animated", "image", "animated GIF (3 frames)", _animated_gif, "answer",
             "animated GIF: used the first of 3 frames", "image_search"),
    BadInput("image-exif-rotated", "image", "EXIF-rotated JPEG (orientation 6)", _exif_rotated,
             "answer", "rotated per EXIF", "image_search"),
    BadInput("image-large", "image", "large photo (2400×1600)", _large, "answer",
             "downscaled from 2400×1600", "image_search"),
)


def case(case_id: str) -> BadInput:
    """The row with this id."""
    for row in BAD_INPUTS:
        if row.case == case_id:
            return row
    raise KeyError(case_id)


def cases(kind: str | None = None) -> list[BadInput]:
    """Rows of one kind (all rows without ``kind``)."""
    return [row for row in BAD_INPUTS if kind is None or row.kind == kind]
