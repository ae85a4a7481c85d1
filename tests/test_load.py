"""The concurrent-users load test: its verdicts (fast) and a short real run (slow, browser).

The real run starts ``python -m e2e.load_test`` against the tiny catalog: 8 browser sessions
for 20 s; it must see every action kind complete, no error, no cross-session leak and every
cache built once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.load_test import cache_builds, failures
from e2e.server import REPO


def _report(**over) -> dict:
    base = {
        "n_errors": 0,
        "n_leaks": 0,
        "cache_builds": {"builds": {"a()": 1}, "built_more_than_once": []},
        "server_log_tracebacks": 0,
        "sessions": 8,
        "sessions_held": 8,
        "actions": {"text_search": 3, "image_search": 3, "recommend": 2},
    }
    return {**base, **over}


def test_a_clean_run_passes():
    assert failures(_report()) == []


@pytest.mark.parametrize(
    "over, expected",
    [
        ({"n_errors": 2}, "2 error(s)"),
        ({"n_leaks": 1}, "1 cross-session leak(s)"),
        ({"server_log_tracebacks": 1}, "1 traceback(s) in the server log"),
        ({"sessions_held": 7}, "only 7 of 8 sessions held"),
        ({"actions": {"text_search": 3, "image_search": 0, "recommend": 1}}, "never completed"),
        (
            {"cache_builds": {"builds": {"a()": 2}, "built_more_than_once": ["a()"]}},
            "built more than once: a()",
        ),
    ],
)
def test_each_kind_of_failure_fails_the_run(over, expected):
    assert any(expected in f for f in failures(_report(**over)))


def test_cache_builds_counts_repeats(tmp_path: Path):
    diag = tmp_path / "diag.jsonl"
    lines = [
        {"key": "warm_retriever", "args": ["tiny", "1.0", "bm25"], "pid": 7, "t": 0},
        {"key": "warm_retriever", "args": ["tiny", "1.0", "clip"], "pid": 7, "t": 1},
        {"key": "warm_retriever", "args": ["tiny", "1.0", "bm25"], "pid": 7, "t": 2},
    ]
    diag.write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = cache_builds(diag)
    assert got["built_more_than_once"] == ["warm_retriever(tiny, 1.0, bm25)"]
    assert got["builds"]["warm_retriever(tiny, 1.0, clip)"] == 1
    assert got["server_pids"] == [7]


def test_the_cache_diagnostic_is_off_by_default(tmp_path: Path, monkeypatch):
    from pages.cache_diag import note_build

    path = tmp_path / "diag.jsonl"
    monkeypatch.delenv("PIXELMATCH_DIAG_FILE", raising=False)
    note_build("x", 1)
    assert not path.exists()
    monkeypatch.setenv("PIXELMATCH_DIAG_FILE", str(path))
    note_build("x", 1)
    assert json.loads(path.read_text())["key"] == "x"


@pytest.mark.slow
@pytest.mark.browser
def test_eight_sessions_at_once_on_the_tiny_catalog(tiny_catalog, data_dir, tmp_path):
    from e2e.browser import unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "load.json"
    cmd = [sys.executable, "-m", "e2e.load_test", "--data", str(data_dir), "--catalog", "tiny"]
    cmd += ["--sessions", "8", "--duration", "20", "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.exists(), done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["sessions_held"] == 8, report
    assert report["n_errors"] == 0, report["errors"]
    assert report["n_leaks"] == 0, report["leaks"]
    assert report["cache_builds"]["built_more_than_once"] == [], report["cache_builds"]
    assert report["cache_builds"]["builds"], "the diagnostic recorded no cache build"
    assert all(n > 0 for n in report["actions"].values()), report["actions"]
    assert report["catalog"]["name"] == "tiny"
    mem = report["server_memory"]  # the app server's own RSS, read before it stopped
    assert 0 < mem["rss_mb"] <= mem["peak_rss_mb"], mem
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_served_data_folder_has_the_catalog_and_the_exported_query_models(tmp_path: Path):
    from e2e.load_test import isolated_data_dir

    data = tmp_path / "data"
    (data / "artifacts" / "demo").mkdir(parents=True)
    (data / "artifacts" / "demo" / "manifest.json").write_text("{}")
    (data / "artifacts" / "other").mkdir()
    (data / "models").mkdir()
    (data / "models" / "all-MiniLM-L6-v2-abc.onnx").write_bytes(b"onnx")
    served = isolated_data_dir(data, "demo", tmp_path / "served")
    assert sorted(p.name for p in (served / "artifacts").iterdir()) == ["demo"]
    # without the export the server would run PyTorch to export MiniLM again, mid-run
    assert (served / "models" / "all-MiniLM-L6-v2-abc.onnx").read_bytes() == b"onnx"
