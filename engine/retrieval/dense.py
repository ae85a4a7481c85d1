"""The encode-then-search family: one query vector, one vector index.

A :class:`DenseRetriever` says which index it searches (build step, file prefix, index kind)
and how a query becomes a vector; loading, timing and searching are written once, here.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from engine.components import vector_index
from engine.indexes.vector import VectorIndex
from engine.retrieval.base import Query, Retriever, StageTimer


def dense_search(index: VectorIndex, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Search one query vector; drop FAISS's -1 padding."""
    ids, scores = index.search(vector.reshape(1, -1), k)
    keep = ids[0] >= 0
    return ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)


class DenseRetriever(Retriever):
    """Encode the query into one vector and search one index of the catalog."""

    index_step: ClassVar[str]  # the build step that wrote the index
    index_prefix: ClassVar[str]  # its file prefix (``<prefix>_<kind>.faiss``)
    # "ann": the catalog's served approximate index (its config's index.kind, HNSW by default).
    params: ClassVar[dict] = {"index_kind": "ann"}

    def index(self) -> VectorIndex:
        return vector_index(self.catalog, self.index_step, self.index_prefix, self.index_kind)

    def load(self) -> None:
        """Load the encoders ``query_vector`` uses (override)."""

    @abstractmethod
    def query_vector(self, query: Query) -> np.ndarray:
        """The query as one vector in the index's space."""

    def warm_up(self) -> None:
        self.load()
        self.index()

    def _search(self, query: Query, k: int, timer: StageTimer):
        with timer("load"):
            self.load()
            index = self.index()
        with timer("encode"):
            vec = self.query_vector(query)
        with timer("search"):
            rows, scores = dense_search(index, vec, k)
        return rows, scores, []
