"""Safe decoding of user-supplied images: bounded in size, time and memory, always RGB.

``load_image(data)`` is the one entry point for query images (uploads, CLI paths). Every problem
with the input becomes an :class:`ImageInputError` whose message is written for the user and can
be shown as-is. Nothing decoded is ever written to disk. ``safe_join`` resolves a relative path
under a root folder and refuses any path that escapes it.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # decompression-bomb bound, checked before any pixel is decoded
MAX_SIDE = 1024  # longest side of the returned image
MIN_SIDE = 16  # shortest side accepted
MAX_ASPECT = 20.0  # longest side / shortest side accepted
JPEG_DRAFT = (2048, 2048)  # large JPEGs are decoded at a reduced DCT scale, still >= this
MAX_JPEG_SCANS = 500  # progressive JPEGs with absurdly many scans are a CPU bomb

ACCEPTED = ("JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF")
_PIL_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # MPO opens through JPEG
_ACCEPTED_TEXT = ", ".join(ACCEPTED)
_ORIENTATION = 0x0112

# Leading bytes of accepted formats (a match means "an image, but damaged" when Pillow fails) ...
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)
# ... and of common files that are not (accepted) images, to name them in the message.
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "an icon file"),
)
_FTYP_BRANDS = {b"heic": "a HEIC photo", b"heix": "a HEIC photo", b"mif1": "a HEIF photo",
                b"msf1": "a HEIF photo", b"avif": "an AVIF image", b"avis": "an AVIF image"}


class ImageInputError(ValueError):
    """Message written for the user, shown as-is in the UI/CLI."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded query image and what was done to it."""

    image: Image.Image  # RGB, EXIF orientation applied, longest side <= MAX_SIDE
    original_size: tuple[int, int]  # (width, height) as stored in the file
    original_mode: str
    format: str | None
    notes: list[str] = field(default_factory=list)  # e.g. "converted CMYK to RGB"
    decode_ms: float = 0.0


def _damaged(fmt: str | None = None) -> ImageInputError:
    fmt = {"WEBP": "WebP", "MPO": "JPEG"}.get(fmt or "", fmt)  # Pillow's names to the user's
    what = f"{fmt} file" if fmt else "file"
    return ImageInputError(
        f"This {what} looks damaged or truncated and could not be decoded. "
        "Please re-save or re-export the image and try again."
    )


def _sniff(data: bytes) -> tuple[str | None, str | None]:
    """(accepted format, other kind of file) recognised from the leading bytes."""
    for magic, fmt in _IMAGE_MAGIC:
        if data.startswith(magic) or (len(data) >= 2 and magic.startswith(data)):
            return fmt, None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP", None
    for magic, kind in _OTHER_MAGIC:
        if data.startswith(magic):
            return None, kind
    if data[4:8] == b"ftyp":
        return None, _FTYP_BRANDS.get(data[8:12], "a video or HEIF file")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return None, "an SVG drawing"
    if head.startswith((b"<!doctype html", b"<html")):
        return None, "a web page (HTML)"
    try:
        data[:4096].decode("utf-8")
        return None, "a text file"
    except UnicodeDecodeError:
        return None, None


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG or GIF header (to name a zero size Pillow will not open)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return None


def _open_failed(data: bytes) -> ImageInputError:
    size = _declared_size(data)
    if size and min(size) == 0:
        return ImageInputError(f"The image has no pixels ({size[0]}×{size[1]}).")
    return _damaged(_sniff(data)[0])


def _not_an_image(data: bytes) -> ImageInputError:
    fmt, kind = _sniff(data)
    if fmt:
        return _open_failed(data)
    what = f"This looks like {kind}, not an image" if kind else "This is not an image we can read"
    return ImageInputError(f"{what}. Accepted formats: {_ACCEPTED_TEXT}.")


def _read_bytes(data: bytes | bytearray | memoryview | BinaryIO | str | Path,
                max_bytes: int) -> bytes:
    """The input's bytes, refusing anything over ``max_bytes`` before reading it all."""
    too_big = ImageInputError(
        f"The file is larger than {max_bytes / 1024 / 1024:g} MB; please upload a smaller image."
    )
    if isinstance(data, bytes | bytearray | memoryview):
        if memoryview(data).nbytes > max_bytes:
            raise too_big
        return bytes(data)
    if isinstance(data, str | Path):
        path = Path(data)
        try:
            if not path.is_file():
                raise ImageInputError(f"No image file at {str(path)!r}.")
            if path.stat().st_size > max_bytes:
                raise too_big
            with path.open("rb") as fh:
                raw = fh.read(max_bytes + 1)
        except OSError as exc:
            raise ImageInputError(f"Could not read {str(path)!r}: {exc.strerror or exc}.") from exc
    elif hasattr(data, "read"):
        try:
            raw = data.read(max_bytes + 1)
        except OSError as exc:
            raise ImageInputError(f"Could not read the upload: {exc}.") from exc
        if not isinstance(raw, bytes | bytearray):
            raise TypeError("load_image needs a binary file object (opened with 'rb')")
    else:
        raise TypeError(
            f"load_image takes bytes, a binary file object or a path, not {type(data).__name__}"
        )
    if len(raw) > max_bytes:
        raise too_big
    return bytes(raw)


def _check_size(width: int, height: int, max_pixels: int) -> None:
    """Refuse empty, tiny, huge (decompression bomb) and extremely long images."""
    if width < 1 or height < 1:
        raise ImageInputError(f"The image has no pixels ({width}×{height}).")
    if width * height > max_pixels:
        raise ImageInputError(
            f"The image is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:g} megapixels. Please resize it and try again."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageInputError(
            f"The image is only {width}×{height} pixels; please use an image at least "
            f"{MIN_SIDE} pixels on each side."
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageInputError(
            f"The image is {width}×{height} pixels, an aspect ratio of "
            f"{max(width, height) / min(width, height):.0f}:1; images longer than "
            f"{MAX_ASPECT:g}:1 cannot be searched. Please crop it to the product."
        )


def _gif_frames(data: bytes) -> int | None:
    """Count a GIF's frames by walking its block structure (no LZW decoding, unlike Pillow)."""
    try:
        flags, pos, n, frames = data[10], 13, len(data), 0
        if flags & 0x80:
            pos += 3 << ((flags & 7) + 1)
        while pos < n:
            tag = data[pos]
            if tag == 0x21:  # extension: label, then sub-blocks
                pos += 2
            elif tag == 0x2C:  # image descriptor, optional local colour table, LZW code size
                frames += 1
                local = data[pos + 9]
                pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
            else:  # trailer (0x3B) or garbage
                break
            while pos < n:
                size = data[pos]
                pos += 1 + size
                if size == 0:
                    break
        return frames
    except IndexError:
        return None


def _frame_note(img: Image.Image, fmt: str | None, data: bytes) -> str | None:
    """A note when the file holds several frames or pages (only the first is used)."""
    if fmt == "GIF":
        frames = _gif_frames(data)
    elif fmt in ("PNG", "WEBP", "TIFF"):
        frames = int(getattr(img, "n_frames", 1))
    else:  # MPO's extra pictures are previews or depth maps, not animation
        return None
    if frames is None or frames > 1:
        kind = {"TIFF": "multi-page TIFF", "PNG": "animated PNG", "WEBP": "animated WebP",
                "GIF": "animated GIF"}[fmt]
        unit = "pages" if fmt == "TIFF" else "frames"
        count = f"the first of {frames} {unit}" if frames else f"the first of several {unit}"
        return f"{kind}: used {count}"
    return None


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _high_bit_to_l(img: Image.Image, notes: list[str]) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale to 8-bit L, scaled (not clipped) to 0-255."""
    if max(img.size) > MAX_SIDE:  # shrink first so the numpy copies stay small
        img = img.resize(_fit(*img.size, MAX_SIDE), Image.Resampling.LANCZOS)
    arr = np.asarray(img).astype(np.float64)
    if img.mode == "F":
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if img.mode.startswith("I;16"):
        scaled, what = arr / 257.0, "16-bit greyscale"
    elif img.mode == "F" and lo >= 0 and hi <= 1.0:
        scaled, what = arr * 255.0, "floating-point greyscale"
    elif lo >= 0 and hi <= 255:
        scaled, what = arr, "32-bit greyscale" if img.mode == "I" else "floating-point greyscale"
    elif img.mode == "I" and lo >= 0 and hi <= 65535:
        scaled, what = arr / 257.0, "16-bit greyscale"
    else:  # out-of-range data: stretch its own range to 0-255
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        what = "high-dynamic-range greyscale (stretched)"
    notes.append(f"converted {what} to 8-bit")
    return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), "L")


def _to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Any Pillow mode to RGB; transparent areas are composited onto white."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        img = _high_bit_to_l(img, notes)
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        alpha = rgba.getchannel("A")
        if alpha.getextrema()[0] < 255:
            if max(rgba.size) > MAX_SIDE:  # shrink first (resize handles alpha correctly)
                rgba = rgba.resize(_fit(*rgba.size, MAX_SIDE), Image.Resampling.LANCZOS,
                                   reducing_gap=3.0)
                alpha = rgba.getchannel("A")
            out = Image.new("RGB", rgba.size, (255, 255, 255))
            out.paste(rgba.convert("RGB"), mask=alpha)
            notes.append("composited transparent areas onto white")
            return out
        return rgba.convert("RGB")
    names = {"CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab", "HSV": "HSV",
             "1": "1-bit black-and-white"}
    if mode in names:
        notes.append(f"converted {names[mode]} to RGB")
    return img.convert("RGB")


def load_image(data: bytes | bytearray | memoryview | BinaryIO | str | Path, *,
               max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Decode a user-supplied image safely (see the module docstring); ImageInputError if bad."""
    start = time.perf_counter()
    raw = _read_bytes(data, max_bytes)
    if not raw:
        raise ImageInputError(f"The file is empty. Accepted formats: {_ACCEPTED_TEXT}.")
    try:
        img = Image.open(io.BytesIO(raw), formats=_PIL_FORMATS)
    except UnidentifiedImageError as exc:
        raise _not_an_image(raw) from exc
    except Image.DecompressionBombError as exc:
        raise ImageInputError(
            f"The image's dimensions are far too large (the limit is {max_pixels / 1e6:g} "
            "megapixels); please resize it and try again."
        ) from exc
    except ImageInputError:
        raise
    except Exception as exc:  # plugins raise OSError, SyntaxError, struct.error, ... on bad data
        raise _open_failed(raw) from exc

    fmt = img.format
    try:
        original_size, original_mode = (int(img.width), int(img.height)), img.mode
        _check_size(*original_size, max_pixels)  # before a single pixel is decoded
        notes: list[str] = []
        note = _frame_note(img, fmt, raw)
        if note:
            notes.append(note)
            img.seek(0)
        if fmt in ("JPEG", "MPO"):
            if raw.count(b"\xff\xda") > MAX_JPEG_SCANS:  # SOS markers (0xFF is stuffed in data)
                raise _damaged(fmt)
            img.draft("RGB", JPEG_DRAFT)  # DCT-domain downscale: big JPEGs decode fast
        img.load()
        if img.getexif().get(_ORIENTATION, 1) in range(2, 9):
            ImageOps.exif_transpose(img, in_place=True)
            notes.append("rotated per EXIF")
        out = _to_rgb(img, notes)  # high-bit and transparent images may already be shrunk
        if max(out.size) > MAX_SIDE:
            out = out.resize(_fit(*out.size, MAX_SIDE), Image.Resampling.LANCZOS,
                             reducing_gap=3.0)
        if max(original_size) > MAX_SIDE:
            notes.append(f"downscaled from {original_size[0]}×{original_size[1]} "
                         f"to {out.width}×{out.height}")
        if out is img:
            out = img.copy()  # detach from the file object
    except ImageInputError:
        raise
    except MemoryError as exc:
        raise ImageInputError("The image is too large to decode; please resize it.") from exc
    except Exception as exc:  # truncated/corrupt data surfaces as many exception types
        raise _damaged(fmt) from exc
    finally:
        img.close()
    return DecodedImage(out, original_size, original_mode, fmt, notes,
                        (time.perf_counter() - start) * 1000.0)


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative`` resolved, refusing absolute paths and anything outside ``root``
    (``..`` components, symlinks pointing out) with ImageInputError."""
    text = os.fspath(relative)
    if not text or "\x00" in text:
        raise ImageInputError("The path is empty or invalid.")
    if os.path.isabs(text) or Path(text).anchor:
        raise ImageInputError(f"The path {text!r} must be relative to the image folder.")
    base = Path(root).resolve()
    target = (base / text).resolve()
    if not target.is_relative_to(base):
        raise ImageInputError(f"The path {text!r} points outside the image folder.")
    return target
