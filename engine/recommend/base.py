"""The recommender contract (implicit/sklearn style) and its errors.

A recommender's keyword-only ``__init__`` only stores hyper-parameters; ``fit(data)`` learns and
returns self; before that every query raises :class:`NotFittedError`. Subclasses implement
``_fit``, ``_scores`` (one score per catalog item; ``-inf`` = cannot score that item, so it is
never recommended) and optionally ``_similar`` / ``_save_state`` / ``_load_state``. Models are
saved as ``meta.json`` + ``.npy``/``.safetensors`` files (never pickle) next to their data.
"""

from __future__ import annotations

import inspect
import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from engine.recommend.data import InteractionData
from engine.registry import Registry
from engine.vectors import check_k, top_k

FORMAT_VERSION = 1
META_FILE = "meta.json"
BATCH_CELLS = 2_000_000  # users × items scored at once by recommend_many (16 MB of float64)


class NotFittedError(RuntimeError):
    """A query or save before ``fit()`` / ``load()``."""


class UnknownUserError(ValueError):
    """A user id that is not in the model's data."""


class UnknownItemError(ValueError):
    """An item id that is not in the model's catalog."""


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first (ties: lower index first)."""
    return top_k(scores, k, finite_only=True)[0]


def zscore(scores: np.ndarray) -> np.ndarray:
    """Standardise the finite entries (others become NaN): comparable scales for blending."""
    scores = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(scores)
    if ok.all():
        return ((scores - scores.mean()) / (scores.std() + 1e-9)).astype(np.float32)
    out = np.full(len(scores), np.nan, dtype=np.float32)
    if ok.any():
        s = scores[ok]
        out[ok] = (s - s.mean()) / (s.std() + 1e-9)
    return out


class Recommender(ABC):
    """Base class of every recommender: subclasses set ``name``, implement ``_fit``/``_scores``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    scores_new_items: ClassVar[bool] = True  # False: NEW items are never recommended
    fuses: ClassVar[tuple[str, ...]] = ()  # recommenders it blends (fitted before it)
    parallel_fit: ClassVar[bool] = False  # fits on every build thread (else one: torch models)

    def __init__(self) -> None:
        self.data_: InteractionData | None = None

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """The keyword-only constructor arguments (hyper-parameters)."""
        sig = inspect.signature(type(self).__init__)
        return {
            p.name: getattr(self, p.name)
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    @classmethod
    def build_params(cls, *, seed: int, threads: int) -> dict[str, Any]:
        """The constructor arguments the build sets: the seed and a thread count, where taken.

        Every other hyper-parameter is the constructor's default, so a recommender's parameters
        live in one place: its signature.
        """
        taken = inspect.signature(cls.__init__).parameters
        out: dict[str, Any] = {}
        if "seed" in taken:
            out["seed"] = seed
        if "threads" in taken:
            out["threads"] = threads if cls.parallel_fit else 1
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def fit(self, data: InteractionData) -> Recommender:
        """Learn from ``data`` (train interactions only); returns self."""
        self._fit(data)
        self.data_ = data
        return self

    @abstractmethod
    def _fit(self, data: InteractionData) -> None: ...

    @abstractmethod
    def _scores(self, user: int) -> np.ndarray:
        """One float score per catalog item for user row ``user`` (-inf: cannot score)."""

    def _scores_many(self, users: np.ndarray) -> np.ndarray:
        """``_scores`` of several user rows at once (users × items); subclasses whose scores
        are a matrix product override it to score a batch in one product."""
        return np.stack([np.asarray(self._scores(int(u)), dtype=np.float64) for u in users])

    def _similar(self, item: int) -> np.ndarray:
        """One similarity per catalog item to item row ``item`` (-inf: cannot score)."""
        raise NotImplementedError(f"{self.name} has no item similarities")

    # ------------------------------------------------------------------ lookups
    @property
    def data(self) -> InteractionData:
        if self.data_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load() first")
        return self.data_

    def user_row(self, user_id: str) -> int:
        """The row of ``user_id``; :class:`UnknownUserError` if the model never saw it."""
        data = self.data
        row = data.user_index.get(str(user_id))
        if row is None:
            raise UnknownUserError(
                f"unknown user {user_id!r}: not among the {data.n_users} users this "
                f"{self.name!r} model was fitted on (e.g. {data.user_ids[0]!r})"
            )
        return row

    def item_row(self, item_id: str) -> int:
        """The row of ``item_id``; :class:`UnknownItemError` if it is not in the catalog."""
        data = self.data
        row = data.item_index.get(str(item_id))
        if row is None:
            raise UnknownItemError(
                f"unknown item {item_id!r}: not among the {data.n_items} catalog items of this "
                f"{self.name!r} model (e.g. {data.item_ids[0]!r})"
            )
        return row

    # ------------------------------------------------------------------ queries
    def recommend(
        self, user_id: str, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item ids (str) and scores for ``user_id``, best first."""
        k = _check_k(k)
        user = self.user_row(user_id)
        return self._top(user, np.array(self._scores(user), dtype=np.float64), k, exclude_seen)

    def _top(
        self, user: int, scores: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids and scores of the top ``k`` of ``scores`` (the user's, changed in place: their
        train items are set to -inf when ``exclude_seen``)."""
        if exclude_seen:
            m = self.data.matrix
            scores[m.indices[m.indptr[user] : m.indptr[user + 1]]] = -np.inf
        rows = top_rows(scores, k)
        return self.data.item_ids[rows], scores[rows].astype(np.float32)

    def recommend_many(
        self,
        user_ids: list[str],
        k: int = 10,
        exclude_seen: bool = True,
        batch: int | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`recommend` for each of ``user_ids`` (same results, in order), scoring
        ``batch`` users at a time (default: ``BATCH_CELLS`` scores per batch). For offline
        evaluation: one matrix product per batch instead of one pass over the items per user."""
        k = _check_k(k)
        batch = batch or max(1, BATCH_CELLS // max(self.data.n_items, 1))
        if type(self).recommend is not Recommender.recommend:  # a model with its own top-k
            return [self.recommend(u, k, exclude_seen) for u in user_ids]
        rows = np.array([self.user_row(u) for u in user_ids], dtype=np.int64)
        out = []
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            scores = np.array(self._scores_many(chunk), dtype=np.float64)
            out += [self._top(int(u), scores[j], k, exclude_seen) for j, u in enumerate(chunk)]
        return out

    def score_items(self, user_id: str, item_indices: np.ndarray) -> np.ndarray:
        """Scores of the given item rows for ``user_id`` (for re-ranking); always finite.

        Items the model cannot score get the user's lowest score minus 1.
        """
        user = self.user_row(user_id)
        idx = np.asarray(item_indices, dtype=np.int64)
        scores = np.asarray(self._scores(user), dtype=np.float64)
        finite = np.isfinite(scores)
        floor = scores[finite].min() - 1.0 if finite.any() else 0.0
        return np.where(finite[idx], scores[idx], floor).astype(np.float32)

    def similar_items(self, item_id: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to ``item_id`` (never itself) and their scores."""
        k = _check_k(k)
        item = self.item_row(item_id)
        sims = np.array(self._similar(item), dtype=np.float64)
        sims[item] = -np.inf
        rows = top_rows(sims, k)
        return self.data.item_ids[rows], sims[rows].astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path, *, data_folder: Path | None = None) -> None:
        """Write the model (meta.json + its arrays) into ``folder`` and its data to ``data/``.

        With ``data_folder`` the data is not written: meta.json refers to that folder instead
        (relative path), for several models sharing one ``InteractionData.save``.
        """
        folder = Path(folder)
        if data_folder is None:
            self.data.save(folder / "data")
            ref = "data"
        else:
            _ = self.data  # refuses before fit
            ref = os.path.relpath(Path(data_folder), folder)
        self._save_model(folder, data_ref=ref)

    def _save_model(self, folder: Path, data_ref: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"name": self.name, "format": FORMAT_VERSION, "params": self.get_params()}
        if data_ref is not None:
            meta["data"] = data_ref
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=_jsonable))
        self._save_state(folder)

    def _save_state(self, folder: Path) -> None:
        """Write the learned state (override)."""

    def _load_state(self, folder: Path) -> None:
        """Restore the learned state written by ``_save_state`` (override)."""

    @classmethod
    def load(cls, folder: Path, data: InteractionData | None = None) -> Recommender:
        """Load a saved model; on the base class the right subclass is chosen from meta.json."""
        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        klass = RECOMMENDERS.get(meta["name"]) if cls is Recommender else cls
        if klass.name != meta["name"]:
            raise ValueError(f"{folder} holds a {meta['name']!r} model, not {klass.name!r}")
        model = klass(**meta["params"])
        if data is None:
            data = InteractionData.load(folder / meta.get("data", "data"))
        model.data_ = data
        model._load_state(folder)
        return model


def _check_k(k: object) -> int:
    try:
        return check_k(k)
    except (TypeError, ValueError):
        raise ValueError(f"k must be an integer >= 1, got {k!r}") from None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple | list):
        return list(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store {obj!r} in meta.json")


RECOMMENDERS: Registry[type[Recommender]] = Registry("recommender", "engine.recommend")
register_recommender = RECOMMENDERS.register
