"""A running build's state in a small JSON file, so that the app can show its progress.

``make run`` starts the app at once and builds a missing or stale catalog beside it; the app
reads ``<artifacts>/<name>/build-state.json`` and shows each step's status, what it is doing
(the same progress line the build log prints) and the time it took. The build writes the file
atomically at every step start and end, and at most once a second in between. A reader trusts
it only while the process that wrote it is alive (:func:`live_build`): a build that was killed
leaves a state that says ``running`` but names a dead process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.artifacts import atomic_write_json
from engine.progress import ProgressFn
from engine.progress_lines import format_line

STATE_FILE = "build-state.json"
WRITE_INTERVAL = 1.0  # seconds between progress writes (a step's start and end always write)
_STEP_PREFIX = re.compile(r"^\[(?P<step>[\w-]+)\] (?P<rest>.*)$")


class LiveState:
    """The writer: one per build, owned by :func:`engine.pipeline.run.run_build`."""

    def __init__(self, root: Path, name: str, steps: list[str], skipped: list[str],
                 last_seconds: dict[str, float], *, pack: float = 0.5,
                 clock: Callable[[], float] = time.time):
        """``pack``: wall seconds per second of step time, for the time left (the last build's
        ratio, or 1 / the cores it may use)."""
        self.path, self.clock = Path(root) / STATE_FILE, clock
        self._lock, self._written = threading.Lock(), 0.0
        now = clock()
        self.state: dict[str, Any] = {
            "name": name, "pid": os.getpid(), "pid_start": process_start(os.getpid()),
            "pack": pack, "status": "running", "started_at": now,
            "updated_at": now, "error": None,
            "order": list(steps),  # the file's keys are sorted: the steps' order is kept here
            "steps": {
                s: {"status": "skipped" if s in skipped else "pending",
                    "last_seconds": last_seconds.get(s), "started_at": None, "seconds": None,
                    "activity": None}
                for s in steps
            },
        }
        self._write(force=True)

    def started(self, step: str) -> None:
        self._update(step, status="running", started_at=self.clock(), force=True)

    def finished(self, step: str, seconds: float | None, *, status: str = "built") -> None:
        """``step`` ended: ``built``, ``failed`` or ``stopped`` (Ctrl+C, SIGTERM)."""
        self._update(step, status=status, activity=None,
                     seconds=None if seconds is None else round(seconds, 1), force=True)

    def activity(self, step: str, line: str, *, force: bool = False) -> None:
        """What ``step`` is doing now (a progress line without its ``[step]`` prefix); written
        at most once a second unless ``force``."""
        self._update(step, activity=line, force=force)

    def line(self, text: str) -> None:
        """A ``[step] ...`` progress line (a child process's, already throttled at its source:
        always written): recorded as that step's activity."""
        m = _STEP_PREFIX.match(text.strip())
        if m and m["step"] in self.state["steps"]:
            self.activity(m["step"], m["rest"], force=True)

    def close(self, status: str, error: str | None = None) -> None:
        """The build ended: ``done``, ``failed`` or ``stopped``."""
        with self._lock:
            self.state.update(status=status, error=error)
        self._write(force=True)

    def tee(self, progress: ProgressFn, step: str) -> ProgressFn:
        """``progress`` that also records each loop's count as ``step``'s activity (for a step
        that runs in this process)."""

        def teed(it: Iterable[Any], total: int, desc: str, **kw: Any) -> Iterator[Any]:
            size, unit, t0, done = kw.get("size"), kw.get("unit", "it"), time.perf_counter(), 0
            for item in progress(it, total, desc, **kw):
                yield item
                done += size(item) if size else 1
                if self.clock() - self._written >= WRITE_INTERVAL:
                    self.activity(step, format_line(desc, done, total, unit,
                                                    time.perf_counter() - t0))
            # the loop's end, always: a throttled last count would stay
            self.activity(step, format_line(desc, done, total, unit, time.perf_counter() - t0,
                                            final=True), force=True)

        return teed

    def _update(self, step: str, *, force: bool = False, **fields: Any) -> None:
        with self._lock:
            rec = self.state["steps"].get(step)
            if rec is None:
                return
            rec.update(fields)
        self._write(force)

    def _write(self, force: bool = False) -> None:
        with self._lock:
            now = self.clock()
            if not force and now - self._written < WRITE_INTERVAL:
                return
            self.state["updated_at"], self._written = now, now
            with contextlib.suppress(OSError):  # a courtesy to the app: never fails a build
                atomic_write_json(self.path, self.state)


STATUSES = ("pending", "running", "built", "skipped", "failed", "stopped")


@dataclass(frozen=True)
class LiveBuild:
    """A build in progress, as the app shows it (every field checked: see :func:`live_build`)."""

    name: str
    started_at: float
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    pack: float = 0.5  # wall time per second of step time (last build's; 1/cores otherwise)

    @property
    def done(self) -> int:
        return sum(s["status"] in ("built", "skipped") for s in self.steps.values())

    @property
    def running(self) -> list[str]:
        return [n for n, s in self.steps.items() if s["status"] == "running"]

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Time left from the last build's step times, when every unfinished step has one: the
        unfinished step time (a running step's minus its time so far) times ``pack``."""
        now = time.time() if now is None else now
        left = 0.0
        for s in self.steps.values():
            if s["status"] in ("built", "skipped"):
                continue
            if s["last_seconds"] is None:
                return None
            spent = now - s["started_at"] if s["status"] == "running" and s["started_at"] else 0
            left += max(0.0, s["last_seconds"] - spent)
        return left * self.pack


def read_state(root: Path) -> dict[str, Any] | None:
    """The state file under ``root`` (a catalog's artifact folder), or None when unreadable."""
    try:
        state = json.loads((Path(root) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def live_build(root: Path) -> LiveBuild | None:
    """The build running now under ``root``: its state says ``running`` and the process that
    wrote it is still that process (pid and start time). Malformed fields are dropped."""
    state = read_state(root)
    if not state or state.get("status") != "running":
        return None
    if not _alive(state.get("pid"), state.get("pid_start")):
        return None
    raw = state.get("steps")
    if not isinstance(raw, dict):
        return None
    steps = {str(n): _step(v) for n, v in raw.items() if isinstance(v, dict)}
    order = [n for n in state.get("order") or [] if isinstance(n, str) and n in steps]
    steps = {n: steps[n] for n in [*order, *(n for n in steps if n not in order)]}
    pack = _number(state.get("pack"))
    return LiveBuild(str(state.get("name") or Path(root).name),
                     _number(state.get("started_at")) or time.time(), steps,
                     pack if pack and 0 < pack <= 1 else 0.5)


def last_failure(root: Path) -> str | None:
    """Why the last build under ``root`` did not finish, when it failed or its process died
    mid-build (None when it finished, was stopped, is running, or left no state)."""
    state = read_state(root)
    if not state:
        return None
    if state.get("status") == "failed":
        return str(state.get("error") or "the build failed")
    if state.get("status") == "running" and not _alive(state.get("pid"), state.get("pid_start")):
        return "the build's process ended before the build did (killed, or out of memory)"
    return None


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22):
    with the pid, it tells a process from a later one that reused its pid. None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _step(raw: dict[str, Any]) -> dict[str, Any]:
    status = raw.get("status")
    activity = raw.get("activity")
    return {
        "status": status if status in STATUSES else "pending",
        "last_seconds": _number(raw.get("last_seconds")),
        "started_at": _number(raw.get("started_at")),
        "seconds": _number(raw.get("seconds")),
        "activity": activity if isinstance(activity, str) else None,
    }


def _number(value: Any) -> float | None:
    """A finite float, or None (a bool, a string or NaN from a hand-edited file is no number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _alive(pid: Any, start: Any = None) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's process: alive
        pass
    except (OSError, OverflowError):  # no such process, or no valid pid at all
        return False
    if isinstance(start, int) and not isinstance(start, bool):
        now = process_start(pid)
        return now is None or now == start
    return True
