"""Implicit-feedback matrix factorisation: implicit's ``AlternatingLeastSquares`` (Hu et al. 2008).

Confidence is ``alpha × event weight`` (implicit's convention). Honest limits: ALS learns an item
only from its interactions, so NEW items (no train interactions) have no meaningful factors —
they are never recommended and get the lowest score in ``score_items``; a NEW query item has no
similar items (empty result). Users without train history fall back to popularity order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.recommend.base import Recommender, _check_k, register_recommender
from engine.recommend.data import InteractionData


def _blas_one_thread():
    """Limit BLAS to one thread inside ALS (implicit's own threads do the parallel work)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


@register_recommender
class ALSRecommender(Recommender):
    """Weighted ALS over the user × item confidence matrix."""

    name = "als"
    parallel_fit = True
    description = "implicit ALS matrix factorisation (collaborative; cannot score NEW items)"
    scores_new_items = False

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 1.0,
        alpha: float = 20.0,
        iterations: int = 15,
        seed: int = 42,
        threads: int = 2,
    ):
        super().__init__()
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.threads = threads
        self.model_ = None
        self.warm_: np.ndarray | None = None  # items with >= 1 train interaction

    def _make(self):
        from implicit.cpu.als import AlternatingLeastSquares

        with _blas_one_thread():  # implicit warns when BLAS may use several threads
            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.threads,
            )

    def _fit(self, data: InteractionData) -> None:
        model = self._make()
        with _blas_one_thread():
            model.fit(data.matrix, show_progress=False)
        model.num_threads = 1  # query time is single-threaded
        self.model_ = model
        self._set_warm(data)

    def _set_warm(self, data: InteractionData) -> None:
        self.warm_ = data.popularity > 0
        self._cold_rows = np.flatnonzero(~self.warm_)

    def _scores(self, user: int) -> np.ndarray:
        data = self.data
        if data.history_lengths[user] == 0:
            scores = data.popularity.astype(np.float64)  # no history: nothing to factorise
        else:
            scores = self.model_.item_factors @ self.model_.user_factors[user]
        return np.where(self.warm_, scores, -np.inf)

    def recommend(
        self, user_id: str, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """implicit's own top-k (single thread); NEW / never-seen items are filtered out."""
        k = _check_k(k)
        user = self.user_row(user_id)
        data = self.data
        if data.history_lengths[user] == 0:
            return super().recommend(user_id, k, exclude_seen)
        n = min(k, int(self.warm_.sum()) - (data.history_lengths[user] if exclude_seen else 0))
        if n <= 0:
            return data.item_ids[:0], np.empty(0, dtype=np.float32)
        rows, scores = self.model_.recommend(
            user,
            data.matrix[user],
            N=n,
            filter_already_liked_items=exclude_seen,
            filter_items=self._cold_rows,
        )
        keep = np.isfinite(scores) & (rows >= 0)
        return data.item_ids[rows[keep]], scores[keep].astype(np.float32)

    def _similar(self, item: int) -> np.ndarray:
        if not self.warm_[item]:
            return np.full(self.data.n_items, -np.inf)  # a NEW item has no learned factors
        f = self.model_.item_factors
        norms = np.linalg.norm(f, axis=1) + 1e-9
        sims = (f @ f[item]) / (norms * norms[item])
        return np.where(self.warm_, sims, -np.inf)

    def _save_state(self, folder: Path) -> None:
        np.save(folder / "user_factors.npy", self.model_.user_factors)
        np.save(folder / "item_factors.npy", self.model_.item_factors)

    def _load_state(self, folder: Path) -> None:
        model = self._make()
        model.user_factors = np.load(folder / "user_factors.npy", allow_pickle=False)
        model.item_factors = np.load(folder / "item_factors.npy", allow_pickle=False)
        model.num_threads = 1
        self.model_ = model
        self._set_warm(self.data)
