"""The learned fusion: two small MLP towers projecting query and item features into one space.

* Item tower input: ``[sbert(item text), clip(item image), colour histogram]``.
* Query tower input: ``[sbert(query text) or 0, clip(query)]`` where ``clip(query)`` is CLIP's
  text or image embedding (or their mix).

Trained with a symmetric InfoNCE loss on the catalog's own pairs: an attribute caption of an item
as the query (text side), and another image of an item with the same category, colour and pattern
as the query (image side). It is trained, seeded and saved (safetensors) by the build; the app
never uses a randomly initialised network.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine.encoders.fusion_towers import META, WEIGHTS  # noqa: F401  (the files' names)


@dataclass(frozen=True)
class MlpConfig:
    query_dim: int
    item_dim: int
    hidden: int = 512
    out_dim: int = 256


def _tower(d_in: int, hidden: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))


class FusionMLP(nn.Module):
    """Query and item towers with a learned temperature."""

    def __init__(self, cfg: MlpConfig):
        super().__init__()
        self.cfg = cfg
        self.query_tower = _tower(cfg.query_dim, cfg.hidden, cfg.out_dim)
        self.item_tower = _tower(cfg.item_dim, cfg.hidden, cfg.out_dim)
        self.logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))

    def encode_queries(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.query_tower(x), dim=-1)

    def encode_items(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.item_tower(x), dim=-1)


def train_fusion_mlp(
    query_feats: np.ndarray,
    item_index: np.ndarray,
    item_feats: np.ndarray,
    *,
    seed: int,
    epochs: int = 6,
    batch_size: int = 512,
    lr: float = 2e-3,
) -> tuple[FusionMLP, dict]:
    """Train on (query feature row, positive item row) pairs; returns the model and its stats.

    ``query_feats[j]`` is a query whose positive item is ``item_feats[item_index[j]]``; the
    other items of the batch are its negatives (in-batch softmax).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = FusionMLP(MlpConfig(query_dim=query_feats.shape[1], item_dim=item_feats.shape[1]))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    q_all = torch.from_numpy(np.ascontiguousarray(query_feats, dtype=np.float32))
    i_all = torch.from_numpy(np.ascontiguousarray(item_feats, dtype=np.float32))
    pos = torch.from_numpy(item_index.astype(np.int64))
    losses = []
    t0 = time.perf_counter()
    n = len(q_all)
    batch_size = min(batch_size, n)  # a small catalog still trains (one batch per epoch)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - batch_size + 1, batch_size):
            b = order[start : start + batch_size]
            items_b = pos[b]
            q = model.encode_queries(q_all[b])
            it = model.encode_items(i_all[items_b])
            logits = model.logit_scale.exp().clamp(max=100) * q @ it.T
            # Pairs sharing the same positive item are not negatives of each other.
            same = items_b[:, None] == items_b[None, :]
            logits = logits.masked_fill(same & ~torch.eye(len(b), dtype=torch.bool), -1e4)
            target = torch.arange(len(b))
            loss = (
                nn.functional.cross_entropy(logits, target)
                + nn.functional.cross_entropy(logits.T, target)
            ) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    stats = {
        "pairs": n,
        "epochs": epochs,
        "steps": len(losses),
        "initial_loss": round(float(np.mean(losses[:5])), 4) if losses else None,
        "final_loss": round(float(np.mean(losses[-5:])), 4) if losses else None,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return model.eval(), stats


def save_fusion_mlp(model: FusionMLP, folder: Path, stats: dict) -> None:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS))
    (folder / META).write_text(json.dumps({"config": asdict(model.cfg), "stats": stats}, indent=2))


def load_fusion_mlp(folder: Path) -> FusionMLP:
    """Load a trained fusion MLP (safetensors: no pickles)."""
    meta = json.loads((folder / META).read_text())
    model = FusionMLP(MlpConfig(**meta["config"]))
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    return model.eval()


@torch.no_grad()
def project(model: FusionMLP, x: np.ndarray, *, side: str, batch: int = 4096) -> np.ndarray:
    """Project query or item features (``side`` = "query" | "item") to the fused space."""
    fn = model.encode_queries if side == "query" else model.encode_items
    t = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(x), dtype=np.float32))
    return np.concatenate([fn(t[i : i + batch]).numpy() for i in range(0, len(t), batch)])
