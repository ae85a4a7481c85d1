"""World step: generate the synthetic world, or import an ingested catalog's tables and images."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.pipeline.step import Step, StepContext, register_step


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    if ctx.cfg.source is not None:
        from engine.ingest.source import import_source

        return import_source(ctx.cfg.source.name, ctx.cfg.source.fingerprint, out)
    from engine.world.generate import generate_world

    t0 = time.perf_counter()
    info = generate_world(ctx.cfg, out, ctx.progress)
    info["generate_seconds"] = round(time.perf_counter() - t0, 2)
    return info


STEP = register_step(
    Step(
        "world",
        3,
        (),
        ("world", "source"),
        run,
        "generate the synthetic world (or import an ingested catalog)",
        ("world/*.py",),
    )
)
