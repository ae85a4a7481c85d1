"""CLIP step: use the configured pretrained CLIP if it is available offline, otherwise train the
compact catalog CLIP (``engine/encoders/compact_clip.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.pipeline.step import Step, StepContext, register_step


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    """Use the configured CLIP if its weights are available; otherwise train the compact one."""
    from engine.encoders.clip import CLIP_SPEC_FILE, ClipUnavailable, create_clip
    from engine.encoders.compact_clip import train_compact_clip

    spec, fallback = ctx.cfg.clip.model, None
    if spec != "compact":
        try:
            create_clip(spec)
            (out / CLIP_SPEC_FILE).write_text(json.dumps({"spec": spec}))
            return {"spec": spec, "trained": False}
        except ClipUnavailable as exc:
            fallback = str(exc)
            ctx.log(f"  {fallback}")
    world = ctx.inputs["world"]
    items = pd.read_parquet(world / "items.parquet")
    rng = np.random.default_rng(np.random.SeedSequence([ctx.cfg.seed, 11]))
    # The synthetic world captions from its attributes; an ingested catalog from its own text.
    captions = training_captions(items, rng, synthetic=ctx.cfg.source is None)
    paths = [world / p for p in items["image_path"]]
    stats = train_compact_clip(
        paths,
        captions,
        ctx.cfg.clip,
        out,
        seed=ctx.cfg.seed,
        progress=ctx.progress,
        log=ctx.log,
    )
    (out / CLIP_SPEC_FILE).write_text(json.dumps({"spec": "compact", "fallback": fallback}))
    return {"spec": "compact", "trained": True, "requested": spec, "fallback": fallback, **stats}



def training_captions(
    items: pd.DataFrame, rng: np.random.Generator, *, synthetic: bool
) -> list[list[str]]:
    """Captions per item: the synthetic world's attribute captions, or the catalog's own text."""
    if synthetic:
        from engine.world.captions import attribute_captions

        return attribute_captions(items, rng)
    from engine.encoders.compact_clip import text_captions

    return text_captions(items)


STEP = register_step(
    Step(
        "clip",
        1,
        ("world",),
        ("clip",),
        run,
        "compact catalog CLIP (or pretrained)",
        ("encoders/clip.py", "encoders/clip_base.py", "encoders/compact_clip.py"),
    )
)
