"""Sentence-BERT with exact (flat) search: the worked example of a new method in one module.

Same encoder and embeddings as ``sbert``; the only difference is the FAISS index it reads
(``flat``, exact inner product, instead of HNSW). Next to ``sbert`` in the benchmark it shows
what the approximate index costs in quality and saves in time.
"""

from __future__ import annotations

from typing import ClassVar

from engine.retrieval.base import register_retriever
from engine.retrieval.semantic import SbertRetriever


@register_retriever
class SbertExactRetriever(SbertRetriever):
    name = "sbert-exact"
    description = "Sentence-BERT with exact (flat) search: the ceiling of the HNSW index"
    params: ClassVar[dict] = {"index_kind": "flat"}
    order = 21
