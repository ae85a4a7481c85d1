"""Candidates and features for the learned re-ranker (Hybrid).

Candidates: the union of the top ``POOL`` items of BM25, keyword matching, SBERT, CLIP
text→image and, when the query was understood, the attribute score (``engine.query``: how well
each item's merchant category, tags, text and image colour match what was asked). Features of a
(query, item) pair — all computable for any catalog at query time, none from the world's truth:

* each generator's exact score for the item and its rank in that generator's list (POOL + 1 when
  absent), and how many generators retrieved it;
* what the query was understood as, and how surely (``engine.query.rewrite.QUERY_FEATURES``), and
  the item's evidence for each understood part (``ITEM_FEATURES``: merchant category, the
  tagger's confidence, a text mention, the image's dominant colour vs the colour asked for);
* popularity (training interactions), price, NEW flag, query length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.query.rewrite import ITEM_FEATURES, QUERY_FEATURES, attribute_scores, item_features
from engine.query.rewrite import query_features as understood_features
from engine.vectors import top_k

POOL = 50
GENERATORS = ("bm25", "keyword", "sbert", "clip", "attr")
FEATURES = (
    *(f"{g}_{kind}" for g in GENERATORS for kind in ("score", "rank")),
    "n_generators",
    "q_tokens",
    *QUERY_FEATURES,
    *ITEM_FEATURES,
    "log_popularity",
    "log_price",
    "is_new",
)
_LEXICAL = ("bm25", "keyword", "attr")  # generators whose zero score means "no match"


@dataclass
class QuerySignals:
    """Everything computed once per query: full lexical scores, dense query vectors and what
    the query was understood as (None when the catalog does not understand queries)."""

    text: str
    bm25: np.ndarray
    keyword: np.ndarray
    sbert_vec: np.ndarray
    clip_vec: np.ndarray | None
    understood: Any = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


class FeatureBuilder:
    """Builds candidate sets and feature matrices for one catalog's arrays."""

    def __init__(
        self,
        *,
        sbert_items: np.ndarray,
        clip_items: np.ndarray | None,
        keyword_index,
        popularity: np.ndarray,
        price: np.ndarray,
        is_new: np.ndarray,
        attributes=None,
    ):
        self.sbert_items, self.clip_items = sbert_items, clip_items
        self.keyword_index = keyword_index
        self.attributes = attributes  # engine.query.ItemAttributes, or None
        self.static = np.stack([np.log1p(popularity), np.log(price), is_new.astype(float)], 1)

    @classmethod
    def from_folders(
        cls, world: Path, lexical: Path, sbert: Path, visual: Path, attributes=None
    ) -> FeatureBuilder:
        """The feature builder over a build's arrays (shared by the build and the retriever)."""
        import pandas as pd

        from engine.indexes.keywords import KeywordIndex

        items = pd.read_parquet(world / "items.parquet")
        inter = pd.read_parquet(world / "interactions.parquet", columns=["item_id", "split"])
        pop = inter.loc[inter["split"] == "train", "item_id"].value_counts()
        return cls(
            sbert_items=np.load(sbert / "sbert_items.npy"),
            clip_items=np.load(visual / "clip_items.npy"),
            keyword_index=KeywordIndex.load(lexical),
            popularity=pop.reindex(items["item_id"], fill_value=0).to_numpy(),
            price=items["price"].to_numpy(),
            is_new=items["is_new"].to_numpy(),
            attributes=attributes,
        )

    def full_scores(self, s: QuerySignals) -> dict[str, np.ndarray]:
        """Every generator's score for every item."""
        full = {"bm25": s.bm25, "keyword": s.keyword, "sbert": self.sbert_items @ s.sbert_vec}
        if self.clip_items is not None and s.clip_vec is not None:
            full["clip"] = self.clip_items @ s.clip_vec
        if s.understood is not None and self.attributes is not None:
            attr = attribute_scores(s.understood, self.attributes)
            if attr is not None:
                full["attr"] = attr
        return full

    def candidates(self, s: QuerySignals) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Union of the generators' top lists, and each generator's full score vector."""
        full = self.full_scores(s)
        tops = []
        for name, scores in full.items():
            n = min(POOL, len(scores))
            top = np.argpartition(-scores, n - 1)[:n]
            if name in _LEXICAL:
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
            # the top POOL, ties to the lower row, without sorting every item
            valid = top_k(scores, POOL, positive_only=g in _LEXICAL)[0]
            rank_of = {int(r): i + 1 for i, r in enumerate(valid)}
            ranks = np.array([rank_of.get(int(r), POOL + 1) for r in rows], dtype=float)
            hit_count += ranks <= POOL
            cols += [scores[rows], ranks]
        cols += [hit_count, np.full(len(rows), len(s.text.split()))]
        if s.understood is not None and self.attributes is not None:
            q = understood_features(s.understood)
            cols += [np.full(len(rows), q[name]) for name in QUERY_FEATURES]
            per_item = item_features(s.understood, self.attributes, rows)
        else:
            cols += [np.zeros(len(rows)) for _ in QUERY_FEATURES]
            per_item = np.full((len(rows), len(ITEM_FEATURES)), -1.0, np.float32)
        return np.column_stack([*cols, per_item, self.static[rows]]).astype(np.float32)
