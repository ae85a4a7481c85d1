"""CPU seconds spent by processes, read from ``/proc``: the app server's apart from the browser's.

The load test takes a :func:`snapshot` when every session has opened the app and another when
the last action has finished; :func:`spent` is the CPU used in between, per group of processes.
A process that started inside the window counts from zero; one that ended inside it is missed
(Chromium keeps every context's renderer alive until the browser closes, after the second
snapshot). Linux only: elsewhere every figure is None.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, user + system CPU seconds) of ``pid``; None when it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()  # fields[0] is the state (stat field 3)
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def snapshot(server_pid: int | None, root: int | None = None) -> dict[str, dict[int, float]] | None:
    """CPU seconds so far of the server, of Chromium's processes and of the rest of the driver
    (this process and Playwright's), keyed by pid; ``root`` is the driver (default: this
    process). None when ``/proc`` cannot be read."""
    if not (PROC / "self" / "stat").exists():
        return None
    root = os.getpid() if root is None else root
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    groups: dict[str, dict[int, float]] = {"server": {}, "browser": {}, "driver": {}}
    for pid, (name, _, cpu) in stats.items():
        if pid == server_pid:
            groups["server"][pid] = cpu
        elif _descends(pid, root, stats):
            key = "browser" if name.startswith("chrom") else "driver"
            groups[key][pid] = cpu
    return groups


def _descends(pid: int, root: int, stats: dict[int, tuple[str, int, float]]) -> bool:
    """Whether ``pid`` is ``root`` or one of its descendants."""
    seen = set()
    while pid and pid not in seen:
        if pid == root:
            return True
        seen.add(pid)
        pid = stats[pid][1] if pid in stats else 0
    return False


def spent(before: dict | None, after: dict | None) -> dict[str, float] | None:
    """CPU seconds per group between two snapshots (None when either is missing)."""
    if before is None or after is None:
        return None
    return {
        group: round(sum(cpu - before[group].get(pid, 0.0) for pid, cpu in pids.items()), 2)
        for group, pids in after.items()
    }
