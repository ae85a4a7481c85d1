"""Running one build step: its context, its published folder and its record.

:class:`StepRunner` is shared by the two ways a build runs its steps: one after another in this
process (``jobs=1``), or side by side (:mod:`engine.pipeline.side_by_side`), where a step runs in
this process or in a child process. Either way a step gets the same context, writes into a
temporary folder that is published whole when it succeeds (:meth:`ArtifactStore.write_step`),
and logs the same ``[step] building`` / ``[step] done in X s`` lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.artifacts import ArtifactStore
from engine.config import BuildConfig
from engine.pipeline.step import Step, StepContext, step_threads
from engine.progress import ProgressFn, with_prefix
from engine.progress_lines import format_duration


@dataclass
class Started:
    """A step whose folder is open: the context it runs with and where it writes."""

    step: Step
    ctx: StepContext
    out: Path
    info: dict[str, Any]
    unavailable: str | None
    _publish: contextlib.AbstractContextManager = field(repr=False)


def run_step_body(step: Step, ctx: StepContext, out: Path) -> dict[str, Any]:
    """Run ``step`` with BLAS / OpenMP pools limited to its threads (numpy, torch, FAISS)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=ctx.threads):
        return step.run(ctx, out)


class StepRunner:
    """Opens, runs and closes steps of one build, filling ``records`` as they finish."""

    def __init__(self, store: ArtifactStore, cfg: BuildConfig, hashes: dict[str, str],
                 records: dict[str, Any], progress: ProgressFn, log: Callable[[str], None],
                 before: dict[str, float], peak_rss: Callable[[], float | None],
                 live: Any = None, on_built: Callable[[], None] | None = None):
        self.store, self.cfg, self.hashes, self.records = store, cfg, hashes, records
        self.progress, self.log, self.before, self.peak_rss = progress, log, before, peak_rss
        self.live = live  # an engine.pipeline.live.LiveState, told of each start and end
        self.on_built = on_built  # called after each step is recorded (a first build's
        # partial manifest)

    def threads(self, step: Step) -> int:
        return step_threads(step, self.cfg)

    def start(self, step: Step) -> Started:
        """Log the start, check the step can run on this catalog, and open its folder."""
        last = self.before.get(step.name)
        took = f" (last build took {format_duration(last)})" if last is not None else ""
        self.log(f"[{step.name}] building: {step.description}{took}")
        progress = with_prefix(self.progress, f"[{step.name}]")
        if self.live is not None:
            self.live.started(step.name)
            progress = self.live.tee(progress, step.name)  # outside the prefix: its own words
        ctx = StepContext(
            cfg=self.cfg,
            inputs={d: self.store.root / self.records[d]["dir"] for d in step.deps},
            progress=progress,
            log=self.log,
            threads=self.threads(step),
        )
        reason = step.unavailable(ctx) if step.unavailable else None
        info: dict[str, Any] = {}
        publish = self.store.write_step(step.name, self.hashes[step.name], info)
        out = publish.__enter__()
        return Started(step, ctx, out, info, reason, publish)

    def finish(self, started: Started, result: dict[str, Any] | None,
               error: BaseException | None = None) -> None:
        """Publish the step's folder and record it (or, on ``error``, remove the folder)."""
        name = started.step.name
        if error is not None:
            if self.live is not None:
                self.live.finished(name, None, status="stopped" if isinstance(
                    error, KeyboardInterrupt) else "failed")
            started._publish.__exit__(type(error), error, error.__traceback__)
            return
        started.info.update({"unavailable": started.unavailable} if started.unavailable
                            else (result or {}))
        started._publish.__exit__(None, None, None)
        rec = self.store.finished_step(name, self.hashes[name])
        # Cumulative: the step that raised it is the first whose figure is higher.
        self.records[name] = {**rec.__dict__, "skipped": False, "peak_rss_mb": self.peak_rss(),
                              "threads": started.ctx.threads}
        if self.on_built is not None:
            self.on_built()
        if self.live is not None:
            self.live.finished(name, rec.seconds)
        if started.unavailable:
            self.log(f"[{name}] not available for this catalog: {started.unavailable}")
        else:
            long = f" ({format_duration(rec.seconds)})" if rec.seconds >= 60 else ""
            self.log(f"[{name}] done in {rec.seconds:.1f} s{long}")

    def run_here(self, step: Step) -> None:
        """Run ``step`` in this process, now (the one-after-another build)."""
        started = self.start(step)
        try:
            result = None if started.unavailable else run_step_body(step, started.ctx,
                                                                     started.out)
        except BaseException as exc:
            self.finish(started, None, exc)
            raise
        self.finish(started, result)
