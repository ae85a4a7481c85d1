"""CLIP step: use the configured pretrained CLIP if it is available offline, otherwise train the
compact catalog CLIP (``engine/encoders/compact_clip.py``) on the catalog's own text, and
exports its image tower to ONNX for torch-free queries (``engine/encoders/onnx_clip.py``).

Captions are the title and the full item text, embedded once by the sbert step. Items launched
after the cutoff (NEW) are left out of training, so cold-start figures measure unseen images.
"""

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
    from engine.encoders.onnx_clip import export_compact_clip

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
    bank, captions = caption_bank(ctx.inputs["sbert"])
    # Items launched after the cutoff stay out of training: cold start means unseen images.
    train = np.flatnonzero(~items["is_new"].to_numpy(bool))
    stats = train_compact_clip(
        [world / p for p in items["image_path"].to_numpy()[train]],
        bank,
        [captions[i] for i in train],
        ctx.cfg.clip,
        out,
        seed=ctx.cfg.seed,
        progress=ctx.progress,
        log=ctx.log,
    )
    stats["excluded_new_items"] = int(len(items) - len(train))
    stats["onnx"] = export_compact_clip(out, log=ctx.log)  # None: queries use PyTorch
    (out / CLIP_SPEC_FILE).write_text(json.dumps({"spec": "compact", "fallback": fallback}))
    return {"spec": "compact", "trained": True, "requested": spec, "fallback": fallback, **stats}


def caption_bank(sbert_dir: Path) -> tuple[np.ndarray, list[list[int]]]:
    """What the catalog says about each item, as the sbert step embedded it: the title and the
    full item text (title, description, brand, category). Returns the distinct caption vectors
    and, per item, the rows of its captions (one row when the title alone is the whole text)."""
    texts = np.load(sbert_dir / "sbert_items.npy")
    titles = np.load(sbert_dir / "sbert_titles.npy")
    bank = np.concatenate([titles, texts]).astype(np.float32)
    n = len(texts)
    return bank, [[i, n + i] for i in range(n)]


def clip_threads(cfg) -> int:
    """The compact CLIP trains on ``clip.threads`` threads (fixed, so a seed trains one model)."""
    return cfg.clip.threads


STEP = register_step(
    Step(
        "clip",
        2,
        ("world", "sbert"),
        ("clip",),
        run,
        "compact catalog CLIP trained on what the catalog says (or pretrained)",
        ("encoders/clip.py", "encoders/clip_base.py", "encoders/compact_clip.py",
         "encoders/compact_common.py", "encoders/onnx_clip.py", "compute.py"),
        threads=clip_threads,
    )
)
