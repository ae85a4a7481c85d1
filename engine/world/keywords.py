"""Item keywords with confidence scores, as an image-tagging service would produce them.

Each product gets keywords for its category, colour, pattern, material and brand (using the
caption vocabulary, never held-out words), each with a confidence. Like a real tagger the colour
and pattern tags are sometimes wrong — with a lower confidence — so the keyword baseline has
real noise to cope with. Columns: ``item_id, keyword, confidence, source``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.world import vocab

WRONG_TAG_RATE = 0.08
MISSED_TAG_RATE = {"category": 0.02, "colour": 0.15, "pattern": 0.3, "material": 0.35}
_CONFIDENCE = {  # (low, high) of a correct tag's confidence, per field
    "category": (0.85, 0.99),
    "colour": (0.55, 0.95),
    "pattern": (0.45, 0.9),
    "material": (0.4, 0.8),
}


def generate_keywords(items: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Keywords of every item, with confidences (see module doc)."""
    rows: list[tuple[str, str, float, str]] = []
    for item in items.itertuples():
        for field_name, (lo, hi) in _CONFIDENCE.items():
            value = getattr(item, field_name)
            if field_name == "pattern" and value == "solid" and rng.random() < 0.5:
                continue
            if field_name in ("colour", "pattern") and rng.random() < WRONG_TAG_RATE:
                choices = [n for n in vocab.names(field_name) if n != value]
                wrong = choices[int(rng.integers(len(choices)))]
                word = vocab.term(field_name, wrong).words[0]
                rows.append((item.item_id, word, round(float(rng.uniform(0.2, 0.55)), 3), "tagger"))
            if rng.random() < MISSED_TAG_RATE[field_name]:
                continue  # taggers miss things too
            term = vocab.term(field_name, value)
            conf = float(rng.uniform(lo, hi))
            for j, word in enumerate(term.words):
                rows.append(
                    (item.item_id, word, round(conf * (1.0 if j == 0 else 0.8), 3), "tagger")
                )
        rows.append((item.item_id, item.brand.lower(), 1.0, "catalog"))
    return pd.DataFrame(rows, columns=["item_id", "keyword", "confidence", "source"])
