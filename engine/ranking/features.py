"""Candidates and features for the learned re-ranker (Hybrid).

Candidates: the union of the top ``POOL`` items of BM25, keyword matching, SBERT and CLIP
text→image. Features of a (query, item) pair — all computable for any catalog at query time:

* each generator's exact score for the item and its rank in that generator's list (POOL + 1 when
  absent), and how many generators retrieved it;
* attribute signals: which attributes the query names (parsed with the catalog vocabulary only),
  whether the item's category field matches, and the item's *tag confidence* (tagger
  keywords, not the ground-truth attributes) for the colour, pattern and material named (the
  synthetic world's image tagger never tags material, so that one is 0 there; merchant
  keywords of an ingested catalog may have it);
* colour similarity: the item image's colour histogram vs a swatch of the colour named;
* popularity (training interactions), price, NEW flag, query length.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.ranking.query_parse import parse_attributes
from engine.world import vocab

POOL = 50
GENERATORS = ("bm25", "keyword", "sbert", "clip")
FEATURES = (
    *(f"{g}_{kind}" for g in GENERATORS for kind in ("score", "rank")),
    "n_generators",
    "q_tokens",
    "q_has_category",
    "category_match",
    "q_has_colour",
    "colour_tag",
    "colour_sim",
    "q_has_pattern",
    "pattern_tag",
    "q_has_material",
    "material_tag",
    "log_popularity",
    "log_price",
    "is_new",
)


@lru_cache(maxsize=32)
def _swatch_histogram(colour: str) -> np.ndarray:
    from PIL import Image

    from engine.encoders.colour import colour_histogram

    return colour_histogram(Image.new("RGB", (64, 64), vocab.term("colour", colour).rgb))


@dataclass
class QuerySignals:
    """Everything computed once per query: full lexical scores and dense query vectors."""

    text: str
    bm25: np.ndarray
    keyword: np.ndarray
    sbert_vec: np.ndarray
    clip_vec: np.ndarray | None


class FeatureBuilder:
    """Builds candidate sets and feature matrices for one catalog's arrays."""

    def __init__(
        self,
        *,
        sbert_items: np.ndarray,
        clip_items: np.ndarray | None,
        colour_items: np.ndarray | None,
        keyword_index,
        categories: np.ndarray,
        popularity: np.ndarray,
        price: np.ndarray,
        is_new: np.ndarray,
    ):
        self.sbert_items, self.clip_items, self.colour_items = sbert_items, clip_items, colour_items
        self.keyword_index = keyword_index
        self.categories = categories
        self.static = np.stack([np.log1p(popularity), np.log(price), is_new.astype(float)], 1)

    def _tag(self, rows: np.ndarray, field_name: str, value: str | None) -> np.ndarray:
        if value is None:
            return np.zeros(len(rows))
        col = self.keyword_index.vocab.get(vocab.term(field_name, value).words[0])
        if col is None:
            return np.zeros(len(rows))
        return self.keyword_index.matrix[rows, col].toarray().ravel()

    def candidates(self, s: QuerySignals) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Union of the generators' top lists, and each generator's full score vector."""
        full = {"bm25": s.bm25, "keyword": s.keyword, "sbert": self.sbert_items @ s.sbert_vec}
        if self.clip_items is not None and s.clip_vec is not None:
            full["clip"] = self.clip_items @ s.clip_vec
        tops = []
        for name, scores in full.items():
            n = min(POOL, len(scores))
            top = np.argpartition(-scores, n - 1)[:n]
            if name in ("bm25", "keyword"):
                top = top[scores[top] > 0]
            tops.append(top)
        return np.unique(np.concatenate(tops)), full

    def features(
        self, s: QuerySignals, rows: np.ndarray, full: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The feature matrix (len(rows) × len(FEATURES)) for candidate ``rows``."""
        cols, hit_count = [], np.zeros(len(rows))
        for g in GENERATORS:
            scores = full.get(g)
            if scores is None:
                cols += [np.zeros(len(rows)), np.full(len(rows), POOL + 1.0)]
                continue
            order = np.argsort(-scores, kind="stable")[:POOL]
            valid = order[scores[order] > 0] if g in ("bm25", "keyword") else order
            rank_of = {int(r): i + 1 for i, r in enumerate(valid)}
            ranks = np.array([rank_of.get(int(r), POOL + 1) for r in rows], dtype=float)
            hit_count += ranks <= POOL
            cols += [scores[rows], ranks]
        attrs = parse_attributes(s.text)
        cat = attrs.get("category")
        colour = attrs.get("colour")
        colour_sim = (
            self.colour_items[rows] @ _swatch_histogram(colour)
            if colour is not None and self.colour_items is not None
            else np.zeros(len(rows))
        )
        cols += [
            hit_count,
            np.full(len(rows), len(s.text.split())),
            np.full(len(rows), cat is not None, dtype=float),
            (self.categories[rows] == cat).astype(float) if cat else np.zeros(len(rows)),
            np.full(len(rows), colour is not None, dtype=float),
            self._tag(rows, "colour", colour),
            colour_sim,
            np.full(len(rows), "pattern" in attrs, dtype=float),
            self._tag(rows, "pattern", attrs.get("pattern")),
            np.full(len(rows), "material" in attrs, dtype=float),
            self._tag(rows, "material", attrs.get("material")),
        ]
        return np.column_stack([*cols, self.static[rows]]).astype(np.float32)
