"""Child processes of the build (step processes, worker pools) and Ctrl+C.

Ctrl+C in a terminal interrupts every process of the foreground group at once. A pool worker
interrupted while it holds the pool's task-queue lock dies holding it, and the parent's exit,
which terminates the pool, then waits for that lock forever (seen: a build stopped with Ctrl+C
printed its "interrupted" line and never exited); a child interrupted while it starts prints a
traceback. So children ignore SIGINT: the parent alone handles Ctrl+C and stops them.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
from collections.abc import Iterator
from multiprocessing.pool import Pool


def ignore_interrupts() -> None:
    """A pool worker's initializer: leave Ctrl+C to the parent process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def interrupts_ignored() -> Iterator[None]:
    """SIGINT ignored while child processes start, so that they ignore it from their first
    instruction (an ignored signal stays ignored across exec). Only the main thread can change
    it; elsewhere this does nothing (pool workers still ignore it once their initializer ran).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def spawn_pool(processes: int) -> Pool:
    """A ``spawn`` pool of ``processes`` workers that ignore Ctrl+C (use it as a context
    manager: leaving the block terminates the workers)."""
    with interrupts_ignored():
        return mp.get_context("spawn").Pool(processes, initializer=ignore_interrupts)
