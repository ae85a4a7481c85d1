"""Per-item colour statistics of the product images, in CIELAB (computed once at build time).

For each image (decoded at 1/4 scale through JPEG DCT scaling, then 32 x 32 pixels):

* a foreground weight per pixel: pixels close to the median colour of the image border (the
  likely backdrop) count little; when the border is not a fairly uniform backdrop (a photo that
  fills the frame) every pixel counts;
* ``hist`` — the foreground-weighted histogram over a fixed CIELAB grid (``L_BINS`` x
  ``AB_BINS`` x ``AB_BINS`` cells), normalised to sum 1, stored sparse;
* ``dominant`` — the Lab mean of the pixels around the densest region of colour (the product's
  main colour, robust to stripes, dots and outlines).

The lexicon uses these to tell colour words from others and to ground each colour word in the
colours the images actually show; the rewrites use ``dominant`` for colour-aware features.
Cost: about 0.3 ms per 128-px JPEG on one core (see ``docs/query-understanding.md``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from PIL import Image

from engine.query.colours import srgb_to_lab

SIZE = 32
L_BINS, AB_BINS, AB_LIMIT = 10, 20, 100.0
N_BINS = L_BINS * AB_BINS * AB_BINS
BORDER = 2
BACKGROUND_NEAR, BACKGROUND_FAR = 20.0, 60.0
UNIFORM_BORDER = 0.5
BACKGROUND_WEIGHT = 0.005
COARSE = (5, 8)  # L and a/b cells of the grid used to find the densest colour region
NEAR = 15.0  # Delta E*ab from the densest region: part of the dominant colour
_BITS = 6
_SHIFT = 8 - _BITS
FILE_HIST = "image_colour_hist.npz"
FILE_ARRAYS = "image_colour_stats.npz"
FILE_META = "image_colour.json"


@functools.lru_cache(maxsize=1)
def _lut() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lab, fine bin and coarse bin of every RGB colour quantised to 6 bits per channel."""
    levels = np.arange(1 << _BITS, dtype=np.float64) * (1 << _SHIFT) + ((1 << _SHIFT) - 1) / 2
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    lab = srgb_to_lab(np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1))
    return lab.astype(np.float32), lab_bin(lab).astype(np.int16), _coarse_bin(lab).astype(np.int16)


def _grid_bin(lab: np.ndarray, nl: int, nab: int) -> np.ndarray:
    li = np.clip((lab[..., 0] / 100.0 * nl).astype(np.intp), 0, nl - 1)
    ab = np.clip(((lab[..., 1:] + AB_LIMIT) / (2 * AB_LIMIT) * nab).astype(np.intp), 0, nab - 1)
    return (li * nab + ab[..., 0]) * nab + ab[..., 1]


def lab_bin(lab: np.ndarray) -> np.ndarray:
    """The histogram cell of Lab colours (..., 3)."""
    return _grid_bin(np.asarray(lab, dtype=np.float64), L_BINS, AB_BINS)


def _coarse_bin(lab: np.ndarray) -> np.ndarray:
    return _grid_bin(np.asarray(lab, dtype=np.float64), *COARSE)


@functools.lru_cache(maxsize=1)
def bin_centres() -> np.ndarray:
    """(N_BINS, 3) Lab centre of every histogram cell."""
    li, ai, bi = np.meshgrid(np.arange(L_BINS), np.arange(AB_BINS), np.arange(AB_BINS),
                             indexing="ij")
    step_l, step_ab = 100.0 / L_BINS, 2 * AB_LIMIT / AB_BINS
    return np.stack(
        [(li.ravel() + 0.5) * step_l, (ai.ravel() + 0.5) * step_ab - AB_LIMIT,
         (bi.ravel() + 0.5) * step_ab - AB_LIMIT], axis=1)


def _pixels(image: Image.Image) -> np.ndarray:
    """(SIZE * SIZE, 3) uint8 RGB pixels; JPEGs are decoded at reduced scale (draft mode)."""
    if image.format == "JPEG":
        image.draft("RGB", (SIZE, SIZE))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image, dtype=np.uint8).reshape(-1, 3)


def _foreground(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel weights of (B, SIZE * SIZE, 3) images: low near each border's median colour;
    1 everywhere for an image whose border is not a fairly uniform backdrop."""
    n, b = len(rgb), BORDER
    grid = rgb.reshape(n, SIZE, SIZE, 3).astype(np.float32)
    border = np.concatenate([grid[:, :b].reshape(n, -1, 3), grid[:, -b:].reshape(n, -1, 3),
                             grid[:, b:-b, :b].reshape(n, -1, 3),
                             grid[:, b:-b, -b:].reshape(n, -1, 3)], axis=1)
    background = np.median(border, axis=1, keepdims=True)  # (n, 1, 3)
    uniform = np.mean(((border - background) ** 2).sum(2) < BACKGROUND_FAR**2, axis=1)
    dist = np.sqrt(((grid.reshape(n, -1, 3) - background) ** 2).sum(2))
    fg = np.clip((dist - BACKGROUND_NEAR) * (1.0 / (BACKGROUND_FAR - BACKGROUND_NEAR)), 0.0, 1.0)
    w = BACKGROUND_WEIGHT + (1.0 - BACKGROUND_WEIGHT) * fg
    w[uniform < UNIFORM_BORDER] = 1.0
    return w.astype(np.float32)


def _weighted_mean(lab: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(n, 3) weighted mean over axis 1 of (n, p, 3) with (n, p) weights."""
    return np.einsum("np,npc->nc", w, lab) / np.maximum(w.sum(1), 1e-9)[:, None]


def _batch(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine bins (n, p), weights (n, p) and dominant Lab (n, 3) of (n, p, 3) uint8 images."""
    lut_lab, lut_bin, lut_coarse = _lut()
    n, p = rgb.shape[:2]
    q = (rgb >> _SHIFT).astype(np.intp)
    code = (q[..., 0] << (2 * _BITS)) | (q[..., 1] << _BITS) | q[..., 2]
    w = _foreground(rgb)
    lab = lut_lab[code]  # (n, p, 3)
    coarse = lut_coarse[code].astype(np.intp)
    n_coarse = COARSE[0] * COARSE[1] ** 2
    offs = np.arange(n)[:, None] * n_coarse
    counts = np.bincount((coarse + offs).ravel(), weights=w.ravel(), minlength=n * n_coarse)
    mode = counts.reshape(n, n_coarse).argmax(1)
    centre = _weighted_mean(lab, w * (coarse == mode[:, None]) + 1e-9)
    near = ((lab - centre[:, None]) ** 2).sum(2) < NEAR**2
    dominant = _weighted_mean(lab, w * near + 1e-9 * (~near.any(1))[:, None])
    return lut_bin[code], w, dominant.astype(np.float32)


@dataclass
class ImageColourStats:
    """Colour statistics of every item image, rows in the items table's order."""

    hist: sp.csr_matrix  # (n, N_BINS) float32, rows sum to 1 (0 for a missing image)
    dominant: np.ndarray  # (n, 3) float32 Lab
    valid: np.ndarray  # (n,) bool: the image could be read

    def __len__(self) -> int:
        return self.hist.shape[0]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        sp.save_npz(folder / FILE_HIST, self.hist)
        np.savez(folder / FILE_ARRAYS, dominant=self.dominant, valid=self.valid)
        (folder / FILE_META).write_text(json.dumps(
            {"size": SIZE, "l_bins": L_BINS, "ab_bins": AB_BINS, "ab_limit": AB_LIMIT,
             "n": len(self)}))

    @classmethod
    def load(cls, folder: Path) -> ImageColourStats:
        arrays = np.load(folder / FILE_ARRAYS, allow_pickle=False)
        return cls(sp.load_npz(folder / FILE_HIST).tocsr().astype(np.float32),
                   arrays["dominant"], arrays["valid"])


def stats_of_pixels(pixel_rows: Iterable[np.ndarray | None],
                    batch: int = 256) -> ImageColourStats:
    """Statistics of images given as (SIZE * SIZE, 3) uint8 arrays (None = unreadable)."""
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    valid: list[bool] = []
    dominant_list: list[tuple[np.ndarray, np.ndarray]] = []
    block: list[tuple[int, np.ndarray]] = []
    n = 0
    for r, rgb in enumerate(pixel_rows):
        n = r + 1
        valid.append(rgb is not None)
        if rgb is not None:
            block.append((r, rgb))
        if len(block) == batch:
            dominant_list.append(_flush(block, rows, cols, vals))
            block = []
    if block:
        dominant_list.append(_flush(block, rows, cols, vals))
    dom = np.zeros((n, 3), np.float32)
    for idx, d in dominant_list:
        dom[idx] = d
    hist = sp.csr_matrix((_cat(vals, np.float32), (_cat(rows, np.int32), _cat(cols, np.int32))),
                         shape=(n, N_BINS), dtype=np.float32)
    return ImageColourStats(hist, dom, np.array(valid, bool))


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _flush(block: list[tuple[int, np.ndarray]], rows: list, cols: list,
           vals: list) -> tuple[np.ndarray, np.ndarray]:
    """Histogram one batch into rows/cols/vals; return (row indices, dominant Lab)."""
    bins, w, dom = _batch(np.stack([rgb for _, rgb in block]))
    idx = np.array([r for r, _ in block], dtype=np.int64)
    m = len(block)
    flat = (np.arange(m)[:, None] * N_BINS + bins).ravel()
    h = np.bincount(flat, weights=w.ravel(), minlength=m * N_BINS).reshape(m, N_BINS)
    h /= np.maximum(h.sum(1, keepdims=True), 1e-12)
    r, c = np.nonzero(h)
    rows.append(idx[r].astype(np.int32))
    cols.append(c.astype(np.int32))
    vals.append(h[r, c].astype(np.float32))
    return idx, dom


def _read(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            return _pixels(im)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def compute_image_colour_stats(paths: Sequence[Path | str], progress=None) -> ImageColourStats:
    """Statistics of image files (one row per path, in order; unreadable files are ``valid``
    False). ``progress(iterable, total, desc)`` may wrap the loop."""
    it: Iterable = (Path(p) for p in paths)
    if progress is not None:
        it = progress(it, len(paths), "image colours")
    return stats_of_pixels(_read(p) for p in it)


def stats_of_images(images: Sequence[Image.Image]) -> ImageColourStats:
    """Statistics of in-memory images (tests, uploads)."""
    return stats_of_pixels(_pixels(im) for im in images)
