"""Run independent build steps side by side while their threads fit in the machine's cores.

Each step declares its threads (:func:`engine.pipeline.step.step_threads`), fixed by the config
and not by the schedule, so a build made side by side holds the same models as one made step by
step. The scheduler starts ready steps (all dependencies built) in order of the longest chain of
work still behind them (last build's times when known), a ``quick`` step first, and only while
their threads fit: the CLIP training on two threads runs alone, while the one-thread
recommenders run beside the query, fusion and ranker steps.

One step at a time runs in this process (in a thread, with the build's own progress reporter);
any other runs in a spawned child process (a fresh interpreter: no OpenMP state is inherited)
that sends its log and progress lines back here. When a step fails, no new step starts; those
already running finish, and are kept, then the build raises the failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import multiprocessing as mp
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from engine.config import BuildConfig
from engine.pipeline.execute import Started, StepRunner, run_step_body
from engine.pipeline.step import Step
from engine.processes import interrupts_ignored
from engine.progress import ProgressFn

POLL_SECONDS = 0.1


class _Job:
    """A started step, running here (in a thread) or in a child process."""

    def __init__(self, started: Started, threads: int):
        self.started, self.threads = started, threads
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def done(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the step (a child is terminated; a step in this process stops at its next
        progress item)."""


class StepStopped(KeyboardInterrupt):
    """Raised inside a step that runs in this process when the build is stopped (Ctrl+C)."""


def _stoppable(progress: ProgressFn, stopped: threading.Event) -> ProgressFn:
    """``progress`` that raises :class:`StepStopped` at the next item once ``stopped`` is set:
    a step's loops all report progress, so the step ends within one item of work."""

    def wrapped(it: Iterable[Any], total: int, desc: str, **kw: Any) -> Iterator[Any]:
        for item in progress(it, total, desc, **kw):
            if stopped.is_set():
                raise StepStopped(f"stopped during {desc}")
            yield item

    return wrapped


class _HereJob(_Job):
    #: How long a stopped step may take to reach its next progress item before the build exits
    #: without it (its thread is a daemon).
    STOP_SECONDS = 30.0

    def __init__(self, started: Started, threads: int):
        super().__init__(started, threads)
        # Set when the step's thread ends. Waited on instead of Thread.join: on Python 3.11 a
        # join interrupted by Ctrl+C can leave a running thread marked as stopped.
        self.ended = threading.Event()
        self.stopped = threading.Event()
        self.ctx = dataclasses.replace(started.ctx,
                                       progress=_stoppable(started.ctx.progress, self.stopped))
        self.thread = threading.Thread(target=self._run, name=f"step-{started.step.name}",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = run_step_body(self.started.step, self.ctx, self.started.out)
        except BaseException as exc:  # handed to the scheduler, which raises it
            self.error = exc
        finally:
            self.ended.set()

    def done(self) -> bool:
        return self.ended.is_set()

    def stop(self) -> None:
        """Stop the step at its next progress item and wait for its thread: a thread still
        inside PyTorch when the interpreter exits can abort the process."""
        self.stopped.set()
        self.ended.wait(timeout=self.STOP_SECONDS)


class _ChildJob(_Job):
    def __init__(self, started: Started, threads: int, forward_progress: bool):
        super().__init__(started, threads)
        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_child_main,
            args=(started.step.name, started.step.run.__module__, started.ctx.cfg,
                  dict(started.ctx.inputs), started.out, threads, child_conn, forward_progress),
            name=f"pixelmatch-step-{started.step.name}",
        )
        with interrupts_ignored():  # the parent handles Ctrl+C and stops the child
            self.process.start()
        child_conn.close()
        self.finished = False

    def pump(self, log: Callable[[str], None], progress_line: Callable[[str], None]) -> None:
        """Handle every message the child has sent so far."""
        while not self.finished and self.conn.poll():
            try:
                kind, payload = self.conn.recv()
            except (EOFError, OSError):
                break
            if kind == "log":
                log(payload)
            elif kind == "progress":
                progress_line(payload)
            elif kind == "done":
                self.result, self.finished = payload, True
            elif kind == "error":
                self.error, self.finished = payload, True
        if self.finished:
            self.process.join(timeout=30)
        if not self.finished and not self.process.is_alive() and not self.conn.poll():
            self.process.join()
            self.error = RuntimeError(
                f"the {self.started.step.name} step's process ended without a result "
                f"(exit code {self.process.exitcode})"
            )
            self.finished = True

    def done(self) -> bool:
        return self.finished

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)


def critical_path(steps: list[Step], weights: dict[str, float]) -> dict[str, float]:
    """For each step, its weight plus the heaviest chain of steps that depend on it."""
    names = {s.name for s in steps}
    dependents: dict[str, list[str]] = {s.name: [] for s in steps}
    for s in steps:
        for d in s.deps:
            if d in names:
                dependents[d].append(s.name)
    out: dict[str, float] = {}
    for s in reversed(steps):  # dependency order reversed: dependents first
        out[s.name] = weights.get(s.name, 1.0) + max(
            (out[d] for d in dependents[s.name]), default=0.0
        )
    return out


def run_side_by_side(steps: list[Step], runner: StepRunner, *, cores: int,
                     weights: dict[str, float], progress_line: Callable[[str], None] | None
                     ) -> None:
    """Build ``steps`` (in dependency order, each not yet built) on ``cores`` cores."""
    priority = critical_path(steps, weights)
    order = {s.name: i for i, s in enumerate(steps)}
    pending, running, failure = list(steps), [], None
    unbuilt = {s.name for s in steps}
    forward = progress_line or (lambda line: None)
    try:
        while pending or running:
            if failure is None:
                _start_ready(pending, running, unbuilt, runner, cores, priority, order,
                             progress_line is not None)
            if not running:
                break
            _wait(running)
            for job in list(running):
                if isinstance(job, _ChildJob):
                    job.pump(runner.log, forward)
                if not job.done():
                    continue
                running.remove(job)
                if job.error is None:
                    runner.finish(job.started, job.result)
                    unbuilt.discard(job.started.step.name)
                else:  # the error as the store reports it (a full disk as an OSError)
                    reported = _finish_quietly(runner, job)
                    failure = failure or reported
    except BaseException as exc:  # Ctrl+C or a failure while publishing: stop everything
        here = [j.started.step.name for j in running if isinstance(j, _HereJob) and not j.done()]
        if here and isinstance(exc, KeyboardInterrupt):
            runner.log(f"stopping: the {here[0]} step stops at its next progress item (at most "
                       f"{_HereJob.STOP_SECONDS:.0f} s; Ctrl+C again to quit at once)")
        for job in running:
            job.stop()
            _finish_quietly(runner, job, exc)
        raise
    if failure is not None:
        raise failure


def _start_ready(pending: list[Step], running: list[_Job], unbuilt: set[str],
                 runner: StepRunner, cores: int, priority: dict[str, float],
                 order: dict[str, int], forward_progress: bool) -> None:
    """Start ready steps, highest priority first, while their threads fit (strictly in order:
    a step waiting for cores is not overtaken)."""
    ready = [s for s in pending if not any(d in unbuilt for d in s.deps)]
    # quick steps first (seconds of work that let a first build's app search early); ties: the
    # step with more threads first (the one-thread steps can share the cores later)
    ready.sort(key=lambda s: (not s.quick, -priority[s.name], -runner.threads(s), order[s.name]))
    used = sum(job.threads for job in running)
    for step in ready:
        need = min(runner.threads(step), cores)
        if running and used + need > cores:
            break
        pending.remove(step)
        started = runner.start(step)
        if started.unavailable:
            runner.finish(started, None)
            unbuilt.discard(step.name)
            continue
        here = not any(isinstance(job, _HereJob) for job in running)
        job = (_HereJob(started, need) if here
               else _ChildJob(started, need, forward_progress))
        running.append(job)
        used += need


def _wait(running: list[_Job]) -> None:
    children = [j for j in running if isinstance(j, _ChildJob)]
    if any(j.done() for j in running):
        return
    handles: list[Any] = [j.conn for j in children] + [j.process.sentinel for j in children]
    if handles:
        wait(handles, timeout=POLL_SECONDS)
    else:
        for j in running:
            if isinstance(j, _HereJob):
                j.ended.wait(timeout=POLL_SECONDS)


def _finish_quietly(runner: StepRunner, job: _Job,
                    exc: BaseException | None = None) -> BaseException:
    """Remove a failed or stopped step's folder, whatever its error; returns that error as the
    store reports it (its clean-up turns a library's full-disk report into an OSError, as in a
    step-by-step build)."""
    error = exc or job.error or RuntimeError("stopped")
    try:
        runner.finish(job.started, None, error)
    except BaseException as reported:  # handed back: the scheduler raises it
        return reported
    return error


# ---------------------------------------------------------------- child process
class _PipeStream:
    """A text stream whose lines go to the parent as progress messages."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.conn.send(("progress", line))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _find_step(name: str, module_name: str) -> Step:
    """The step called ``name``: a global of the module defining its ``run`` (every step module
    keeps its ``STEP``), else the registry's."""
    from engine.pipeline.step import STEPS

    module = importlib.import_module(module_name)
    found = [v for v in vars(module).values() if isinstance(v, Step) and v.name == name]
    return found[0] if found else STEPS.get(name)


def _child_main(name: str, module_name: str, cfg: BuildConfig, inputs: dict[str, Path],
                out: Path, threads: int, conn: Connection, forward_progress: bool) -> None:
    """Run one step in a spawned process and send its result (or its error) to the parent."""
    from engine import runtime  # noqa: F401  (offline model hubs, before any model import)
    from engine.pipeline.step import StepContext
    from engine.progress import no_progress, with_prefix
    from engine.progress_lines import LineProgress

    try:
        step = _find_step(name, module_name)
        progress = LineProgress(_PipeStream(conn)) if forward_progress else no_progress
        ctx = StepContext(cfg=cfg, inputs=inputs, progress=with_prefix(progress, f"[{name}]"),
                          log=lambda line: conn.send(("log", str(line))), threads=threads)
        conn.send(("done", run_step_body(step, ctx, Path(out))))
    except BaseException as exc:
        _send_error(conn, name, exc)
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()


def _send_error(conn: Connection, name: str, exc: BaseException) -> None:
    """Send a step's error to the parent; nothing when the parent is gone (a stopped build
    has already cleaned up and exited: there is nobody to tell)."""
    with contextlib.suppress(OSError):
        try:
            conn.send(("error", exc))
        except Exception:  # it does not pickle (or the pipe is broken: the next send fails too)
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            conn.send(("error", RuntimeError(f"[{name}] {text}")))
