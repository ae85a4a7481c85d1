"""Visual retrievers: CLIP (text→image, image→image, or both) and HSV colour histograms."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.retrieval.base import Query, Retriever, StageTimer
from engine.retrieval.registry import register_retriever
from engine.retrieval.semantic import dense_search, vector_index


def clip_encoder(catalog):
    """The catalog's CLIP encoder (the one its build chose), loaded once."""
    from engine.build.visual import load_built_clip

    return catalog.cached("clip_encoder", lambda: load_built_clip(catalog.step_dir("clip")))


def clip_query_vector(encoder, query: Query) -> np.ndarray:
    """One L2-normalised CLIP vector for a text, image or text+image query.

    Text and image are mixed in CLIP's shared space with ``query.image_weight`` for the image.
    """
    parts, weights = [], []
    if query.text:
        parts.append(encoder.encode_texts([query.text])[0])
        weights.append(1.0 - query.image_weight if query.image is not None else 1.0)
    if query.image is not None:
        parts.append(encoder.encode_images([query.image])[0])
        weights.append(query.image_weight if query.text else 1.0)
    vec = np.average(np.stack(parts), axis=0, weights=np.asarray(weights) + 1e-9)
    return (vec / max(np.linalg.norm(vec), 1e-12)).astype(np.float32)


@register_retriever
class ClipRetriever(Retriever):
    name = "clip"
    description = "CLIP: text→image, image→image, or both mixed in CLIP space (FAISS HNSW)"
    modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    requires: ClassVar[tuple[str, ...]] = ("clip", "visual")
    index_kind: ClassVar[str] = "hnsw"

    def warm_up(self) -> None:
        clip_encoder(self.catalog)
        vector_index(self.catalog, "visual", "clip", self.index_kind)

    def _search(self, query: Query, k: int, timer: StageTimer):
        with timer("load"):
            encoder = clip_encoder(self.catalog)
            index = vector_index(self.catalog, "visual", "clip", self.index_kind)
        with timer("encode"):
            vec = clip_query_vector(encoder, query)
        with timer("search"):
            rows, scores = dense_search(index, vec, k)
        return rows, scores, []


@register_retriever
class ColourRetriever(Retriever):
    name = "colour"
    description = "HSV colour-histogram similarity of the images (exact search)"
    modalities: ClassVar[frozenset[str]] = frozenset({"image"})
    requires: ClassVar[tuple[str, ...]] = ("visual",)

    def warm_up(self) -> None:
        vector_index(self.catalog, "visual", "colour", "flat")

    def _search(self, query: Query, k: int, timer: StageTimer):
        from engine.encoders.colour import colour_histogram

        with timer("load"):
            index = vector_index(self.catalog, "visual", "colour", "flat")
        with timer("encode"):
            vec = colour_histogram(query.image)
        with timer("search"):
            rows, scores = dense_search(index, vec, k)
        return rows, scores, []
