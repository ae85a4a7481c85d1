"""Fusion of text and visual signals, three ways, each selectable by name.

Signals for a query: ``sbert`` (query text vs item text), ``clip`` (CLIP query — text, image or
their mix — vs item image) and ``colour`` (query image's colour histogram vs item image).

* ``fusion-early`` — early concatenation: one FAISS index over ``[√a·sbert, clip, √c·colour]``
  item vectors, so the inner product is ``a·sbert + clip + c·colour`` (raw cosines).
* ``fusion-late`` — late weighted score averaging: each signal's top candidates, z-normalised
  within the candidate pool, averaged with weights.
* ``fusion-mlp`` — a learned MLP projection of query and item features into one space
  (``engine/encoders/fusion_mlp.py``), trained and saved by the build.

Weights are tuned on the *validation* query sets by the build (``engine.pipeline.steps.fusion``) and
stored in ``fusion.json``; nothing here is hand-set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from engine.components import (
    clip_encoder,
    colour_encoder,
    fusion_mlp,
    fusion_params,
    query_text_vector,
    text_encoder,
    vector_index,
)
from engine.retrieval.base import Query, Retriever, StageTimer, register_retriever
from engine.retrieval.dense import DenseRetriever, dense_search
from engine.retrieval.visual import clip_query_vector
from engine.vectors import top_k

LATE_POOL = 200  # candidates per signal for late fusion
ATTR_POOL = 200  # candidates re-ranked by the attribute score (query understanding)


def blend_attributes(
    rows: np.ndarray, scores: np.ndarray, attrs: np.ndarray | None, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank candidates by z(score) + weight * z(attribute score), best first; unchanged when
    there is no attribute score (nothing understood) or the weight is 0."""
    if attrs is None or weight == 0 or len(rows) < 2:
        return rows, scores
    finite = np.isfinite(scores)
    s = np.where(finite, scores, np.nan)
    zs = (s - np.nanmean(s)) / (np.nanstd(s) + 1e-9)
    za = (attrs - attrs.mean()) / (attrs.std() + 1e-9)
    fused = np.where(finite, zs + weight * za, -np.inf)
    order = np.lexsort((rows, -fused))
    return rows[order], fused[order].astype(np.float32)


def attribute_rerank(catalog, query: Query, rows, scores, strategy: str):
    """Attribute-aware fusion: the candidates re-ranked with the query's attribute score
    (merchant category, tags, text mentions, image colour vs what was understood), with the
    weight the fusion step tuned on validation queries for this strategy."""
    from engine.components import query_understanding
    from engine.query import attribute_scores

    qu = query_understanding(catalog)
    weight = fusion_params(catalog).get("attributes", {}).get(strategy, 0.0)
    if qu is None or qu.attributes is None or query.understood is None or weight == 0:
        return rows, scores
    return blend_attributes(rows, scores, attribute_scores(query.understood, qu.attributes, rows),
                            weight)


@dataclass
class QueryFeatures:
    """The per-signal query vectors (None where the query has no such part)."""

    sbert: np.ndarray | None
    clip: np.ndarray
    colour: np.ndarray | None


def query_features(catalog, query: Query) -> QueryFeatures:
    """Encode a query for every signal it has."""
    sbert = query_text_vector(catalog, query.text_as("dense")) if query.text else None
    clip = clip_query_vector(clip_encoder(catalog), query, sbert)
    colour = (
        colour_encoder(catalog).encode_images([query.image])[0] if query.image is not None else None
    )
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
            # pool is sorted and holds every row, so searchsorted finds each row's slot
            s = np.full(len(pool), np.min(scores), dtype=np.float64)
            s[np.searchsorted(pool, rows)] = scores
        fused += w * (s - s.mean()) / (s.std() + 1e-9)
    return pool, fused


class _Fusion:
    """What the fusion methods share: their tuned weights and their encoders."""

    modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    requires: ClassVar[tuple[str, ...]] = ("sbert", "clip", "visual", "fusion")
    mixes_modalities = True
    catalog: object

    def fusion_params(self) -> dict:
        return fusion_params(self.catalog)

    def weights(self, query: Query, strategy: str) -> dict[str, float]:
        p = self.fusion_params()[strategy]
        return p["text"] if query.image is None else p["image"]

    def load(self) -> None:
        text_encoder(self.catalog)
        clip_encoder(self.catalog)
        self.fusion_params()


@register_retriever
class EarlyFusionRetriever(_Fusion, DenseRetriever):
    name = "fusion-early"
    description = "Early fusion: one index over concatenated SBERT, CLIP and colour vectors"
    index_step, index_prefix = "fusion", "early"
    order = 40

    def query_vector(self, query: Query) -> np.ndarray:
        f = query_features(self.catalog, query)
        w = self.weights(query, "early")
        return early_vector(f, w["sbert"], w["colour"], tuple(self.fusion_params()["dims"]))

    def _search(self, query: Query, k: int, timer: StageTimer):
        rows, scores, notes = super()._search(query, max(k, ATTR_POOL), timer)
        with timer("attributes"):
            rows, scores = attribute_rerank(self.catalog, query, rows, scores, "early")
        return rows[:k], scores[:k], notes


@register_retriever
class LateFusionRetriever(_Fusion, Retriever):
    name = "fusion-late"
    description = "Late fusion: weighted average of z-normalised SBERT, CLIP and colour scores"
    params: ClassVar[dict] = {"pool": LATE_POOL}
    order = 41

    def warm_up(self) -> None:
        self.load()

    def _search(self, query: Query, k: int, timer: StageTimer):
        with timer("encode"):
            f = query_features(self.catalog, query)
        with timer("search"):
            signals = {
                "clip": dense_search(
                    vector_index(self.catalog, "visual", "clip", "ann"), f.clip, self.pool
                )
            }
            if f.sbert is not None:
                signals["sbert"] = dense_search(
                    vector_index(self.catalog, "sbert", "sbert", "ann"), f.sbert, self.pool
                )
            if f.colour is not None:
                signals["colour"] = dense_search(
                    vector_index(self.catalog, "visual", "colour", "flat"), f.colour, self.pool
                )
        with timer("fuse"):
            pool, fused = late_fuse(signals, self.weights(query, "late"))
            order, top = top_k(fused, max(k, ATTR_POOL))
            rows, top = attribute_rerank(self.catalog, query, pool[order], top, "late")
        return rows[:k], top[:k], []


@register_retriever
class MlpFusionRetriever(_Fusion, DenseRetriever):
    name = "fusion-mlp"
    description = "Learned fusion: trained MLP towers project query and item features together"
    index_step, index_prefix = "fusion", "mlp"
    order = 42

    def load(self) -> None:
        super().load()
        fusion_mlp(self.catalog)

    def query_vector(self, query: Query) -> np.ndarray:
        f = query_features(self.catalog, query)
        x = mlp_input(f, tuple(self.fusion_params()["dims"]))
        return fusion_mlp(self.catalog).project(x, side="query")[0]

    def _search(self, query: Query, k: int, timer: StageTimer):
        rows, scores, notes = super()._search(query, max(k, ATTR_POOL), timer)
        with timer("attributes"):
            rows, scores = attribute_rerank(self.catalog, query, rows, scores, "mlp")
        return rows[:k], scores[:k], notes
