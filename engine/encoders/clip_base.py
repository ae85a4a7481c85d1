"""What every CLIP encoder shares: the encoder class over an open_clip model, its errors, and the
square-image preprocessing the compact CLIP trains and serves with.

Every encoder returns L2-normalised float32 rows, images and texts in one shared space.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine import runtime  # noqa: F401  (offline env before open_clip/transformers are imported)
from engine.encoders.compact_common import COMPACT, MEAN, STD, fit_square  # noqa: F401  (COMPACT re-exported)
from engine.vectors import l2_normalise

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
FALLBACK_NOTE = "using the compact catalog CLIP instead"


class ClipUnavailable(RuntimeError):
    """The requested CLIP weights are not available offline (the message says what was tried)."""


class ThreadTuner:
    """Use the faster of ``threads`` and 1 thread for batch work, re-measured every ``every`` steps.

    On 2 shared cores OpenMP spin-waits when another process holds a core: one thread was then
    measured 2x faster than two for a compact-CLIP training step. Never uses more than
    ``threads``; call ``before(step)`` and ``after(step, seconds)`` around each step.
    """

    def __init__(self, threads: int, every: int = 50):
        self.options, self.best, self.every = [max(1, threads), 1], max(1, threads), every
        self.times: dict[int, list[float]] = {}
        self.now = self.best

    def _probing(self, step: int) -> bool:
        return self.options[0] > 1 and 1 <= step % self.every <= 4

    def before(self, step: int) -> None:
        probing = self._probing(step)
        self.now = self.options[(step % self.every - 1) // 2] if probing else self.best
        if torch.get_num_threads() != self.now:
            torch.set_num_threads(self.now)

    def after(self, step: int, seconds: float) -> None:
        if self._probing(step):
            self.times.setdefault(self.now, []).append(seconds)
            if step % self.every == 4:
                many, one = (min(self.times.pop(t)) for t in self.options)
                self.best = 1 if one < 0.9 * many else self.options[0]


class ClipEncoder:
    """An open_clip model with its image preprocessing and tokenizer."""

    def __init__(
        self,
        name: str,
        model: torch.nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenize: Callable[[list[str]], torch.Tensor],
        dim: int,
        *,
        channels_last: bool = False,
    ):
        self.name = name
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenize = tokenize
        self.dim = int(dim)
        self.channels_last = channels_last  # for conv towers (~1.7x faster batches on CPU)

    @torch.inference_mode()
    def encode_images(self, images: list[Image.Image], *, batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 rows, one per image (any size; converted to RGB).

        Uses at most torch's current thread count (1 for queries, see ``engine.runtime``).
        """
        out, threads = [np.zeros((0, self.dim), np.float32)], torch.get_num_threads()
        tuner = ThreadTuner(threads)
        try:
            for step, i in enumerate(range(0, len(images), batch_size)):
                tuner.before(step)
                t0, batch = time.perf_counter(), images[i : i + batch_size]
                x = torch.stack([self.preprocess(im.convert("RGB")) for im in batch])
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                out.append(self.model.encode_image(x).float().numpy())
                tuner.after(step, time.perf_counter() - t0)
        finally:
            torch.set_num_threads(threads)
        return l2_normalise(np.concatenate(out))

    def encode_texts_with(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """CLIP text rows of ``texts``, given their rows from the catalog's text encoder: a CLIP
        that shares that encoder (the compact one) reuses them instead of encoding again."""
        return self.encode_texts(texts)

    @torch.inference_mode()
    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 rows, one per text, in the images' space."""
        out = [np.zeros((0, self.dim), np.float32)]
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenize([str(t) for t in texts[i : i + batch_size]])
            out.append(self.model.encode_text(tokens).float().numpy())
        return l2_normalise(np.concatenate(out))


# ---------------------------------------------------------------- square images (compact CLIP)
_MEAN = torch.tensor(MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(STD).view(1, 3, 1, 1)


def normalise_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 normalised with open_clip's mean and std."""
    return (x.float() / 255.0 - _MEAN) / _STD


def square_preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """One image -> (3, size, size) model input; the same pixels training saw."""
    return normalise_uint8(torch.from_numpy(fit_square(image, size)).permute(2, 0, 1)[None])[0]


def _load_square(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        return fit_square(im, size)


def load_image_tensor(
    paths: list[Path], size: int, threads: int, progress: Callable | None = None
) -> torch.Tensor:
    """All images as one uint8 (N, 3, size, size) tensor, decoded with ``threads`` threads."""
    out = np.empty((len(paths), size, size, 3), np.uint8)
    with ThreadPoolExecutor(max(1, threads)) as pool:
        arrays = pool.map(partial(_load_square, size=size), paths, chunksize=64)
        if progress is not None:
            arrays = progress(arrays, len(paths), "load CLIP training images")
        for i, arr in enumerate(arrays):
            out[i] = arr
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


