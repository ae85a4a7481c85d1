"""Ctrl+C during a build: every process stops, quietly, and the build exits.

Ctrl+C reaches every process of the terminal's foreground group at once. Before these fixes a
worker pool's process could die holding the pool's queue lock, and the build printed
"interrupted" and then never exited; a step running in the build's own process kept running
into the interpreter's exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from engine.artifacts import ArtifactStore
from engine.config import load_preset
from engine.pipeline.execute import StepRunner
from engine.pipeline.side_by_side import StepStopped, _HereJob, _stoppable
from engine.pipeline.step import Step
from engine.progress import no_progress

ROOT = Path(__file__).resolve().parents[1]

POOL_SCRIPT = textwrap.dedent("""
    import sys, time
    from engine.world.tagger_photos import workers

    def progress(it, total, desc):
        for i, x in enumerate(it):
            if i == 20:
                print("ready", flush=True)
            yield x

    if __name__ == "__main__":
        try:
            with workers(2) as pmap:
                pmap(time.sleep, [0.01] * 100_000, "sleep", progress)
        except KeyboardInterrupt:
            print("stopped", flush=True)
            sys.exit(130)
""")


def test_ctrl_c_stops_a_worker_pool_and_the_process_exits(tmp_path):
    script = tmp_path / "pool_script.py"
    script.write_text(POOL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            start_new_session=True)  # its own group, as a terminal's job
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C does: the whole group
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the process did not exit after Ctrl+C (a pool worker holds a lock)")
    assert proc.returncode == 130 and "stopped" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def run_counting(ctx, out: Path) -> dict:
    for _ in ctx.progress(range(1_000_000), 1_000_000, "count"):
        STARTED.set()
        time.sleep(0.001)
    return {}


STARTED = threading.Event()


def test_a_step_running_in_the_build_process_stops_at_its_next_progress_item(tmp_path):
    STARTED.clear()
    step = Step("count", 1, (), (), run_counting, "counts for a long time")
    runner = StepRunner(ArtifactStore(tmp_path), load_preset("tiny"), {"count": "h"}, {},
                        no_progress, lambda line: None, {}, lambda: None)
    job = _HereJob(runner.start(step), 1)
    assert STARTED.wait(30)
    t0 = time.monotonic()
    job.stop()
    assert job.done() and time.monotonic() - t0 < 5
    assert isinstance(job.error, StepStopped) and "count" in str(job.error)


def test_stoppable_progress_passes_items_until_stopped():
    stopped = threading.Event()
    seen = []
    with pytest.raises(StepStopped, match="during count"):
        for x in _stoppable(no_progress, stopped)(range(10), 10, "count"):
            seen.append(x)
            if x == 3:
                stopped.set()
    assert seen == [0, 1, 2, 3]
