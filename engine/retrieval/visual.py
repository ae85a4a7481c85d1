"""Visual retrievers: CLIP (text→image, image→image, or both) and HSV colour histograms."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.components import clip_encoder, colour_encoder, query_text_vector
from engine.retrieval.base import Query, register_retriever
from engine.retrieval.dense import DenseRetriever
from engine.vectors import l2_normalise


def clip_query_vector(encoder, query: Query, text_vector: np.ndarray | None = None) -> np.ndarray:
    """One L2-normalised CLIP vector for a text, image or text+image query.

    Text and image are mixed in CLIP's shared space with ``query.image_weight`` for the image.
    ``text_vector`` is the SBERT vector of the query's dense text when already computed (the
    compact CLIP reuses it when its own text is the same, instead of encoding it again).
    """
    parts, weights = [], []
    if query.text:
        text = query.text_as("clip")
        if text_vector is not None and text == query.text_as("dense"):
            parts.append(encoder.encode_texts_with([text], text_vector[None, :])[0])
        else:
            parts.append(encoder.encode_texts([text])[0])
        weights.append(1.0 - query.image_weight if query.image is not None else 1.0)
    if query.image is not None:
        parts.append(encoder.encode_images([query.image])[0])
        weights.append(query.image_weight if query.text else 1.0)
    vec = np.average(np.stack(parts), axis=0, weights=np.asarray(weights) + 1e-9)
    return l2_normalise(vec)


@register_retriever
class ClipRetriever(DenseRetriever):
    name = "clip"
    description = "CLIP: text→image, image→image, or both mixed in CLIP space (FAISS HNSW)"
    modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    requires: ClassVar[tuple[str, ...]] = ("clip", "visual")
    mixes_modalities = True
    index_step, index_prefix = "visual", "clip"
    order = 30

    def load(self) -> None:
        clip_encoder(self.catalog)

    def query_vector(self, query: Query) -> np.ndarray:
        encoder = clip_encoder(self.catalog)
        shared = query.text and getattr(encoder, "text_encoder", None) is not None
        text_vector = query_text_vector(self.catalog, query.text_as("dense")) if shared else None
        return clip_query_vector(encoder, query, text_vector)


@register_retriever
class ColourRetriever(DenseRetriever):
    name = "colour"
    description = "HSV colour-histogram similarity of the images (exact search)"
    modalities: ClassVar[frozenset[str]] = frozenset({"image"})
    requires: ClassVar[tuple[str, ...]] = ("visual",)
    params: ClassVar[dict] = {"index_kind": "flat"}
    index_step, index_prefix = "visual", "colour"
    order = 31

    def query_vector(self, query: Query) -> np.ndarray:
        return colour_encoder(self.catalog).encode_images([query.image])[0]
