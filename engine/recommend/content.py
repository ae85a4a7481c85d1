"""Content-based recommender: a user profile in item-feature space, scored by cosine similarity.

profile(u) = Σ_j w_j · x̂_j over the user's train items, with w_j = confidence_j ·
0.5^(age_j / half_life) (age: days before the user's latest interaction) and x̂ the L2-normalised
content features. score(u, i) = cos(profile(u), x̂_i). Needs no interactions on the item side, so
NEW items are scored like any other. A user without history gets the mean profile of all users.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from engine.recommend.base import Recommender, register_recommender
from engine.recommend.data import InteractionData
from engine.vectors import l2_normalise

DAY = 86_400.0


def recency_weights(data: InteractionData, half_life_days: float) -> sp.csr_matrix:
    """The confidence matrix times 0.5^(age / half-life), age relative to each user's last event."""
    m, t = data.matrix, data.times
    last = np.zeros(data.n_users)
    counts = np.diff(t.indptr)
    has = counts > 0
    last[has] = np.maximum.reduceat(t.data, t.indptr[:-1][has]) if t.nnz else 0.0
    age = (np.repeat(last, counts) - t.data) / DAY
    decay = 0.5 ** (age / half_life_days) if half_life_days > 0 else np.ones_like(age)
    return sp.csr_matrix(
        (m.data * decay.astype(np.float32), m.indices.copy(), m.indptr.copy()), m.shape
    )


@register_recommender
class ContentRecommender(Recommender):
    """Recency- and confidence-weighted mean of engaged items' content features; cosine scores."""

    name = "content"
    description = "cosine between a user's content profile and item features (scores NEW items)"

    def __init__(self, *, half_life_days: float = 365.0):
        super().__init__()
        self.half_life_days = half_life_days
        self.item_vectors_: np.ndarray | None = None
        self.profiles_: np.ndarray | None = None

    def _fit(self, data: InteractionData) -> None:
        self.item_vectors_ = l2_normalise(data.features)
        weights = recency_weights(data, self.half_life_days)
        profiles = np.asarray(weights @ self.item_vectors_, dtype=np.float32)
        empty = data.history_lengths == 0
        if (~empty).any():
            profiles[empty] = l2_normalise(profiles[~empty]).mean(axis=0)
        self.profiles_ = l2_normalise(profiles)

    def _scores(self, user: int) -> np.ndarray:
        return self.item_vectors_ @ self.profiles_[user]

    def _scores_many(self, users: np.ndarray) -> np.ndarray:
        return self.profiles_[users] @ self.item_vectors_.T

    def profile_for(
        self, item_rows: np.ndarray, confidences: np.ndarray | None = None
    ) -> np.ndarray:
        """A profile for an ad-hoc history (e.g. a session), without recency decay."""
        w = np.ones(len(item_rows)) if confidences is None else np.asarray(confidences)
        return l2_normalise((w[:, None] * self.item_vectors_[np.asarray(item_rows)]).sum(axis=0))

    def _similar(self, item: int) -> np.ndarray:
        return self.item_vectors_ @ self.item_vectors_[item]

    def _save_state(self, folder: Path) -> None:
        np.save(folder / "profiles.npy", self.profiles_)

    def _load_state(self, folder: Path) -> None:
        self.item_vectors_ = l2_normalise(self.data.features)
        self.profiles_ = np.load(folder / "profiles.npy", allow_pickle=False)
