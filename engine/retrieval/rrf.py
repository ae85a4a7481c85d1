"""Reciprocal-rank fusion (Cormack et al., 2009) of any set of methods.

``score(item) = sum over methods m of 1 / (k + rank_m(item))`` with ranks from 1 and ``k = 60``.
Only ranks matter, so methods with incomparable scores combine without any tuning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from engine.retrieval.base import Query, Retriever, StageTimer, register_retriever
from engine.retrieval.registry import retriever_class, shared_retriever
from engine.vectors import top_k

RRF_K = 60
POOL = 100  # results taken from each member method
DEFAULT_MEMBERS = ("bm25", "sbert", "clip", "colour")


def reciprocal_rank_fusion(
    rankings: Sequence[np.ndarray], *, k: int = RRF_K
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse ranked row arrays (best first); returns (rows, scores) best first, ties by row."""
    scores: dict[int, float] = {}
    for rows in rankings:
        for rank, row in enumerate(np.asarray(rows).tolist(), start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    if not scores:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    rows = np.array(sorted(scores), dtype=np.int64)  # sorted: ties are broken by row
    vals = np.array([scores[r] for r in rows.tolist()], dtype=np.float64)
    order, top = top_k(vals, len(vals))
    return rows[order], top


@register_retriever
class RRFRetriever(Retriever):
    name = "rrf"
    description = "Reciprocal-rank fusion of BM25, SBERT, CLIP and colour (those that apply)"
    modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    requires: ClassVar[tuple[str, ...]] = ("lexical", "sbert")
    fuses: ClassVar[tuple[str, ...]] = DEFAULT_MEMBERS
    params: ClassVar[dict] = {"members": DEFAULT_MEMBERS, "k": RRF_K, "pool": POOL}
    order = 50

    @classmethod
    def built_modalities(cls, built_steps: set[str]) -> frozenset[str]:
        mods: set[str] = set()
        for name in cls.fuses:
            mods |= retriever_class(name).built_modalities(built_steps)
        return frozenset(mods)

    def supports(self, query: Query) -> bool:
        return bool(self._usable(query))

    def _built_members(self) -> list[Retriever]:
        built = self.catalog.built_steps
        return [
            shared_retriever(self.catalog, name)
            for name in self.members
            if set(retriever_class(name).requires) <= built
        ]

    def _usable(self, query: Query) -> list[Retriever]:
        return [m for m in self._built_members() if m.supports(query)]

    def warm_up(self) -> None:
        for member in self._built_members():
            member.warm_up()

    def _search(self, query: Query, k: int, timer: StageTimer):
        rankings = []
        for member in self._usable(query):
            result = member.search(query, max(self.pool, k))
            for stage, ms in result.timings_ms.items():
                timer.ms[f"{member.name}.{stage}"] = ms
            rankings.append(result.rows)
        with timer("fuse"):
            rows, scores = reciprocal_rank_fusion(rankings, k=self.k)
        return rows[:k], scores[:k], []
