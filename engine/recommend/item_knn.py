"""Item-based nearest neighbours (Sarwar et al., 2001): items are similar when the same users
engaged with them, and a user's score for an item sums its similarity to the items they had.

sim(i, j) = cosine of the columns i and j of the confidence matrix (users × items), keeping each
item's ``neighbours`` most similar items; score(u, i) = Σ_j c(u, j) · sim(j, i) over the user's
train items j. Purely collaborative: an item without train interactions (NEW) has no neighbours,
so it is never recommended, as with ALS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from engine.recommend.base import Recommender, register_recommender
from engine.recommend.data import InteractionData


@register_recommender
class ItemKnnRecommender(Recommender):
    """Item-item cosine similarity over co-engagement, top ``neighbours`` per item."""

    name = "item_knn"
    description = "item-based nearest neighbours over co-engagement (collaborative baseline)"
    scores_new_items = False

    def __init__(self, *, neighbours: int = 50):
        super().__init__()
        self.neighbours = neighbours
        self.similarity_: sp.csr_matrix | None = None

    def _fit(self, data: InteractionData) -> None:
        items = data.matrix.T.tocsr().astype(np.float32)  # items × users
        norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())
        unit = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ items
        sim = (unit @ unit.T).tocsr()
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        self.similarity_ = _keep_top(sim, self.neighbours)

    def _scores(self, user: int) -> np.ndarray:
        m = self.data.matrix
        row = m[user]
        scores = np.asarray((row @ self.similarity_).todense()).ravel().astype(np.float64)
        scores[self.data.popularity == 0] = -np.inf  # no co-engagement: cannot be scored
        return scores

    def _similar(self, item: int) -> np.ndarray:
        sims = np.asarray(self.similarity_[item].todense()).ravel().astype(np.float64)
        sims[self.data.popularity == 0] = -np.inf
        return sims

    def _save_state(self, folder: Path) -> None:
        sp.save_npz(folder / "similarity.npz", self.similarity_)

    def _load_state(self, folder: Path) -> None:
        self.similarity_ = sp.load_npz(folder / "similarity.npz").tocsr()


def _keep_top(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep each row's ``k`` largest entries (ties: lower column first)."""
    rows, cols, vals = [], [], []
    for r in range(sim.shape[0]):
        lo, hi = sim.indptr[r], sim.indptr[r + 1]
        if hi == lo:
            continue
        c, v = sim.indices[lo:hi], sim.data[lo:hi]
        keep = np.lexsort((c, -v))[:k]
        rows.append(np.full(len(keep), r))
        cols.append(c[keep])
        vals.append(v[keep])
    if not rows:
        return sp.csr_matrix(sim.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=sim.shape
    )
