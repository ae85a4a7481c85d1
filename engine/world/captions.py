"""Captions written from each item's TRUE attributes (the synthetic world's own vocabulary).

Only the world may write them: they describe the answer key. The compact CLIP trained on the
synthetic world still uses them (to be replaced by captions from the catalog's own text).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from engine.world import vocab

_PATTERN_PHRASES = {
    "solid": ("in a solid colour", "in a plain colour"),
    "striped": ("with stripes", "with a striped pattern"),
    "dotted": ("with polka dots", "with dots", "with a dotted pattern"),
    "checked": ("with checks", "with a plaid pattern", "with a checked pattern"),
    "zigzag": ("with a zigzag pattern", "with chevrons", "with a chevron pattern"),
}
# {c} colour, {p} pattern adjective, {w} pattern phrase, {k} category, {m} material, {b} brand
_FULL = (
    "a {c} {p} {k}", "{c} {p} {k}", "{p} {c} {k}", "{k} in {c}, {p}", "{k} {w} in {c}",
    "{c} {k} {w}", "a {p} {k} in {c}", "photo of a {c} {p} {k}", "{k}: {c}, {p}",
    "product shot of a {c} {k} {w}", "{c} coloured {k} {w}", "the {k} is {c} and {p}",
)
_PARTIAL = ("{c} {k}", "a {c} {k}", "{k} in {c}", "{p} {k}", "a {k} {w}", "{c} {p}", "{k}")
_MATERIAL = ("{c} {m} {k}", "{m} {k} in {c}", "a {c} {m} {k}", "{k} made of {c} {m}")
_BRAND = ("{b} {k}", "{k} by {b}", "a {k} from {b}")
N_VISUAL, N_PARTIAL = 5, 2  # phrasings per (category, colour, pattern)


_WORDS = {(f, t.name): t.words for f, terms in vocab.FIELDS.items() for t in terms}


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _fill(template: str, rng: np.random.Generator, attrs: dict[str, str]) -> str:
    """One caption: ``template`` with a random vocab word for each attribute."""
    r = rng.random(5)
    c, p, k, m = (_WORDS[f, attrs[f]] for f in ("colour", "pattern", "category", "material"))
    w = _PATTERN_PHRASES[attrs["pattern"]]
    text = template.format(c=c[int(r[0] * len(c))], p=p[int(r[1] * len(p))],
                           k=k[int(r[2] * len(k))], m=m[int(r[3] * len(m))],
                           w=w[int(r[4] * len(w))], b=attrs["brand"])
    return re.sub(r"\ba ([aeiou])", r"an \1", text)


def _pool(rng: np.random.Generator, attrs: dict[str, str], templates: tuple[str, ...],
          n: int) -> list[str]:
    out: list[str] = []
    for _ in range(8 * n):
        text = _fill(_pick(rng, templates), rng, attrs)
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    return out


def attribute_captions(items: pd.DataFrame, rng: np.random.Generator) -> list[list[str]]:
    """Training captions per item: vocab phrasings of its true attributes.

    Synthetic captions come from small pools keyed by attribute combinations (so the caption bank
    stays a few thousand strings): ``N_VISUAL`` full and ``N_PARTIAL`` partial phrasings per
    (category, colour, pattern), one per (category, colour, material) and one per (category,
    brand): about 6,000 strings for the default world (a few ms each through MiniLM). Only
    ``vocab`` ``words`` are used, never ``held_out`` ones.
    """
    cols = ["category", "colour", "pattern", "material", "brand"]
    rows = list(items[cols].itertuples(index=False, name=None))
    visual, material, brand = {}, {}, {}
    for cat, col, pat, mat, br in sorted(set(rows)):
        attrs = {"category": cat, "colour": col, "pattern": pat, "material": mat, "brand": br}
        if (cat, col, pat) not in visual:
            visual[cat, col, pat] = _pool(rng, attrs, _FULL, N_VISUAL) + _pool(
                rng, attrs, _PARTIAL, N_PARTIAL)
        if (cat, col, mat) not in material:
            material[cat, col, mat] = _fill(_pick(rng, _MATERIAL), rng, attrs)
        if (cat, br) not in brand:
            brand[cat, br] = _fill(_pick(rng, _BRAND), rng, attrs)
    return [[*visual[c, o, p], material[c, o, m], brand[c, b]] for c, o, p, m, b in rows]


