"""Known-item query sets for an ingested catalog, so every method can be tuned and evaluated.

A user's catalog rarely comes with judged queries. Two standard known-item sets fill the gap:

* **Text** (only when the events carry fewer than ``MIN_LOGGED_QUERIES`` distinct queries): 1-3
  words drawn from a product's title; the product is relevant with grade 3, and every other
  product whose title has all those words with grade 1. These favour lexical methods (the words
  are in the title by construction); the query ``type`` is ``known-item`` so reports can say so.
* **Image** (always): a random crop (75-95 % of each side), possibly mirrored and with its
  brightness changed by up to 10 %, of a product's own image; that product is relevant with
  grade 3. Half the queries are validation (fusion weights), half test.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageOps

MIN_LOGGED_QUERIES = 50
N_TEXT = 400
N_IMAGE = 300
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "this",
        "that",
        "your",
        "our",
        "new",
        "set",
        "pack",
        "size",
        "one",
        "two",
        "of",
        "in",
        "on",
        "to",
        "by",
    ]
)


def _tokens(text: str) -> list[str]:
    return [
        t
        for t in re.findall(r"[a-z0-9]+", text.lower())
        if len(t) >= 3 and not t.isdigit() and t not in _STOP
    ]


def text_queries(
    items: pd.DataFrame, rng: np.random.Generator, n: int = N_TEXT
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Known-item text queries from titles, and their qrels."""
    tokens = [_tokens(t) for t in items["title"]]
    token_sets = [set(t) for t in tokens]
    candidates = [i for i, t in enumerate(tokens) if t]
    pick = rng.permutation(candidates)[:n]
    rows, qrels = [], []
    for k, row in enumerate(pick):
        words = list(dict.fromkeys(tokens[row]))
        m = int(rng.integers(1, min(3, len(words)) + 1))
        chosen = set(rng.choice(words, size=m, replace=False).tolist())
        text = " ".join(w for w in words if w in chosen)
        qid = f"k{k:06d}"
        rows.append((qid, text))
        for other, ts in enumerate(token_sets):
            if other != row and chosen <= ts:
                qrels.append((qid, items["item_id"].iat[other], 1))
        qrels.append((qid, items["item_id"].iat[row], 3))
    position = (np.arange(len(rows)) + 0.5) / max(len(rows), 1)
    split = np.select([position < 0.60, position < 0.75], ["train", "val"], "test")
    queries = pd.DataFrame(
        {
            "query_id": [r[0] for r in rows],
            "split": split,
            "type": "known-item",
            "wording": "catalog",
            "subtype": "",
            "visual": False,
            "attributes": json.dumps({}),
            "query": [r[1] for r in rows],
        }
    )
    qrels_df = pd.DataFrame(qrels, columns=["query_id", "item_id", "grade"])
    return queries, qrels_df.astype({"grade": "int8"})


def _augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    cw, ch = (max(8, int(s * rng.uniform(0.75, 0.95))) for s in (w, h))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    return ImageEnhance.Brightness(out).enhance(float(rng.uniform(0.9, 1.1)))


def image_queries(
    items: pd.DataFrame, folder, rng: np.random.Generator, n: int = N_IMAGE
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Known-item image queries written under ``folder/query_images``, and their qrels."""
    pick = np.sort(rng.permutation(len(items))[:n])
    (folder / "query_images").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, row in enumerate(pick):
        seed = int(rng.integers(2**31))
        with Image.open(folder / items["image_path"].iat[row]) as im:
            query = _augment(im.convert("RGB"), np.random.default_rng(seed))
        rel = f"query_images/iq{k:05d}.jpg"
        query.save(folder / rel, format="JPEG", quality=90)
        rows.append(
            (f"iq{k:05d}", "val" if k % 2 == 0 else "test", seed, rel, items["item_id"].iat[row])
        )
    iq = pd.DataFrame(
        {
            "query_id": [r[0] for r in rows],
            "split": [r[1] for r in rows],
            "type": "known-item",
            "attributes": json.dumps({}),
            "render_seed": np.array([r[2] for r in rows], dtype="int64"),
            "image_path": [r[3] for r in rows],
        }
    )
    qrels = pd.DataFrame(
        {
            "query_id": iq["query_id"],
            "item_id": [r[4] for r in rows],
            "grade": np.full(len(rows), 3, dtype="int8"),
        }
    )
    return iq, qrels
