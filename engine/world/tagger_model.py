"""The vendor tagger's network: a small CNN with one softmax head per visible attribute.

Trained from scratch with cross-entropy and AdamW on rendered images only (see
:mod:`engine.world.tagger`), then each head is temperature-scaled on a held-out calibration set.
Everything runs on one torch thread so the weights are the same bytes on every run of a seed.
Weights are saved as safetensors with a JSON meta (never pickle).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from engine.world import vocab

HEADS: dict[str, int] = {f: len(vocab.FIELDS[f]) for f in vocab.VISUAL_FIELDS}
WEIGHTS, META = "tagger.safetensors", "tagger.json"


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread (deterministic, and fastest on 2 shared cores), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _block(c_in: int, c_out: int, k: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class TaggerNet(nn.Module):
    """uint8 (N, 3, S, S) images -> {field: logits}; strided convs, avg+max pooling, 3 heads."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = int(width)
        self.width = w
        self.body = nn.Sequential(
            *_block(3, w, 5, 2),
            *_block(w, 2 * w, 3, 2),
            *_block(2 * w, 4 * w, 3, 2),
            *_block(4 * w, 4 * w, 3, 1),
        )
        self.heads = nn.ModuleDict({f: nn.Linear(8 * w, n) for f, n in HEADS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.contiguous(memory_format=torch.channels_last)  # ~20 % faster convs on CPU
        h = self.body(x.float() * (1 / 64.0) - 2.0)  # uint8 -> roughly [-2, 2]
        pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        return {f: head(pooled) for f, head in self.heads.items()}


def train_tagger(
    x: torch.Tensor,
    y: dict[str, torch.Tensor],
    *,
    seed: int,
    epochs: int,
    width: int = 16,
    batch_size: int = 64,
    lr: float = 4e-3,
    weight_decay: float = 1e-4,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[TaggerNet, dict]:
    """Train on uint8 images ``x`` and integer labels ``y``; budgeted in epochs, seeded.

    One-cycle learning rate (linear warm-up over the first 10 % of steps, cosine decay).
    Returns the model in eval mode and {epochs, steps, final_loss}.
    """
    with one_thread():
        torch.manual_seed(seed)
        model = TaggerNet(width).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        n = len(x)
        per_epoch = max(1, math.ceil(n / batch_size))
        total, step, loss_sum = per_epoch * epochs, 0, 0.0
        gen = torch.Generator().manual_seed(seed)
        model.train()
        for epoch in range(epochs):
            order, loss_sum = torch.randperm(n, generator=gen), 0.0
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                warm = max(1, total // 10)
                scale = (step + 1) / warm if step < warm else 0.5 * (
                    1 + math.cos(math.pi * (step - warm) / max(1, total - warm))
                )
                for group in opt.param_groups:
                    group["lr"] = lr * scale
                logits = model(x[idx])
                loss = sum(F.cross_entropy(logits[f], y[f][idx]) for f in HEADS)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach()) * len(idx)
                step += 1
            if on_epoch is not None:
                on_epoch(epoch, loss_sum / n)
        model.eval()
    return model, {"epochs": epochs, "steps": step, "final_loss": round(loss_sum / n, 4)}


def fused_for_inference(model: TaggerNet) -> TaggerNet:
    """An eval-mode copy with every BatchNorm folded into its conv (~30 % faster inference;
    the same logits up to float rounding). Prediction always goes through this copy."""
    fused = copy.deepcopy(model).eval()
    layers, out = list(fused.body), []
    for layer in layers:
        if isinstance(layer, nn.BatchNorm2d) and out and isinstance(out[-1], nn.Conv2d):
            out[-1] = fuse_conv_bn_eval(out[-1], layer)
        else:
            out.append(layer)
    fused.body = nn.Sequential(*out)
    return fused.to(memory_format=torch.channels_last)


@torch.inference_mode()
def predict_logits(
    model: TaggerNet, x: torch.Tensor, batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Raw logits of every head (float64 numpy), on one thread (small batches stay in cache)."""
    out: dict[str, list[np.ndarray]] = {f: [] for f in HEADS}
    model = fused_for_inference(model)
    with one_thread():
        for i in range(0, len(x), batch_size):
            for f, v in model(x[i : i + batch_size]).items():
                out[f].append(v.double().numpy())
    return {f: np.concatenate(v) if v else np.zeros((0, HEADS[f])) for f, v in out.items()}


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood (log-spaced search, then refine)."""

    def nll(t: float) -> float:
        p = softmax(logits, t)[np.arange(len(labels)), labels]
        return float(-np.log(np.maximum(p, 1e-12)).mean())

    grid = np.exp(np.linspace(math.log(0.2), math.log(10.0), 81))
    best = float(grid[int(np.argmin([nll(t) for t in grid]))])
    fine = best * np.exp(np.linspace(-0.05, 0.05, 21))
    return round(float(fine[int(np.argmin([nll(t) for t in fine]))]), 4)


def save_tagger(model: TaggerNet, meta: dict, folder: Path) -> None:
    """``tagger.safetensors`` (the state dict) and ``tagger.json`` (architecture, temperatures)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}  # NCHW weights
    save_file(state, str(folder / WEIGHTS))
    (folder / META).write_text(json.dumps({**meta, "width": model.width}, indent=1, sort_keys=True))


def load_tagger(folder: Path) -> tuple[TaggerNet, dict]:
    """The saved model (eval mode) and its meta."""
    meta = json.loads((folder / META).read_text())
    model = TaggerNet(meta["width"])
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    return model.to(memory_format=torch.channels_last).eval(), meta
