"""A background benchmark job: runs in its own thread so no user's page waits for it."""

from __future__ import annotations

import threading
import time
from typing import Any


class BenchmarkJob:
    """One quick benchmark at a time per process, with progress others can poll."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.done = 0
        self.total = 0
        self.stage = ""
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _progress(self, it, total: int, desc: str, *, size=None, **_):
        with self._lock:
            self.stage, self.done, self.total = desc, 0, total
        for x in it:
            yield x
            with self._lock:
                self.done += size(x) if size else 1

    def start(self, catalog, *, limit: int = 25) -> bool:
        """Start a quick benchmark of ``catalog``; False if one is already running."""
        from engine.benchmark.harness import run_benchmark

        def work() -> None:
            try:
                result = run_benchmark(catalog, limit=limit, progress=self._progress)
                with self._lock:
                    self.result = result
            except Exception as exc:  # reported on the page, never a traceback
                with self._lock:
                    self.error = f"{type(exc).__name__}: {exc}"
            finally:
                with self._lock:
                    self.finished_at = time.time()

        with self._lock:  # check and start under one lock: two clicks start one job
            if self.running:
                return False
            self.result, self.error = None, None
            self.started_at, self.finished_at = time.time(), None
            self.thread = threading.Thread(target=work, name="quick-benchmark", daemon=True)
            self.thread.start()
        return True
