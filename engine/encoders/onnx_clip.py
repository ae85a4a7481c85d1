"""The compact CLIP at query time without torch: its image tower on ONNX Runtime, its text
projection in NumPy.

The clip step trains the compact CLIP with PyTorch, then exports the image tower
(``compact_clip.onnx``) and checks it against PyTorch on probe images; an export that differs by
more than :data:`MAX_ABS_DIFF` is not written and queries keep the PyTorch model. The text side
is one 384x384 projection of the catalog's SBERT vector, read from the same safetensors file
with NumPy. Serving then needs neither torch nor open_clip: on the demo catalog that is ~650 MB
less resident memory per app process, and one image query's tower runs in ~1 ms instead of ~7.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.encoders.compact_common import (
    COMPACT,
    META_FILE,
    WEIGHTS_FILE,
    SharedTextSide,
    square_batch,
)
from engine.encoders.onnx_text import query_session
from engine.vectors import l2_normalise

ONNX_FILE = "compact_clip.onnx"
ONNX_META = "compact_clip_onnx.json"
OPSET = 17
MAX_ABS_DIFF = 1e-4  # ONNX image vectors must match PyTorch's this closely, or it is not used
PROBE_SEED = 7


def probe_images(size: int, n: int = 6) -> list[Image.Image]:
    """Seeded noise and flat images of several shapes: the export's check inputs."""
    rng = np.random.default_rng(PROBE_SEED)
    shapes = [(size, size), (size * 2, size), (size, size * 3 // 2), (17, 23)]
    out = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
           for w, h in (shapes * n)[:n]]
    out.append(Image.new("RGB", (size, size), (200, 30, 40)))
    return out


def export_compact_clip(folder: Path, *, log=print) -> dict[str, Any] | None:
    """Export the image tower of the compact CLIP saved in ``folder`` to ``compact_clip.onnx``
    (atomically) after checking it against PyTorch on :func:`probe_images`; returns the check's
    record, or None (with a logged reason) when the export cannot be trusted."""
    import torch

    from engine.encoders.compact_clip import load_compact_model

    folder = Path(folder)
    model, size = load_compact_model(folder)
    tmp, diff, images = folder / f".{ONNX_FILE}.{os.getpid()}.tmp", float("nan"), []
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python-level conditionals
            torch.onnx.export(
                model.visual, (torch.zeros(2, 3, size, size),), str(tmp),
                input_names=["pixels"], output_names=["embedding"],
                dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )
            images = probe_images(size)
            x = square_batch(images, size)
            want = model.encode_image(torch.from_numpy(x)).numpy()
        got = l2_normalise(query_session(tmp).run(None, {"pixels": x})[0])
        diff = float(np.abs(got - want).max())
        if not diff <= MAX_ABS_DIFF:
            log(f"  compact CLIP ONNX export differs from PyTorch by {diff:.2e}: not used")
            return None
        os.replace(tmp, folder / ONNX_FILE)
    except Exception as exc:  # the PyTorch model still serves; say why the fast path is off
        log(f"  compact CLIP ONNX export failed ({type(exc).__name__}: {exc}); "
            "queries use PyTorch")
        return None
    finally:
        tmp.unlink(missing_ok=True)
    record = {"max_abs_diff": diff, "opset": OPSET, "probes": len(images),
              "torch": torch.__version__}
    from engine.artifacts import atomic_write_json

    atomic_write_json(folder / ONNX_META, record)
    return record


class OnnxCompactClip(SharedTextSide):
    """The compact CLIP's query side on ONNX Runtime and NumPy: images and texts as L2-normalised
    float32 rows equal (to 1e-4) to :class:`~engine.encoders.compact_clip.CompactClipEncoder`'s."""

    runtime = "onnx"

    def __init__(self, folder: Path, text_encoder):
        from safetensors.numpy import load_file

        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        weights = load_file(str(folder / WEIGHTS_FILE))
        self.name, self.image_size = COMPACT, int(meta["image_size"])
        self.proj_t = np.ascontiguousarray(weights["text_proj.weight"].T, dtype=np.float32)
        self.dim = int(self.proj_t.shape[1])
        self.session = query_session(folder / ONNX_FILE)
        self.text_encoder = text_encoder

    def encode_images(self, images: list[Image.Image], *, batch_size: int = 64) -> np.ndarray:
        out = [np.zeros((0, self.dim), np.float32)]
        for i in range(0, len(images), max(1, batch_size)):
            x = square_batch(images[i : i + batch_size], self.image_size)
            out.append(self.session.run(None, {"pixels": x})[0].astype(np.float32))
        return l2_normalise(np.concatenate(out))

    def encode_text_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """CLIP text rows from SBERT rows (the trained projection, then L2 normalisation)."""
        return l2_normalise(np.asarray(vectors, dtype=np.float32) @ self.proj_t)


def onnx_compact_clip(folder: Path, text_encoder) -> OnnxCompactClip | None:
    """The ONNX compact CLIP of a clip step's folder, or None when it has no checked export."""
    folder = Path(folder)
    if not (folder / ONNX_FILE).is_file() or not (folder / ONNX_META).is_file():
        return None
    return OnnxCompactClip(folder, text_encoder)
