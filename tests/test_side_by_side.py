"""Building steps side by side (engine.pipeline.side_by_side): which steps share the cores,
where they run, what happens when one fails, and that the artifacts equal a step-by-step build.

The fake steps are module globals so that a spawned child process finds them (it imports the
module that defines a step's ``run``). They meet at a file barrier: two steps that do not run at
the same time cannot both pass it, so concurrency is tested without timing.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from engine.artifacts import ArtifactStore
from engine.config import load_preset
from engine.pipeline import run_build
from engine.pipeline.execute import StepRunner
from engine.pipeline.side_by_side import critical_path, run_side_by_side
from engine.pipeline.step import Step, one_thread
from engine.progress import no_progress

BARRIER_ENV = "PIXELMATCH_TEST_BARRIER"
FAIL_ENV = "PIXELMATCH_TEST_FAIL"


def _two_threads(cfg) -> int:
    return 2


def _work(name: str, ctx, out: Path) -> dict:
    for dep, folder in ctx.inputs.items():  # dependencies are published before a step starts
        assert (folder / f"{dep}.json").is_file()
    barrier = os.environ.get(BARRIER_ENV)
    if barrier and name in ("b", "c"):
        Path(barrier, name).write_text("here")
        other = Path(barrier, "c" if name == "b" else "b")
        deadline = time.monotonic() + 60
        while not other.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} never ran beside {other.name}")
            time.sleep(0.02)
    fail = os.environ.get(FAIL_ENV, "")
    if fail == f"{name}:disk":  # numpy's short write on a full disk: an OSError with no code
        raise OSError("614445 requested and 610304 written")
    if fail == name:
        raise ValueError(f"boom in {name}")
    ctx.log(f"{name} ran on {ctx.threads} thread(s)")
    (out / f"{name}.json").write_text(json.dumps({"pid": os.getpid(), "threads": ctx.threads}))
    return {"pid": os.getpid()}


def run_a(ctx, out: Path) -> dict:
    return _work("a", ctx, out)


def run_b(ctx, out: Path) -> dict:
    return _work("b", ctx, out)


def run_c(ctx, out: Path) -> dict:
    return _work("c", ctx, out)


def run_d(ctx, out: Path) -> dict:
    return _work("d", ctx, out)


def run_e(ctx, out: Path) -> dict:
    return _work("e", ctx, out)


STEP_A = Step("a", 1, (), (), run_a, "two threads, first", threads=_two_threads)
STEP_B = Step("b", 1, ("a",), (), run_b, "one thread", threads=one_thread)
STEP_C = Step("c", 1, ("a",), (), run_c, "one thread", threads=one_thread)
STEP_D = Step("d", 1, ("b", "c"), (), run_d, "two threads, last", threads=_two_threads)
STEP_E = Step("e", 1, (), (), run_e, "one thread, ready from the start", threads=one_thread)
STEPS = [STEP_A, STEP_B, STEP_C, STEP_D, STEP_E]


def _build(root: Path, logs: list[str], steps: list[Step] = STEPS) -> dict:
    store = ArtifactStore(root)
    records: dict = {}
    runner = StepRunner(store, load_preset("tiny"), {s.name: f"h{s.name}" for s in steps},
                        records, no_progress, logs.append, {}, lambda: None)
    run_side_by_side(list(steps), runner, cores=2, weights={}, progress_line=None)
    return records


def _output(root: Path, name: str) -> dict:
    return json.loads((root / "steps" / f"{name}-h{name}" / f"{name}.json").read_text())


def test_independent_one_thread_steps_run_at_once_one_in_a_child(tmp_path, monkeypatch):
    monkeypatch.setenv(BARRIER_ENV, str(tmp_path / "barrier"))
    (tmp_path / "barrier").mkdir()
    logs: list[str] = []
    records = _build(tmp_path / "store", logs)
    assert set(records) == {"a", "b", "c", "d", "e"}
    pids = {n: _output(tmp_path / "store", n)["pid"] for n in "abcd"}
    assert pids["a"] == os.getpid()  # a step running alone runs in this process
    assert pids["b"] != pids["c"] and os.getpid() in (pids["b"], pids["c"])
    assert {n: records[n]["threads"] for n in "abcde"} == {"a": 2, "b": 1, "c": 1, "d": 2,
                                                           "e": 1}
    # the child's log lines reach the build's log; a step starts after its dependencies finish
    assert "b ran on 1 thread(s)" in logs and "c ran on 1 thread(s)" in logs
    assert logs.index("[d] building: two threads, last") > max(
        logs.index("[b] done in " + f"{records['b']['seconds']:.1f} s"),
        logs.index("[c] done in " + f"{records['c']['seconds']:.1f} s"),
    )


def test_steps_start_only_while_their_threads_fit(tmp_path):
    # e (one thread, no dependencies) is ready from the start, but a and d need both cores:
    # e may start beside b or c, never beside a or d
    logs: list[str] = []
    _build(tmp_path / "store", logs)
    threads = {"a": 2, "b": 1, "c": 1, "d": 2, "e": 1}
    running: set[str] = set()
    for line in logs:
        name = line.split("]")[0][1:]
        if "building" in line:
            running.add(name)
            assert sum(threads[n] for n in running) <= 2, (name, running)
        elif "done in" in line:
            running.remove(name)
    assert logs[0] == "[a] building: two threads, first" and not running


def test_a_quick_step_starts_before_longer_chains_and_is_not_overtaken(tmp_path):
    """A ``quick`` step (seconds of work that unlock methods) starts first; the two-thread step
    with the longest chain then waits for it rather than being overtaken by another."""
    logs: list[str] = []
    steps = [*STEPS[:-1], dataclasses.replace(STEP_E, quick=True)]
    _build(tmp_path / "store", logs, steps)
    starts = [line.split("]")[0][1:] for line in logs if "building" in line]
    assert starts[:2] == ["e", "a"]
    assert logs.index("[a] building: two threads, first") > logs.index(
        next(line for line in logs if line.startswith("[e] done in")))


def test_a_failing_step_stops_new_steps_keeps_finished_ones_and_raises_its_error(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(FAIL_ENV, "b")
    logs: list[str] = []
    with pytest.raises(ValueError, match="boom in b"):
        _build(tmp_path / "store", logs)
    steps = tmp_path / "store" / "steps"
    # no half-written b, no d; e had not started (b and c held the cores)
    assert sorted(p.name for p in steps.iterdir()) == ["a-ha", "c-hc"]
    assert not any("[d] building" in line for line in logs)


@pytest.mark.parametrize("step", ["b", "c"])  # one runs in this process, one in a child
def test_a_full_disk_in_a_step_is_reported_as_one(tmp_path, monkeypatch, step):
    monkeypatch.setenv(FAIL_ENV, f"{step}:disk")
    with pytest.raises(OSError) as caught:
        _build(tmp_path / "store", [])
    assert caught.value.errno == errno.ENOSPC, caught.value  # the CLI's one line says so


def test_critical_path_counts_the_heaviest_chain_behind_each_step():
    weights = {"a": 10.0, "b": 1.0, "c": 5.0, "d": 2.0}
    assert critical_path(STEPS, weights) == {"e": 1.0, "d": 2.0, "c": 7.0, "b": 3.0, "a": 17.0}
    assert critical_path(STEPS, {}) == {"e": 1.0, "d": 1.0, "c": 2.0, "b": 2.0, "a": 3.0}


def _digest(folder: Path) -> dict[str, str]:
    """Every artifact file's hash, except the JSON records and reports (they hold timings)."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix != ".json"
    }


def test_side_by_side_build_writes_the_same_artifacts_as_a_step_by_step_one(
    tiny_manifest, data_dir, tmp_path
):
    """Rebuild the steps that can share the cores (query, lexical, fusion, ranker, recommend)
    side by side in a copy of the session's step-by-step tiny build: same hashes, same bytes."""
    copy = tmp_path / "tiny"
    shutil.copytree(data_dir / "artifacts" / "tiny", copy)
    again = ("lexical", "query", "fusion", "ranker", "recommend")
    store = ArtifactStore(copy)
    before = {s: _digest(store.step_dir(s)) for s in again}
    for s in again:
        shutil.rmtree(store.step_dir(s))
    logs: list[str] = []
    manifest = run_build(load_preset("tiny"), root=copy, log=logs.append, jobs=2)
    for s in again:
        assert not manifest["steps"][s]["skipped"], s
        assert manifest["steps"][s]["hash"] == tiny_manifest["steps"][s]["hash"], s
        assert _digest(store.step_dir(s)) == before[s], s
    assert manifest["machine"]["jobs"] == min(2, len(os.sched_getaffinity(0)))
    assert list(manifest["steps"]) == list(tiny_manifest["steps"])  # dependency order
