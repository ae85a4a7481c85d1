"""CLIP image/text encoders behind one factory, open_clip style.

``create_clip(spec)`` accepts:

* ``"compact"`` — the catalog-trained compact CLIP saved in ``artifacts_dir``
  (see :mod:`engine.encoders.compact_clip`);
* ``"MODEL/PRETRAINED"`` — an open_clip pretrained tag such as ``"ViT-B-32/laion2b_s34b_b79k"``,
  used only when its weights are already in the local cache (nothing is ever downloaded);
* ``"MODEL@/path/to/ckpt.pt"`` (``.pt``, ``.pth``, ``.bin`` or ``.safetensors``) — a local
  checkpoint of an open_clip architecture, loaded through the same open_clip call as pretrained
  weights (``pretrained=<file>``, ``weights_only=True``: never unpickles arbitrary objects).

Weights that are not available raise :class:`ClipUnavailable` with one clear line;
``create_clip_with_fallback`` turns that into the compact model plus the message.
Every encoder returns L2-normalised float32 rows, images and texts in one shared space.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine import runtime  # noqa: F401  (offline env before open_clip/transformers are imported)

COMPACT = "compact"
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
    def encode_images(self, images: list[Image.Image], batch_size: int = 64) -> np.ndarray:
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
        return _l2(np.concatenate(out))

    @torch.inference_mode()
    def encode_texts(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 rows, one per text, in the images' space."""
        out = [np.zeros((0, self.dim), np.float32)]
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenize([str(t) for t in texts[i : i + batch_size]])
            out.append(self.model.encode_text(tokens).float().numpy())
        return _l2(np.concatenate(out))


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence open_clip's and transformers' load warnings and progress bars for a moment."""
    import transformers

    tlog = transformers.utils.logging
    verbosity, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    previous_disable = logging.root.manager.disable
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous_disable)
        tlog.set_verbosity(verbosity)
        if bars:
            tlog.enable_progress_bar()


# ---------------------------------------------------------------- square images (compact CLIP)
_MEAN = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)  # open_clip's
_STD = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)


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


def list_clip_models() -> list[str]:
    """Specs accepted by :func:`create_clip` (besides ``"MODEL@/path/to/checkpoint"``)."""
    import open_clip

    return [COMPACT, *(f"{m}/{t}" for m, t in open_clip.list_pretrained())]


def _valid_choices() -> str:
    return (
        f"valid: {COMPACT!r}, 'MODEL/PRETRAINED' (an open_clip pretrained tag, e.g. "
        "'ViT-B-32/laion2b_s34b_b79k'; see list_clip_models()) or 'MODEL@/path/to/checkpoint"
        f"{{{','.join(CHECKPOINT_SUFFIXES)}}}'"
    )


def _cached_pretrained(model: str, tag: str) -> str | None:
    """The local file of an open_clip pretrained tag if it is cached, without any network call."""
    import open_clip
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if cfg.get("file"):
        return cfg["file"] if os.path.isfile(cfg["file"]) else None
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        names = [HF_SAFE_WEIGHTS_NAME] if filename == HF_WEIGHTS_NAME else []
        if filename.endswith((".bin", ".pth")):
            names.append(filename[:-4] + ".safetensors")
        for name in [*names, filename]:
            hit = try_to_load_from_cache(repo, name)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    if cfg.get("url"):
        path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
        return path if os.path.isfile(path) else None
    return None


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip().splitlines()
    line = f"{type(err).__name__}: {text[0] if text else ''}"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _open_clip_encoder(name: str, model_name: str, pretrained: str, what: str) -> ClipEncoder:
    """Create an open_clip model with ``pretrained`` (tag or file); failures -> ClipUnavailable."""
    import open_clip

    try:
        with quiet_loading():
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained, weights_only=True, device="cpu"
            )
            tokenizer = open_clip.get_tokenizer(model_name)
    except Exception as err:  # any loading failure means "not usable offline"
        raise ClipUnavailable(f"{what} could not be loaded offline ({_first_line(err)})") from err
    cfg = open_clip.get_model_config(model_name) or {}
    dim = int(cfg.get("embed_dim") or model.encode_text(tokenizer(["x"])).shape[-1])
    return ClipEncoder(name, model, preprocess, tokenizer, dim)


def create_clip(spec: str, *, artifacts_dir: Path | None = None) -> ClipEncoder:
    """Create a CLIP encoder from a spec (see the module docstring)."""
    import open_clip

    spec = str(spec).strip()
    if spec == COMPACT:
        if artifacts_dir is None:
            raise ValueError("create_clip('compact') needs artifacts_dir (the build's folder)")
        from engine.encoders.compact_clip import load_compact_clip

        return load_compact_clip(Path(artifacts_dir))
    if "@" in spec:
        model_name, _, path = spec.partition("@")
        if model_name not in open_clip.list_models():
            raise ValueError(
                f"unknown open_clip model {model_name!r} in CLIP spec {spec!r}; "
                f"valid models: {', '.join(open_clip.list_models())}"
            )
        if not path.lower().endswith(CHECKPOINT_SUFFIXES):
            raise ValueError(f"CLIP checkpoint {path!r} must end with {CHECKPOINT_SUFFIXES}")
        if not os.path.isfile(path):
            raise ClipUnavailable(f"CLIP checkpoint {path} for {model_name} does not exist")
        return _open_clip_encoder(spec, model_name, path, f"CLIP checkpoint {path} ({model_name})")
    if spec.lower().endswith(CHECKPOINT_SUFFIXES):
        raise ValueError(f"a CLIP checkpoint needs its open_clip model name: 'MODEL@{spec}'")
    model_name, slash, tag = spec.partition("/")
    if slash and model_name in open_clip.list_models():
        if not open_clip.get_pretrained_cfg(model_name, tag):
            tags = open_clip.list_pretrained_tags_by_model(model_name)
            raise ValueError(
                f"unknown pretrained tag {tag!r} for {model_name}; valid: {', '.join(tags) or '-'}"
            )
        if _cached_pretrained(model_name, tag) is None:
            raise ClipUnavailable(
                f"pretrained CLIP {spec} is not available offline (not in the local cache)"
            )
        return _open_clip_encoder(spec, model_name, tag, f"pretrained CLIP {spec}")
    raise ValueError(f"unknown CLIP spec {spec!r}; {_valid_choices()}")


def create_clip_with_fallback(
    spec: str, artifacts_dir: Path | None
) -> tuple[ClipEncoder, str | None]:
    """``create_clip(spec)``, or the compact model plus a one-line note when it is unavailable."""
    try:
        return create_clip(spec, artifacts_dir=artifacts_dir), None
    except ClipUnavailable as err:
        if spec == COMPACT:
            raise
        return create_clip(COMPACT, artifacts_dir=artifacts_dir), f"{err}; {FALLBACK_NOTE}"
