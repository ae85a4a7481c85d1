"""Card images as small inline ``data:`` URIs, built once per item.

A result card's image passed as a file path costs the app server a file read, an image decode
and a media-file registration on every rerun, and the browser one HTTP request per card. A
``data:`` URI (the item's own bytes when already small, else a JPEG thumbnail) is built once per
item and travels inside the page: no per-rerun decode, no request per image.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image

THUMB_PX = 256  # longest side of a card image; smaller images are sent as they are
KEEP_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
MAX_ITEMS = 4096  # thumbnails kept per catalog (a few KB each)


def thumbnail_uri(path: Path, max_px: int = THUMB_PX) -> str:
    """The image at ``path`` as a ``data:`` URI, at most ``max_px`` on its longest side."""
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        mime = KEEP_FORMATS.get(img.format or "")
        if mime is None or max(img.size) > max_px:
            return image_uri(img, max_px)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_uri(img: Image.Image, max_px: int = THUMB_PX) -> str:
    """A decoded image as a JPEG ``data:`` URI, at most ``max_px`` on its longest side."""
    small = img.copy()
    small.thumbnail((max_px, max_px))
    buf = io.BytesIO()
    small.convert("RGB").save(buf, "JPEG", quality=85)
    return f"data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


class ThumbnailCache:
    """Per catalog: row -> thumbnail URI, the most recently used ``max_items`` kept."""

    def __init__(self, max_items: int = MAX_ITEMS):
        self.max_items = max_items
        self._uris: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, row: int, path: Path | Callable[[], Path]) -> str:
        """The thumbnail of catalog row ``row``, whose image file is ``path`` (or what calling
        ``path`` returns: asked for only when the row's thumbnail is not kept)."""
        with self._lock:
            uri = self._uris.get(row)
            if uri is not None:
                self._uris.move_to_end(row)
                return uri
        uri = thumbnail_uri(path() if callable(path) else path)
        with self._lock:
            self._uris[row] = uri
            while len(self._uris) > self.max_items:
                self._uris.popitem(last=False)
        return uri
