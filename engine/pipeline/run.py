"""Run the build: every step of the plan, skipping those whose artifacts are up to date.

The manifest is written last (see :mod:`engine.artifacts`), so an interrupted build leaves the
previous artifacts usable. A first build also publishes a partial manifest after each step, so
the app serves the finished steps' methods while the others build.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.artifacts import ArtifactStore
from engine.config import BuildConfig, stable_hash
from engine.paths import artifacts_dir
from engine.pipeline import planner as planning
from engine.pipeline.execute import StepRunner
from engine.pipeline.live import LiveState
from engine.pipeline.side_by_side import run_side_by_side
from engine.pipeline.status import rebuild_command
from engine.pipeline.timings import previous_records, previous_seconds, step_table
from engine.progress import ProgressFn, no_progress
from engine.runtime import load_average


def run_build(
    cfg: BuildConfig,
    *,
    name: str | None = None,
    root: Path | None = None,
    progress: ProgressFn | None = None,
    log: Callable[[str], None] = print,
    jobs: int = 1,
) -> dict[str, Any]:
    """Build (or bring up to date) the artifacts of ``cfg``; returns the new manifest.

    Each step's progress is reported as ``[step] what`` through ``progress``; each step logs its
    start (with its last build's time, when known) and its wall time, and the build ends with a
    per-step time table. ``jobs`` is the number of cores the build may keep busy: with more
    than one, independent steps run side by side while their threads fit
    (:mod:`engine.pipeline.side_by_side`); the artifacts are the same either way.
    """
    name = name or cfg.preset
    store = ArtifactStore(root or artifacts_dir(name))
    hashes = planning.plan(cfg)
    records: dict[str, Any] = {}
    t_start = time.perf_counter()
    load_at_start = load_average()
    with store.lock():
        first, published = _first_build(store)
        previous = previous_records(store)
        before = previous_seconds(store)
        todo = []
        for step in planning.ordered_steps():
            step_hash = hashes[step.name]
            done = store.finished_step(step.name, step_hash)
            if done is None:
                todo.append(step)
                continue
            log(f"[{step.name}] up to date ({step_hash}), skipped")
            records[step.name] = {**done.__dict__, "skipped": True}
            last_rec = previous.get(step.name, {})
            if last_rec.get("hash") == step_hash and "peak_rss_mb" in last_rec:
                # the peak measured when these artifacts were built, not this no-op's
                records[step.name]["peak_rss_mb"] = last_rec["peak_rss_mb"]
        cores = max(1, min(jobs, _cpu_count()))
        live = LiveState(store.root, name, [s.name for s in planning.ordered_steps()],
                         [s for s in records], before, pack=_packing(store, cores))

        def manifest_now() -> dict[str, Any]:
            """The manifest of the steps recorded so far (in dependency order)."""
            return _manifest(name, cfg, {s.name: records[s.name] for s in planning.ordered_steps()
                                         if s.name in records}, cores, load_at_start, t_start)

        def publish_partial() -> None:
            """A first build's manifest of the steps finished so far, when that set changed
            and some step is still to come (the last one is the complete manifest)."""
            nonlocal published
            now = set(records)
            if first and "world" in now and now != published and now != set(hashes):
                store.publish_partial(manifest_now())
                published = now

        runner = StepRunner(store, cfg, hashes, records, progress or no_progress, log, before,
                            _peak_rss_mb, live, on_built=publish_partial)
        if todo:
            publish_partial()  # a stopped first build's finished steps serve at once
        try:
            if cores > 1 and len(todo) > 1:
                run_side_by_side(todo, runner, cores=cores, weights=before,
                                 progress_line=None if progress is None else _teed_line(live))
            else:
                for step in todo:
                    runner.run_here(step)
        except KeyboardInterrupt:
            live.close("stopped")
            raise
        except BaseException as exc:
            live.close("failed", str(exc) or type(exc).__name__)
            raise
        manifest = manifest_now()  # every step, in dependency order
        if all(r.get("skipped") for r in manifest["steps"].values()):
            _keep_last_build(store, manifest)
        store.commit(manifest)
        live.close("done")
    for line in step_table(manifest):
        log(line)
    return manifest


def _manifest(name: str, cfg: BuildConfig, records: dict[str, Any], cores: int,
              load_at_start: Any, t_start: float) -> dict[str, Any]:
    """The build's manifest over ``records`` (the steps' records, in dependency order)."""
    return {
        "name": name,
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "config_hash": stable_hash(cfg.to_dict()),
        "steps": records,
        "versions": planning.package_versions(),
        "machine": {
            "platform": platform.platform(),
            "cpus": _cpu_count(),
            "jobs": cores,
            "load_average_at_start": load_at_start,
            "peak_rss_mb": _peak_rss_mb(),
        },
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.perf_counter() - t_start, 2),
        "rebuild_command": rebuild_command(cfg, name),
    }


def _first_build(store: ArtifactStore) -> tuple[bool, set[str]]:
    """Whether this is a first build (no manifest yet, or only the partial one of a first build
    that stopped: it publishes a partial manifest after each step, while a complete one stays
    until the end), and the steps that partial manifest already names."""
    try:
        manifest = store.read_manifest()
    except Exception:  # none, or unreadable: nothing to keep serving
        return not store.manifest_path.is_file(), set()
    if manifest.get("partial"):
        return True, set(manifest.get("steps", {}))
    return False, set()


def default_jobs() -> int:
    """Cores a build keeps busy by default: two where there are two (more did not pay off:
    the steps' own threads already fill them)."""
    return min(2, _cpu_count())


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _packing(store: ArtifactStore, cores: int) -> float:
    """Wall seconds per second of step time in the last build that built steps (its steps ran
    side by side), for the live state's time left; ``1 / cores`` without one."""
    try:
        last = store.read_manifest()
        if last.get("partial"):  # a stopped first build: its time is not a whole build's
            return 1.0 / cores
        steps = [r.get("seconds") or 0.0 for r in last["steps"].values() if not r.get("skipped")]
        ratio = float(last["build_seconds"]) / sum(steps)
    except Exception:  # no manifest, or one without the figures: the cores' share
        return 1.0 / cores
    return min(1.0, max(1.0 / cores, ratio))


def _teed_line(live: LiveState) -> Callable[[str], None]:
    """A child step's progress line to stderr and into the live state."""

    def line(text: str) -> None:
        _stderr_line(text)
        live.line(text)

    return line


def _keep_last_build(store: Any, manifest: dict[str, Any]) -> None:
    """A build that only found everything up to date keeps the figures of the build that made
    the artifacts (its time, load and peak memory), rather than recording a 0.2 s no-op."""
    try:
        last = store.read_manifest()
    except Exception:  # no readable previous manifest: keep this one's figures
        return
    for key in ("machine", "build_seconds", "built_at"):
        if key in last:
            manifest[key] = last[key]
    manifest["checked_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process and its finished children (Linux: ru_maxrss in KiB)."""
    try:
        import resource

        kib = max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
    except (ImportError, OSError):  # pragma: no cover - not on every platform
        return None
    return round(kib / 1024, 1)


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
