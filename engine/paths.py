"""Where data and artifacts live. ``PIXELMATCH_DATA`` overrides the default ``<repo>/data``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The data folder (generated; never in git)."""
    return _resolved(str(os.environ.get("PIXELMATCH_DATA", REPO_ROOT / "data")))


@lru_cache(maxsize=64)
def _resolved(path: str) -> Path:
    """``path`` made absolute with its symlinks resolved, once per distinct setting: resolving
    walks every folder of the path, and the app asks for the data folder once per result card."""
    return Path(path).resolve()


def artifacts_dir(name: str) -> Path:
    """The artifact folder of one catalog (``data/artifacts/<name>``)."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid catalog name {name!r}")
    return data_dir() / "artifacts" / name


def reports_dir() -> Path:
    """Benchmark reports (committed: they are the source of every figure in the docs).

    ``PIXELMATCH_REPORTS`` points elsewhere (tests use it so they never touch the real ones).
    """
    return Path(os.environ.get("PIXELMATCH_REPORTS", REPO_ROOT / "reports")).resolve()
