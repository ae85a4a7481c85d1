"""What a build step declares, and the registry of steps.

A step is one module of ``engine/pipeline/steps/``: it defines ``run(ctx, out) -> info`` and
registers a :class:`Step` naming its dependencies, the config sections it reads and the source
files whose code is in its hash. The planner (``engine.pipeline.planner``) orders the steps
by their dependencies; nothing else lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.config import BuildConfig
from engine.progress import ProgressFn
from engine.registry import Registry


@dataclass
class StepContext:
    """What a step gets: the config, its dependencies' folders, progress and log callbacks."""

    cfg: BuildConfig
    inputs: dict[str, Path]
    progress: ProgressFn
    log: Callable[[str], None]
    # The threads the step may use (its :func:`step_threads`): fixed per step, not per run, so
    # a build that runs steps side by side trains the same models as one that does not.
    threads: int = 1


@dataclass(frozen=True)
class Step:
    """One build step: what it reads, what it depends on, and the function that runs it."""

    name: str
    version: int
    deps: tuple[str, ...]
    sections: tuple[str, ...]
    run: Callable[[StepContext, Path], dict[str, Any]]
    description: str = ""
    code: tuple[str, ...] = ()  # source files (globs under engine/) whose text is in the hash
    # Why the step cannot run on this catalog (e.g. no interactions), or None. An unavailable
    # step records the reason instead of artifacts, and the methods that need it are hidden.
    unavailable: Callable[[StepContext], str | None] | None = None
    # How many threads the step uses, from the config (None: ``build_threads``). The build runs
    # steps side by side while their threads fit in the machine's cores.
    threads: Callable[[BuildConfig], int] | None = None
    # A step of a few seconds that unlocks methods (BM25): a side-by-side build starts it before
    # longer ready steps, so a first build's app can search within about a minute.
    quick: bool = False


def step_threads(step: Step, cfg: BuildConfig) -> int:
    """The threads ``step`` runs on for ``cfg`` (at least 1)."""
    return max(1, int(step.threads(cfg) if step.threads else cfg.build_threads))


def one_thread(cfg: BuildConfig) -> int:
    """``Step.threads`` of a step that runs on one thread, so another can run beside it."""
    return 1


STEPS: Registry[Step] = Registry("build step", "engine.pipeline.steps")


def register_step(step: Step) -> Step:
    """Register a step (a module of ``engine/pipeline/steps/`` calls this once)."""
    return STEPS.register(step)


def needs_queries(
    *, train: int = 0, val: int = 0, image_val: int = 0
) -> Callable[[StepContext], str | None]:
    """A step precondition: enough judged queries in each split of the catalog."""

    def check(ctx: StepContext) -> str | None:
        world = ctx.inputs["world"]
        text = pd.read_parquet(world / "queries.parquet", columns=["split"])["split"]
        image = pd.read_parquet(world / "image_queries.parquet", columns=["split"])["split"]
        have = {
            "training queries": ((text == "train").sum(), train),
            "validation queries": ((text == "val").sum(), val),
            "validation image queries": ((image == "val").sum(), image_val),
        }
        short = [f"{n} {what} (needs {need})" for what, (n, need) in have.items() if n < need]
        return f"the catalog has only {', '.join(short)}" if short else None

    return check


def needs_interactions(ctx: StepContext) -> str | None:
    """A step precondition: interactions both before and after the chronological cutoff."""
    split = pd.read_parquet(ctx.inputs["world"] / "interactions.parquet", columns=["split"])
    counts = split["split"].value_counts()
    if counts.get("train", 0) == 0 or counts.get("test", 0) == 0:
        return "the catalog has no interactions before and after the cutoff (ingest an events file)"
    return None
