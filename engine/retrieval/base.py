"""The retriever contract: one query type, one result type, one registry.

Every retriever returns a :class:`SearchResult` — catalog rows and scores, best first, plus the
milliseconds spent in each stage of *this* query (timings are data, not log lines). A retriever
class declares what it is: the query parts it can use, the build steps it needs, the methods it
fuses, whether it explains its results, and its parameters with their defaults. Pages, the
benchmark and the contract tests read these declarations; nothing lists methods by hand.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine.registry import Registry

if TYPE_CHECKING:
    from PIL import Image

    from engine.catalog import Catalog


@dataclass(frozen=True)
class Query:
    """A search request: text, an already decoded RGB image, or both.

    When the catalog understands queries (``engine.query``), ``rewrites`` holds the text each
    kind of method should search with (``lexical``: catalog words and synonyms, ``dense``: the
    query in catalog words, ``clip``: a caption-like prompt), ``mask`` the items the query's
    constraints allow (price, NEW, "not black") and ``understood`` the interpretation itself.
    """

    text: str | None = None
    image: Image.Image | None = None
    image_weight: float = 0.5  # for methods that fuse text and image
    rewrites: dict[str, str] = field(default_factory=dict)
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    understood: Any = field(default=None, repr=False, compare=False)

    def text_as(self, kind: str) -> str:
        """The text a method of ``kind`` (lexical, dense, clip) searches with."""
        return self.rewrites.get(kind) or self.text or ""

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
    interpretation: Any = None  # what the text was understood as (engine.query), if anything

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
            **(
                {"interpretation": self.interpretation.to_dict()}
                if self.interpretation is not None
                else {}
            ),
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


class Retriever(ABC):
    """Base class of every search method. Subclasses set ``name``/``modalities`` and ``_search``."""

    name: ClassVar[str]
    description: ClassVar[str]
    modalities: ClassVar[frozenset[str]]  # the query parts this method can use
    requires_all: ClassVar[bool] = False  # True when every modality above must be present
    requires: ClassVar[tuple[str, ...]] = ()  # build steps whose artifacts this method reads
    fuses: ClassVar[tuple[str, ...]] = ()  # methods whose results or scores it combines
    mixes_modalities: ClassVar[bool] = False  # blends text and image of one query (image_weight)
    explains: ClassVar[bool] = False  # has explain(text, row): why a result is where it is
    params: ClassVar[dict[str, Any]] = {}  # parameters and their defaults
    order: ClassVar[int] = 100  # where it is listed (lexical first, fusers last)

    def __init__(self, catalog: Catalog, **params: Any):
        unknown = set(params) - set(self.params)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for method {self.name!r}; "
                f"valid: {', '.join(self.params) or 'none'}"
            )
        self.catalog = catalog
        for key, default in self.params.items():
            setattr(self, key, params.get(key, default))

    @classmethod
    def built_modalities(cls, built_steps: set[str]) -> frozenset[str]:
        """The query parts this method can use on a catalog whose built steps are given."""
        return cls.modalities if set(cls.requires) <= built_steps else frozenset()

    def supports(self, query: Query) -> bool:
        """Whether this method can answer ``query``."""
        have = query.modalities & self.modalities
        return have == self.modalities if self.requires_all else bool(have)

    def search(self, query: Query, k: int = 10) -> SearchResult:
        """Top-``k`` results for ``query``; see :class:`SearchResult`.

        A query with constraints (``query.mask``) asks the method for more candidates and keeps
        the allowed ones; when fewer than ``k`` remain, a note says so.
        """
        timer = StageTimer()
        if query.mask is None:
            rows, scores, notes = self._search(query, k, timer)
            return SearchResult(self.name, rows, scores, timer.ms, notes)
        allowed = int(query.mask.sum())
        fetch = min(len(query.mask), max(k * FILTER_OVERFETCH, FILTER_MIN_POOL))
        rows, scores, notes = self._search(query, fetch, timer)
        with timer("filter"):
            keep = query.mask[rows]
            rows, scores = rows[keep][:k], scores[keep][:k]
        if len(rows) < k:
            notes = [*notes, _filter_note(len(rows), allowed, len(query.mask))]
        return SearchResult(self.name, rows, scores, timer.ms, notes)

    @abstractmethod
    def _search(
        self, query: Query, k: int, timer: StageTimer
    ) -> tuple[np.ndarray, np.ndarray, list[str]]: ...

    def warm_up(self) -> None:
        """Load whatever the first query would otherwise pay for."""

    def explain(self, text: str, row: int) -> dict[str, Any]:
        """Why ``row`` ranks where it does for ``text`` (only when the class ``explains``)."""
        raise NotImplementedError(f"method {self.name!r} does not explain its results")


FILTER_OVERFETCH = 8  # with constraints, ask for 8x the results (at least FILTER_MIN_POOL)
FILTER_MIN_POOL = 400


def _filter_note(found: int, allowed: int, total: int) -> str:
    if allowed == 0:
        return "No product matches the query's constraints (price, new arrivals, exclusions)."
    return (
        f"{found} result(s) among the {allowed:,} of {total:,} products that match the query's "
        "constraints."
    )


RETRIEVERS: Registry[type[Retriever]] = Registry("method", "engine.retrieval")
register_retriever = RETRIEVERS.register
