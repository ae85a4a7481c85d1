"""Safe image decoding: every bad input becomes an ImageInputError; every mode becomes RGB.

All inputs are generated in the tests (no image files are committed).
"""

from __future__ import annotations

import io
import resource
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.imageio import (
    MAX_SIDE,
    MAX_UPLOAD_BYTES,
    DecodedImage,
    ImageInputError,
    load_image,
    safe_join,
)

ACCEPTED_LIST = "JPEG, PNG, WebP, GIF, BMP, TIFF"


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def rgb_image(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    """A noisy image (so that compressed files are not trivially small)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def pixel(decoded: DecodedImage, xy: tuple[int, int] = (0, 0)) -> np.ndarray:
    return np.asarray(decoded.image, np.int32)[xy[1], xy[0]]


def check_ok(decoded: DecodedImage) -> None:
    assert decoded.image.mode == "RGB"
    assert max(decoded.image.size) <= MAX_SIDE
    assert decoded.decode_ms >= 0


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_zeros(width: int, height: int, rows: int | None = None) -> bytes:
    """An 8-bit greyscale PNG of zeros, compressed row block by row block (a bomb when large).

    ``rows`` limits how many rows of pixel data are actually written (the header still claims
    ``height``), which keeps the generation of huge bombs instant."""
    comp = zlib.compressobj(1)
    row = b"\x00" * (width + 1)
    parts, left = [], height if rows is None else rows
    while left:
        n = min(left, 256)
        parts.append(comp.compress(row * n))
        left -= n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b""))


# ---- not an image / empty / too big ---------------------------------------------------------


@pytest.mark.parametrize("data, kind", [
    (b"Just some text, definitely not a picture.\n" * 20, "text"),
    (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 5, "PDF"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><rect/></svg>", "SVG"),
    (bytes(range(256)) * 4, None),
])
def test_not_an_image_names_accepted_formats(data: bytes, kind: str | None) -> None:
    with pytest.raises(ImageInputError) as err:
        load_image(data)
    assert ACCEPTED_LIST in str(err.value)
    if kind:
        assert kind in str(err.value)


def test_zip_archive_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photo.jpg", encode(rgb_image(), "JPEG"))  # an image *inside* a zip
    with pytest.raises(ImageInputError, match="ZIP") as err:
        load_image(buf.getvalue())
    assert ACCEPTED_LIST in str(err.value)


def test_empty_bytes() -> None:
    with pytest.raises(ImageInputError, match="empty") as err:
        load_image(b"")
    assert ACCEPTED_LIST in str(err.value)


def test_empty_file_object() -> None:
    with pytest.raises(ImageInputError, match="empty"):
        load_image(io.BytesIO())


def test_over_size_limit_is_refused_before_decoding() -> None:
    data = encode(rgb_image(), "PNG")
    with pytest.raises(ImageInputError, match="larger than"):
        load_image(data, max_bytes=len(data) - 1)
    assert load_image(data, max_bytes=len(data)).image.size == (64, 48)
    # The default limit, with bytes that would not even decode: the size check comes first.
    with pytest.raises(ImageInputError, match="larger than 20 MB"):
        load_image(b"\x00" * (MAX_UPLOAD_BYTES + 1))


def test_over_size_limit_from_stream_and_path(tmp_path: Path) -> None:
    data = encode(rgb_image(), "PNG")

    class Stream(io.BytesIO):
        asked: list[int] = []

        def read(self, n: int | None = -1) -> bytes:
            self.asked.append(n)
            return super().read(n)

    stream = Stream(data)
    with pytest.raises(ImageInputError, match="larger than"):
        load_image(stream, max_bytes=100)
    assert stream.asked == [101]  # never reads more than the limit + 1
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(ImageInputError, match="larger than"):
        load_image(path, max_bytes=100)
    assert load_image(str(path)).image.size == (64, 48)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, io.BytesIO])
def test_input_types(wrap) -> None:
    decoded = load_image(wrap(encode(rgb_image(), "WEBP", lossless=True)))
    check_ok(decoded)
    assert decoded.format == "WEBP" and decoded.image.size == (64, 48)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="No image file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageInputError, match="No image file"):
        load_image(tmp_path)  # a folder


# ---- damaged files --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated(fmt: str, keep: float) -> None:
    data = encode(rgb_image(200, 150), fmt)
    with pytest.raises(ImageInputError, match="damaged or truncated"):
        load_image(data[: int(len(data) * keep)])


@pytest.mark.parametrize("fmt, cut", [("JPEG", 3), ("JPEG", 40), ("PNG", 12), ("PNG", 40)])
def test_truncated_to_a_few_bytes(fmt: str, cut: int) -> None:
    data = encode(rgb_image(), fmt)
    with pytest.raises(ImageInputError, match=f"This {fmt} file looks damaged"):
        load_image(data[:cut])


@pytest.mark.parametrize("fmt, junk", [("PNG", b"\x00"), ("JPEG", b"\xff")])
def test_corrupt_bytes_in_the_middle(fmt: str, junk: bytes) -> None:
    data = bytearray(encode(rgb_image(200, 150), fmt))
    mid = len(data) // 2
    data[mid:mid + 64] = junk * 64
    with pytest.raises(ImageInputError, match="damaged or truncated"):
        load_image(bytes(data))


def test_corrupt_png_header_crc() -> None:
    data = bytearray(encode(rgb_image(), "PNG"))
    data[20] ^= 0xFF  # inside IHDR: the chunk CRC no longer matches
    with pytest.raises(ImageInputError, match="damaged or truncated"):
        load_image(bytes(data))


# ---- size limits ----------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@pytest.mark.parametrize("width, height, rows", [
    (30000, 30000, 64),  # 900 MP: Pillow's own bomb check fires inside Image.open
    (7000, 7000, None),  # 49 MP, complete pixel data (~50 KB): only our limit stops it
])
def test_decompression_bomb_is_refused_fast_and_small(width: int, height: int,
                                                     rows: int | None) -> None:
    bomb = png_of_zeros(width, height, rows)
    assert len(bomb) < 1_000_000
    before = _peak_rss_mb()
    start = time.perf_counter()
    with pytest.raises(ImageInputError, match="megapixels"):
        load_image(bomb)
    assert time.perf_counter() - start < 0.5
    assert _peak_rss_mb() - before < 40  # decoding would need >= 49 MB (L) / 147 MB (RGB)


def test_pixel_limit_is_a_parameter() -> None:
    data = encode(rgb_image(100, 100), "PNG")
    with pytest.raises(ImageInputError, match="megapixels"):
        load_image(data, max_pixels=9_999)
    assert load_image(data, max_pixels=10_000).image.size == (100, 100)


def test_huge_dimension_jpeg_header_is_refused() -> None:
    data = bytearray(encode(rgb_image(32, 32), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width in SOF0
    with pytest.raises(ImageInputError, match="megapixels"):
        load_image(bytes(data))


def test_zero_size_png() -> None:
    with pytest.raises(ImageInputError, match="no pixels"):
        load_image(png_of_zeros(0, 10, 0))


def test_one_by_one() -> None:
    with pytest.raises(ImageInputError, match=r"only 1×1 pixels"):
        load_image(encode(Image.new("RGB", (1, 1), "red"), "PNG"))


@pytest.mark.parametrize("size", [(2100, 100), (30, 700)])
def test_extreme_aspect_ratio(size: tuple[int, int]) -> None:
    with pytest.raises(ImageInputError, match="aspect ratio"):
        load_image(encode(Image.new("RGB", size, "red"), "PNG"))


def test_aspect_ratio_at_the_limit_is_accepted() -> None:
    decoded = load_image(encode(Image.new("RGB", (2000, 100), "red"), "PNG"))
    check_ok(decoded)
    assert decoded.image.size == (1024, 51)


@pytest.mark.parametrize("fmt, size", [("PNG", (2000, 1300)), ("JPEG", (2400, 1600))])
def test_large_image_is_downscaled(fmt: str, size: tuple[int, int]) -> None:
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    decoded = load_image(encode(img, fmt))
    check_ok(decoded)
    assert decoded.image.size == (1024, round(1024 * size[1] / size[0]))
    assert decoded.original_size == size
    assert any(n.startswith("downscaled from") for n in decoded.notes)
    col = np.asarray(decoded.image, np.int32)[:, 512, 0]
    assert col[5] < 20 and col[-5] > 235  # still a top-to-bottom gradient


# ---- modes ----------------------------------------------------------------------------------


def test_plain_rgb_jpeg() -> None:
    decoded = load_image(encode(Image.new("RGB", (64, 48), (200, 40, 30)), "JPEG", quality=95))
    check_ok(decoded)
    assert decoded.format == "JPEG" and decoded.original_mode == "RGB"
    assert decoded.notes == []
    assert np.abs(pixel(decoded) - [200, 40, 30]).max() <= 6


def test_cmyk_jpeg() -> None:
    img = Image.new("CMYK", (64, 48), (0, 255, 255, 0))  # pure red in CMYK
    decoded = load_image(encode(img, "JPEG", quality=95))
    check_ok(decoded)
    assert decoded.original_mode == "CMYK"
    assert "converted CMYK to RGB" in decoded.notes
    assert np.abs(pixel(decoded, (30, 20)) - [255, 0, 0]).max() <= 8


def test_rgba_png_transparent_becomes_white() -> None:
    img = Image.new("RGBA", (64, 48), (0, 0, 0, 0))  # transparent *black*
    img.paste((200, 30, 30, 255), (0, 0, 32, 48))
    img.paste((0, 0, 255, 128), (48, 0, 64, 48))  # half-transparent blue
    decoded = load_image(encode(img, "PNG"))
    check_ok(decoded)
    assert decoded.original_mode == "RGBA"
    assert pixel(decoded, (10, 10)).tolist() == [200, 30, 30]
    assert pixel(decoded, (40, 10)).tolist() == [255, 255, 255]
    assert np.abs(pixel(decoded, (56, 10)) - [127, 127, 255]).max() <= 2
    assert any("transparent" in n for n in decoded.notes)


def test_opaque_rgba_has_no_note() -> None:
    decoded = load_image(encode(Image.new("RGBA", (32, 32), (10, 20, 30, 255)), "PNG"))
    assert pixel(decoded).tolist() == [10, 20, 30] and decoded.notes == []


def test_large_transparent_png_is_downscaled_then_composited() -> None:
    img = Image.new("RGBA", (1800, 1200), (0, 0, 0, 0))
    img.paste((30, 160, 60, 255), (0, 0, 900, 1200))
    decoded = load_image(encode(img, "PNG", compress_level=1))
    check_ok(decoded)
    assert decoded.image.size == (1024, 683)
    assert pixel(decoded, (100, 300)).tolist() == [30, 160, 60]
    assert pixel(decoded, (900, 300)).tolist() == [255, 255, 255]
    assert any("transparent" in n for n in decoded.notes)
    assert any("downscaled from 1800×1200 to 1024×683" in n for n in decoded.notes)


def test_la_png() -> None:
    img = Image.new("LA", (64, 48), (0, 0))
    img.paste((100, 255), (0, 0, 32, 48))
    decoded = load_image(encode(img, "PNG"))
    check_ok(decoded)
    assert decoded.original_mode == "LA"
    assert pixel(decoded, (10, 10)).tolist() == [100, 100, 100]
    assert pixel(decoded, (50, 10)).tolist() == [255, 255, 255]


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency(fmt: str) -> None:
    img = Image.new("P", (64, 48), 0)
    img.putpalette([0, 0, 0, 30, 160, 60] + [0] * 762)
    img.paste(1, (0, 0, 32, 48))
    decoded = load_image(encode(img, fmt, transparency=0))  # index 0 (black) is transparent
    check_ok(decoded)
    assert decoded.original_mode == "P"
    assert pixel(decoded, (10, 10)).tolist() == [30, 160, 60]
    assert pixel(decoded, (50, 10)).tolist() == [255, 255, 255]


def test_greyscale_l() -> None:
    decoded = load_image(encode(Image.new("L", (64, 48), 77), "PNG"))
    check_ok(decoded)
    assert decoded.original_mode == "L"
    assert pixel(decoded).tolist() == [77, 77, 77]


@pytest.mark.parametrize("value, expected", [(0, 0), (32768, 128), (65535, 255), (8000, 31)])
def test_16_bit_png_is_scaled_not_clipped(value: int, expected: int) -> None:
    img = Image.fromarray(np.full((48, 64), value, np.uint16))
    data = encode(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    decoded = load_image(data)
    check_ok(decoded)
    assert np.abs(pixel(decoded) - expected).max() <= 1
    assert any("16-bit" in n for n in decoded.notes)


def test_16_bit_gradient_keeps_its_range() -> None:
    arr = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    decoded = load_image(encode(Image.fromarray(arr), "PNG"))
    row = np.asarray(decoded.image)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)
    assert 120 <= row[128] <= 135


def test_large_16_bit_png_is_downscaled() -> None:
    img = Image.fromarray(np.full((1200, 2000), 32768, np.uint16))
    decoded = load_image(encode(img, "PNG", compress_level=1))
    check_ok(decoded)
    assert decoded.image.size == (1024, 614)
    assert np.abs(pixel(decoded, (500, 300)) - 128).max() <= 1


def test_mode_1() -> None:
    img = Image.new("1", (64, 48), 0)
    img.paste(1, (0, 0, 32, 48))
    decoded = load_image(encode(img, "PNG"))
    check_ok(decoded)
    assert decoded.original_mode == "1"
    assert pixel(decoded, (10, 10)).tolist() == [255, 255, 255]
    assert pixel(decoded, (50, 10)).tolist() == [0, 0, 0]


@pytest.mark.parametrize("scale, expected", [(1.0, 128), (255.0, 128)])
def test_mode_f(scale: float, expected: int) -> None:
    arr = np.full((48, 64), 0.5 * scale, np.float32)
    arr[:, :32] = 0.0
    decoded = load_image(encode(Image.fromarray(arr, "F"), "TIFF"))
    check_ok(decoded)
    assert decoded.original_mode == "F"
    assert pixel(decoded, (10, 10)).tolist() == [0, 0, 0]
    assert np.abs(pixel(decoded, (50, 10)) - expected).max() <= 1


def test_ycbcr_and_lab_tiff() -> None:
    img = Image.new("RGB", (64, 48), (200, 50, 20))
    for mode in ("YCbCr", "LAB"):
        decoded = load_image(encode(img.convert(mode), "TIFF"))
        check_ok(decoded)
        assert decoded.original_mode == mode
        assert np.abs(pixel(decoded) - [200, 50, 20]).max() <= 4


# ---- animation and orientation --------------------------------------------------------------


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (64, 48), c) for c in ((220, 20, 20), (20, 200, 20), (20, 20, 220))]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_first_frame(fmt: str) -> None:
    first, *rest = _frames()
    data = encode(first, fmt, save_all=True, append_images=rest, duration=100, loop=0,
                  **({"lossless": True} if fmt == "WEBP" else {}))
    decoded = load_image(data)
    check_ok(decoded)
    assert np.abs(pixel(decoded, (30, 20)) - [220, 20, 20]).max() <= 8
    assert any(n.startswith("animated") and "first of 3 frames" in n for n in decoded.notes)


def test_single_frame_gif_has_no_animation_note() -> None:
    decoded = load_image(encode(_frames()[1], "GIF"))
    assert not any("animated" in n for n in decoded.notes)


def test_exif_orientation_6_rotates_clockwise() -> None:
    img = Image.new("RGB", (96, 64), (255, 255, 255))
    img.paste((220, 20, 20), (0, 0, 32, 32))  # red block at the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = load_image(encode(img, "JPEG", quality=95, exif=exif.tobytes()))
    check_ok(decoded)
    assert decoded.original_size == (96, 64)
    assert decoded.image.size == (64, 96)  # dims swapped
    assert "rotated per EXIF" in decoded.notes
    # Displayed rotated 90° clockwise: the stored top-left corner is now the top-right one.
    assert np.abs(pixel(decoded, (60, 4)) - [220, 20, 20]).max() <= 12
    assert pixel(decoded, (4, 4)).min() > 240
    assert pixel(decoded, (60, 90)).min() > 240


def test_result_is_detached_in_memory_image() -> None:
    decoded = load_image(encode(Image.new("RGB", (32, 32), "blue"), "PNG"))
    assert type(decoded.image) is Image.Image  # not a file-backed ImageFile
    assert decoded.format == "PNG"


# ---- safe_join ------------------------------------------------------------------------------


def test_safe_join_accepts_relative_path(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "images/a/b.jpg") == tmp_path.resolve() / "images/a/b.jpg"
    assert safe_join(tmp_path, "x/../y.png") == tmp_path.resolve() / "y.png"


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/passwd", "", "a\x00b"])
def test_safe_join_refuses_escapes(tmp_path: Path, relative: str) -> None:
    with pytest.raises(ImageInputError):
        safe_join(tmp_path / "root", relative)


def test_safe_join_refuses_symlink_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "file.jpg").symlink_to(outside / "secret.jpg")
    (root / "inner").mkdir()
    (root / "ok").symlink_to(root / "inner", target_is_directory=True)
    for relative in ("link/secret.jpg", "link", "file.jpg"):
        with pytest.raises(ImageInputError, match="outside"):
            safe_join(root, relative)
    assert safe_join(root, "ok/x.jpg") == (root / "inner" / "x.jpg").resolve()
