"""Products of the synthetic world: attributes, prices, launch days, titles and descriptions.

Titles usually omit colour and pattern (``title_omit_visual_rate``, default 65 %): this is the
"visual intent" gap that text-only search misses and visual search closes. When a title or
description does name them it often uses a synonym from ``vocab`` (``scarlet``, ``navy blue``).
Held-out synonyms (``crimson``, ...) never appear here: only paraphrase queries use them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.config import WorldConfig
from engine.world import vocab

# Each category is made of a few materials (indices into vocab.MATERIALS).
_MATERIALS_BY_CATEGORY = {
    "t-shirt": ("cotton", "recycled", "wool"),
    "dress": ("cotton", "wool", "recycled"),
    "sneakers": ("canvas", "leather", "recycled"),
    "boots": ("leather", "canvas", "wool"),
    "handbag": ("leather", "canvas", "recycled"),
    "backpack": ("canvas", "leather", "recycled"),
    "hat": ("wool", "cotton", "canvas"),
    "mug": ("ceramic", "recycled"),
    "lamp": ("ceramic", "recycled", "canvas"),
    "chair": ("leather", "wool", "recycled"),
    "umbrella": ("canvas", "recycled", "cotton"),
    "vase": ("ceramic", "recycled"),
}
_BASE_PRICE = {
    "t-shirt": 22,
    "dress": 60,
    "sneakers": 80,
    "boots": 110,
    "handbag": 90,
    "backpack": 70,
    "hat": 25,
    "mug": 14,
    "lamp": 55,
    "chair": 180,
    "umbrella": 30,
    "vase": 35,
}
_STYLE_WORDS = (
    "Classic",
    "Everyday",
    "Urban",
    "Vintage",
    "Minimal",
    "Weekend",
    "Studio",
    "Heritage",
    "Essential",
    "Coastal",
    "Nordic",
    "Signature",
)
_DESCRIPTION_OPENERS = (
    "A {style} {noun} made from {material}.",
    "This {noun} is crafted in {material} for daily use.",
    "Our {style} {noun}, built from durable {material}.",
    "A well-made {material} {noun} with a {style} feel.",
)
_DESCRIPTION_CLOSERS = (
    "Designed to last.",
    "Easy to care for.",
    "A favourite with our customers.",
    "Pairs well with the rest of the collection.",
    "Made in small batches.",
    "Ships in plastic-free packaging.",
)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def generate_products(cfg: WorldConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Sample every product's attributes, price, launch day and text. Vectorised where it counts."""
    n = cfg.n_items
    n_cat, n_col, n_pat = len(vocab.CATEGORIES), len(vocab.COLOURS), len(vocab.PATTERNS)
    cat = rng.choice(n_cat, size=n, p=rng.dirichlet(np.full(n_cat, 20.0)))
    col = rng.choice(n_col, size=n, p=rng.dirichlet(np.full(n_col, 8.0)))
    pat_p = np.array([0.36, 0.16, 0.16, 0.16, 0.16])
    pat = rng.choice(n_pat, size=n, p=pat_p)
    brand_p = 1.0 / np.arange(1, len(vocab.BRANDS) + 1) ** 0.7
    brand = rng.choice(len(vocab.BRANDS), size=n, p=brand_p / brand_p.sum())
    material = [_pick(rng, _MATERIALS_BY_CATEGORY[vocab.CATEGORIES[c].name]) for c in cat]
    base = np.array([_BASE_PRICE[vocab.CATEGORIES[c].name] for c in cat], dtype=float)
    material_mult = np.array(
        [1.6 if m == "leather" else 1.3 if m == "wool" else 1.0 for m in material]
    )
    price = np.round(base * material_mult * rng.lognormal(0.0, 0.35, size=n), 2)
    is_new = np.zeros(n, dtype=bool)
    is_new[rng.choice(n, size=round(n * cfg.new_item_fraction), replace=False)] = True
    launch = np.where(
        is_new,
        rng.uniform(cfg.cutoff_day, cfg.days - 5, size=n),
        rng.uniform(0, cfg.cutoff_day * 0.8, size=n),
    )
    df = pd.DataFrame(
        {
            "item_id": [f"p{i:06d}" for i in range(n)],
            "category": [vocab.CATEGORIES[c].name for c in cat],
            "colour": [vocab.COLOURS[c].name for c in col],
            "pattern": [vocab.PATTERNS[p].name for p in pat],
            "material": material,
            "brand": [vocab.BRANDS[b] for b in brand],
            "price": price,
            "is_new": is_new,
            "launch_day": np.round(launch, 3),
        }
    )
    titles, descriptions, mentions = zip(*(_texts(row, cfg, rng) for row in df.itertuples()))
    df["title"] = titles
    df["description"] = descriptions
    df["title_mentions"] = mentions
    return df


def _texts(row, cfg: WorldConfig, rng: np.random.Generator) -> tuple[str, str, str]:
    """Title, description and which visual attributes the title names ('', 'colour', ...)."""
    noun = _pick(rng, vocab.term("category", row.category).words)
    mat = _pick(rng, vocab.term("material", row.material).words)
    style = _pick(rng, _STYLE_WORDS)
    colour_word = _pick(rng, vocab.term("colour", row.colour).words)
    pattern_word = _pick(rng, vocab.term("pattern", row.pattern).words)
    mentions = ""
    visual: list[str] = []
    if rng.random() >= cfg.title_omit_visual_rate:
        r = rng.random()
        if r < 0.5 or row.pattern == "solid":
            visual, mentions = [colour_word], "colour"
        elif r < 0.7:
            visual, mentions = [pattern_word], "pattern"
        else:
            visual, mentions = [colour_word, pattern_word], "colour+pattern"
    words = (
        [row.brand, style, *visual, mat, noun]
        if rng.random() < 0.6
        else [row.brand, *visual, mat, noun]
    )
    title = " ".join(words)
    title = title[0].upper() + title[1:]
    opener = _pick(rng, _DESCRIPTION_OPENERS).format(style=style.lower(), noun=noun, material=mat)
    description = f"{opener} {_pick(rng, _DESCRIPTION_CLOSERS)}"
    if rng.random() < 0.08:  # descriptions rarely name the colour either
        description += f" Available in {colour_word}."
    return title, description, mentions
