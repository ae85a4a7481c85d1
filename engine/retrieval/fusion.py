"""Fusion of text and visual signals, three ways, each selectable by name.

Signals for a query: ``sbert`` (query text vs item text), ``clip`` (CLIP query — text, image or
their mix — vs item image) and ``colour`` (query image's colour histogram vs item image).

* ``fusion-early`` — early concatenation: one FAISS index over ``[√a·sbert, clip, √c·colour]``
  item vectors, so the inner product is ``a·sbert + clip + c·colour`` (raw cosines).
* ``fusion-late`` — late weighted score averaging: each signal's top candidates, z-normalised
  within the candidate pool, averaged with weights.
* ``fusion-mlp`` — a learned MLP projection of query and item features into one space
  (``engine/encoders/fusion_mlp.py``), trained and saved by the build.

Weights are tuned on the *validation* query sets by the build (``engine/build/fusion.py``) and
stored in ``fusion.json``; nothing here is hand-set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from engine.retrieval.base import Query, Retriever, StageTimer, top_k
from engine.retrieval.registry import register_retriever
from engine.retrieval.semantic import dense_search, text_encoder, vector_index
from engine.retrieval.visual import clip_encoder, clip_query_vector

LATE_POOL = 200  # candidates per signal for late fusion


@dataclass
class QueryFeatures:
    """The per-signal query vectors (None where the query has no such part)."""

    sbert: np.ndarray | None
    clip: np.ndarray
    colour: np.ndarray | None


def query_features(catalog, query: Query) -> QueryFeatures:
    """Encode a query for every signal it has."""
    from engine.encoders.colour import colour_histogram

    sbert = text_encoder(catalog).encode([query.text])[0] if query.text else None
    clip = clip_query_vector(clip_encoder(catalog), query)
    colour = colour_histogram(query.image) if query.image is not None else None
    return QueryFeatures(sbert, clip, colour)


def early_vector(f: QueryFeatures, a: float, c: float, dims: tuple[int, int, int]) -> np.ndarray:
    """The early-fusion query vector matching item vectors ``[√a·sbert, clip, √c·colour]``."""
    ds, dc, dh = dims
    sbert = f.sbert if f.sbert is not None else np.zeros(ds, np.float32)
    colour = f.colour if f.colour is not None else np.zeros(dh, np.float32)
    return np.concatenate([np.sqrt(a) * sbert, f.clip, np.sqrt(c) * colour]).astype(np.float32)


def mlp_input(f: QueryFeatures, dims: tuple[int, int, int]) -> np.ndarray:
    """The fusion MLP's query-tower input ``[sbert or 0, clip, colour or 0]``."""
    ds, _, dh = dims
    sbert = f.sbert if f.sbert is not None else np.zeros(ds, np.float32)
    colour = f.colour if f.colour is not None else np.zeros(dh, np.float32)
    return np.concatenate([sbert, f.clip, colour]).astype(np.float32)


def late_fuse(
    signals: dict[str, tuple[np.ndarray, np.ndarray]],
    weights: dict[str, float],
    exact: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted average of z-normalised scores over the union of each signal's candidates.

    ``signals[name] = (rows, scores)``; a candidate missing from a signal's list gets that
    signal's exact score when ``exact[name]`` (the full score vector) is given, else its minimum.
    """
    pool = np.unique(np.concatenate([rows for rows, _ in signals.values()]))
    fused = np.zeros(len(pool))
    for name, (rows, scores) in signals.items():
        w = weights.get(name, 0.0)
        if w == 0 or len(rows) == 0:
            continue
        if exact is not None and name in exact:
            s = exact[name][pool]
        else:
            lookup = dict(zip(rows.tolist(), scores.tolist()))
            s = np.array([lookup.get(r, scores.min()) for r in pool.tolist()])
        fused += w * (s - s.mean()) / (s.std() + 1e-9)
    return pool, fused


class _FusionRetriever(Retriever):
    modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    requires: ClassVar[tuple[str, ...]] = ("sbert", "clip", "visual", "fusion")

    def params(self) -> dict:
        path = self.catalog.step_dir("fusion") / "fusion.json"
        return self.catalog.cached("fusion_params", lambda: json.loads(path.read_text()))

    def weights(self, query: Query, strategy: str) -> dict[str, float]:
        p = self.params()[strategy]
        return p["text"] if query.image is None else p["image"]

    def warm_up(self) -> None:
        text_encoder(self.catalog)
        clip_encoder(self.catalog)
        self.params()


@register_retriever
class EarlyFusionRetriever(_FusionRetriever):
    name = "fusion-early"
    description = "Early fusion: one index over concatenated SBERT, CLIP and colour vectors"

    def _search(self, query: Query, k: int, timer: StageTimer):
        with timer("encode"):
            f = query_features(self.catalog, query)
            w = self.weights(query, "early")
            vec = early_vector(f, w["sbert"], w["colour"], tuple(self.params()["dims"]))
        with timer("search"):
            index = vector_index(self.catalog, "fusion", "early", "hnsw")
            rows, scores = dense_search(index, vec, k)
        return rows, scores, []


@register_retriever
class LateFusionRetriever(_FusionRetriever):
    name = "fusion-late"
    description = "Late fusion: weighted average of z-normalised SBERT, CLIP and colour scores"

    def _search(self, query: Query, k: int, timer: StageTimer):
        with timer("encode"):
            f = query_features(self.catalog, query)
        with timer("search"):
            signals = {
                "clip": dense_search(
                    vector_index(self.catalog, "visual", "clip", "hnsw"), f.clip, LATE_POOL
                )
            }
            if f.sbert is not None:
                signals["sbert"] = dense_search(
                    vector_index(self.catalog, "sbert", "sbert", "hnsw"), f.sbert, LATE_POOL
                )
            if f.colour is not None:
                signals["colour"] = dense_search(
                    vector_index(self.catalog, "visual", "colour", "flat"), f.colour, LATE_POOL
                )
        with timer("fuse"):
            pool, fused = late_fuse(signals, self.weights(query, "late"))
            order, top = top_k(fused, k)
        return pool[order], top, []


@register_retriever
class MlpFusionRetriever(_FusionRetriever):
    name = "fusion-mlp"
    description = "Learned fusion: trained MLP towers project query and item features together"

    def _model(self):
        from engine.encoders.fusion_mlp import load_fusion_mlp

        folder = self.catalog.step_dir("fusion")
        return self.catalog.cached("fusion_mlp", lambda: load_fusion_mlp(folder))

    def warm_up(self) -> None:
        super().warm_up()
        self._model()

    def _search(self, query: Query, k: int, timer: StageTimer):
        from engine.encoders.fusion_mlp import project

        with timer("encode"):
            f = query_features(self.catalog, query)
            vec = project(self._model(), mlp_input(f, tuple(self.params()["dims"])), side="query")
        with timer("search"):
            rows, scores = dense_search(
                vector_index(self.catalog, "fusion", "mlp", "hnsw"), vec[0], k
            )
        return rows, scores, []
