"""A build's live state (``engine.pipeline.live``): what ``make run`` shows in the app while the
catalog is built beside it, and how that build stops with the app (SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.pipeline import ordered_steps
from engine.pipeline.live import (
    STATE_FILE,
    LiveBuild,
    LiveState,
    last_failure,
    live_build,
    process_start,
    read_state,
)
from engine.progress import no_progress

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_state_follows_steps_activity_and_end(tmp_path):
    clock = FakeClock()
    live = LiveState(tmp_path, "demo", ["world", "sbert", "clip"], ["world"], {"sbert": 90.0},
                     clock=clock)
    state = read_state(tmp_path)
    assert state["status"] == "running" and state["pid"] == os.getpid()
    assert {n: s["status"] for n, s in state["steps"].items()} == {
        "world": "skipped", "sbert": "pending", "clip": "pending"}
    live.started("sbert")
    clock.now += 1.5
    teed = live.tee(no_progress, "sbert")
    items = teed(range(5), 5, "encode items", unit="texts")
    # (an item is counted when the loop asks for the next one)
    assert [next(items), next(items)] == [0, 1]
    sbert = read_state(tmp_path)["steps"]["sbert"]
    assert sbert["status"] == "running" and sbert["started_at"] == 1_000.0
    assert sbert["activity"].startswith("encode items 1/5 texts")
    assert next(items) == 2  # within the same second: not written
    assert read_state(tmp_path)["steps"]["sbert"]["activity"].startswith("encode items 1/5")
    clock.now += 1.0
    assert next(items) == 3  # a second later: written
    assert read_state(tmp_path)["steps"]["sbert"]["activity"].startswith("encode items 3/5")
    assert list(items) == [4]  # the loop's end is always written
    assert read_state(tmp_path)["steps"]["sbert"]["activity"].startswith("encode items 5/5 texts")
    clock.now += 1.5
    live.line("[clip] train compact CLIP 70/700 steps 10 % · 5.1/s · ~2 min left")
    live.line("[nope] not a step of this build")
    assert read_state(tmp_path)["steps"]["clip"]["activity"].startswith("train compact CLIP")
    build = live_build(tmp_path)
    assert isinstance(build, LiveBuild) and build.name == "demo"
    assert build.done == 1 and build.running == ["sbert"]
    live.finished("sbert", 88.04)
    done = read_state(tmp_path)["steps"]["sbert"]
    assert done["status"] == "built" and done["seconds"] == 88.0 and done["activity"] is None
    live.close("done")
    assert read_state(tmp_path)["status"] == "done" and live_build(tmp_path) is None


def test_a_state_left_by_a_dead_process_or_unreadable_is_no_build(tmp_path):
    LiveState(tmp_path, "demo", ["world"], [], {})
    state = json.loads((tmp_path / STATE_FILE).read_text())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    state["pid"] = int(dead.stdout)
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert live_build(tmp_path) is None
    (tmp_path / STATE_FILE).write_text("{half a file")
    assert read_state(tmp_path) is None and live_build(tmp_path) is None
    assert live_build(tmp_path / "missing") is None


def test_time_left_needs_every_unfinished_step_timed_before():
    steps = {
        "world": {"status": "built", "last_seconds": 60, "started_at": 0},
        "sbert": {"status": "running", "last_seconds": 100, "started_at": 1_000.0},
        "clip": {"status": "pending", "last_seconds": 140, "started_at": None},
    }
    build = LiveBuild("demo", 900.0, steps, pack=0.8)
    assert build.eta_seconds(now=1_040.0) == (60 + 140) * 0.8
    steps["clip"]["last_seconds"] = None
    assert build.eta_seconds(now=1_040.0) is None


def _write_state(folder: Path, **fields) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {"name": "demo", "status": "running", "pid": os.getpid(), "started_at": 5.0,
             "steps": {"world": {"status": "built", "seconds": 3.0}}, **fields}
    (folder / STATE_FILE).write_text(json.dumps(state))


def test_a_malformed_state_is_read_field_by_field_never_raising(tmp_path):
    bad_steps = {"world": {"status": 7, "started_at": None, "seconds": "9", "activity": 3},
                 "sbert": "not a dict", "clip": {"last_seconds": float("nan")}}
    _write_state(tmp_path, steps=bad_steps, order=["clip", 5, "nope"], started_at=None,
                 pack="x")
    build = live_build(tmp_path)
    assert list(build.steps) == ["clip", "world"]
    assert build.steps["world"] == {"status": "pending", "last_seconds": None,
                                    "started_at": None, "seconds": None, "activity": None}
    assert build.done == 0 and build.eta_seconds() is None and build.pack == 0.5
    for pid in (2**70, True, "12", -3, None):
        _write_state(tmp_path, pid=pid)
        assert live_build(tmp_path) is None
    _write_state(tmp_path, steps=[1, 2])
    assert live_build(tmp_path) is None


def test_a_reused_pid_is_not_the_build(tmp_path):
    start = process_start(os.getpid())
    _write_state(tmp_path, pid_start=start)
    assert live_build(tmp_path) is not None
    if start is not None:  # Linux: the same pid, started at another time, is another process
        _write_state(tmp_path, pid_start=start + 1)
        assert live_build(tmp_path) is None


def test_a_failed_or_vanished_build_says_why(tmp_path):
    _write_state(tmp_path, status="failed", error="disk full")
    assert last_failure(tmp_path) == "disk full" and live_build(tmp_path) is None
    _write_state(tmp_path, status="running", pid=2**70)
    assert "ended before the build did" in last_failure(tmp_path)
    _write_state(tmp_path, status="done")
    assert last_failure(tmp_path) is None
    _write_state(tmp_path, status="running")  # this process: alive
    assert last_failure(tmp_path) is None


def test_the_build_leaves_a_finished_state_with_every_step(tiny_manifest, data_dir, tmp_path):
    state = read_state(data_dir / "artifacts" / "tiny")
    assert state["status"] == "done" and state["name"] == "tiny"
    order = [s.name for s in ordered_steps()]
    assert state["order"] == order
    # as the app reads it while a build runs: the steps in build order (the file sorts keys)
    (tmp_path / STATE_FILE).write_text(json.dumps({**state, "status": "running",
                                                   "pid": os.getpid()}, sort_keys=True))
    assert list(live_build(tmp_path).steps) == order
    for name, step in state["steps"].items():
        assert step["status"] in ("built", "skipped"), name
        if step["status"] == "built":
            assert step["seconds"] == round(tiny_manifest["steps"][name]["seconds"], 1)


def test_sigterm_stops_a_build_like_ctrl_c(tmp_path):
    """``make run`` stops its background build with SIGTERM when the app stops: the build ends
    at once, says it was interrupted, writes no manifest and records itself as stopped."""
    env = {**os.environ, "PIXELMATCH_DATA": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "build", "--preset", "tiny", "--name", "term"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
        start_new_session=True)
    folder = tmp_path / "artifacts" / "term"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            build = live_build(folder)
            if build is not None and build.running:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the build never started a step")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert "interrupted; the previous artifacts are still in place." in out
    assert "Traceback" not in out
    assert read_state(folder)["status"] == "stopped" and live_build(folder) is None
    assert not (folder / "manifest.json").exists()


# -- the app while a build runs --------------------------------------------------------------
def _running_state(folder: Path, name: str) -> LiveState:
    folder.mkdir(parents=True, exist_ok=True)
    live = LiveState(folder, name, ["world", "sbert", "clip"], [], {"clip": 140.0})
    live.finished("world", 64.1)
    live.started("sbert")
    live.line("[sbert] encode items 8,000/19,828 texts 40 % · 312/s · ~38 s left")
    return live


def _app(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("PIXELMATCH_DATA", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_first_start_shows_the_build_instead_of_no_catalog(tmp_path, monkeypatch):
    live = _running_state(tmp_path / "artifacts" / "demo", "demo")
    at = _app(tmp_path, monkeypatch)
    assert [t.value for t in at.title] == ["Building the catalog"]
    assert not at.error
    text = " ".join(m.value for m in at.markdown)
    assert "**world** · done in 1 min 04 s" in text
    assert "**sbert** · encode items 8,000/19,828 texts 40 %" in text
    assert "**clip** · waiting (took 2 min 20 s last time)" in text
    assert "1 of 3 steps" in at.get("progress")[0].proto.text
    live.close("done")
    at.run()  # the build ended: the page opens the catalog (here: none was built)
    assert [e.value for e in at.error] == ["No catalog has been built yet."]


def test_a_page_that_found_no_catalog_follows_a_build_that_starts_later(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch)
    assert [e.value for e in at.error] == ["No catalog has been built yet."]
    live = _running_state(tmp_path / "artifacts" / "demo", "demo")
    at.run()
    assert [t.value for t in at.title] == ["Building the catalog"] and not at.error
    live.close("done")


def test_a_failed_build_is_shown_with_its_reason(tmp_path, monkeypatch):
    _write_state(tmp_path / "artifacts" / "demo", status="failed", error="No space left")
    at = _app(tmp_path, monkeypatch)
    assert [e.value for e in at.error] == ["No catalog has been built yet."]
    assert [w.value for w in at.warning] == [
        "The last build of 'demo' did not finish: No space left. Its log, when `make run` "
        f"started it: `{tmp_path / 'build-demo.log'}`."]


def test_a_malformed_state_shows_the_build_page_without_a_traceback(tmp_path, monkeypatch):
    _write_state(tmp_path / "artifacts" / "demo", started_at="soon", pack=[1],
                 steps={"world": {"status": "running", "started_at": "x", "activity": ["a"]},
                        "sbert": {"status": "built", "seconds": "9"}})
    at = _app(tmp_path, monkeypatch)
    assert [t.value for t in at.title] == ["Building the catalog"]
    text = " ".join(m.value for m in at.markdown)
    assert "**world** · starting" in text and "**sbert** · done in 0 s" in text


def test_a_catalog_being_built_that_cannot_be_served_shows_the_build(tmp_path, monkeypatch):
    folder = tmp_path / "artifacts" / "demo"
    live = _running_state(folder, "demo")
    (folder / "manifest.json").write_text("{}")  # the old build's manifest, still in place
    at = _app(tmp_path, monkeypatch)
    assert [t.value for t in at.title] == ["Building the catalog"] and not at.error
    live.close("stopped")
    at.run()
    assert at.error and at.error[0].value.startswith("The 'demo' catalog cannot be served")


def test_a_built_catalog_being_rebuilt_keeps_answering_with_a_note(tiny_catalog, data_dir):
    """A rebuild (e.g. after a code change) leaves the built version serving: the page opens it
    and says so in the sidebar, and moves on once the build has ended."""
    folder = data_dir / "artifacts" / "tiny"
    state = folder / STATE_FILE
    before = state.read_bytes() if state.exists() else None
    live = _running_state(folder, "tiny")
    try:
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["catalog_name"] = "tiny"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert "Building the catalog" not in [t.value for t in at.title]
        assert not at.error
        notes = [i.value for i in at.sidebar.info]
        assert notes == ["A rebuild of **tiny** is running (1 of 3 steps). This version answers "
                         "until it is done."]
        live.close("done")
        at.run()
        assert not at.sidebar.info and not at.exception
    finally:
        live.close("done")
        if before is not None:
            state.write_bytes(before)
