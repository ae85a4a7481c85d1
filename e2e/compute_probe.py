"""float32 against bfloat16 for the build's two heaviest batch jobs, side by side in one run.

``python -m e2e.compute_probe [--catalog demo] [--texts 2048] [--images 2048] [--rounds 3]``
writes ``reports/compute.json``.

On a built catalog's own data it times, in alternating turns so that both formats see the same
machine: the sbert step's item encoder (:func:`engine.encoders.onnx_text.item_text_encoder`:
ONNX Runtime for ``fp32``, PyTorch autocast for ``bf16``) over a seeded sample of distinct item
texts, and the compact CLIP's own training code (:func:`train_compact_clip`, a few epochs over
a sample of training images) in each format. It records each turn's rate, the ratio of the
formats' medians, and how far bfloat16's item vectors are from float32's (cosine). Quality of
the trained models is a different question, answered by ``e2e.clip_epochs_probe --compute``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FORMATS = ("fp32", "bf16")
CLIP_EPOCHS = 3.0  # per turn: 3 passes over the sample (24 steps of 256 for 2,048 images)


def _sample(catalog_name: str, n_texts: int, n_images: int, seed: int):
    """Distinct item texts (longest first, as the sbert step orders them), training images
    (items launched before the cutoff) and their caption vectors from the built catalog."""
    import numpy as np
    import pandas as pd

    from engine.encoders.base import distinct_longest_first
    from engine.pipeline.steps.clip import caption_bank
    from engine.schema import item_texts
    from engine.serving import open_catalog

    catalog = open_catalog(catalog_name)
    world = catalog.step_dir("world")
    items = pd.read_parquet(world / "items.parquet")
    rng = np.random.default_rng(seed)
    texts, _ = distinct_longest_first(item_texts(items))
    picked = sorted(rng.choice(len(texts), min(n_texts, len(texts)), replace=False))
    texts = [texts[i] for i in picked]
    bank, captions = caption_bank(catalog.step_dir("sbert"))
    train = np.flatnonzero(~items["is_new"].to_numpy(bool))
    rows = np.sort(rng.choice(train, min(n_images, len(train)), replace=False))
    paths = [world / p for p in items["image_path"].to_numpy()[rows]]
    return catalog, texts, paths, bank, [captions[i] for i in rows]


def _text_turn(encoder, texts: list[str], batch_size: int) -> tuple[float, Any]:
    t0 = time.perf_counter()
    vectors = encoder.encode_texts(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - t0), vectors


def _clip_turn(paths, bank, captions, fmt: str, seed: int) -> dict[str, float]:
    from engine.config import ClipConfig
    from engine.encoders.compact_clip import train_compact_clip

    cfg = ClipConfig(epochs=CLIP_EPOCHS, compute=fmt)
    with tempfile.TemporaryDirectory(prefix=f"compute-probe-{fmt}-") as tmp:
        stats = train_compact_clip(paths, bank, captions, cfg, Path(tmp), seed=seed,
                                   log=lambda *a: None)
    return {"images_per_s": stats["images_per_s"], "seconds": stats["seconds"],
            "steps": stats["steps"], "final_loss": stats["final_loss"]}


def _summary(rates: dict[str, list[float]]) -> dict[str, Any]:
    med = {f: statistics.median(r) for f, r in rates.items()}
    return {"per_turn": {f: [round(x, 1) for x in r] for f, r in rates.items()},
            "median": {f: round(m, 1) for f, m in med.items()},
            "bf16_over_fp32": round(med["bf16"] / med["fp32"], 3),
            "turn_ratios": [round(b / a, 3) for a, b in zip(rates["fp32"], rates["bf16"])]}


def measure(catalog_name: str, n_texts: int, n_images: int, rounds: int, seed: int = 42,
            log=print) -> dict[str, Any]:
    """Alternating fp32 / bf16 turns (the order flips every round) for both jobs."""
    import numpy as np

    from engine.compute import native_bf16
    from engine.config import TextConfig
    from engine.encoders.onnx_text import item_text_encoder

    catalog, texts, paths, bank, captions = _sample(catalog_name, n_texts, n_images, seed)
    batch = int(catalog.config["text"].get("encode_batch_size", 128))
    threads = int(catalog.config.get("build_threads", 2))
    encoders = {f: item_text_encoder(TextConfig(item_compute=f), threads=threads)
                for f in FORMATS}
    for enc in encoders.values():  # warm-up: first-call allocations stay out of the turns
        enc.encode_texts(texts[:64], batch_size=batch)
    text_rates: dict[str, list[float]] = {f: [] for f in FORMATS}
    clip_rates: dict[str, list[float]] = {f: [] for f in FORMATS}
    clip_turns: dict[str, list[dict]] = {f: [] for f in FORMATS}
    vectors: dict[str, Any] = {}
    for r in range(rounds):
        for fmt in (FORMATS if r % 2 == 0 else FORMATS[::-1]):
            rate, vectors[fmt] = _text_turn(encoders[fmt], texts, batch)
            text_rates[fmt].append(rate)
            turn = _clip_turn(paths, bank, captions, fmt, seed)
            clip_rates[fmt].append(turn["images_per_s"])
            clip_turns[fmt].append(turn)
            log(f"round {r + 1} {fmt}: {rate:.0f} texts/s, {turn['images_per_s']:.0f} img/s")
    cos = np.sum(vectors["fp32"] * vectors["bf16"], axis=1)
    return {
        "catalog": catalog_name,
        "native_bf16": native_bf16(),
        "threads": threads,
        "rounds": rounds,
        "item_encoding": {
            "texts": len(texts), "batch_size": batch,
            "runtimes": {f: getattr(e, "runtime", None) for f, e in encoders.items()},
            "texts_per_s": _summary(text_rates),
            "cosine_bf16_vs_fp32": {"min": round(float(cos.min()), 6),
                                    "mean": round(float(cos.mean()), 6)},
        },
        "clip_training": {
            "images": len(paths), "epochs_per_turn": CLIP_EPOCHS,
            "images_per_s": _summary(clip_rates), "turns": clip_turns,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: measure (refused on a busy machine unless ``--force``), write JSON."""
    from e2e.probe_cli import run_probe

    def options(p) -> None:
        p.add_argument("--texts", type=int, default=2048, help="distinct item texts per turn")
        p.add_argument("--images", type=int, default=2048, help="CLIP training images per turn")
        p.add_argument("--rounds", type=int, default=3, help="turns per format (default 3)")

    return run_probe("e2e.compute_probe", __doc__, "compute.json", options,
                     lambda a: measure(a.catalog, a.texts, a.images, a.rounds), argv)


if __name__ == "__main__":
    sys.exit(main())
