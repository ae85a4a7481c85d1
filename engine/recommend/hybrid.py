"""Hybrid recommender: a tuned blend of collaborative and content / two-tower scores.

score(u, i) = Σ_c w_c · z_c(u, i), with z_c each component's scores standardised per user.
Collaborative components (``als``, ``popularity``) carry no signal for items without train
interactions (NEW items): there their z is imputed by the weighted mean of the content-side z's
(``content``, ``two_tower``), so those scores take over. Users with fewer than ``min_history``
train interactions use the *cold* weights: ALS weight 0 and at least ``cold_content_weight`` on
content + two-tower (popularity may keep the rest).
Both weight sets come from a grid search on a validation split: the last ``val_fraction`` of the
train period, held out chronologically (the test split is never used); components are then refit
on all train data. NEW items cannot be validated (none launch before the cutoff), so their
imputation is a design choice, not a tuned one.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.evaluation.metrics import ndcg_at_k
from engine.recommend.base import (
    BATCH_CELLS,
    RECOMMENDERS,
    Recommender,
    register_recommender,
    top_rows,
    zscore,
)
from engine.recommend.data import InteractionData

COLLABORATIVE = ("als", "popularity")
WEIGHTS_FILE = "hybrid.json"


def weight_grid(names: tuple[str, ...], step: float, zero: tuple[str, ...] = ()) -> np.ndarray:
    """Every weight vector on the simplex with the given step (``zero`` components fixed at 0)."""
    n = round(1.0 / step)
    free = [i for i, c in enumerate(names) if c not in zero]
    rows = []
    for combo in itertools.product(range(n + 1), repeat=len(free)):
        if sum(combo) == n:
            w = np.zeros(len(names))
            w[free] = np.array(combo) / n
            rows.append(w)
    return np.array(rows)


def blend(z: np.ndarray, weights: np.ndarray, collaborative: np.ndarray) -> np.ndarray:
    """Blend z-scores ``z`` (components × items, NaN = missing) for each weight row.

    Missing collaborative z's are imputed with the weighted mean of the content-side z's (equal
    weights if the content side has none). Items nobody can score get -inf.
    """
    weights = np.atleast_2d(weights)
    side = ~collaborative
    zc = np.nan_to_num(z[side])
    wc = weights[:, side]
    norm = wc.sum(1, keepdims=True)
    wc_eff = np.where(norm > 0, wc / np.where(norm > 0, norm, 1), 1.0 / max(side.sum(), 1))
    impute = wc_eff @ zc
    out = weights[:, side] @ zc
    zk = z[collaborative]
    missing = np.isnan(zk)
    out += (
        weights[:, collaborative] @ np.nan_to_num(zk)
        + (weights[:, collaborative] @ missing) * impute
    )
    out[:, np.isnan(z[side]).all(0)] = -np.inf
    return out


def _component_z(name: str, scores: np.ndarray, data: InteractionData) -> np.ndarray:
    """One component's scores for one user, standardised; a collaborative component cannot
    score items without train interactions (their z is imputed in :func:`blend`)."""
    s = np.asarray(scores, dtype=np.float64)
    if name in COLLABORATIVE:
        s = np.where(data.popularity <= 0, -np.inf, s)
    return zscore(s)


@register_recommender
class HybridRecommender(Recommender):
    """Collaborative + content blend with cold-start fallback; weights tuned on validation."""

    name = "hybrid"
    description = "ALS + content + two-tower + popularity blend, tuned on a validation split"
    fuses = ("als", "content", "two_tower", "popularity")

    def __init__(
        self,
        *,
        components: tuple[str, ...] = fuses,
        params: dict[str, dict] | None = None,
        min_history: int = 5,
        cold_content_weight: float = 0.5,
        val_fraction: float = 0.15,
        val_users: int = 400,
        grid_step: float = 0.25,
        k: int = 10,
        seed: int = 42,
    ):
        super().__init__()
        self.components, self.params = tuple(components), params or {}
        self.min_history, self.cold_content_weight = min_history, cold_content_weight
        self.val_fraction, self.val_users = val_fraction, val_users
        self.grid_step, self.k, self.seed = grid_step, k, seed
        self.models_: dict[str, Recommender] = {}
        self.weights_: dict[str, dict[str, float]] = {}
        self.validation_: dict = {}

    def _make(self, name: str) -> Recommender:
        return RECOMMENDERS.get(name)(**self.params.get(name, {}))

    def fit(
        self, data: InteractionData, *, fitted: dict[str, Recommender] | None = None
    ) -> HybridRecommender:
        """Tune on a chronological validation split, then use components fit on all of ``data``.

        ``fitted`` may pass components already fit on this very ``data`` (saves refitting).
        """
        if all(c in COLLABORATIVE for c in self.components):
            raise ValueError(f"hybrid needs a content-side component; got {self.components}")
        fit_data, val = data.split_validation(self.val_fraction)
        val_models = {c: self._make(c).fit(fit_data) for c in self.components}
        self._tune(fit_data, val, val_models)
        fitted = fitted or {}
        self.models_ = {
            c: fitted[c] if c in fitted and fitted[c].data_ is data else self._make(c).fit(data)
            for c in self.components
        }
        self.data_ = data
        return self

    def _fit(self, data: InteractionData) -> None:  # pragma: no cover - fit() is overridden
        raise NotImplementedError

    def _z(
        self,
        models: dict[str, Recommender],
        data: InteractionData,
        user: int,
        use: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per-component z-scores (rows of unused components are zeros)."""
        z = np.zeros((len(self.components), data.n_items), dtype=np.float32)
        for r, c in enumerate(self.components):
            if use is None or use[r]:
                z[r] = _component_z(c, models[c]._scores(user), data)
        return z

    def _z_batches(
        self, models: dict[str, Recommender], data: InteractionData, users: np.ndarray
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(user, z)`` for each of ``users``, as :meth:`_z` gives them, with each component
        scoring a batch of users in one call (one matrix product where it has one)."""
        batch = max(1, BATCH_CELLS // max(data.n_items, 1))
        for start in range(0, len(users), batch):
            chunk = np.asarray(users[start : start + batch], dtype=np.int64)
            scores = [models[c]._scores_many(chunk) for c in self.components]
            for j, u in enumerate(chunk):
                z = np.zeros((len(self.components), data.n_items), dtype=np.float32)
                for r, c in enumerate(self.components):
                    z[r] = _component_z(c, scores[r][j], data)
                yield int(u), z

    def _tune(self, data: InteractionData, val, models: dict[str, Recommender]) -> None:
        collab = np.array([c in COLLABORATIVE for c in self.components])
        rel: dict[int, set[int]] = {}
        for u, i in zip(val["user_id"], val["item_id"]):
            rel.setdefault(data.user_index[u], set()).add(data.item_index[i])
        rng = np.random.default_rng(self.seed)
        users = np.array(sorted(rel))
        short = users[data.history_lengths[users] < self.min_history]
        long = users[data.history_lengths[users] >= self.min_history]
        groups = {  # the users each weight set will serve
            "warm": rng.choice(long, min(self.val_users, len(long)), replace=False),
            "cold": rng.choice(short, min(self.val_users, len(short)), replace=False),
        }
        grids = {
            "warm": weight_grid(self.components, self.grid_step),
            "cold": weight_grid(self.components, self.grid_step, zero=("als",)),
        }
        content_side = grids["cold"][:, ~collab].sum(1)
        grids["cold"] = grids["cold"][content_side >= self.cold_content_weight - 1e-9]
        self.validation_ = {"val_fraction": self.val_fraction, "metric": f"ndcg@{self.k}"}
        for group, sample in groups.items():
            grid = grids[group]
            totals = np.zeros(len(grid))
            for u, z in self._z_batches(models, data, sample):
                scores = blend(z, grid, collab)
                scores[:, data.is_new] = -np.inf  # not launched during the validation period
                seen = data.matrix.indices[data.matrix.indptr[u] : data.matrix.indptr[u + 1]]
                scores[:, seen] = -np.inf
                qrels = {i: 1 for i in rel[int(u)]}
                totals += [ndcg_at_k(top_rows(s, self.k), qrels, self.k) for s in scores]
            if len(sample) >= 10:
                best = int(np.argmax(totals))
                w = grid[best]
            else:  # too few validation users to tune on: content side, equal weights
                w, best = (~collab).astype(float) / (~collab).sum(), None
            self.weights_[group] = {c: round(float(x), 4) for c, x in zip(self.components, w)}
            self.validation_[group] = {
                "users": int(len(sample)),
                "best_ndcg": round(float(totals[best] / len(sample)), 4)
                if best is not None
                else None,
                "grid_size": int(len(grid)),
            }

    def _weights_for(self, user: int) -> np.ndarray:
        group = "cold" if self.data.history_lengths[user] < self.min_history else "warm"
        return np.array([self.weights_[group][c] for c in self.components])

    def _used(self, w: np.ndarray, collab: np.ndarray) -> np.ndarray:
        """The components a weight vector needs (imputation needs the content side)."""
        use = w > 0
        if (use & collab).any() and not (use & ~collab).any():
            use |= ~collab
        return use

    def _scores(self, user: int) -> np.ndarray:
        collab = np.array([c in COLLABORATIVE for c in self.components])
        w = self._weights_for(user)
        return blend(self._z(self.models_, self.data, user, self._used(w, collab)), w, collab)[0]

    def _scores_many(self, users: np.ndarray) -> np.ndarray:
        """Each component scores the batch in one call (a matrix product where it has one);
        the z-scores and the blend are per user, as in :meth:`_scores`."""
        data, users = self.data, np.asarray(users, dtype=np.int64)
        collab = np.array([c in COLLABORATIVE for c in self.components])
        weights = np.stack([self._weights_for(int(u)) for u in users])
        use = np.stack([self._used(w, collab) for w in weights])
        out = np.empty((len(users), data.n_items), dtype=np.float64)
        z = np.zeros((len(self.components), len(users), data.n_items), dtype=np.float32)
        for r, c in enumerate(self.components):
            who = np.flatnonzero(use[:, r])
            if not len(who):
                continue
            s = np.asarray(self.models_[c]._scores_many(users[who]), dtype=np.float64)
            for j, row in zip(who, s):
                z[r, j] = _component_z(c, row, data)
        for j, w in enumerate(weights):
            out[j] = blend(z[:, j], w, collab)[0]
        return out

    def _similar(self, item: int) -> np.ndarray:
        names = [c for c in self.components if c != "popularity"]
        z = np.stack([zscore(np.asarray(self.models_[c]._similar(item), float)) for c in names])
        w = np.array([self.weights_["warm"][c] for c in names])
        collab = np.array([c in COLLABORATIVE for c in names])
        return blend(z, w if w.sum() > 0 else np.ones(len(names)), collab)[0]

    def _save_state(self, folder: Path) -> None:
        state = {"weights": self.weights_, "validation": self.validation_}
        (folder / WEIGHTS_FILE).write_text(json.dumps(state, indent=2))
        for c, model in self.models_.items():
            model._save_model(folder / c)

    def _load_state(self, folder: Path) -> None:
        state = json.loads((folder / WEIGHTS_FILE).read_text())
        self.weights_, self.validation_ = state["weights"], state["validation"]
        self.models_ = {c: Recommender.load(folder / c, data=self.data) for c in self.components}
