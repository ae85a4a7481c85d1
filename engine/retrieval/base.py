"""The retriever contract: one query type, one result type, one registry.

Every retriever returns a :class:`SearchResult` — catalog rows and scores, best first, plus the
milliseconds spent in each stage of *this* query (timings are data, not log lines).
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from engine.catalog import Catalog


@dataclass(frozen=True)
class Query:
    """A search request: text, an already decoded RGB image, or both."""

    text: str | None = None
    image: Image.Image | None = None
    image_weight: float = 0.5  # for methods that fuse text and image

    @property
    def modalities(self) -> frozenset[str]:
        mods = set()
        if self.text:
            mods.add("text")
        if self.image is not None:
            mods.add("image")
        return frozenset(mods)


@dataclass
class SearchResult:
    """Ranked catalog rows (ints), their scores, and per-stage timings in milliseconds."""

    method: str
    rows: np.ndarray
    scores: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings_ms.values()))

    def to_dict(self, item_ids: np.ndarray) -> dict[str, Any]:
        """JSON-ready: external item ids instead of rows."""
        return {
            "method": self.method,
            "item_ids": [str(item_ids[r]) for r in self.rows],
            "scores": [round(float(s), 6) for s in self.scores],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "notes": list(self.notes),
        }


class StageTimer:
    """Collects stage durations: ``with timer("encode"): ...``."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000


def top_k(
    scores: np.ndarray, k: int, *, positive_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and scores of the ``k`` best scores, best first (ties broken by row for stability)."""
    scores = np.asarray(scores)
    candidates = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
    if len(candidates) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    k = min(k, len(candidates))
    s = scores[candidates]
    part = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
    order = np.lexsort((candidates[part], -s[part]))
    rows = candidates[part][order]
    return rows.astype(np.int64), scores[rows].astype(np.float32)


class Retriever(ABC):
    """Base class of every search method. Subclasses set ``name``/``modalities`` and ``_search``."""

    name: ClassVar[str]
    description: ClassVar[str]
    modalities: ClassVar[frozenset[str]]  # the query parts this method can use
    requires_all: ClassVar[bool] = False  # True when every modality above must be present
    requires: ClassVar[tuple[str, ...]] = ()  # build steps whose artifacts this method reads

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    @classmethod
    def built_modalities(cls, built_steps: set[str]) -> frozenset[str]:
        """The query parts this method can use on a catalog whose built steps are given."""
        return cls.modalities if set(cls.requires) <= built_steps else frozenset()

    def supports(self, query: Query) -> bool:
        """Whether this method can answer ``query``."""
        have = query.modalities & self.modalities
        return have == self.modalities if self.requires_all else bool(have)

    def search(self, query: Query, k: int = 10) -> SearchResult:
        """Top-``k`` results for ``query``; see :class:`SearchResult`."""
        timer = StageTimer()
        rows, scores, notes = self._search(query, k, timer)
        return SearchResult(self.name, rows, scores, timer.ms, notes)

    @abstractmethod
    def _search(
        self, query: Query, k: int, timer: StageTimer
    ) -> tuple[np.ndarray, np.ndarray, list[str]]: ...

    def warm_up(self) -> None:
        """Load whatever the first query would otherwise pay for."""
