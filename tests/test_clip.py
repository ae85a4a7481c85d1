"""CLIP family: compact catalog CLIP training/loading, captions, local checkpoints, fallbacks."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import engine  # noqa: F401  (offline env before open_clip/transformers)
from engine.config import ClipConfig
from engine.encoders import compact_clip as cc
from engine.encoders.clip import (
    FALLBACK_NOTE,
    ClipUnavailable,
    create_clip,
    create_clip_with_fallback,
    list_clip_models,
)
from engine.encoders.text import create_text_encoder
from engine.world.render import render_product

UNCACHED = "ViT-B-32/laion2b_s34b_b79k"
TINY_MODEL = "pm-test-tiny-vit"


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, list[Path]]:
    """200 rendered 64 px products over 4 categories x 4 colours x 2 patterns."""
    root = tmp_path_factory.mktemp("clip-world")
    combos = list(itertools.product(["backpack", "mug", "hat", "dress"],
                                    ["red", "navy", "yellow", "green"], ["solid", "dotted"]))
    rows, paths = [], []
    for i in range(200):
        cat, col, pat = combos[i % len(combos)]
        image, _ = render_product(category=cat, colour=col, pattern=pat, seed=i, size=64)
        paths.append(root / f"{i:03d}.png")
        image.save(paths[-1])
        rows.append({"item_id": f"p{i:03d}", "category": cat, "colour": col, "pattern": pat,
                     "material": "canvas", "brand": "Acme"})
    return pd.DataFrame(rows), paths


@pytest.fixture(scope="module")
def text_encoder():
    return create_text_encoder()


@pytest.fixture(scope="module")
def trained(tiny_world, text_encoder, tmp_path_factory) -> tuple[Path, dict]:
    items, paths = tiny_world
    attrs = zip(items["colour"], items["pattern"], items["category"])
    texts = [f"{c} {p} {k}" for c, p, k in attrs]
    texts += [f"a {k}" for k in items["category"]]
    bank = text_encoder.encode_texts(texts)
    captions = [[i, len(items) + i] for i in range(len(items))]
    out = tmp_path_factory.mktemp("clip-artifacts")
    cfg = ClipConfig(epochs=30, batch_size=64)
    stats = cc.train_compact_clip(paths, bank, captions, cfg, out, seed=0, log=lambda msg: None)
    return out, stats


@pytest.fixture(scope="module")
def compact(trained, text_encoder):
    torch.set_num_threads(1)
    return create_clip("compact", artifacts_dir=trained[0], text_encoder=text_encoder)


def test_training_lowers_loss_and_saves(trained) -> None:
    out, stats = trained
    assert stats["steps"] == stats["steps_requested"] >= cc.MIN_STEPS
    assert not stats["capped"] and stats["epochs"] == 30
    assert stats["final_loss"] < stats["initial_loss"]
    assert (out / cc.WEIGHTS_FILE).is_file()
    meta = json.loads((out / cc.META_FILE).read_text())
    assert meta["stats"]["steps"] == stats["steps"] and meta["image_size"] == 64
    assert "site-packages" not in json.dumps(meta)  # MiniLM is found at load time


def test_bfloat16_and_float32_training_both_learn(tiny_world, text_encoder, tmp_path) -> None:
    """The training's number format is recorded, and each format lowers the loss to a similar
    level from the same start (the quality comparison itself is reports/clip_bf16.json)."""
    items, paths = tiny_world
    bank = text_encoder.encode_texts([f"{c} {p} {k}" for c, p, k in
                                      zip(items["colour"], items["pattern"], items["category"])])
    captions = [[i] for i in range(len(items))]
    stats = {}
    for fmt in ("fp32", "bf16"):
        cfg = ClipConfig(epochs=20, batch_size=64, compute=fmt)
        stats[fmt] = cc.train_compact_clip(paths, bank, captions, cfg, tmp_path / fmt, seed=0,
                                           log=lambda msg: None)
        assert stats[fmt]["compute"] == fmt
        assert stats[fmt]["final_loss"] < 0.8 * stats[fmt]["initial_loss"]
        meta = json.loads((tmp_path / fmt / cc.META_FILE).read_text())
        assert meta["config"]["compute"] == fmt and meta["stats"]["compute"] == fmt
    assert stats["bf16"]["initial_loss"] == pytest.approx(stats["fp32"]["initial_loss"], rel=0.02)
    assert stats["bf16"]["final_loss"] == pytest.approx(stats["fp32"]["final_loss"], rel=0.25)
    model, _ = cc.load_compact_model(tmp_path / "bf16")
    assert all(p.dtype == torch.float32 for p in model.parameters())  # saved in float32


def test_compact_embeddings_are_normalised_shared_and_stable(compact, tiny_world) -> None:
    _, paths = tiny_world
    images = [Image.open(p) for p in paths[:5]] + [Image.new("RGB", (300, 180), "navy")]
    img = compact.encode_images(images, batch_size=4)
    txt = compact.encode_texts(["navy polka dot backpack", "red mug"])
    assert img.dtype == txt.dtype == np.float32
    assert img.shape == (6, compact.dim) and txt.shape == (2, compact.dim)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(compact.encode_images(images[:1]), img[:1], atol=1e-5)
    np.testing.assert_allclose(compact.encode_texts(["red mug"]), txt[1:], atol=1e-5)


def test_text_side_reuses_the_catalog_text_encoder(compact, text_encoder) -> None:
    """A query's SBERT vector, computed once, gives the same CLIP text row as encoding it."""
    texts = ["a navy polka dot backpack", "cup", "rucksack with dots in navy blue, canvas"]
    vectors = text_encoder.encode_texts(texts)
    np.testing.assert_allclose(compact.encode_texts(texts), compact.encode_text_vectors(vectors),
                               atol=1e-5)
    np.testing.assert_allclose(compact.encode_texts_with(texts, vectors),
                               compact.encode_texts(texts), atol=1e-5)
    assert compact.text_encoder is text_encoder


def test_training_needs_caption_rows_that_exist(tiny_world, tmp_path) -> None:
    items, paths = tiny_world
    with pytest.raises(ValueError, match="caption rows"):
        cc.train_compact_clip(paths[:2], np.zeros((1, 384), np.float32), [[0], [3]],
                              ClipConfig(epochs=1), tmp_path, seed=0)
    with pytest.raises(ValueError, match="one caption list per image"):
        cc.train_compact_clip(paths[:2], np.zeros((1, 384), np.float32), [[0]],
                              ClipConfig(epochs=1), tmp_path, seed=0)


def test_user_catalog_captions_are_title_and_description() -> None:
    items = pd.DataFrame({"title": ["Red mug", "Lamp"], "description": ["Ceramic.", None]})
    caps = cc.text_captions(items)
    assert caps == [["Red mug", "Red mug. Ceramic."], ["Lamp"]]


def _tiny_open_clip_checkpoint(folder: Path) -> tuple[torch.nn.Module, Path, Path]:
    """A tiny random open_clip model registered as a custom config, saved two ways."""
    import open_clip

    cfg = {"embed_dim": 32,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2,
                        "layers": 1}}
    (folder / f"{TINY_MODEL}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder / f"{TINY_MODEL}.json")
    model = open_clip.create_model(TINY_MODEL).eval()
    pt, st = folder / "tiny.pt", folder / "tiny.safetensors"
    torch.save(model.state_dict(), pt)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(st))
    return model, pt, st


def test_local_checkpoint_loads_through_the_pretrained_path(tmp_path: Path) -> None:
    import open_clip

    model, pt, st = _tiny_open_clip_checkpoint(tmp_path)
    tokens = open_clip.get_tokenizer(TINY_MODEL)(["a red mug"])
    with torch.no_grad():
        want = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1).numpy()
    for path in (pt, st):
        enc = create_clip(f"{TINY_MODEL}@{path}")
        assert enc.dim == 32
        images = [Image.new("RGB", (64, 64), "red"), Image.new("RGB", (90, 50), "blue")]
        img = enc.encode_images(images)
        assert img.shape == (2, 32)
        np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(enc.encode_texts(["a red mug"]), want, atol=1e-5)


class _NotAWeight:
    pass


def test_unsafe_or_missing_checkpoints_are_refused(tmp_path: Path) -> None:
    _tiny_open_clip_checkpoint(tmp_path)
    bad = tmp_path / "pickled.pt"
    torch.save({"state_dict": _NotAWeight()}, bad)
    with pytest.raises(ClipUnavailable):
        create_clip(f"{TINY_MODEL}@{bad}")
    with pytest.raises(ClipUnavailable, match="does not exist"):
        create_clip(f"{TINY_MODEL}@{tmp_path / 'missing.pt'}")


def test_uncached_pretrained_fails_fast_and_falls_back(trained, tmp_path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    t0 = time.perf_counter()
    with pytest.raises(ClipUnavailable) as err:
        create_clip(UNCACHED)
    assert time.perf_counter() - t0 < 10
    msg = str(err.value)
    assert UNCACHED in msg and "\n" not in msg
    enc, note = create_clip_with_fallback(UNCACHED, trained[0])
    assert enc.name == "compact"
    assert note is not None and UNCACHED in note and note.endswith(FALLBACK_NOTE)
    assert "\n" not in note
    assert create_clip_with_fallback("compact", trained[0])[1] is None


def test_unknown_specs_raise_value_error_listing_choices(tmp_path: Path) -> None:
    assert "compact" in list_clip_models() and UNCACHED in list_clip_models()
    with pytest.raises(ValueError, match="compact.*MODEL/PRETRAINED.*MODEL@"):
        create_clip("no-such-clip")
    with pytest.raises(ValueError, match="laion2b_s34b_b79k"):
        create_clip("ViT-B-32/no-such-tag")
    with pytest.raises(ValueError, match="MODEL@"):
        create_clip("/tmp/weights.pt")
    with pytest.raises(ValueError, match="unknown open_clip model"):
        create_clip("NoSuchNet@/tmp/weights.pt")
    with pytest.raises(ValueError, match="artifacts_dir"):
        create_clip("compact")
    with pytest.raises(ClipUnavailable, match="not built"):
        create_clip("compact", artifacts_dir=tmp_path)
