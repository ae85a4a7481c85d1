"""Lexical retrievers: BM25 (rank-bm25), TF-IDF (scikit-learn) and keyword matching."""

from __future__ import annotations

from typing import ClassVar

from engine.indexes.bm25 import BM25Index
from engine.indexes.keywords import KeywordIndex
from engine.indexes.tfidf import TfidfIndex
from engine.retrieval.base import Query, Retriever, StageTimer, top_k
from engine.retrieval.registry import register_retriever

NO_MATCH = "No product text contains any of the query's words."


class _LexicalRetriever(Retriever):
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    requires: ClassVar[tuple[str, ...]] = ("lexical",)

    def _index(self):
        raise NotImplementedError

    def warm_up(self) -> None:
        self._index()

    def _search(self, query: Query, k: int, timer: StageTimer):
        with timer("load"):
            index = self._index()
        with timer("score"):
            scores = index.scores(query.text or "")
        with timer("rank"):
            rows, top = top_k(scores, k, positive_only=True)
        return rows, top, ([] if len(rows) else [NO_MATCH])


@register_retriever
class BM25Retriever(_LexicalRetriever):
    name = "bm25"
    description = "BM25 keyword relevance over title, description, brand and category"

    def _index(self) -> BM25Index:
        return self.catalog.cached("bm25", lambda: BM25Index.load(self.catalog.step_dir("lexical")))


@register_retriever
class TfidfRetriever(_LexicalRetriever):
    name = "tfidf"
    description = "TF-IDF cosine similarity (word unigrams and bigrams)"

    def _index(self) -> TfidfIndex:
        return self.catalog.cached(
            "tfidf", lambda: TfidfIndex.load(self.catalog.step_dir("lexical"))
        )


@register_retriever
class KeywordRetriever(_LexicalRetriever):
    name = "keyword"
    description = "Keyword matching: sum of the confidences of the item tags the query names"

    def _index(self) -> KeywordIndex:
        folder = self.catalog.step_dir("lexical")
        return self.catalog.cached("keywords", lambda: KeywordIndex.load(folder))
