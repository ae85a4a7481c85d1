"""Hybrid: candidates from BM25, keywords, SBERT and CLIP, re-ranked by LambdaMART.

``explain(query, row)`` says why a result is where it is: each generator's score and rank for
it, and the re-ranker's largest per-feature contributions (LightGBM ``pred_contrib``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.components import bm25_index, clip_encoder, text_encoder
from engine.ranking.features import FEATURES, GENERATORS, POOL, FeatureBuilder, QuerySignals
from engine.retrieval.base import Query, Retriever, StageTimer, register_retriever
from engine.vectors import top_k


@register_retriever
class HybridRetriever(Retriever):
    name = "hybrid"
    description = "Hybrid: BM25 + keyword + SBERT + CLIP candidates re-ranked by LambdaMART"
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    requires: ClassVar[tuple[str, ...]] = ("lexical", "sbert", "clip", "visual", "ranker")
    fuses: ClassVar[tuple[str, ...]] = GENERATORS
    explains = True
    order = 60

    def _parts(self):
        from engine.ranking.ltr import LambdaMartRanker

        c = self.catalog
        return c.cached(
            "hybrid",
            lambda: (
                FeatureBuilder.from_folders(
                    c.world_dir, c.step_dir("lexical"), c.step_dir("sbert"), c.step_dir("visual")
                ),
                bm25_index(c),
                LambdaMartRanker.load(c.step_dir("ranker")),
            ),
        )

    def warm_up(self) -> None:
        self._parts()
        text_encoder(self.catalog)
        clip_encoder(self.catalog)

    def signals(self, text: str, timer: StageTimer) -> QuerySignals:
        builder, bm25, _ = self._parts()
        with timer("encode"):
            s_vec = text_encoder(self.catalog).encode_texts([text])[0]
            c_vec = clip_encoder(self.catalog).encode_texts([text])[0]
        with timer("lexical"):
            return QuerySignals(
                text, bm25.scores(text), builder.keyword_index.scores(text), s_vec, c_vec
            )

    def _search(self, query: Query, k: int, timer: StageTimer):
        builder, _, ranker = self._parts()
        s = self.signals(query.text or "", timer)
        with timer("candidates"):
            rows, full = builder.candidates(s)
            X = builder.features(s, rows, full)
        with timer("rerank"):
            order, scores = top_k(ranker.predict(X), k)
        return rows[order], scores, []

    def explain(self, text: str, row: int, *, top: int = 6) -> dict:
        """Each generator's score and rank for ``row`` and the largest feature contributions."""
        builder, _, ranker = self._parts()
        s = self.signals(text, StageTimer())
        rows, full = builder.candidates(s)
        rows = np.union1d(rows, [row])
        X = builder.features(s, rows, full)
        i = int(np.flatnonzero(rows == row)[0])
        contrib = ranker.contributions(X[i : i + 1])[0]
        feats = dict(zip(FEATURES, X[i].tolist()))
        generators = {
            g: {
                "score": round(feats[f"{g}_score"], 4),
                "rank": None if feats[f"{g}_rank"] > POOL else int(feats[f"{g}_rank"]),
            }
            for g in ("bm25", "keyword", "sbert", "clip")
        }
        largest = sorted(
            zip(FEATURES, contrib[:-1].tolist(), X[i].tolist()), key=lambda t: -abs(t[1])
        )[:top]
        return {
            "generators": generators,
            "bias": float(contrib[-1]),
            "contributions": [
                {"feature": f, "contribution": round(c, 4), "value": round(v, 4)}
                for f, c, v in largest
            ],
        }
