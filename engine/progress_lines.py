"""Progress as plain lines, for logs and CI where no terminal shows a bar.

Each loop reports a line such as::

    [sbert] encode items 8,000/20,000 texts 40 % · 160/s · ~75 s left

and, when it ends, one line with its count, rate and wall time. Lines are throttled: none sooner
than ``min_interval`` (5 s) after the previous one, and then only once the loop has moved on by
``min_fraction`` (10 %) or ``max_interval`` (30 s) has passed, so a fast loop prints one line, a
slow one about ten, and a very slow one a heartbeat every 30 s (a loop of unknown length: one
line every 5 s). The rate is the loop's average
so far, and the time left is what remains at that rate. The clock and the stream are injectable
(tests use a fake clock and a StringIO).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
SizeFn = Callable[[Any], int]  # how many units one item holds (``len`` for batches)


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``: short, and exact enough for a time left."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_rate(per_second: float, unit: str) -> str:
    """``1,234/s``, ``4.2/s``, or for slow loops the time per unit (``12.5 s/model``)."""
    if per_second <= 0:
        return "–/s"
    if per_second >= 10:
        return f"{per_second:,.0f}/s"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{1 / per_second:.1f} s/{singular(unit)}"


def singular(unit: str) -> str:
    """``steps`` → ``step``, ``batches`` → ``batch``: the unit of one item (for ``s/step``)."""
    if unit.endswith(("ches", "shes", "sses", "xes")):
        return unit[:-2]
    if unit.endswith("s") and not unit.endswith("ss"):
        return unit[:-1]
    return unit


def format_line(
    desc: str, done: int, total: int, unit: str, elapsed: float, *, final: bool = False
) -> str:
    """One progress line: count, percent, rate and time left (or, at the end, the wall time)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    count = f"{done:,}/{total:,}" if total > 0 else f"{done:,}"
    parts = [f"{desc} {count} {unit}"]
    if final:
        parts.append(f"· {format_rate(rate, unit)} · done in {format_duration(elapsed)}")
        return " ".join(parts)
    if total > 0:
        parts[0] += f" {min(100, int(100 * done / total))} %"
    parts.append(f"· {format_rate(rate, unit)}")
    if total > 0 and rate > 0:
        parts.append(f"· ~{format_duration(max(0, total - done) / rate)} left")
    return " ".join(parts)


class LineProgress:
    """A progress callback (see :mod:`engine.progress`) writing throttled lines to a stream."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 5.0,
        min_fraction: float = 0.10,
        max_interval: float = 30.0,
    ):
        self.stream = stream or sys.stderr
        self.clock = clock
        self.min_interval = min_interval
        self.min_fraction = min_fraction
        self.max_interval = max_interval

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _due(self, since_line: float, fraction_gained: float | None) -> bool:
        """Whether a line is due; ``fraction_gained`` is None when the total is unknown."""
        if since_line < self.min_interval:
            return False
        if fraction_gained is None or since_line >= self.max_interval:
            return True
        return fraction_gained >= self.min_fraction - 1e-9  # 0.3 - 0.2 < 0.1 in floats

    def __call__(
        self,
        it: Iterable[T],
        total: int,
        desc: str,
        *,
        unit: str = "it",
        size: SizeFn | None = None,
    ) -> Iterator[T]:
        start = last = self.clock()
        done, last_fraction = 0, 0.0
        for item in it:
            yield item
            done += size(item) if size else 1
            now = self.clock()
            fraction = done / total if total > 0 else 0.0
            gained = fraction - last_fraction if total > 0 else None
            if self._due(now - last, gained) and (total <= 0 or done < total):
                self._write(format_line(desc, done, total, unit, now - start))
                last, last_fraction = now, fraction
        self._write(format_line(desc, done, total, unit, self.clock() - start, final=True))
