"""Recommendations for the app and the CLI: history, per-model recommendations, cold start, why.

One :class:`RecommendationService` per catalog; it loads the recommender step's shared data once
and each model on first use. Unknown users and users without history get a clear message and
the hybrid's cold-start recommendations (content and popularity, NEW items included).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.recommend.base import Recommender, UnknownUserError
from engine.recommend.data import TAG_FIELDS, top_tags

COLD_START_MODEL = "hybrid"


@dataclass
class Recommendations:
    """Item ids and scores, best first, plus what the user should know about them."""

    model: str
    item_ids: np.ndarray
    scores: np.ndarray
    latency_ms: float
    notes: list[str] = field(default_factory=list)


class RecommendationService:
    """Serve the recommenders built into ``folder`` (the ``recommend`` step)."""

    def __init__(
        self,
        folder: Path,
        items: pd.DataFrame,
        interactions: pd.DataFrame,
        keywords: pd.DataFrame | None = None,
    ):
        self.folder = Path(folder)
        self.items = items
        self.keywords = keywords
        self.train = interactions[interactions["split"] == "train"]
        self._models: dict[str, Recommender] = {}
        self._shared_data = None  # the InteractionData every model shares, loaded once
        self._lock = threading.Lock()
        self._user_rows: dict | None = None  # user id -> rows of ``train`` (built on first use)
        # item id -> position, and the reasons' fields (title, category, top tags) by position
        self._attrs: tuple[dict[str, int], dict[str, np.ndarray]] | None = None

    @classmethod
    def for_catalog(cls, catalog) -> RecommendationService:
        """The service over a built catalog's ``recommend`` step."""
        return cls(
            catalog.step_dir("recommend"),
            catalog.items,
            catalog.table("interactions"),
            catalog.table("keywords"),
        )

    def models(self) -> list[str]:
        """The recommenders built for this catalog."""
        return sorted(p.name for p in self.folder.iterdir() if (p / "meta.json").is_file())

    def model(self, name: str) -> Recommender:
        """A built recommender, loaded once; unknown names list the valid choices."""
        if name not in self.models():
            raise ValueError(f"unknown recommender {name!r}; valid: {', '.join(self.models())}")
        with self._lock:
            if name not in self._models:
                self._models[name] = Recommender.load(self.folder / name, data=self._data())
            return self._models[name]

    def _data(self):
        from engine.recommend.data import InteractionData

        if self._shared_data is None:
            shared = self.folder / "data"
            first = shared if shared.is_dir() else self.folder / self.models()[0] / "data"
            self._shared_data = InteractionData.load(first)
        return self._shared_data

    def history(self, user_id: str, n: int = 12) -> pd.DataFrame:
        """The user's most recent training interactions (newest first)."""
        if self._user_rows is None:  # one pass over the table instead of one per call
            self._user_rows = self.train.groupby("user_id", sort=False).indices
        rows = self._user_rows.get(user_id)
        h = self.train.iloc[rows if rows is not None else []]
        return h.sort_values("timestamp", ascending=False, kind="stable").head(n)

    def recommend(self, user_id: str, model: str, k: int = 10) -> Recommendations:
        """Recommendations, falling back to cold start for unknown users or empty histories."""
        import time

        rec = self.model(model)
        t0 = time.perf_counter()
        notes: list[str] = []
        try:
            if not len(self.history(user_id, 1)):
                raise UnknownUserError(f"user {user_id!r} has no history before the cutoff")
            ids, scores = rec.recommend(user_id, k=k)
        except UnknownUserError as exc:
            notes.append(
                f"{exc}; showing cold-start recommendations (popular and new items "
                "that match the catalog's content)."
            )
            ids, scores = self.cold_start(k)
        return Recommendations(model, ids, scores, (time.perf_counter() - t0) * 1000, notes)

    def cold_start(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For someone we know nothing about: popular items, with NEW items mixed in."""
        data = self._data()
        pop = np.log1p(data.popularity.astype(np.float64))
        # NEW items have no popularity yet: give them the median popular item's score.
        pop[data.is_new] = np.median(pop[pop > 0]) if (pop > 0).any() else 0.0
        rows = np.argsort(-pop, kind="stable")[:k]
        return data.item_ids[rows], pop[rows].astype(np.float32)

    def why(self, user_id: str, item_id: str, n: int = 3) -> str:
        """A short reason: the nearest history items by content and the shared attributes."""
        data = self._data()
        pos, attrs = self._attributes()
        # the last 50 interactions whose items have content features and attributes (one the
        # features do not know is left out, so rows and ids stay aligned)
        hist_ids = np.array([i for i in self._history_ids(user_id)[:50]
                             if i in data.item_index and i in pos], dtype=object)
        target, item = data.item_index.get(str(item_id)), pos.get(str(item_id))
        if not len(hist_ids) or target is None or item is None:
            return "Popular or new in the catalog."
        rows = np.array([data.item_index[i] for i in hist_ids])
        sims = data.features[rows] @ data.features[target]
        near = hist_ids[np.argsort(-sims, kind="stable")[:n]]
        past = np.array([pos[i] for i in hist_ids])
        shared = []
        for f in ("category", *TAG_FIELDS):
            value = attrs[f][item]
            share = (attrs[f][past] == value).mean() if value else 0.0
            if value and share >= 0.2:
                shared.append(f"{value} ({share:.0%} of history)")
        reason = "Like " + ", ".join(attrs["title"][pos[i]] for i in near) + "."
        if shared:
            reason += " Matches your taste for " + ", ".join(shared) + "."
        return reason

    def _history_ids(self, user_id: str) -> np.ndarray:
        """The item ids of the user's training interactions, newest first."""
        return self.history(user_id, len(self.train))["item_id"].to_numpy(dtype=object)

    def _attributes(self) -> tuple[dict[str, int], dict[str, np.ndarray]]:
        """Item id -> position, and per field (title, category, top tags) an array of values by
        position (built once)."""
        if self._attrs is None:
            tags = top_tags(self.items, self.keywords).drop(columns="category")
            by_id = pd.concat([self.items.reset_index(drop=True), tags], axis=1)
            pos = {str(i): p for p, i in enumerate(by_id["item_id"])}
            attrs = {f: by_id[f].to_numpy() for f in ("title", "category", *TAG_FIELDS)}
            self._attrs = (pos, attrs)
        return self._attrs
