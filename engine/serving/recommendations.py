"""The recommendation service as the app serves it: the same answers, memoised per user.

The For you page asks for one user's history once per card (``why`` reads the last 50
interactions and the attributes of each). :class:`ServingRecommendations` keeps the last users'
sorted histories and the items' attributes as plain arrays, so a reason costs no pandas row
lookups. It lives here, not in ``engine/recommend`` (whose code is in the recommend step's
build hash), and its answers are those of :class:`RecommendationService`.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from engine.recommend.data import TAG_FIELDS, top_tags
from engine.recommend.service import RecommendationService

RECENT_USERS = 64  # sorted histories kept (a few KB each)


class ServingRecommendations(RecommendationService):
    """:class:`RecommendationService` with per-user histories and item attributes memoised."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._memo_lock = threading.Lock()
        self._recent: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}  # user id -> history, ids
        self._attrs: tuple[dict[str, int], dict[str, np.ndarray]] | None = None

    def history(self, user_id: str, n: int = 12) -> pd.DataFrame:
        """The user's most recent training interactions (newest first)."""
        return self._sorted_history(user_id)[0].head(n)

    def _sorted_history(self, user_id: str) -> tuple[pd.DataFrame, np.ndarray]:
        """All the user's training interactions, newest first, and their item ids as an array
        (the last users memoised: a reason per card would otherwise convert them each time)."""
        with self._memo_lock:
            hit = self._recent.get(user_id)
        if hit is not None:
            return hit
        h = super().history(user_id, len(self.train))
        got = (h, h["item_id"].to_numpy(dtype=object))
        with self._memo_lock:
            self._recent[user_id] = got
            while len(self._recent) > RECENT_USERS:
                self._recent.pop(next(iter(self._recent)))
        return got

    def why(self, user_id: str, item_id: str, n: int = 3) -> str:
        """A short reason: the nearest history items by content and the shared attributes."""
        data = self._data()
        # the last 50 interactions whose items have content features (an item the features or
        # the attributes do not know is left out, so positions and ids stay aligned)
        pos, attrs = self._attributes()
        hist_ids = np.array([i for i in self._sorted_history(user_id)[1][:50]
                             if i in data.item_index and i in pos], dtype=object)
        target, item = data.item_index.get(str(item_id)), pos.get(str(item_id))
        if not len(hist_ids) or target is None or item is None:
            return "Popular or new in the catalog."
        rows = np.array([data.item_index[i] for i in hist_ids])
        sims = data.features[rows] @ data.features[target]
        near = hist_ids[np.argsort(-sims)[:n]]
        past = np.array([pos[i] for i in hist_ids])
        shared = []
        for f in ("category", *TAG_FIELDS):
            value = attrs[f][item]
            share = (attrs[f][past] == value).mean() if value else 0.0
            if value and share >= 0.2:
                shared.append(f"{value} ({share:.0%} of history)")
        titles = ", ".join(attrs["title"][pos[i]] for i in near)
        reason = f"Like {titles}."
        if shared:
            reason += " Matches your taste for " + ", ".join(shared) + "."
        return reason

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
