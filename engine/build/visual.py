"""Visual build steps: the CLIP model (trained or pretrained) and the image embeddings + indexes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from engine.build.steps import StepContext, build_vector_indexes

CLIP_SPEC_FILE = "clip_spec.json"


def build_clip(ctx: StepContext, out: Path) -> dict[str, Any]:
    """Use the configured CLIP if its weights are available; otherwise train the compact one."""
    from engine.encoders.clip import ClipUnavailable, create_clip
    from engine.encoders.compact_clip import make_captions, train_compact_clip

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
    captions = make_captions(items, rng, synthetic=ctx.cfg.source is None)
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


def load_built_clip(clip_dir: Path):
    """The CLIP encoder a build step chose (the spec is recorded next to its weights)."""
    from engine.encoders.clip import create_clip

    spec = json.loads((clip_dir / CLIP_SPEC_FILE).read_text())["spec"]
    return create_clip(spec, artifacts_dir=clip_dir)


def _load_images(paths: list[Path]) -> list[Image.Image]:
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(im.convert("RGB"))
    return out


def encode_image_files(encoder, paths: list[Path], progress, desc: str, batch: int = 256):
    """CLIP and colour-histogram embeddings of image files, in batches."""
    from engine.encoders.colour import colour_histograms

    clip_parts, colour_parts = [], []
    chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)]
    for chunk in progress(chunks, len(chunks), desc):
        images = _load_images(chunk)
        clip_parts.append(encoder.encode_images(images, batch_size=batch))
        colour_parts.append(colour_histograms(images))
    return (
        np.concatenate(clip_parts).astype(np.float32),
        np.concatenate(colour_parts).astype(np.float32),
    )


def build_visual(ctx: StepContext, out: Path) -> dict[str, Any]:
    """Embed every catalog and query image; build the CLIP and colour indexes."""
    from engine.runtime import set_threads

    world = ctx.inputs["world"]
    items = pd.read_parquet(world / "items.parquet")
    image_q = pd.read_parquet(world / "image_queries.parquet")
    queries = pd.read_parquet(world / "queries.parquet")
    set_threads(ctx.cfg.build_threads)
    encoder = load_built_clip(ctx.inputs["clip"])
    t0 = time.perf_counter()
    clip_items, colour_items = encode_image_files(
        encoder, [world / p for p in items["image_path"]], ctx.progress, "embed catalog images"
    )
    encode_s = time.perf_counter() - t0
    clip_q, colour_q = encode_image_files(
        encoder, [world / p for p in image_q["image_path"]], ctx.progress, "embed query images"
    )
    np.save(out / "clip_items.npy", clip_items)
    np.save(out / "colour_items.npy", colour_items)
    np.save(out / "clip_image_queries.npy", clip_q)
    np.save(out / "colour_image_queries.npy", colour_q)
    text_q = encoder.encode_texts(queries["query"].tolist()[:300])
    info = build_vector_indexes(clip_items, text_q, out, "clip", ctx.log)
    colour_info = build_vector_indexes(colour_items, colour_q, out, "colour", ctx.log)
    info.update({f"colour_{k}": v for k, v in colour_info.items()})
    info.update(
        clip_model=encoder.name,
        dim=int(clip_items.shape[1]),
        n=len(items),
        encode_seconds=round(encode_s, 2),
        images_per_second=round(len(items) / max(encode_s, 1e-9), 1),
    )
    return info
