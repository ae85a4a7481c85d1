"""Dense text retrieval: Sentence-BERT all-MiniLM-L6-v2 embeddings searched with FAISS."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.encoders.text import create_text_encoder
from engine.indexes.vector import VectorIndex
from engine.retrieval.base import Query, Retriever, StageTimer
from engine.retrieval.registry import register_retriever


def text_encoder(catalog):
    """The catalog's text encoder, loaded once per catalog."""
    name = catalog.config["text"]["sbert_model"]
    return catalog.cached(f"text_encoder:{name}", lambda: create_text_encoder(name))


def vector_index(catalog, step: str, prefix: str, kind: str) -> VectorIndex:
    """A FAISS index written by a build step, loaded once per catalog."""
    path = catalog.step_dir(step) / f"{prefix}_{kind}.faiss"
    return catalog.cached(f"faiss:{prefix}:{kind}", lambda: VectorIndex.load(path, kind))


def dense_search(index: VectorIndex, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Search one query vector; drop FAISS's -1 padding."""
    ids, scores = index.search(vector.reshape(1, -1), k)
    keep = ids[0] >= 0
    return ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)


@register_retriever
class SbertRetriever(Retriever):
    name = "sbert"
    description = "Sentence-BERT (all-MiniLM-L6-v2) semantic text search, FAISS HNSW"
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    requires: ClassVar[tuple[str, ...]] = ("sbert",)
    index_kind: ClassVar[str] = "hnsw"

    def warm_up(self) -> None:
        text_encoder(self.catalog)
        vector_index(self.catalog, "sbert", "sbert", self.index_kind)

    def _search(self, query: Query, k: int, timer: StageTimer):
        with timer("load"):
            encoder = text_encoder(self.catalog)
            index = vector_index(self.catalog, "sbert", "sbert", self.index_kind)
        with timer("encode"):
            vec = encoder.encode([query.text or ""])[0]
        with timer("search"):
            rows, scores = dense_search(index, vec, k)
        return rows, scores, []
