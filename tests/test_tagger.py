"""Tests of the simulated vendor image tagger (engine.world.tagger and its three helpers).

The tagger must look at the pictures, not at the labels: it trains only on its own rendered
photos (never a catalog image: shown by poisoning the catalog images and getting the same
weights), its tags are one vendor word per value with calibrated probabilities, its mistakes are
real substitutions whose confidences overlap the right tags', and its accuracy and calibration on
the tiny world stay in the ranges stated below (measured, with margin).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from engine.config import load_preset
from engine.schema import items_with_truth
from engine.world import tagger_model as tm
from engine.world import vocab
from engine.world.generate import generate_world, item_render_seed
from engine.world.tagger import (
    FOLDER,
    RUNNER_UP_MIN,
    VENDOR_WORDS,
    predict_probs,
    run_tagger,
    saved_tagger_quality,
)
from engine.world.tagger_photos import catalog_pixels, vendor_image_spec
from engine.world.tagger_quality import field_quality

FIELDS = vocab.VISUAL_FIELDS
# A world that generates in a few seconds, with a deliberately weak tagger (1 epoch).
MICRO = {
    "n_items": 150, "n_users": 40, "n_interactions": 800, "n_sessions": 40,
    "n_queries_train": 30, "n_queries_val": 10, "n_queries_test": 30, "n_image_queries": 8,
    "tagger_train_images": 300, "tagger_calibration_images": 100, "tagger_test_images": 100,
    "tagger_epochs": 1,
}
# Measured on the tiny preset, held-out vendor photos / catalog images: seed 42: category
# 0.87 / 0.94, colour 1.0 / 1.0, pattern 0.41 / 0.49; seed 7: category 0.88 / 0.89, colour
# 1.0 / 1.0, pattern 0.35 / 0.40; every ECE <= 0.075. Colour is (nearly) perfect because the
# world paints 14 well-separated palette colours; pattern is the hard field at 64 px.
ACCURACY = {"category": (0.7, 0.99), "colour": (0.95, 1.0), "pattern": (0.25, 0.75)}
MAX_ECE = 0.15


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny preset's world (tables, images and tagger; no other build step)."""
    torch.set_num_threads(1)
    cfg = load_preset("tiny")
    folder = tmp_path_factory.mktemp("tiny-world")
    info = generate_world(cfg, folder)
    return {"dir": folder, "cfg": cfg, "info": info["tagger"],
            "items": items_with_truth(folder),
            "keywords": pd.read_parquet(folder / "keywords.parquet")}


@pytest.fixture(scope="module")
def micro_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The micro world twice with seed 42 and once with seed 7."""
    cfg = load_preset("tiny", world=MICRO)
    out = {}
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        out[name] = tmp_path_factory.mktemp(f"micro-{name}")
        generate_world(dataclasses.replace(cfg, seed=seed), out[name])
    return out


# -- determinism and isolation from the catalog ------------------------------------------------
def test_same_seed_gives_the_same_tagger_and_tags(micro_worlds):
    a, b, c = (micro_worlds[k] for k in "abc")
    for rel in (f"{FOLDER}/tagger.safetensors", f"{FOLDER}/tagger.json", "keywords.parquet"):
        assert _sha(a / rel) == _sha(b / rel), rel
    assert _sha(a / FOLDER / "tagger.safetensors") != _sha(c / FOLDER / "tagger.safetensors")


def test_training_never_reads_a_catalog_image(micro_worlds, tmp_path):
    """Replace every catalog image by noise: the trained weights stay byte-identical (the model
    never saw those files), while the tags, which do look at them, change."""
    src = micro_worlds["a"]
    cfg = dataclasses.replace(load_preset("tiny", world=MICRO), seed=42)
    items = items_with_truth(src)
    rng = np.random.default_rng(0)
    for rel in items["image_path"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(tmp_path / rel, format="JPEG", quality=85)
    tags, _ = run_tagger(cfg, items, tmp_path)
    weights = f"{FOLDER}/tagger.safetensors"
    assert _sha(tmp_path / weights) == _sha(src / weights)
    original = pd.read_parquet(src / "keywords.parquet")
    assert not tags.equals(original)


def test_vendor_render_seeds_are_disjoint_from_every_catalog_seed(tiny_world):
    cfg, w = tiny_world["cfg"], tiny_world["cfg"].world
    n = w.tagger_train_images + w.tagger_calibration_images + w.tagger_test_images
    vendor = {vendor_image_spec(cfg.seed, i)[0] for i in range(n)}
    assert len(vendor) == n  # every vendor photo is a different picture
    catalog = {item_render_seed(cfg.seed, k) for k in range(w.n_items)}
    queries = set(pd.read_parquet(tiny_world["dir"] / "image_queries.parquet")["render_seed"])
    assert not vendor & catalog and not vendor & queries
    assert max(vendor) >= 2**32  # 64-bit seeds: a chance collision is out of the question


def test_vendor_photo_attributes_are_uniform():
    draws = np.array([vendor_image_spec(3, i)[1:] for i in range(6000)])
    for k, f in enumerate(FIELDS):
        counts = pd.Series(draws[:, k]).value_counts().reindex(vocab.names(f), fill_value=0)
        expected = len(draws) / len(counts)
        chi2 = float((((counts - expected) ** 2) / expected).sum())
        assert chi2 < 3 * len(counts), (f, counts.to_dict())  # far below for uniform draws


# -- the keyword table -------------------------------------------------------------------------
def test_tags_are_one_vendor_word_per_value_and_never_material(tiny_world):
    kw, items = tiny_world["keywords"], tiny_world["items"]
    assert list(kw.columns) == ["item_id", "keyword", "confidence", "source", "field"]
    tagger = kw[kw["source"] == "tagger"]
    allowed = {w: f for f in FIELDS for w in VENDOR_WORDS[f].values()}
    assert set(tagger["keyword"]) <= set(allowed)
    for f in FIELDS:  # one word per value: a bijection between values and words
        assert len(set(VENDOR_WORDS[f].values())) == len(vocab.FIELDS[f])
    material_words = {w for t in vocab.MATERIALS for w in (t.name, *t.words, *t.held_out)}
    assert not set(kw["keyword"]) & material_words
    synonyms = {w for f in FIELDS for t in vocab.FIELDS[f] for w in t.words[1:]} - set(allowed)
    assert not set(tagger["keyword"]) & synonyms
    # per item and field: exactly one top-1 tag, at most one runner-up, no word twice
    fields = tagger.assign(field=tagger["keyword"].map(allowed))
    per = fields.groupby(["item_id", "field"])["keyword"].agg(["count", "nunique"])
    assert per["count"].between(1, 2).all() and (per["count"] == per["nunique"]).all()
    assert len(per) == len(items) * len(FIELDS)
    brands = kw[kw["source"] == "catalog"].set_index("item_id")["keyword"]
    assert brands.to_dict() == dict(zip(items["item_id"], items["brand"].str.lower()))
    assert (kw.loc[kw["source"] == "catalog", "confidence"] == 1.0).all()


def test_confidences_are_the_models_probabilities(tiny_world):
    folder, items, kw = tiny_world["dir"], tiny_world["items"], tiny_world["keywords"]
    model, meta = tm.load_tagger(folder / FOLDER)
    rows = np.arange(0, len(items), 37)
    pixels = catalog_pixels([folder / p for p in items["image_path"].iloc[rows]],
                            meta["input_size"])
    probs = predict_probs(model, meta["temperatures"], pixels)
    for f in FIELDS:
        np.testing.assert_allclose(probs[f].sum(1), 1.0, atol=1e-9)
        assert (probs[f] >= 0).all()
    tagger = kw[kw["source"] == "tagger"]
    for r, item in enumerate(items["item_id"].iloc[rows]):
        got = dict(zip(tagger.loc[tagger["item_id"] == item, "keyword"],
                       tagger.loc[tagger["item_id"] == item, "confidence"]))
        for f in FIELDS:
            p, names = probs[f][r], vocab.names(f)
            order = np.argsort(-p, kind="stable")
            assert got[VENDOR_WORDS[f][names[order[0]]]] == pytest.approx(p[order[0]], abs=6e-4)
            runner = VENDOR_WORDS[f][names[order[1]]]
            assert (runner in got) == (p[order[1]] >= RUNNER_UP_MIN)


def test_substitutions_exist_and_confidences_overlap(tiny_world):
    """Unlike the old label-derived tagger (wrong tags only beside the true one, always less
    confident), the top-1 tag itself is often wrong, and wrong tags are often more confident
    than right ones. Colour is almost never wrong (see ACCURACY), so the overlap is asserted
    for category and pattern (category is well calibrated and ~98 % right: its overlap is small).
    """
    kw, items = tiny_world["keywords"], tiny_world["items"]
    truth = items.set_index("item_id")
    tagger = kw[kw["source"] == "tagger"]
    n_right = n_wrong = 0
    for f in FIELDS:
        value_of = {w: v for v, w in VENDOR_WORDS[f].items()}
        mine = tagger[tagger["keyword"].isin(value_of)]
        mine = mine.sort_values(["item_id", "confidence"], ascending=[True, False], kind="stable")
        top1 = ~mine["item_id"].duplicated()
        ok = mine["keyword"].map(value_of).to_numpy() == truth.loc[mine["item_id"], f].to_numpy()
        c = mine["confidence"].to_numpy()
        n_right, n_wrong = n_right + ok.sum(), n_wrong + (~ok).sum()
        assert top1.sum() == len(items)
        if f == "colour":
            continue
        right, wrong = c[top1 & ok], c[top1 & ~ok]
        # real substitutions of the top-1 tag (category is ~98 % right, pattern ~65 %)
        assert len(wrong) >= (0.01 if f == "category" else 0.1) * len(items), f
        # the old tagger's ranges never met (wrong 0.2-0.55, right 0.55-0.95); here the most
        # confident wrong top-1 tags beat the least confident tenth of the right ones, and for
        # pattern (measured: 66 % / 76 % for seeds 42 / 7) most wrong tags do
        if f == "pattern":
            assert wrong.max() > np.quantile(right, 0.1), f
            assert np.mean(wrong > np.quantile(right, 0.1)) > 0.3
        assert c[~ok].min() < c[ok].max() and c[~ok].max() > c[ok].min(), f
    tags = tiny_world["info"]["tags"]["all"]  # the info dict reports the same counts
    assert tags["wrong"] == n_wrong and tags["tags"] == n_right + n_wrong


# -- quality figures ---------------------------------------------------------------------------
def test_accuracy_and_calibration_stay_in_the_stated_ranges(tiny_world):
    info = tiny_world["info"]
    for part in ("heldout", "catalog"):
        for f in FIELDS:
            q = info[part][f]
            lo, hi = ACCURACY[f]
            assert lo <= q["accuracy"] <= hi, (part, f, q["accuracy"])
            assert q["accuracy"] <= q["top2_accuracy"] <= 1.0
            assert q["ece"] <= MAX_ECE, (part, f, q["ece"])
            assert abs(q["mean_confidence"] - q["accuracy"]) <= MAX_ECE
            assert sum(b["n"] for b in q["reliability"]) == q["n"]
    assert info["heldout"]["category"]["n"] == tiny_world["cfg"].world.tagger_test_images
    assert info["catalog"]["pattern"]["n"] == len(tiny_world["items"])
    assert info["training"]["steps"] > 0 and info["training"]["images_per_second"] > 0
    json.dumps(info)  # the build manifest stores it


def test_saved_tagger_reproduces_the_catalog_quality(tiny_world):
    assert saved_tagger_quality(tiny_world["dir"]) == tiny_world["info"]["catalog"]
    meta = json.loads((tiny_world["dir"] / FOLDER / "tagger.json").read_text())
    assert "seconds" not in json.dumps(meta)  # the world's files stay byte-reproducible


def test_field_quality_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    truth = np.array([0, 1, 1, 0])
    q = field_quality(probs, truth)
    assert q["accuracy"] == 0.5 and q["top2_accuracy"] == 1.0
    # bins: 0.9 -> [0.9, 1.0] right; 0.8 -> [0.8, 0.9) wrong; 0.7 right; 0.55 wrong
    assert q["ece"] == pytest.approx((0.1 + 0.8 + 0.3 + 0.55) / 4, abs=1e-4)
    assert q["mean_confidence"] == pytest.approx(0.7375, abs=1e-4)
    assert [b["n"] for b in q["reliability"]] == [1, 1, 1, 1]


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 5))
    z = np.exp(logits / 2.0)
    p = z / z.sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    assert tm.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_benchmark_markdown_has_a_tagger_row_per_field(tiny_world):
    from engine.benchmark.report import tagger_md

    info = tiny_world["info"]
    lines = tagger_md(info)
    for f in FIELDS:
        row = next(line for line in lines if line.startswith(f"| {f} |"))
        h, c = info["heldout"][f], info["catalog"][f]
        assert f"| {h['accuracy']:.3f} | {h['top2_accuracy']:.3f} | {h['ece']:.3f} |" in row
        assert f"| {c['accuracy']:.3f} |" in row and row.endswith(f"{c['mean_confidence']:.3f} |")
