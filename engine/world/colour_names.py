"""Colour names of the generic colour table and their nearest world colour (CIEDE2000).

The "wild" evaluation queries (``engine.world.queries``) may name a colour with any name a person
would use, but only names of the *generic colour table* — matplotlib's XKCD survey names (949)
and the CSS4 names (148) — and only names that land unambiguously on one world colour:

* every table entry of the name, spaces ignored (XKCD's ``"dark green"`` and ``"darkgreen"``
  and CSS4's ``"darkgreen"`` for "dark green"), is converted from sRGB to CIELAB (D65);
* its colour difference to each world colour's ``rgb`` (``engine.world.vocab.COLOURS``) is
  CIEDE2000 (Sharma, Wu & Dalal 2005), implemented below in NumPy;
* the name is *unambiguous* for world colour c when every entry's nearest world colour is c and
  the second nearest is at least ``MARGIN`` ΔE00 further away than c.

matplotlib is imported lazily: generating the world does not need it (the wild words are plain
data in ``vocab``); tests and analysis use this module to check them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MARGIN = 5.0  # ΔE00 between the nearest and the second-nearest world colour
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)


def srgb_to_lab(rgb) -> np.ndarray:
    """CIELAB (D65) of sRGB colours given as 0-255 values, shape (..., 3)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _SRGB_TO_XYZ.T / _WHITE_D65
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def ciede2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) between CIELAB colours; broadcasts."""
    lab1, lab2 = np.broadcast_arrays(np.asarray(lab1, float), np.asarray(lab2, float))
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl = L2 - L1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    l_bar = (L1 + L2) / 2
    cp_bar = (c1p + c2p) / 2
    hsum = h1p + h2p
    h_bar = np.where(
        np.abs(h1p - h2p) <= 180, hsum / 2, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2)
    )
    h_bar = np.where(c1p * c2p == 0, hsum, h_bar)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_bar**7 / (cp_bar**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * cp_bar
    s_h = 1 + 0.015 * cp_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt(
        (dl / s_l) ** 2 + (dc / s_c) ** 2 + (dH / s_h) ** 2 + r_t * (dc / s_c) * (dH / s_h)
    )


def table_key(name: str) -> str:
    """How a colour name is looked up: lower case, without spaces ("Dark Green" -> "darkgreen")."""
    return name.lower().replace(" ", "")


@lru_cache(maxsize=1)
def colour_table() -> dict[str, tuple[tuple[int, int, int], ...]]:
    """``table_key`` of a colour name -> its sRGB entries in matplotlib's XKCD and CSS4 tables.

    Spaces are dropped from the key, so "dark green" finds XKCD's "dark green" and "darkgreen"
    and CSS4's "darkgreen": a name must land on the same world colour under every spelling.
    """
    from matplotlib import colors as mcolors

    out: dict[str, list[tuple[int, int, int]]] = {}
    for name, code in (*mcolors.XKCD_COLORS.items(), *mcolors.CSS4_COLORS.items()):
        r, g, b = mcolors.to_rgb(code)
        key = table_key(name.removeprefix("xkcd:"))
        out.setdefault(key, []).append((round(r * 255), round(g * 255), round(b * 255)))
    return {k: tuple(v) for k, v in out.items()}


def in_table(name: str) -> bool:
    """Whether ``name`` is a colour name of the generic table (spaces ignored)."""
    return table_key(name) in colour_table()


def distances(name: str, world_rgb: dict[str, tuple[int, int, int]]) -> np.ndarray:
    """ΔE00 of every table entry of ``name`` (rows) to every world colour (columns)."""
    entries = colour_table()[table_key(name)]
    world = srgb_to_lab(np.array(list(world_rgb.values())))
    return ciede2000(srgb_to_lab(np.array(entries))[:, None, :], world[None, :, :])


def nearest_world_colour(
    name: str, world_rgb: dict[str, tuple[int, int, int]], margin: float = MARGIN
) -> str | None:
    """The world colour ``name`` lands on unambiguously (see module doc), else None.

    None too when the name is not in the table.
    """
    if not in_table(name):
        return None
    d = distances(name, world_rgb)
    order = np.argsort(d, axis=1)
    best = order[:, 0]
    if len(set(best.tolist())) != 1:
        return None
    rows = np.arange(len(d))
    if (d[rows, order[:, 1]] - d[rows, best]).min() < margin:
        return None
    return list(world_rgb)[int(best[0])]
