"""Live latency monitoring: rolling per-method, per-stage windows of the queries actually run.

One :class:`LatencyMonitor` per process (the app keeps it in a cache resource); thread-safe, so
every session records into it and the dashboard reads p50/p95/p99 from it.
"""

from __future__ import annotations

import threading
from collections import deque

from engine.evaluation.metrics import latency_percentiles
from engine.retrieval.base import SearchResult

WINDOW = 500


class LatencyMonitor:
    """Rolling windows of stage latencies (ms), keyed by (method, stage)."""

    def __init__(self, window: int = WINDOW):
        self.window = window
        self._lock = threading.Lock()
        self._samples: dict[tuple[str, str], deque[float]] = {}
        self.queries = 0

    def record(self, result: SearchResult) -> None:
        """Add one search result's stage timings (and its total)."""
        with self._lock:
            self.queries += 1
            for stage, ms in {**result.timings_ms, "total": result.total_ms}.items():
                key = (result.method, stage)
                if key not in self._samples:
                    self._samples[key] = deque(maxlen=self.window)
                self._samples[key].append(float(ms))

    def summary(self) -> list[dict]:
        """One row per (method, stage): n, p50, p95, p99, mean."""
        with self._lock:
            snapshot = {k: list(v) for k, v in self._samples.items()}
        rows = []
        for (method, stage), samples in sorted(snapshot.items()):
            stats = latency_percentiles(samples)
            rows.append(
                {
                    "method": method,
                    "stage": stage,
                    **{k: round(float(v), 3) for k, v in stats.items()},
                }
            )
        return rows
