"""Run the build: every step of the plan, skipping those whose artifacts are up to date.

The manifest is written last (see :mod:`engine.artifacts`), so an interrupted build leaves the
previous artifacts usable.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.artifacts import ArtifactStore
from engine.config import BuildConfig, stable_hash
from engine.paths import artifacts_dir
from engine.pipeline import planner as planning
from engine.pipeline.status import rebuild_command
from engine.pipeline.step import StepContext
from engine.pipeline.timings import previous_records, previous_seconds, step_table
from engine.progress import ProgressFn, no_progress, with_prefix
from engine.progress_lines import format_duration
from engine.runtime import load_average


def run_build(
    cfg: BuildConfig,
    *,
    name: str | None = None,
    root: Path | None = None,
    progress: ProgressFn | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build (or bring up to date) the artifacts of ``cfg``; returns the new manifest.

    Each step's progress is reported as ``[step] what`` through ``progress``; each step logs its
    start (with its last build's time, when known) and its wall time, and the build ends with a
    per-step time table.
    """
    name = name or cfg.preset
    store = ArtifactStore(root or artifacts_dir(name))
    progress = progress or no_progress
    hashes = planning.plan(cfg)
    records: dict[str, Any] = {}
    t_start = time.perf_counter()
    load_at_start = load_average()
    with store.lock():
        previous = previous_records(store)
        before = previous_seconds(store)
        for step in planning.ordered_steps():
            step_hash = hashes[step.name]
            done = store.finished_step(step.name, step_hash)
            if done is not None:
                log(f"[{step.name}] up to date ({step_hash}), skipped")
                records[step.name] = {**done.__dict__, "skipped": True}
                last_rec = previous.get(step.name, {})
                if last_rec.get("hash") == step_hash and "peak_rss_mb" in last_rec:
                    # the peak measured when these artifacts were built, not this no-op's
                    records[step.name]["peak_rss_mb"] = last_rec["peak_rss_mb"]
                continue
            last = before.get(step.name)
            took = f" (last build took {format_duration(last)})" if last is not None else ""
            log(f"[{step.name}] building: {step.description}{took}")
            ctx = StepContext(
                cfg=cfg,
                inputs={d: store.root / records[d]["dir"] for d in step.deps},
                progress=with_prefix(progress, f"[{step.name}]"),
                log=log,
            )
            reason = step.unavailable(ctx) if step.unavailable else None
            info: dict[str, Any] = {}
            with store.write_step(step.name, step_hash, info) as out:
                info.update({"unavailable": reason} if reason else step.run(ctx, out))
            rec = store.finished_step(step.name, step_hash)
            # Cumulative: the step that raised it is the first whose figure is higher.
            records[step.name] = {**rec.__dict__, "skipped": False, "peak_rss_mb": _peak_rss_mb()}
            if reason:
                log(f"[{step.name}] not available for this catalog: {reason}")
            else:
                long = f" ({format_duration(rec.seconds)})" if rec.seconds >= 60 else ""
                log(f"[{step.name}] done in {rec.seconds:.1f} s{long}")
        manifest = {
            "name": name,
            "preset": cfg.preset,
            "config": cfg.to_dict(),
            "config_hash": stable_hash(cfg.to_dict()),
            "steps": records,
            "versions": planning.package_versions(),
            "machine": {
                "platform": platform.platform(),
                "cpus": _cpu_count(),
                "load_average_at_start": load_at_start,
                "peak_rss_mb": _peak_rss_mb(),
            },
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - t_start, 2),
            "rebuild_command": rebuild_command(cfg, name),
        }
        if all(r.get("skipped") for r in records.values()):
            _keep_last_build(store, manifest)
        store.commit(manifest)
    for line in step_table(manifest):
        log(line)
    return manifest


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
