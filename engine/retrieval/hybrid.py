"""Hybrid: candidates from BM25, keywords, SBERT and CLIP, re-ranked by LambdaMART.

``explain(query, row)`` says why a result is where it is: each generator's score and rank for
it, and the re-ranker's largest per-feature contributions (LightGBM ``pred_contrib``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from engine.components import (
    bm25_index,
    clip_encoder,
    query_text_vector,
    query_understanding,
    text_encoder,
)
from engine.ranking.features import FEATURES, GENERATORS, POOL, FeatureBuilder, QuerySignals
from engine.retrieval.base import Query, Retriever, StageTimer, register_retriever
from engine.vectors import top_k


@register_retriever
class HybridRetriever(Retriever):
    name = "hybrid"
    description = "Hybrid: BM25 + keyword + SBERT + CLIP candidates re-ranked by LambdaMART"
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    requires: ClassVar[tuple[str, ...]] = ("lexical", "sbert", "clip", "visual", "ranker")
    fuses: ClassVar[tuple[str, ...]] = ("bm25", "keyword", "sbert", "clip")  # + attributes
    explains = True
    order = 60

    def _parts(self):
        from engine.ranking.ltr import LambdaMartRanker

        c = self.catalog
        qu = query_understanding(c)
        return c.cached(
            "hybrid",
            lambda: (
                FeatureBuilder.from_folders(
                    c.world_dir,
                    c.step_dir("lexical"),
                    c.step_dir("sbert"),
                    c.step_dir("visual"),
                    attributes=qu.attributes if qu is not None else None,
                ),
                bm25_index(c),
                LambdaMartRanker.load(c.step_dir("ranker")),
            ),
        )

    def warm_up(self) -> None:
        self._parts()
        text_encoder(self.catalog)
        clip_encoder(self.catalog)

    def signals(self, query: Query, timer: StageTimer) -> QuerySignals:
        builder, bm25, _ = self._parts()
        catalog = self.catalog
        return query_signals(
            query,
            bm25,
            builder.keyword_index,
            lambda text: query_text_vector(catalog, text),
            clip_encoder(catalog),
            timer,
        )

    def _search(self, query: Query, k: int, timer: StageTimer):
        builder, _, ranker = self._parts()
        s = self.signals(query, timer)
        with timer("candidates"):
            rows, full = builder.candidates(s)
            X = builder.features(s, rows, full)
        with timer("rerank"):
            order, scores = top_k(ranker.predict(X), k)
        return rows[order], scores, []

    def explain(self, text: str, row: int, *, top: int = 6) -> dict:
        """Each generator's score and rank for ``row`` and the largest feature contributions."""
        from engine.retrieval.understanding import make_query

        builder, _, ranker = self._parts()
        s = self.signals(make_query(self.catalog, text), StageTimer())
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
            for g in GENERATORS
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


def query_signals(
    query: Query,
    bm25,
    keyword_index,
    encode: Callable[[str], np.ndarray],
    clip,
    timer: StageTimer | None = None,
) -> QuerySignals:
    """Everything the re-ranker computes once per query (shared by the build's training and
    the retriever): lexical scores of the lexical rewrite, the dense rewrite's SBERT vector
    (``encode``) and the CLIP text vector (reusing the SBERT one when the texts agree)."""
    timer = timer or StageTimer()
    dense, clip_text, lexical = (
        query.text_as("dense"),
        query.text_as("clip"),
        query.text_as("lexical"),
    )
    with timer("encode"):
        s_vec = encode(dense)
        if clip_text == dense:
            c_vec = clip.encode_texts_with([clip_text], s_vec[None, :])[0]
        else:
            c_vec = clip.encode_texts([clip_text])[0]
    with timer("lexical"):
        return QuerySignals(
            query.text or "",
            bm25.scores(lexical),
            keyword_index.scores(lexical),
            s_vec,
            c_vec,
            understood=query.understood,
        )
