"""The recommendation service as the app serves it: the same answers, memoised per user.

The For you page asks for one user's history once per card (``why`` reads the last 50
interactions). :class:`ServingRecommendations` keeps the last users' sorted histories, so a
reason costs no sort of the user's rows; the reason itself is
:meth:`RecommendationService.why`, the same code for the app, the API and the CLI.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from engine.recommend.service import RecommendationService

RECENT_USERS = 64  # sorted histories kept (a few KB each)


class ServingRecommendations(RecommendationService):
    """:class:`RecommendationService` with per-user histories and item attributes memoised."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._memo_lock = threading.Lock()
        self._recent: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}  # user id -> history, ids

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

    def _history_ids(self, user_id: str) -> np.ndarray:
        return self._sorted_history(user_id)[1]
