"""A simulated vendor image-tagging service: a small CNN that looks at each product picture.

The vendor never sees a catalog image nor a catalog label. It trains on its own photos
(:mod:`engine.world.tagger_photos`: attribute triples drawn uniformly, rendered from its own seed
stream like the catalog's images) with the model of :mod:`engine.world.tagger_model`; two more
slices of that stream are its calibration set (per-head temperature scaling) and its held-out test
set. Then it tags every catalog image: for category, colour and pattern the top-1 value with its
calibrated probability as the confidence, plus the runner-up when its probability is at least
``RUNNER_UP_MIN``. One vendor word per value (the value's first vocabulary word, the one the
re-ranker's tag features look up), no synonyms and no material (it cannot be seen). Its mistakes
are real substitutions and the confidences of right and wrong tags overlap.

Columns: ``item_id, keyword, confidence, source``; each item also keeps its brand
(``source="catalog"``, confidence 1). Quality figures (:mod:`engine.world.tagger_quality`) compare
with the true attributes; only evaluation reads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import BuildConfig
from engine.schema import items_with_truth
from engine.world import vocab
from engine.world.tagger_photos import (
    FIELDS,
    STREAM,
    MapFn,
    ProgressFn,
    catalog_pixels,
    vendor_photos,
    workers,
)
from engine.world.tagger_quality import quality, tag_overlap, truth_indices

RUNNER_UP_MIN = 0.25
VENDOR_WORDS: dict[str, dict[str, str]] = {
    f: {t.name: t.words[0] for t in vocab.FIELDS[f]} for f in FIELDS
}
FOLDER = "tagger"  # inside the world folder: tagger.safetensors + tagger.json


def _no_progress(it, total: int, desc: str):
    return it


def keyword_rows(
    item_ids, probs: dict[str, np.ndarray]
) -> list[tuple[str, str, float, str, str]]:
    """Top-1 word per field with its probability, plus the runner-up when p >= RUNNER_UP_MIN;
    like a vendor's API, each tag says which field it is (category, colour, pattern)."""
    rows = []
    order = {f: np.argsort(-p, axis=1, kind="stable")[:, :2] for f, p in probs.items()}
    names = {f: vocab.names(f) for f in FIELDS}
    for r, item in enumerate(item_ids):
        for f in FIELDS:
            for rank, c in enumerate(order[f][r]):
                p = float(probs[f][r, c])
                if rank == 0 or p >= RUNNER_UP_MIN:
                    rows.append((item, VENDOR_WORDS[f][names[f][c]], round(p, 3), "tagger", f))
    return rows


def tagger_keywords(items: pd.DataFrame, probs: dict[str, np.ndarray]) -> pd.DataFrame:
    """The keywords table: the tagger's rows of every item, then its brand from the catalog."""
    rows = keyword_rows(items["item_id"], probs)
    rows += [
        (i, b.lower(), 1.0, "catalog", "brand") for i, b in zip(items["item_id"], items["brand"])
    ]
    df = pd.DataFrame(rows, columns=["item_id", "keyword", "confidence", "source", "field"])
    order = {item: k for k, item in enumerate(items["item_id"])}
    return df.sort_values("item_id", key=lambda s: s.map(order), kind="stable").reset_index(
        drop=True
    )


def predict_probs(model, temperatures: dict[str, float], x: np.ndarray) -> dict[str, np.ndarray]:
    """Calibrated probabilities of every field for uint8 images (N, 3, S, S)."""
    import torch

    from engine.world import tagger_model as tm

    logits = tm.predict_logits(model, torch.from_numpy(x))
    return {f: tm.softmax(logits[f], temperatures[f]) for f in FIELDS}


def _torch_seed(seed: int) -> int:
    return int(np.random.SeedSequence([seed, STREAM]).generate_state(1)[0])


@dataclass
class VendorPhotos:
    """The vendor's own photos (uint8 N x 3 x S x S), their label indices and their slices."""

    x: np.ndarray
    y: np.ndarray
    splits: dict[str, slice]
    size: int
    seconds: float


@dataclass
class TrainedTagger:
    """The trained vendor model, its training statistics and seconds."""

    model: Any
    stats: dict
    seconds: float


def render_vendor_photos(cfg: BuildConfig, pmap: MapFn | None = None,
                         progress: ProgressFn = _no_progress) -> VendorPhotos:
    """Render the vendor's train, calibration and test photos (never a catalog image)."""
    w, t0 = cfg.world, time.perf_counter()
    size = min(w.tagger_input_size, w.image_size)
    n_tr, n_cal, n_te = w.tagger_train_images, w.tagger_calibration_images, w.tagger_test_images
    splits = {"train": slice(0, n_tr), "calibration": slice(n_tr, n_tr + n_cal),
              "test": slice(n_tr + n_cal, None)}
    x, y = vendor_photos(cfg.seed, range(n_tr + n_cal + n_te), image_size=w.image_size,
                         difficulty=w.image_difficulty, quality=w.image_quality,
                         input_size=size, pmap=pmap, progress=progress)
    return VendorPhotos(x, y, splits, size, time.perf_counter() - t0)


def train_vendor_tagger(cfg: BuildConfig, photos: VendorPhotos) -> TrainedTagger:
    """Train the vendor model on its train photos, on one torch thread (the same weights
    whatever else runs beside it: the world step trains it while it makes the tables)."""
    import torch

    from engine.world import tagger_model as tm

    w, t0, train = cfg.world, time.perf_counter(), photos.splits["train"]
    model, stats = tm.train_tagger(
        torch.from_numpy(photos.x[train]),
        {f: torch.from_numpy(photos.y[train, k]) for k, f in enumerate(FIELDS)},
        seed=_torch_seed(cfg.seed), epochs=w.tagger_epochs, width=w.tagger_width,
        batch_size=w.tagger_batch_size,
    )
    return TrainedTagger(model, stats, time.perf_counter() - t0)


def tag_catalog(cfg: BuildConfig, items: pd.DataFrame, world_dir: Path, photos: VendorPhotos,
                trained: TrainedTagger, pmap: MapFn | None = None,
                progress: ProgressFn = _no_progress) -> tuple[pd.DataFrame, dict]:
    """Calibrate the trained model, tag every catalog image, save the model; returns (keywords
    table, info): settings, training statistics, temperatures, and the quality on held-out
    vendor photos and on the catalog (evaluation against the true attributes; the tags never
    read them)."""
    import torch

    from engine.world import tagger_model as tm

    w, t0, size = cfg.world, time.perf_counter(), photos.size
    x, y, splits, model = photos.x, photos.y, photos.splits, trained.model
    pixels = catalog_pixels([world_dir / p for p in items["image_path"]], size, pmap, progress)
    cal_logits = tm.predict_logits(model, torch.from_numpy(x[splits["calibration"]]))
    temps = {f: tm.fit_temperature(cal_logits[f], y[splits["calibration"], k])
             for k, f in enumerate(FIELDS)}
    heldout = quality(predict_probs(model, temps, x[splits["test"]]), y[splits["test"]])

    probs = predict_probs(model, temps, pixels)
    tag_s = time.perf_counter() - t0
    tags = tagger_keywords(items, probs)
    images = {k: len(range(len(x))[s]) for k, s in splits.items()}
    meta = {"input_size": size, "temperatures": temps, "fields": {f: vocab.names(f) for f in
            FIELDS}, "vendor_words": VENDOR_WORDS, "seed": cfg.seed, "stream": STREAM,
            "images": images, "epochs": trained.stats["epochs"], "steps": trained.stats["steps"],
            "batch_size": w.tagger_batch_size}
    tm.save_tagger(model, meta, world_dir / FOLDER)
    n_tr = images["train"]
    info = {
        "settings": {"input_size": size, "width": w.tagger_width, "epochs": w.tagger_epochs,
                     "batch_size": w.tagger_batch_size, "runner_up_min": RUNNER_UP_MIN},
        "images": images,
        "training": {**trained.stats, "seconds": round(trained.seconds, 2),
                     "images_per_second": round(n_tr * w.tagger_epochs
                                                / max(trained.seconds, 1e-9), 1)},
        "temperatures": temps,
        "heldout": heldout,
        "catalog": quality(probs, truth_indices(items)),
        "tags": tag_overlap(tags, items, VENDOR_WORDS),
        "seconds": {"render": round(photos.seconds, 2), "train": round(trained.seconds, 2),
                    "calibrate_and_tag": round(tag_s, 2)},  # incl. decoding the catalog images
    }
    return tags, info


def run_tagger(cfg: BuildConfig, items: pd.DataFrame, world_dir: Path,
               progress: ProgressFn = _no_progress) -> tuple[pd.DataFrame, dict]:
    """Train the vendor tagger on its own photos, calibrate it, tag every catalog image, one
    phase after the other (:func:`engine.world.generate.generate_world` overlaps the training
    with its own work instead).

    Needs the catalog images already written under ``world_dir`` (``items["image_path"]``).
    Saves the model in ``world_dir / FOLDER`` and returns :func:`tag_catalog`'s (keywords, info).
    """
    with workers(cfg.build_threads) as pmap:  # idle while the model trains on one thread
        photos = render_vendor_photos(cfg, pmap, progress)
        trained = train_vendor_tagger(cfg, photos)
        return tag_catalog(cfg, items, world_dir, photos, trained, pmap, progress)


def saved_tagger_quality(world_dir: Path, processes: int = 1) -> dict:
    """Recompute the catalog quality of the tagger saved in a world folder (per field)."""
    from engine.world import tagger_model as tm

    model, meta = tm.load_tagger(world_dir / FOLDER)
    items = items_with_truth(world_dir)  # the truth grades the tagger; it never trains on it
    with workers(processes) as pmap:
        pixels = catalog_pixels([world_dir / p for p in items["image_path"]],
                                meta["input_size"], pmap)
    return quality(predict_probs(model, meta["temperatures"], pixels), truth_indices(items))
