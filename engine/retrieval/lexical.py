"""Lexical retrievers: BM25 (rank-bm25), TF-IDF (scikit-learn) and keyword matching."""

from __future__ import annotations

from typing import ClassVar

from engine.components import bm25_index, keyword_index, tfidf_index
from engine.retrieval.base import Query, Retriever, StageTimer, register_retriever
from engine.vectors import top_k

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
            scores = index.scores(query.text_as("lexical"))
        with timer("rank"):
            rows, top = top_k(scores, k, positive_only=True)
        return rows, top, ([] if len(rows) else [NO_MATCH])


@register_retriever
class BM25Retriever(_LexicalRetriever):
    name = "bm25"
    description = "BM25 keyword relevance over title, description, brand and category"

    order = 10

    def _index(self):
        return bm25_index(self.catalog)


@register_retriever
class TfidfRetriever(_LexicalRetriever):
    name = "tfidf"
    description = "TF-IDF cosine similarity (word unigrams and bigrams)"

    order = 11

    def _index(self):
        return tfidf_index(self.catalog)


@register_retriever
class KeywordRetriever(_LexicalRetriever):
    name = "keyword"
    description = "Keyword matching: sum of the confidences of the item tags the query names"

    order = 12

    def _index(self):
        return keyword_index(self.catalog)
