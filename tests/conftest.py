"""Shared fixtures: a tiny catalog built once per test session into a temporary data folder.

Slow tests (``@pytest.mark.slow``) run only with ``--runslow`` (``make test-all``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from engine.serving import open_catalog

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY = "tiny"

pytest_plugins = ["tests.recommender_fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords or "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _keep_the_main_module():
    """Put ``sys.modules["__main__"]`` back after each test. Streamlit's script runner (AppTest)
    installs the script it ran as ``__main__`` and leaves it there, so every process a later
    test spawns (side-by-side build steps) would first re-run that page script in bare mode."""
    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide data folder; PIXELMATCH_DATA points at it for the whole session."""
    path = tmp_path_factory.mktemp("pixelmatch-data")
    os.environ["PIXELMATCH_DATA"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_manifest(data_dir: Path) -> dict:
    """Build the tiny preset once per session (real MiniLM, real indexes)."""
    from engine.config import load_preset
    from engine.pipeline import run_build

    return run_build(load_preset(TINY), log=lambda msg: None)


@pytest.fixture(scope="session")
def tiny_catalog(tiny_manifest: dict):
    """The tiny catalog, opened for serving."""

    return open_catalog(TINY)
