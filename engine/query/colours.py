"""Colour names grounded in numbers: a colour-name table, CIELAB and CIEDE2000.

* The table is matplotlib's copy of the XKCD colour survey (949 names) and the CSS4 named
  colours (148), keyed by normalised words ("navy blue", "light blue"). A name in both takes
  the XKCD value (what the survey's people called that colour).
* :func:`parse_colour` reads a colour phrase with modifiers ("dark green", "pale mustard",
  "very light blue", "reddish"): a phrase the table has as a whole is used as it is; otherwise
  leading modifiers adjust the base colour's L* (lightness) and C* (chroma) in CIELAB.
* :func:`srgb_to_lab` is sRGB (D65) -> CIE L*a*b*; :func:`ciede2000` is the vectorised CIEDE2000
  colour difference (checked against Sharma, Wu & Dalal's published test pairs), with the
  parametric factors ``kL, kC, kH``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

# Modifier -> (delta L*, chroma multiplier). Applied left to right ("very" doubles the next one).
MODIFIERS: dict[str, tuple[float, float]] = {
    "dark": (-18.0, 1.0),
    "deep": (-12.0, 1.15),
    "darker": (-12.0, 1.0),
    "dim": (-10.0, 0.85),
    "light": (18.0, 0.75),
    "lighter": (12.0, 0.85),
    "pale": (22.0, 0.55),
    "pastel": (18.0, 0.5),
    "soft": (10.0, 0.7),
    "bright": (6.0, 1.25),
    "vivid": (0.0, 1.3),
    "neon": (8.0, 1.4),
    "hot": (0.0, 1.25),
    "rich": (-6.0, 1.15),
    "muted": (0.0, 0.6),
    "dusty": (2.0, 0.55),
    "faded": (10.0, 0.6),
    "washed": (12.0, 0.55),
    "jet": (0.0, 1.0),
    "pure": (0.0, 1.0),
    "true": (0.0, 1.0),
    "classic": (0.0, 1.0),
}
INTENSIFIERS = frozenset({"very", "really", "super", "extra"})
MAX_NAME_WORDS = 4
_TOKEN = re.compile(r"[a-z0-9]+")


def colour_key(name: str) -> str:
    """The table's key of a colour name: lower-case alphanumeric words joined by spaces."""
    return " ".join(_TOKEN.findall(name.lower()))


def _hex_to_rgb(h: str) -> tuple[int, int, int]:
    h = h.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


# ---------------------------------------------------------------- colour science
_M_RGB_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375],
     [0.2126729, 0.7151522, 0.0721750],
     [0.0193339, 0.1191920, 0.9503041]]
)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB colours 0-255, shape (..., 3) -> (..., 3) float64."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _M_RGB_XYZ.T / _WHITE_D65
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """sRGB 0-255 (clipped, float) of CIE L*a*b* (D65) colours, shape (..., 3)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    eps, kappa = 216 / 24389, 24389 / 27
    xyz = np.where(f**3 > eps, f**3, (116 * f - 16) / kappa) * _WHITE_D65
    lin = xyz @ np.linalg.inv(_M_RGB_XYZ).T
    lin = np.clip(lin, 0.0, 1.0)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(c * 255.0, 0.0, 255.0)


def lab_to_hex(lab: np.ndarray) -> str:
    """``#rrggbb`` of one Lab colour (for display)."""
    r, g, b = (int(round(v)) for v in lab_to_srgb(np.asarray(lab))[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def ciede2000(lab1: np.ndarray, lab2: np.ndarray, *, kL: float = 1.0, kC: float = 1.0,
              kH: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference of Lab arrays broadcast against each other (..., 3).

    Follows Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation
    notes, supplementary test data, and mathematical observations" (hue angles in degrees,
    the mean hue and delta-h rules of their eq. 10-14).
    """
    lab1, lab2 = np.broadcast_arrays(np.asarray(lab1, np.float64), np.asarray(lab2, np.float64))
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    c7 = c_bar**7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, h1p)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, h2p)

    dl = L2 - L1
    dc = c2p - c1p
    prod = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(prod == 0, 0.0, dh)
    dH = 2 * np.sqrt(prod) * np.sin(np.radians(dh) / 2)

    l_bar = (L1 + L2) / 2
    cp_bar = (c1p + c2p) / 2
    hsum = h1p + h2p
    h_bar = np.where(
        np.abs(h1p - h2p) <= 180, hsum / 2, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2)
    )
    h_bar = np.where(prod == 0, hsum, h_bar)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    cp7 = cp_bar**7
    rc = 2 * np.sqrt(cp7 / (cp7 + 25.0**7))
    l50 = (l_bar - 50) ** 2
    sl = 1 + 0.015 * l50 / np.sqrt(20 + l50)
    sc = 1 + 0.045 * cp_bar
    sh = 1 + 0.015 * cp_bar * t
    rt = -np.sin(np.radians(2 * d_theta)) * rc
    tl, tc, th = dl / (kL * sl), dc / (kC * sc), dH / (kH * sh)
    return np.sqrt(tl * tl + tc * tc + th * th + rt * tc * th)


def chroma(lab: np.ndarray) -> np.ndarray:
    """C* = sqrt(a*^2 + b*^2)."""
    lab = np.asarray(lab, dtype=np.float64)
    return np.hypot(lab[..., 1], lab[..., 2])


def adjust(lab: np.ndarray, d_lightness: float, chroma_mult: float) -> np.ndarray:
    """A Lab colour with L* shifted (clipped to 2..98) and chroma scaled, hue kept."""
    out = np.array(lab, dtype=np.float64)
    if d_lightness:
        out[..., 0] = np.clip(out[..., 0] + d_lightness, 2.0, 98.0)
    out[..., 1:] *= chroma_mult
    return out


# ---------------------------------------------------------------- the name table
@dataclass(frozen=True)
class ColourTable:
    """Colour names -> Lab values ((1, 3) per name: XKCD, else CSS4)."""

    names: tuple[str, ...]
    labs: tuple[np.ndarray, ...]  # per name: (k, 3)
    sources: tuple[tuple[str, ...], ...]

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    @functools.cached_property
    def first_words(self) -> frozenset[str]:
        return frozenset(n.split()[0] for n in self.names)

    def __contains__(self, name: str) -> bool:
        return colour_key(name) in self.index

    def lab(self, name: str) -> np.ndarray:
        """The (k, 3) Lab values of a table name (KeyError when absent)."""
        return self.labs[self.index[colour_key(name)]]


@functools.lru_cache(maxsize=1)
def colour_table() -> ColourTable:
    """The XKCD + CSS4 table shipped with matplotlib (no network, no extra download)."""
    from matplotlib import _color_data  # the lists behind matplotlib's named colours

    values: dict[str, list[tuple[str, str]]] = {}
    for raw, hx in _color_data.XKCD_COLORS.items():
        values.setdefault(colour_key(raw.removeprefix("xkcd:")), []).append(("xkcd", hx))
    for raw, hx in _color_data.CSS4_COLORS.items():
        values.setdefault(colour_key(raw), []).append(("css4", hx))
    names = tuple(sorted(k for k in values if k))
    # XKCD first: it is what people called the colour; CSS only for names XKCD lacks
    # (CSS "azure" and "khaki" are far paler than what the survey's people meant).
    chosen = {n: values[n][:1] for n in names}
    labs = tuple(
        srgb_to_lab(np.array([_hex_to_rgb(h) for _, h in chosen[n]], dtype=np.float64))
        for n in names
    )
    sources = tuple(tuple(s for s, _ in chosen[n]) for n in names)
    return ColourTable(names, labs, sources)


@dataclass(frozen=True)
class ColourPhrase:
    """A colour phrase read from query words."""

    name: str  # the table name used as base ("green" for "dark green" when adjusted)
    modifiers: tuple[str, ...]  # modifiers applied on top of ``name``
    labs: np.ndarray  # (k, 3): the colour(s), modifiers applied
    n_words: int  # query words consumed

    @property
    def text(self) -> str:
        return " ".join((*self.modifiers, self.name))


def _suffix_variants(word: str) -> list[str]:
    """``reddish`` -> ``red``, ``greeny``/``greenish`` -> ``green`` (tried after the word)."""
    out = []
    for suffix in ("ish", "y"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            out.append(stem)
            if len(stem) >= 2 and stem[-1] == stem[-2]:
                out.append(stem[:-1])  # reddish -> redd -> red
    return out


def parse_colour(words: list[str], table: ColourTable | None = None) -> ColourPhrase | None:
    """The colour phrase at the start of ``words`` (normalised tokens), longest first, or None.

    "dark green" is in the XKCD table as a whole and is used as is; "pale mustard" is read as the
    modifier "pale" applied to "mustard"; "very dark red" applies "dark" twice. A lone modifier
    ("light") is not a colour.
    """
    table = table or colour_table()
    words = [w for w in words[: MAX_NAME_WORDS + 3]]
    for n in range(min(MAX_NAME_WORDS, len(words)), 0, -1):  # the table's own phrases first
        key = " ".join(words[:n])
        if key in table.index and not (n == 1 and key in MODIFIERS):
            return ColourPhrase(key, (), table.lab(key), n)
    mods: list[str] = []
    repeat = 1
    i = 0
    while i < len(words) and (words[i] in MODIFIERS or words[i] in INTENSIFIERS):
        if words[i] in INTENSIFIERS:
            repeat = 2
        else:
            mods.extend([words[i]] * repeat)
            repeat = 1
        i += 1
    if i == 0 and words and words[0] not in table.index:
        for stem in _suffix_variants(words[0]):  # reddish, greeny (not in the table as such)
            if stem in table.index:
                lab = adjust(table.lab(stem), 0.0, 0.8)
                return ColourPhrase(stem, ("ish",), lab, 1)
        return None
    if not mods:
        return None
    rest = parse_colour(words[i:], table)
    if rest is None:
        return None
    lab = rest.labs
    for m in mods:
        lab = adjust(lab, *MODIFIERS[m])
    return ColourPhrase(rest.name, (*mods, *rest.modifiers), lab, i + rest.n_words)
