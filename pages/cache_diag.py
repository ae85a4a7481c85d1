"""Opt-in diagnostics: a JSON line per cache build and per page run.

Off by default. With ``PIXELMATCH_DIAG_FILE`` set, every cache factory of ``pages/shared.py``
appends ``{"key": ..., "args": [...], "pid": ..., "t": ...}`` to that file when Streamlit runs it
(a cache miss), and ``app.py`` appends ``{"run": page title, "wall_s": ..., "cpu_s": ...,
"end": ..., "pid": ..., "t": ...}`` after every script run: the server's own work per page run,
apart from the browser's. The load test (``e2e/load_test.py``) reads the file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_RUNNING = threading.local()  # a timed run in progress on this (script) thread


def note_build(key: str, *args: object) -> None:
    """Record that the cache ``key`` was built for ``args`` (no-op unless the variable is set)."""
    _append({"key": key, "args": [str(a) for a in args], "pid": os.getpid(), "t": time.time()})


def _append(line: dict) -> None:
    """Append ``line`` to the diagnostic file (nothing when the variable is not set)."""
    path = os.environ.get("PIXELMATCH_DIAG_FILE")
    if path:
        with _LOCK, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


@contextmanager
def timed_page_run(page: object) -> Iterator[None]:
    """Record one script run of ``page`` (an ``st.Page``, named by its title): wall and CPU
    seconds of the script's thread (Streamlit runs each session's script in a thread of its
    own) and how it ended: ``done``, ``stopped`` (``st.stop``) or ``interrupted`` (a newer rerun
    of the same session took over). No-op unless the variable is set; the page is not even
    asked its title then (outside a running app, e.g. a process that re-imports ``app.py``, an
    ``st.Page`` has none).

    A timer inside a timed run is a no-op too: a fragment (``st.fragment``) times its own
    reruns with this, and within a full run of its page its work is already counted."""
    if not os.environ.get("PIXELMATCH_DIAG_FILE") or getattr(_RUNNING, "on", False):
        yield
        return
    page = page if isinstance(page, str) else getattr(page, "title", None) or "?"
    wall0, cpu0, end = time.perf_counter(), time.thread_time(), "done"
    _RUNNING.on = True
    try:
        yield
    except BaseException as exc:
        kind = type(exc).__name__
        end = {"StopException": "stopped", "RerunException": "interrupted"}.get(kind, kind)
        raise
    finally:
        _RUNNING.on = False
        _append({"run": page, "wall_s": round(time.perf_counter() - wall0, 4),
                 "cpu_s": round(time.thread_time() - cpu0, 4), "end": end,
                 "pid": os.getpid(), "t": time.time()})
