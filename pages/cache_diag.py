"""Opt-in diagnostic: a JSON line per cache build, to check that each cache builds once.

Off by default. With ``PIXELMATCH_DIAG_FILE`` set, every cache factory of ``pages/shared.py``
appends ``{"key": ..., "args": [...], "pid": ..., "t": ...}`` to that file when Streamlit runs it
(a cache miss). The load test (``e2e/load_test.py``) reads the file.
"""

from __future__ import annotations

import json
import os
import threading
import time

_LOCK = threading.Lock()


def note_build(key: str, *args: object) -> None:
    """Record that the cache ``key`` was built for ``args`` (no-op unless the variable is set)."""
    path = os.environ.get("PIXELMATCH_DIAG_FILE")
    if not path:
        return
    line = {"key": key, "args": [str(a) for a in args], "pid": os.getpid(), "t": time.time()}
    with _LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
