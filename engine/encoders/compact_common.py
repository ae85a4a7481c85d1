"""What the compact CLIP's training (PyTorch) and its torch-free query side share: its spec
name, its saved files' names, and its square image inputs.

The compact CLIP trains and serves on centre-cropped, bicubic-resized square images normalised
with open_clip's mean and std; both runtimes use these functions, so both see the same pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

COMPACT = "compact"  # the spec of the catalog-trained CLIP
WEIGHTS_FILE = "compact_clip.safetensors"
META_FILE = "compact_clip.json"
MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's
STD = (0.26862954, 0.26130258, 0.27577711)


class SharedTextSide:
    """The compact CLIP's text side, on either runtime: a query's rows from the catalog's text
    encoder (``self.text_encoder``), through the trained projection (``encode_text_vectors``)."""

    dim: int
    text_encoder: Any

    def encode_text_vectors(self, vectors: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def encode_texts_with(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """CLIP rows of ``texts`` from their text-encoder rows (no second encoding)."""
        return self.encode_text_vectors(vectors)

    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = self.text_encoder.encode_texts([str(t) for t in texts], batch_size=batch_size)
        return self.encode_text_vectors(vectors)


def fit_square(image: Image.Image, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3) from any image: centre crop to a square, bicubic resize."""
    image = image.convert("RGB")
    w, h = image.size
    if w != h:
        s = min(w, h)
        image = image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.array(image, dtype=np.uint8)


def square_batch(images: list[Image.Image], size: int) -> np.ndarray:
    """float32 (N, 3, size, size) model input: :func:`fit_square`, then normalised."""
    x = np.stack([fit_square(im, size) for im in images]).astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
