"""The progress callback every long-running step accepts: ``progress(iterable, total, desc)``.

It yields the items of ``iterable`` and may report them (a bar in the CLI, a counter polled by a
page). ``no_progress`` is the silent default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
ProgressFn = Callable[[Iterable, int, str], Iterable]


def no_progress(it: Iterable[T], total: int, desc: str) -> Iterable[T]:
    """Report nothing."""
    return it
