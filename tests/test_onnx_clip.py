"""The compact CLIP's torch-free query side: the clip step's checked ONNX export of the image
tower, NumPy for the text projection, and a serving process that never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.components import clip_encoder
from engine.encoders.compact_common import square_batch
from engine.encoders.onnx_clip import (
    MAX_ABS_DIFF,
    ONNX_FILE,
    ONNX_META,
    OnnxCompactClip,
    export_compact_clip,
    onnx_compact_clip,
    probe_images,
)
from engine.encoders.onnx_text import RUNTIME_ENV

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip_dir(tiny_catalog) -> Path:
    return tiny_catalog.step_dir("clip")


@pytest.fixture(scope="module")
def torch_clip(tiny_catalog, clip_dir):
    from engine.components import text_encoder
    from engine.encoders.clip import load_clip_step

    return load_clip_step(clip_dir, text_encoder(tiny_catalog))


def _images(tiny_catalog) -> list[Image.Image]:
    root = tiny_catalog.step_dir("world")
    paths = tiny_catalog.items["image_path"].tolist()[:5]
    out = [Image.open(root / p).convert("RGB") for p in paths]
    out.append(out[0].convert("L"))  # greyscale and odd sizes go through the same crop
    out.append(out[1].resize((97, 41)))
    return out + probe_images(64, 3)


def test_the_clip_step_writes_a_checked_export(clip_dir) -> None:
    record = json.loads((clip_dir / ONNX_META).read_text())
    assert (clip_dir / ONNX_FILE).stat().st_size > 0
    assert 0 <= record["max_abs_diff"] <= MAX_ABS_DIFF and record["probes"] >= 5
    assert not list(clip_dir.glob(".*.tmp"))


def test_numpy_preprocessing_equals_the_torch_preprocessing(tiny_catalog) -> None:
    from engine.encoders.clip_base import square_preprocess

    images = _images(tiny_catalog)
    want = np.stack([square_preprocess(im, 64).numpy() for im in images])
    np.testing.assert_allclose(square_batch(images, 64), want, atol=1e-6)


def test_onnx_vectors_equal_pytorchs(tiny_catalog, torch_clip) -> None:
    fast = clip_encoder(tiny_catalog)
    assert isinstance(fast, OnnxCompactClip) and fast.dim == torch_clip.dim
    images = _images(tiny_catalog)
    for batch_size in (1, 64):
        got = fast.encode_images(images, batch_size=batch_size)
        assert got.dtype == np.float32 and got.shape == (len(images), fast.dim)
        assert np.abs(got - torch_clip.encode_images(images)).max() < MAX_ABS_DIFF
    texts = ["red striped backpack", "", "a very long wordy query " * 40]
    assert np.abs(fast.encode_texts(texts) - torch_clip.encode_texts(texts)).max() < 1e-5
    assert fast.encode_texts([]).shape == (0, fast.dim)


def test_the_torch_runtime_is_still_selectable(tiny_catalog, monkeypatch) -> None:
    from engine.encoders.clip_base import ClipEncoder

    monkeypatch.setenv(RUNTIME_ENV, "torch")
    assert isinstance(clip_encoder(tiny_catalog), ClipEncoder)


def test_no_export_means_pytorch(tmp_path, clip_dir) -> None:
    assert onnx_compact_clip(tmp_path, text_encoder=None) is None  # e.g. a pretrained CLIP
    for name in ("compact_clip.json", "compact_clip.safetensors"):
        (tmp_path / name).write_bytes((clip_dir / name).read_bytes())
    assert onnx_compact_clip(tmp_path, text_encoder=None) is None  # trained, never exported


def test_a_failed_export_writes_nothing_and_says_why(tmp_path, clip_dir, monkeypatch) -> None:
    import torch

    for name in ("compact_clip.json", "compact_clip.safetensors"):
        (tmp_path / name).write_bytes((clip_dir / name).read_bytes())

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(torch.onnx, "export", broken)
    said: list[str] = []
    assert export_compact_clip(tmp_path, log=said.append) is None
    assert "exporter exploded" in said[0] and "PyTorch" in said[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "compact_clip.json", "compact_clip.safetensors"]


def test_a_mismatching_export_is_refused(tmp_path, clip_dir, monkeypatch) -> None:
    from engine.encoders import onnx_clip

    for name in ("compact_clip.json", "compact_clip.safetensors"):
        (tmp_path / name).write_bytes((clip_dir / name).read_bytes())
    monkeypatch.setattr(onnx_clip, "MAX_ABS_DIFF", -1.0)  # nothing can pass
    said: list[str] = []
    assert export_compact_clip(tmp_path, log=said.append) is None
    assert "differs from PyTorch" in said[0] and not (tmp_path / ONNX_FILE).exists()


def test_serving_every_method_never_imports_torch(tiny_manifest, data_dir) -> None:
    """Every search method and recommender of a catalog, in a fresh process, as the app serves
    them: torch (~650 MB resident) stays out."""
    code = (
        "import e2e.memory_probe as m\n"
        "r = m.probe('tiny')\n"
        "print(len(r['methods']['text']), len(r['methods']['image']), "
        "len(r['methods']['recommend']), r['heavy_imports'])\n"
    )
    env = {**os.environ, "PIXELMATCH_DATA": str(data_dir)}
    env.pop(RUNTIME_ENV, None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    n_text, n_image, n_rec, heavy = out.stdout.strip().splitlines()[-1].split(" ", 3)
    assert int(n_text) >= 8 and int(n_image) >= 4 and int(n_rec) >= 5
    assert heavy == "[]", out.stdout
