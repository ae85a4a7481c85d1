"""Dense text retrieval: Sentence-BERT all-MiniLM-L6-v2 embeddings searched with FAISS."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.components import query_text_vector, text_encoder
from engine.retrieval.base import Query, register_retriever
from engine.retrieval.dense import DenseRetriever


@register_retriever
class SbertRetriever(DenseRetriever):
    name = "sbert"
    description = "Sentence-BERT (all-MiniLM-L6-v2) semantic text search, FAISS HNSW"
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    requires: ClassVar[tuple[str, ...]] = ("sbert",)
    index_step, index_prefix = "sbert", "sbert"
    order = 20

    def load(self) -> None:
        text_encoder(self.catalog)

    def query_vector(self, query: Query) -> np.ndarray:
        return query_text_vector(self.catalog, query.text_as("dense"))
