"""Draw one synthetic product image with Pillow so that the image truly shows its attributes.

The silhouette (category) is drawn as polygons on an L-mode mask at ``_SS``x resolution and
box-downsampled for anti-aliasing; the fill is the colour's ``rgb``; the pattern is evaluated
analytically (anti-aliased) in the object's own frame, so it rotates and scales with the object.
``difficulty`` scales every nuisance: scale, offset, rotation, background, blur, noise, occlusion.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

from . import vocab

_SS = 3  # supersampling factor of the silhouette masks
_NAMES = vocab.names("colour")
_VALID = {field: vocab.names(field) for field in ("category", "colour", "pattern")}
_PALETTE = np.array([t.rgb for t in vocab.COLOURS], dtype=np.int32)


def _ell(cx: float, cy: float, rx: float, ry: float, a0: float = 0, a1: float = 360,
         n: int = 32) -> np.ndarray:
    """Points on an elliptic arc from angle a0 to a1 (degrees, y pointing down)."""
    t = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _ring(cx: float, cy: float, r_out: float, r_in: float, a0: float, a1: float) -> np.ndarray:
    """A thick circular arc (e.g. a handle) as one polygon."""
    return np.concatenate([_ell(cx, cy, r_out, r_out, a0, a1), _ell(cx, cy, r_in, r_in, a1, a0)])


def _p(*pts: tuple[float, float]) -> np.ndarray:
    return np.array(pts, dtype=np.float64)


def _cat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


def _round_bottom(x0: float, x1: float, y: float, rad: float) -> np.ndarray:
    """Bottom-right then bottom-left rounded corners of a box spanning x0..x1 down to y."""
    return _cat(_ell(x1 - rad, y - rad, rad, rad, 0, 90, 8),
                _ell(x0 + rad, y - rad, rad, rad, 90, 180, 8))


def _vase() -> np.ndarray:
    """Profile: flared lip, tapering neck, egg-shaped belly, short foot."""
    y = np.sort(np.concatenate([np.linspace(0.02, 0.98, 72), [0.06, 0.0601, 0.92, 0.9201]]))
    t = (y - 0.62) / np.where(y < 0.62, 0.40, 0.34)
    belly = 0.33 * np.sqrt(np.clip(1 - t * t, 0, 1))
    neck = np.interp(y, [0.06, 0.2], [0.11, 0.08])
    neck = np.where((y <= 0.06) | (y >= 0.92), 0.15, neck)  # lip and foot
    h = np.maximum(neck, belly)
    return _cat(np.stack([0.5 + h, y], 1), np.stack([0.5 - h, y], 1)[::-1])


# Each shape: ops of (kind, points in a unit box, width). kind: "fill"/"cut" polygons of the
# silhouette, "line" thick strokes of the silhouette, "ink" thin dark detail strokes.
_SHAPES: dict[str, list[tuple[str, np.ndarray, float]]] = {
    "t-shirt": [
        ("fill", _cat(_p((0.20, 0.10), (0.37, 0.05)), _ell(0.5, 0.05, 0.13, 0.10, 180, 0),
                      _p((0.63, 0.05), (0.80, 0.10), (0.99, 0.33), (0.86, 0.46), (0.77, 0.38),
                         (0.78, 0.97), (0.22, 0.97), (0.23, 0.38), (0.14, 0.46), (0.01, 0.33))), 0),
        ("ink", _ell(0.5, 0.05, 0.13, 0.10, 180, 0), 0.02),
        ("ink", _p((0.94, 0.28), (0.81, 0.41)), 0.015),
        ("ink", _p((0.06, 0.28), (0.19, 0.41)), 0.015),
    ],
    "dress": [
        ("fill", _cat(_p((0.35, 0.02), (0.40, 0.02)), _ell(0.5, 0.10, 0.08, 0.08, 180, 0),
                      _p((0.60, 0.02), (0.65, 0.02), (0.67, 0.20), (0.61, 0.40)),
                      _ell(0.5, 0.92, 0.42, 0.07, 0, 180), _p((0.39, 0.40), (0.33, 0.20))), 0),
        ("ink", _p((0.39, 0.40), (0.61, 0.40)), 0.025),
        ("ink", _p((0.45, 0.48), (0.36, 0.86)), 0.01),
        ("ink", _p((0.55, 0.48), (0.64, 0.86)), 0.01),
    ],
    "sneakers": [
        ("fill", _p((0.05, 0.64), (0.03, 0.52), (0.05, 0.40), (0.10, 0.32), (0.16, 0.31),
                    (0.24, 0.36), (0.33, 0.37), (0.40, 0.28), (0.46, 0.24), (0.50, 0.27),
                    (0.52, 0.33), (0.64, 0.41), (0.78, 0.46), (0.90, 0.50), (0.97, 0.56),
                    (0.99, 0.64)), 0),
        ("fill", _p((0.01, 0.62), (1.0, 0.62), (1.0, 0.69), (0.96, 0.76), (0.06, 0.76),
                    (0.02, 0.73)), 0),
        ("ink", _p((0.02, 0.645), (0.99, 0.645)), 0.025),
        ("ink", _p((0.80, 0.63), (0.83, 0.53), (0.90, 0.50)), 0.015),
        *[("ink", _p((x, y), (x + 0.06, y - 0.03)), 0.015)
          for x, y in ((0.49, 0.35), (0.55, 0.39), (0.61, 0.43))],
        ("ink", _p((0.18, 0.56), (0.42, 0.50), (0.66, 0.48)), 0.015),
    ],
    "boots": [
        ("fill", _p((0.22, 0.02), (0.56, 0.02), (0.57, 0.45), (0.66, 0.56), (0.82, 0.63),
                    (0.94, 0.69), (0.99, 0.77), (0.98, 0.88), (0.40, 0.88), (0.37, 0.99),
                    (0.18, 0.99), (0.16, 0.82), (0.17, 0.55), (0.20, 0.30)), 0),
        ("ink", _p((0.38, 0.85), (0.98, 0.85)), 0.02),
        ("ink", _p((0.22, 0.08), (0.56, 0.08)), 0.015),
        ("ink", _p((0.19, 0.88), (0.38, 0.88)), 0.015),
    ],
    "handbag": [
        ("fill", _ell(0.5, 0.40, 0.25, 0.34), 0), ("cut", _ell(0.5, 0.40, 0.19, 0.28), 0),
        ("fill", _p((0.22, 0.38), (0.78, 0.38), (0.93, 0.90), (0.90, 0.95), (0.10, 0.95),
                    (0.07, 0.90)), 0),
        ("ink", _p((0.22, 0.39), (0.5, 0.58), (0.78, 0.39)), 0.015),
        ("ink", _ell(0.5, 0.58, 0.025, 0.025, n=12), 0.02),
    ],
    "backpack": [
        ("fill", _ring(0.22, 0.55, 0.14, 0.09, 90, 270), 0),
        ("fill", _ring(0.78, 0.55, 0.14, 0.09, -90, 90), 0),
        ("fill", _ring(0.5, 0.12, 0.09, 0.05, 180, 360), 0),
        ("fill", _cat(_ell(0.5, 0.36, 0.3, 0.24, 180, 360), _round_bottom(0.2, 0.8, 0.98, .08)), 0),
        ("ink", _cat(_ell(0.5, 0.64, 0.2, 0.04, 180, 360),
                     _p((0.7, 0.88), (0.3, 0.88), (0.3, 0.64))), 0.015),
        ("ink", _p((0.34, 0.72), (0.66, 0.72)), 0.012),
    ],
    "hat": [
        ("fill", _cat(_p((0.26, 0.72), (0.28, 0.42)), _ell(0.5, 0.42, 0.22, 0.22, 180, 360),
                      _p((0.72, 0.42), (0.74, 0.72))), 0),
        ("fill", _ell(0.5, 0.74, 0.49, 0.11), 0),
        ("ink", _p((0.275, 0.60), (0.725, 0.60)), 0.035),
        ("ink", _ell(0.5, 0.72, 0.24, 0.04, 0, 180, 16), 0.015),
    ],
    "mug": [
        ("fill", _ell(0.72, 0.52, 0.20, 0.23), 0), ("cut", _ell(0.73, 0.52, 0.10, 0.13), 0),
        ("fill", _cat(_ell(0.41, 0.16, 0.30, 0.05, 180, 360), _round_bottom(0.11, 0.71, 0.95, 0.1)),
         0),
        ("ink", _ell(0.41, 0.16, 0.30, 0.05, 0, 180, 20), 0.015),
    ],
    "lamp": [
        ("fill", _p((0.31, 0.03), (0.69, 0.03), (0.87, 0.46), (0.13, 0.46)), 0),
        ("fill", _p((0.47, 0.46), (0.53, 0.46), (0.53, 0.90), (0.47, 0.90)), 0),
        ("fill", _ell(0.5, 0.91, 0.21, 0.06), 0),
        ("ink", _p((0.14, 0.43), (0.86, 0.43)), 0.015),
    ],
    "chair": [
        ("fill", _cat(_ell(0.5, 0.14, 0.26, 0.12, 180, 360), _p((0.76, 0.52), (0.24, 0.52))), 0),
        ("fill", _p((0.18, 0.50), (0.82, 0.50), (0.87, 0.63), (0.13, 0.63)), 0),
        ("line", _p((0.17, 0.62), (0.18, 0.98)), 0.06),
        ("line", _p((0.83, 0.62), (0.82, 0.98)), 0.06),
        ("line", _p((0.30, 0.62), (0.31, 0.85)), 0.045),
        ("line", _p((0.70, 0.62), (0.69, 0.85)), 0.045),
        ("ink", _cat(_ell(0.5, 0.17, 0.19, 0.08, 180, 360), _p((0.69, 0.44), (0.31, 0.44),
                                                               (0.31, 0.17))), 0.015),
    ],
    "umbrella": [
        ("fill", _cat(_ell(0.5, 0.52, 0.48, 0.44, 180, 360),
                      *[_ell(0.86 - 0.24 * i, 0.52, 0.12, 0.07, 0, -180, 12) for i in range(4)]),
         0),
        ("fill", _p((0.48, 0.10), (0.5, 0.02), (0.52, 0.10)), 0),
        ("fill", _p((0.485, 0.50), (0.515, 0.50), (0.515, 0.86), (0.485, 0.86)), 0),
        ("fill", _ring(0.44, 0.86, 0.075, 0.045, 0, 180), 0),
        *[("ink", _p((0.5, 0.09), (0.5 + 0.5 * (x - 0.5), 0.2), (x, 0.45)), 0.012)
          for x in (0.26, 0.5, 0.74)],
    ],
    "vase": [
        ("fill", _vase(), 0),
        ("ink", _p((0.36, 0.075), (0.64, 0.075)), 0.015),
        ("ink", _p((0.34, 0.93), (0.66, 0.93)), 0.015),
    ],
}


def _geom(ops: list[tuple[str, np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray, float]:
    """Silhouette points, their bounding-box centre and largest extent."""
    fills = np.concatenate([pts for kind, pts, _ in ops if kind != "ink"])
    lo, hi = fills.min(0), fills.max(0)
    return fills, (lo + hi) / 2, float((hi - lo).max())


_GEOM = {name: _geom(ops) for name, ops in _SHAPES.items()}


def _check(field: str, name: str) -> None:
    if name not in _VALID[field]:
        valid = ", ".join(_VALID[field])
        raise ValueError(f"unknown {field} {name!r}; valid choices: {valid}")


def _aa(signed_dist: np.ndarray, px: float) -> np.ndarray:
    """Coverage of a pixel whose centre is ``signed_dist`` (object units) inside an edge."""
    return np.clip(signed_dist * px + 0.5, 0.0, 1.0)


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def _pattern(pattern: str, u: np.ndarray, v: np.ndarray, px: float, period: float,
             r: list[float]) -> np.ndarray:
    """Secondary-colour coverage in [0, 1]; u, v: object-frame coordinates of pixel centres,
    px: pixels per object unit, period: pattern period in object units."""
    s = _frac(v / period + r[0])

    def bands(s: np.ndarray, f: float) -> np.ndarray:  # band s in [0, f) of each period
        inside = np.minimum(s, f - s)
        outside = np.minimum(s - f, 1.0 - s)
        return _aa(np.where(s < f, inside, -outside) * period, px)

    if pattern == "striped":
        return bands(s, 0.2 + 0.05 * r[1])
    if pattern == "checked":
        f = 0.17 + 0.03 * r[1]
        a, b = bands(s, f), bands(_frac(u / period + r[2]), f)
        return 0.55 * (a + b) - 0.1 * a * b
    if pattern == "dotted":
        row = np.floor(v / period + r[0])
        du = _frac(u / period + r[2] + 0.5 * row) - 0.5
        dv = s - 0.5
        return _aa((0.22 + 0.06 * r[1]) * period - np.sqrt(du * du + dv * dv) * period, px)
    # zigzag: chevron bands along u with triangle-wave centre lines
    h, amp, half = period * (1.2 + 0.6 * r[2]), 0.3 * period, 0.115 * period
    tri = 4.0 * np.abs(_frac(u / h) - 0.5) - 1.0
    s = _frac((v - amp * tri) / period + r[0])
    vert = np.minimum(s, 1.0 - s) * period  # vertical distance to the nearest chevron line
    return _aa((half - vert) / math.hypot(1.0, 4.0 * amp / h), px)


def _colours(rgb: tuple[int, int, int], shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(main, pattern contrast colour, dark ink) as float32 RGB."""
    main = np.clip(np.array(rgb, np.float32) + shift, 0, 255)
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    if min(rgb) >= 230:  # white
        sec = np.full(3, 195.0, np.float32)
    elif max(rgb) <= 40:  # black
        sec = np.full(3, 95.0, np.float32)
    elif lum < 140:
        sec = main + (255.0 - main) * 0.62
    else:
        sec = main * 0.58
    ink = main * 0.4 if lum >= 70 else main * 0.4 + 70.0
    return main, sec.astype(np.float32), ink.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _grids(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-centre coordinates and a fixed Gaussian noise table (windows of it are reused)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    noise = np.random.default_rng(12345).standard_normal((3, 2 * size, 2 * size), np.float32)
    return xx, yy, noise


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable 5-tap Gaussian blur of a (3, H, W) array (edges replicated)."""
    w0, w1, w2 = (math.exp(-0.5 * (i / max(sigma, 1e-3)) ** 2) for i in (2, 1, 0))
    norm = 2 * (w0 + w1) + w2
    w0, w1, w2 = w0 / norm, w1 / norm, w2 / norm
    p = np.pad(img, ((0, 0), (2, 2), (2, 2)), mode="edge")
    p = w0 * (p[:, :-4] + p[:, 4:]) + w1 * (p[:, 1:-3] + p[:, 3:-1]) + w2 * p[:, 2:-2]
    return w0 * (p[..., :-4] + p[..., 4:]) + w1 * (p[..., 1:-3] + p[..., 3:-1]) + w2 * p[..., 2:-2]


def render_product(*, category: str, colour: str, pattern: str, seed: int, size: int = 128,
                   difficulty: float = 1.0) -> tuple[Image.Image, np.ndarray]:
    """Return (RGB image of size x size, bool mask of the object's visible pixels)."""
    _check("category", category)
    _check("colour", colour)
    _check("pattern", pattern)
    if not 0.0 <= difficulty <= 1.5 or size < 16:
        raise ValueError(f"need 0 <= difficulty <= 1.5 and size >= 16, got {difficulty}, {size}")
    rng = np.random.default_rng(int(seed) % (1 << 64))
    r = rng.random(32).tolist()  # fixed draw order: difficulty only scales the draws
    d, d1 = float(difficulty), min(float(difficulty), 1.0)
    ops, big = _SHAPES[category], size * _SS

    # Geometry: unit box -> output pixels, p_out = R (p - c0) * k + centre.
    fills, c0, ext = _GEOM[category]
    theta = math.radians(30.0 * d * (2 * r[0] - 1))
    cos, sin = math.cos(theta), math.sin(theta)
    rot = np.array([[cos, -sin], [sin, cos]])
    half = np.abs((fills - c0) @ rot.T).max(0)  # half-extents of the rotated shape, unit box
    k = size * min(0.95, max(0.45, 0.78 + d * (0.34 * r[1] - 0.22))) / ext
    k = min(k, 0.46 * size / float(half.max()))  # keep the whole object on the canvas
    room = np.maximum(0.0, 0.47 * size - half * k)
    centre = size / 2 + room * d1 * (2 * np.array([r[2], r[3]]) - 1)
    aff, off = rot.T * (k * _SS), centre * _SS - 0.5 - (c0 @ rot.T) * (k * _SS)

    shape, ink = Image.new("L", (big, big), 0), Image.new("L", (big, big), 0)
    ds, di = ImageDraw.Draw(shape), ImageDraw.Draw(ink)
    for kind, pts, w in ops:
        xy = (pts @ aff + off).ravel().tolist()
        if kind == "fill" or kind == "cut":
            ds.polygon(xy, fill=255 if kind == "fill" else 0)
        else:
            (ds if kind == "line" else di).line(xy, fill=255, width=max(1, round(w * k * _SS)),
                                                joint="curve")
    alpha = np.asarray(shape.reduce(_SS), np.float32) * (1 / 255)
    det = np.asarray(ink.reduce(_SS), np.float32) * (0.85 / 255)

    # Pattern, evaluated in the object frame (rotated by a random angle phi).
    xx, yy, noise_table = _grids(size)
    phi = math.pi * r[4] if pattern != "zigzag" else 0.3 * (2 * r[4] - 1) + (r[5] > 0.7) * 1.5708
    ca, sa = math.cos(theta + phi), math.sin(theta + phi)
    period = max(0.09 + 0.07 * r[6], 0.075 * size / k)  # never finer than ~10 px at 128 px
    pat = np.zeros_like(xx)
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    if pattern != "solid" and rows.size:  # evaluate only inside the object's bounding box
        box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
        dx, dy = (xx[box] - float(centre[0])) * (1 / k), (yy[box] - float(centre[1])) * (1 / k)
        pat[box] = _pattern(pattern, dx * ca + dy * sa, dy * ca - dx * sa, k, period, r[7:10])

    # Colours and background (very light; darkened when it would be close to the object).
    shift = round(8 * d1 * (2 * r[10] - 1))  # brightness jitter, at most +-8
    main, sec, dark = _colours(vocab.COLOURS[_NAMES.index(colour)].rgb, shift)
    bg_kind = 0 if d <= 0 else int(r[11] * 4)  # white, light grey, tint, tinted gradient
    top = np.full(3, 255.0 - (8.0 + 22.0 * r[12]) * (bg_kind > 0), np.float32)
    if bg_kind >= 2:
        top += np.array(r[13:16], np.float32) * 24.0 - 16.0
    bottom = top - (10.0 + 18.0 * r[16]) * (bg_kind == 3)
    if min(np.linalg.norm(top - main), np.linalg.norm(bottom - main)) < 90.0:  # light object
        options = [top * 0.8, np.array([212.0, 226.0, 248.0], np.float32), np.full(3, 200.0)]
        best = max(options, key=lambda o: float(np.linalg.norm(o - main)))
        top, bottom = best, best + (bottom - top)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None]

    # Per-pixel weights of each flat colour; outline = thin ring just outside the silhouette.
    dil = alpha.copy()
    np.maximum(dil[1:], alpha[:-1], out=dil[1:])
    np.maximum(dil[:-1], alpha[1:], out=dil[:-1])
    np.maximum(dil[:, 1:], alpha[:, :-1], out=dil[:, 1:])
    np.maximum(dil[:, :-1], alpha[:, 1:], out=dil[:, :-1])
    line = (dil - alpha) * 0.7
    w_obj = alpha * (1.0 - det) * (1.0 - line)
    w_sec = w_obj * pat
    w_main = w_obj - w_sec
    w_dark = alpha * det * (1.0 - line) + line
    w_bg = (1.0 - alpha) * (1.0 - line)

    # Partial occlusion by a neutral rectangle or blob, at most ~20 % of the object.
    visible, occ, grey = alpha, None, 0.0
    if r[17] < 0.3 * d and alpha.max() > 0.5:
        ys, xs = np.nonzero(alpha > 0.5)
        x0, x1, y0, y1 = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
        side = int(r[20] * 4)
        cx = [x0, x1, x0 + r[21] * (x1 - x0)][min(side, 2)]
        cy = [y0 + r[21] * (y1 - y0), y0, y1][max(side - 1, 0)]
        for shrink in (1.0, 0.6, 0.35):
            w = (x1 - x0) * shrink * (0.3 + 0.25 * r[18])
            h = (y1 - y0) * shrink * (0.3 + 0.25 * r[19])
            occ_img = Image.new("L", (big, big), 0)
            box = [(cx - w / 2) * _SS, (cy - h / 2) * _SS, (cx + w / 2) * _SS, (cy + h / 2) * _SS]
            draw = ImageDraw.Draw(occ_img)
            (draw.ellipse if r[22] < 0.4 else draw.rectangle)(box, fill=255)
            occ = np.asarray(occ_img.reduce(_SS), np.float32) * (1 / 255)
            if float((alpha * occ).sum()) <= 0.2 * float(alpha.sum()):
                grey = 60.0 + 150.0 * r[23]
                if float(np.linalg.norm(main - grey)) < 80.0:
                    grey = 70.0 if float(main.mean()) > 128 else 205.0
                visible = alpha * (1.0 - occ)
                break
            occ = None

    img = np.empty((3, size, size), np.float32)
    for c in range(3):
        bg = top[c] + (bottom[c] - top[c]) * ramp
        ch = main[c] * w_main + sec[c] * w_sec + dark[c] * w_dark + bg * w_bg
        img[c] = ch if occ is None else ch + (grey - ch) * occ
    if r[24] < 0.4 * d:  # the background is smooth: blurring around the object is enough
        cover = alpha if occ is None else alpha + occ
        rows, cols = np.flatnonzero(cover.any(1)), np.flatnonzero(cover.any(0))
        box = (slice(None), slice(max(rows[0] - 3, 0), rows[-1] + 4),
               slice(max(cols[0] - 3, 0), cols[-1] + 4))
        img[box] = _blur(img[box], 1.2 * size / 128 * min(1.0, d * r[25]))
    sigma = min(6.0, (0.5 + 4.0 * r[26]) * d)
    if sigma > 0:
        oy, ox = int(r[27] * size), int(r[28] * size)
        img += noise_table[:, oy:oy + size, ox:ox + size] * sigma
    chans = np.clip(img + 0.5, 0, 255, out=img).astype(np.uint8)
    out = Image.merge("RGB", [Image.fromarray(ch) for ch in chans])
    return out, visible >= 0.5


def measured_colour(image: Image.Image, mask: np.ndarray) -> str:
    """The vocab colour name that most masked pixels are nearest to in RGB."""
    px = np.asarray(image.convert("RGB"), np.int32)[np.asarray(mask, bool)]
    if px.size == 0:
        raise ValueError("empty mask: no object pixels to measure")
    dist = ((px[:, None, :] - _PALETTE[None, :, :]) ** 2).sum(-1)
    votes = np.bincount(dist.argmin(1), minlength=len(_NAMES))
    return _NAMES[int(votes.argmax())]
