"""Search knobs chosen by measurement, not defaulted.

A build picks each approximate index's efSearch (HNSW kinds) or nprobe (IVF) as the *smallest*
value of a fixed ladder whose recall@k against exact search reaches a target (0.98 by default)
on every tuning query set:

* ``items`` — 500 of the catalog's own vectors, sampled with seed 42 (item-to-item search, and
  a set every index has);
* ``queries`` — the real query vectors the build step has (its text or image queries, up to
  500), when it passes them: the distribution the index serves.

Exact neighbours come from a flat (brute-force) index over the same vectors. Recall is
tie-aware (the faiss-contrib ``knn_intersection`` spirit, with distances): a returned item counts
when its true inner product is at least the exact k-th best (duplicate items tie, and exact
search keeps an arbitrary one of them). The plain id-overlap recall is recorded beside it. When
no rung reaches the target, the largest rung is kept and the record says ``met: false``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.evaluation.metrics import index_recall_at_k
from engine.index_kinds import DEFAULT_RECALL_TARGET, KNOBS

EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
NPROBE_LADDER = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
TUNING_K = 10
TUNING_ROWS = 500
TUNING_SEED = 42
SCORE_TOL = 1e-5  # float32 inner products of tied vectors differ by rounding only


def item_sample(vectors: np.ndarray, n: int = TUNING_ROWS, seed: int = TUNING_SEED) -> np.ndarray:
    """``n`` rows of ``vectors`` (all when fewer), chosen with ``seed``, in row order."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(vectors), size=min(n, len(vectors)), replace=False))
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def tuning_sets(vectors: np.ndarray, queries: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The tuning query sets: seeded catalog rows, and the step's real queries when given."""
    sets = {"items": item_sample(vectors)}
    if queries is not None and len(queries):
        sets["queries"] = np.ascontiguousarray(queries[:TUNING_ROWS], dtype=np.float32)
    return sets


@dataclass(frozen=True)
class ExactNeighbours:
    """Exact top-k of one query set: ids, and the k-th best inner product per query."""

    queries: np.ndarray
    ids: np.ndarray
    kth_score: np.ndarray

    @classmethod
    def of(cls, exact, queries: np.ndarray, k: int = TUNING_K) -> ExactNeighbours:
        """Search the exact (flat) index ``exact``."""
        ids, scores = exact.search(queries, k)
        return cls(queries, ids, scores[:, -1])

    def recall(self, approx_ids: np.ndarray, vectors: np.ndarray) -> dict[str, float]:
        """Tie-aware recall@k of ``approx_ids`` (true scores from ``vectors``) and id recall."""
        k = self.ids.shape[1]
        ids = approx_ids[:, :k]
        safe = np.where(ids >= 0, ids, 0)
        true = np.einsum("qd,qkd->qk", self.queries, vectors[safe])
        good = (ids >= 0) & (true >= self.kth_score[:, None] - SCORE_TOL)
        return {
            "recall": round(float(good.sum(axis=1).mean() / k), 4),
            "id_recall": round(index_recall_at_k(ids, self.ids, k), 4),
        }


@dataclass(frozen=True)
class Tuning:
    """The measured choice of one index's search knob (JSON-ready via :meth:`to_dict`)."""

    knob: str  # ef_search | nprobe
    value: int
    target: float
    met: bool
    k: int
    recall: dict[str, float]  # tie-aware recall@k per tuning set, at ``value``
    id_recall: dict[str, float]
    n_queries: dict[str, int]
    tried: list[int]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def apply(self, index) -> None:
        """Make ``value`` the default of ``index`` (a VectorIndex or MilvusIndex)."""
        field = "hnsw_ef_search" if self.knob == "ef_search" else "ivf_nprobe"
        index.params = dataclasses.replace(index.params, **{field: int(self.value)})
        index.tuning = self.to_dict()


def ladder_for(index) -> tuple[int, ...]:
    """The knob values tried for ``index``: nprobe stops at nlist (where IVF is exact)."""
    if KNOBS[index.kind] == "ef_search":
        return EF_LADDER
    nlist = getattr(index, "nlist", None)
    if not nlist:
        return NPROBE_LADDER
    return tuple(v for v in NPROBE_LADDER if v < nlist) + (int(nlist),)


def tune_search(
    approx,
    exact,
    vectors: np.ndarray,
    sets: dict[str, np.ndarray],
    *,
    target: float = DEFAULT_RECALL_TARGET,
    k: int = TUNING_K,
    ladder: tuple[int, ...] | None = None,
) -> Tuning:
    """The smallest knob value of ``approx`` whose recall@k vs ``exact`` reaches ``target`` on
    every set of ``sets`` (see the module doc). ``vectors`` are the indexed vectors."""
    knob = KNOBS[approx.kind]
    truth = {name: ExactNeighbours.of(exact, q, k) for name, q in sets.items()}
    x = np.asarray(vectors, dtype=np.float32)
    tried: list[int] = []
    values = ladder or ladder_for(approx)
    for value in values:
        tried.append(int(value))
        got = {
            name: t.recall(approx.search(t.queries, k, **{knob: int(value)})[0], x)
            for name, t in truth.items()
        }
        recall = {name: g["recall"] for name, g in got.items()}
        met = min(recall.values()) >= target
        if met or value == values[-1]:
            return Tuning(
                knob=knob,
                value=int(value),
                target=float(target),
                met=bool(met),
                k=k,
                recall=recall,
                id_recall={name: g["id_recall"] for name, g in got.items()},
                n_queries={name: len(q) for name, q in sets.items()},
                tried=tried,
            )
    raise ValueError("the tuning ladder is empty")


def tune_index(
    approx,
    exact,
    vectors: np.ndarray,
    queries: np.ndarray | None = None,
    *,
    target: float = DEFAULT_RECALL_TARGET,
) -> Tuning:
    """Tune ``approx`` on :func:`tuning_sets` of ``vectors`` (and ``queries``) and apply it."""
    tuning = tune_search(approx, exact, vectors, tuning_sets(vectors, queries), target=target)
    tuning.apply(approx)
    return tuning
