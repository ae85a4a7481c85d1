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

import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.config import BuildConfig
from engine.schema import items_with_truth
from engine.world import vocab
from engine.world.tagger_photos import (
    FIELDS,
    STREAM,
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


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished child processes."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _torch_seed(seed: int) -> int:
    return int(np.random.SeedSequence([seed, STREAM]).generate_state(1)[0])


def run_tagger(cfg: BuildConfig, items: pd.DataFrame, world_dir: Path,
               progress: ProgressFn = _no_progress) -> tuple[pd.DataFrame, dict]:
    """Train the vendor tagger on its own photos, calibrate it, tag every catalog image.

    Needs the catalog images already written under ``world_dir`` (``items["image_path"]``).
    Saves the model in ``world_dir / FOLDER`` and returns (keywords table, info): settings,
    training statistics, temperatures, and the quality on held-out vendor photos and on the
    catalog (evaluation against the true attributes; the tags never read them).
    """
    w, t_start, cpu = cfg.world, time.perf_counter(), _cpu_seconds()
    import torch

    from engine.world import tagger_model as tm

    size = min(w.tagger_input_size, w.image_size)
    n_tr, n_cal, n_te = w.tagger_train_images, w.tagger_calibration_images, w.tagger_test_images
    splits = {"train": slice(0, n_tr), "calibration": slice(n_tr, n_tr + n_cal),
              "test": slice(n_tr + n_cal, None)}
    with workers(cfg.build_threads) as pmap:  # idle while the model trains on one thread
        x, y = vendor_photos(cfg.seed, range(n_tr + n_cal + n_te), image_size=w.image_size,
                             difficulty=w.image_difficulty, quality=w.image_quality,
                             input_size=size, pmap=pmap, progress=progress)
        render_s = time.perf_counter() - t_start
        t0 = time.perf_counter()
        model, stats = tm.train_tagger(
            torch.from_numpy(x[splits["train"]]),
            {f: torch.from_numpy(y[splits["train"], k]) for k, f in enumerate(FIELDS)},
            seed=_torch_seed(cfg.seed), epochs=w.tagger_epochs, width=w.tagger_width,
            batch_size=w.tagger_batch_size,
        )
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pixels = catalog_pixels([world_dir / p for p in items["image_path"]], size, pmap,
                                progress)
    cal_logits = tm.predict_logits(model, torch.from_numpy(x[splits["calibration"]]))
    temps = {f: tm.fit_temperature(cal_logits[f], y[splits["calibration"], k])
             for k, f in enumerate(FIELDS)}
    heldout = quality(predict_probs(model, temps, x[splits["test"]]), y[splits["test"]])

    probs = predict_probs(model, temps, pixels)
    tag_s = time.perf_counter() - t0
    tags = tagger_keywords(items, probs)
    meta = {"input_size": size, "temperatures": temps, "fields": {f: vocab.names(f) for f in
            FIELDS}, "vendor_words": VENDOR_WORDS, "seed": cfg.seed, "stream": STREAM,
            "images": {k: len(range(n_tr + n_cal + n_te)[s]) for k, s in splits.items()},
            "epochs": stats["epochs"], "steps": stats["steps"], "batch_size": w.tagger_batch_size}
    tm.save_tagger(model, meta, world_dir / FOLDER)
    info = {
        "settings": {"input_size": size, "width": w.tagger_width, "epochs": w.tagger_epochs,
                     "batch_size": w.tagger_batch_size, "runner_up_min": RUNNER_UP_MIN},
        "images": meta["images"],
        "training": {**stats, "seconds": round(train_s, 2),
                     "images_per_second": round(n_tr * w.tagger_epochs / max(train_s, 1e-9), 1)},
        "temperatures": temps,
        "heldout": heldout,
        "catalog": quality(probs, truth_indices(items)),
        "tags": tag_overlap(tags, items, VENDOR_WORDS),
        "seconds": {"render": round(render_s, 2), "train": round(train_s, 2),
                    "calibrate_and_tag": round(tag_s, 2),  # incl. decoding the catalog images
                    "total": round(time.perf_counter() - t_start, 2)},
        # CPU seconds of this process and its render/decode workers (with two of them it may
        # exceed the wall clock; far below it, other processes were competing for the cores)
        "cpu_seconds": round(_cpu_seconds() - cpu, 2),
    }
    return tags, info


def saved_tagger_quality(world_dir: Path, processes: int = 1) -> dict:
    """Recompute the catalog quality of the tagger saved in a world folder (per field)."""
    from engine.world import tagger_model as tm

    model, meta = tm.load_tagger(world_dir / FOLDER)
    items = items_with_truth(world_dir)  # the truth grades the tagger; it never trains on it
    with workers(processes) as pmap:
        pixels = catalog_pixels([world_dir / p for p in items["image_path"]],
                                meta["input_size"], pmap)
    return quality(predict_probs(model, meta["temperatures"], pixels), truth_indices(items))
