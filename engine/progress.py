"""The progress callback every long-running step accepts, and the reporters behind it.

A callback is ``progress(iterable, total, desc, *, unit="it", size=None)``: it yields the items of
``iterable`` and may report them. ``total`` counts units; ``size(item)`` is how many units one
item holds (``len`` for batches, so "8,000/20,000 texts" rather than "8/20 batches"). Reporters:

- :func:`no_progress`: the silent default;
- :func:`bar_progress`: a tqdm bar with rate and ETA, for a terminal;
- :class:`engine.progress_lines.LineProgress`: throttled plain lines with rate and time left, for
  logs and CI (``make build > log``), where a bar would be noise or nothing at all.

:func:`progress_for` picks the bar or the lines from whether the stream is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

from engine.progress_lines import LineProgress, SizeFn

T = TypeVar("T")
ProgressFn = Callable[..., Iterable]


def no_progress(it: Iterable[T], total: int, desc: str, **_: Any) -> Iterable[T]:
    """Report nothing."""
    return it


def with_prefix(progress: ProgressFn, prefix: str) -> ProgressFn:
    """``progress`` with every description prefixed (``[sbert] encode items``)."""

    def prefixed(it: Iterable[T], total: int, desc: str, **kw: Any) -> Iterable[T]:
        return progress(it, total, f"{prefix} {desc}", **kw)

    return prefixed


def bar_progress(stream: TextIO | None = None) -> ProgressFn:
    """A tqdm bar on ``stream`` (stderr by default): count, rate and ETA; gone when done."""

    def bar(
        it: Iterable[T], total: int, desc: str, *, unit: str = "it", size: SizeFn | None = None
    ) -> Iterator[T]:
        from tqdm import tqdm

        with tqdm(
            total=total,
            desc=f"  {desc}",
            unit=f" {unit}" if unit != "it" else unit,
            file=stream or sys.stderr,
            leave=False,
            mininterval=0.5,
            dynamic_ncols=True,
        ) as pbar:
            for item in it:
                yield item
                pbar.update(size(item) if size else 1)

    return bar


def progress_for(stream: TextIO | None = None) -> ProgressFn:
    """The reporter for ``stream``: a bar on a terminal, throttled lines anywhere else."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bar_progress(stream) if isatty is not None and isatty() else LineProgress(stream)
