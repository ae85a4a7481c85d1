"""Visual step: CLIP and colour-histogram embeddings of every catalog and query image, and their
FAISS indexes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from engine.pipeline.indexing import build_vector_indexes
from engine.pipeline.step import Step, StepContext, register_step


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
    for chunk in progress(chunks, len(paths), desc, unit="images", size=len):
        images = _load_images(chunk)
        clip_parts.append(encoder.encode_images(images, batch_size=batch))
        colour_parts.append(colour_histograms(images))
    return (
        np.concatenate(clip_parts).astype(np.float32),
        np.concatenate(colour_parts).astype(np.float32),
    )


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    """Embed every catalog and query image; build the CLIP and colour indexes."""
    from engine.encoders.clip import load_clip_step
    from engine.encoders.onnx_text import text_encoder_for
    from engine.runtime import set_threads

    world = ctx.inputs["world"]
    items = pd.read_parquet(world / "items.parquet")
    image_q = pd.read_parquet(world / "image_queries.parquet")
    queries = pd.read_parquet(world / "queries.parquet")
    set_threads(ctx.threads)
    # The compact CLIP's text side is the catalog's SBERT, at the catalog's precision.
    text_encoder = text_encoder_for(ctx.cfg.text, threads=ctx.threads)
    encoder = load_clip_step(ctx.inputs["clip"], text_encoder)
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
    info = build_vector_indexes(clip_items, text_q, out, "clip", ctx.log, ctx.cfg.index)
    colour_info = build_vector_indexes(
        colour_items, colour_q, out, "colour", ctx.log, ctx.cfg.index
    )
    info.update({f"colour_{k}": v for k, v in colour_info.items()})
    info.update(
        clip_model=encoder.name,
        dim=int(clip_items.shape[1]),
        n=len(items),
        encode_seconds=round(encode_s, 2),
        images_per_second=round(len(items) / max(encode_s, 1e-9), 1),
    )
    return info


STEP = register_step(
    Step(
        "visual",
        1,
        ("world", "clip"),
        ("index",),
        run,
        "CLIP + colour image embeddings",
        ("encoders/colour.py", "indexes/vector.py", "indexes/tuning.py", "pipeline/indexing.py"),
    )
)
