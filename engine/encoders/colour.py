"""HSV colour-histogram image features that describe the product, not the backdrop.

``colour_histogram(image)`` returns one float32 vector: a hue x saturation x value histogram of
the chromatic pixels followed by a block of value bins for achromatic pixels (low saturation or
very dark), so white, grey and black objects are told apart. Pixels close to the colour of the
image border (the likely background) get a low weight. The histogram is square-rooted
(Hellinger) and L2-normalised, so an inner product (e.g. a FAISS inner-product index) is a
similarity in [0, 1].
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from engine.encoders.base import register_encoder

DEFAULT_BINS = (12, 4, 4)  # hue, saturation, value
DEFAULT_SIZE = 64

GREY_SATURATION = (0.15, 0.25)  # saturation ramp from achromatic to chromatic (centre 0.2)
DARK_VALUE = (0.08, 0.18)  # value ramp: darker pixels have no reliable hue
MIN_SATURATION = 0.2  # the chromatic saturation bins cover [MIN_SATURATION, 1]
BORDER = 2  # width in pixels (at ``size``) of the ring that samples the background
BACKGROUND_NEAR, BACKGROUND_FAR = 20.0, 60.0  # RGB distance ramp: background .. product
BACKGROUND_WEIGHT = 0.005  # weight left on background-coloured pixels
UNIFORM_BORDER = 0.5  # share of border pixels near their median for a backdrop to be assumed
_BITS = 6  # colour quantisation of the lookup table, bits per channel
_SHIFT, _LEVELS, _STEP = 8 - _BITS, 1 << _BITS, 1 << (8 - _BITS)


def _check(bins: tuple[int, int, int], size: int) -> tuple[int, int, int]:
    if len(bins) != 3 or any(int(b) != b or b < 1 for b in bins):
        raise ValueError(f"bins must be three positive ints (hue, saturation, value), not {bins!r}")
    if int(size) != size or size < 2 * BORDER + 4:
        raise ValueError(f"size must be an int >= {2 * BORDER + 4}, not {size!r}")
    return int(bins[0]), int(bins[1]), int(bins[2])


def histogram_dim(bins: tuple[int, int, int] = DEFAULT_BINS) -> int:
    """Length of the vectors: hue x saturation x value chromatic bins + 2 x value grey bins."""
    h, s, v = _check(bins, DEFAULT_SIZE)
    return h * s * v + 2 * v


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) * (1.0 / (hi - lo)), 0.0, 1.0)


def _foreground_weights(planes: np.ndarray, size: int) -> np.ndarray:
    """Per-pixel weights for (3, size * size) float RGB planes: low for pixels close to the
    border's median colour. When the border is not a fairly uniform backdrop (e.g. a photo
    filling the frame), every pixel gets weight 1."""
    grid, b = planes.reshape(3, size, size), BORDER
    border = np.concatenate([grid[:, :b].reshape(3, -1), grid[:, -b:].reshape(3, -1),
                             grid[:, b:-b, :b].reshape(3, -1), grid[:, b:-b, -b:].reshape(3, -1)],
                            axis=1)
    mid = border.shape[1] // 2
    background = np.partition(border, mid, axis=1)[:, mid:mid + 1]  # per-channel median
    diff = border - background
    if np.mean((diff * diff).sum(0) < BACKGROUND_FAR**2) < UNIFORM_BORDER:
        return np.ones(planes.shape[1], np.float32)
    diff = planes - background
    dist = np.sqrt(diff[0] * diff[0] + diff[1] * diff[1] + diff[2] * diff[2])
    fg = _ramp(dist, BACKGROUND_NEAR, BACKGROUND_FAR)
    return BACKGROUND_WEIGHT + (1.0 - BACKGROUND_WEIGHT) * fg


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in [0, 1) (red = 0), saturation and value in [0, 1] of (3, n) RGB planes 0-255."""
    r, g, b = rgb
    mx = np.maximum(np.maximum(r, g), b)
    delta = mx - np.minimum(np.minimum(r, g), b)
    safe = np.where(delta > 0, delta, 1.0)
    hue = np.where(mx == r, (g - b) / safe, np.where(mx == g, (b - r) / safe + 2.0,
                                                     (r - g) / safe + 4.0))
    return (hue / 6.0) % 1.0, delta / np.maximum(mx, 1e-6), mx / 255.0


@functools.lru_cache(maxsize=8)
def _lut(bins: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For every RGB colour quantised to 6 bits per channel: its (up to) three histogram bins
    and their weights, shape (3, 64**3) each. Per image the histogram is then a gather and one
    bincount, which keeps it well under a millisecond."""
    nh, ns, nv = bins
    levels = np.arange(_LEVELS, dtype=np.float64) * _STEP + (_STEP - 1) / 2
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    hue, sat, val = _hsv(np.stack([r.ravel(), g.ravel(), b.ravel()]))

    chroma = _ramp(sat, *GREY_SATURATION) * _ramp(val, *DARK_VALUE)
    pos = hue * nh  # bin i is centred on hue i / nh (red = bin 0); soft between two bins
    lo = np.floor(pos)
    frac = pos - lo
    h_lo = lo.astype(np.intp) % nh
    h_hi = (h_lo + 1) % nh
    s_idx = np.clip(((sat - MIN_SATURATION) * (ns / (1.0 - MIN_SATURATION))).astype(np.intp),
                    0, ns - 1)
    sv = s_idx * nv + np.minimum((val * nv).astype(np.intp), nv - 1)
    grey = nh * ns * nv + np.minimum((val * 2 * nv).astype(np.intp), 2 * nv - 1)
    idx = np.stack([h_lo * (ns * nv) + sv, h_hi * (ns * nv) + sv, grey])
    weights = np.stack([chroma * (1.0 - frac), chroma * frac, 1.0 - chroma])
    small = np.int16 if grey.max() < 2**15 else np.int32  # small dtypes: cache-friendly
    return idx.astype(small), weights.astype(np.float32)


def colour_histogram(image: Image.Image, *, bins: tuple[int, int, int] = DEFAULT_BINS,
                     size: int = DEFAULT_SIZE) -> np.ndarray:
    """Hellinger-mapped, L2-normalised HSV histogram of ``image`` resized to size x size.

    Layout: index ``(hue * n_sat + sat) * n_val + val`` for chromatic pixels (hue bins centred
    on red = 0°, soft-assigned between the two nearest hue bins), then ``2 * n_val`` value bins
    for achromatic pixels (saturation < 0.2 or very dark, with a soft transition). Colours are
    quantised to 6 bits per channel before binning. Non-RGB images are converted with Pillow
    (decode uploads with ``engine.imageio.load_image``, which composites transparency on white).
    """
    bins = _check(bins, size)
    if image.mode != "RGB":
        image = image.convert("RGB")
    w, h = image.size
    if w == h and w % size == 0 and w > size:
        image = image.reduce(w // size)  # exact box average, the fast path for square renders
    elif (w, h) != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    planes = np.ascontiguousarray(np.asarray(image).reshape(-1, 3).T)  # (3, n) uint8
    weight = _foreground_weights(planes.astype(np.float32), size)
    q = (planes >> _SHIFT).astype(np.intp)
    code = (q[0] << (2 * _BITS)) | (q[1] << _BITS) | q[2]
    lut_idx, lut_w = _lut(bins)
    hist = np.bincount(np.take(lut_idx, code, axis=1).ravel(),
                       weights=(np.take(lut_w, code, axis=1) * weight).ravel(),
                       minlength=bins[0] * bins[1] * bins[2] + 2 * bins[2])
    hist = np.sqrt(hist * (1.0 / max(float(hist.sum()), 1e-12)))
    return (hist / max(float(np.linalg.norm(hist)), 1e-12)).astype(np.float32)


def colour_histograms(images: list[Image.Image], **kw) -> np.ndarray:
    """``colour_histogram`` of each image, stacked: (n, d) float32 (d = histogram_dim(bins))."""
    if not images:
        return np.zeros((0, histogram_dim(kw.get("bins", DEFAULT_BINS))), np.float32)
    return np.stack([colour_histogram(image, **kw) for image in images])


@register_encoder("colour", ("image",), "HSV colour histogram of the product, not the backdrop")
class ColourEncoder:
    """:func:`colour_histograms` behind the image-encoder interface."""

    def __init__(self, *, bins: tuple[int, int, int] = DEFAULT_BINS, size: int = DEFAULT_SIZE):
        self.name = "colour"
        self.bins, self.size = _check(bins, size), int(size)
        self.dim = histogram_dim(self.bins)

    def encode_images(self, images: list[Image.Image], *, batch_size: int = 64) -> np.ndarray:
        return colour_histograms(images, bins=self.bins, size=self.size)
