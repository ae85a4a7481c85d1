"""The PyTorch networks of the FM/DeepFM and two-tower recommenders: training only.

Trained models are saved as safetensors and served from NumPy arrays (``fm.py``,
``two_tower.py``), so an app process never imports torch. The leading underscore keeps the
recommender registry from importing this module when it discovers the package.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class FMNet(nn.Module):
    """FM (optionally + deep MLP) over categorical fields sharing one offset embedding table."""

    def __init__(self, field_sizes: list[int], dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.register_buffer("offsets", torch.tensor(np.r_[0, np.cumsum(field_sizes)[:-1]]))
        total = int(sum(field_sizes))
        self.emb = nn.Embedding(total, dim)
        self.lin = nn.Embedding(total, 1)
        nn.init.normal_(self.emb.weight, std=0.01)
        nn.init.zeros_(self.lin.weight)
        layers: list[nn.Module] = []
        width = len(field_sizes) * dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.deep = nn.Sequential(*layers, nn.Linear(width, 1)) if hidden else None

    def forward(self, codes: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores for (B, fields) codes; ``mask`` (B, fields) zeroes dropped fields."""
        idx = codes + self.offsets
        v = self.emb(idx) * mask[..., None]
        w = self.lin(idx).squeeze(-1) * mask
        s = v.sum(1)
        out = w.sum(1) + 0.5 * ((s * s).sum(-1) - (v * v).sum((1, 2)))
        if self.deep is not None:
            out = out + self.deep(v.flatten(1)).squeeze(-1)
        return out, v


class Towers(nn.Module):
    """The item and user towers (they share the item-id embedding table)."""

    def __init__(self, n_items: int, n_features: int, hidden: int, dim: int):
        super().__init__()
        self.item_mlp = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.item_id = nn.Embedding(n_items, dim)
        nn.init.normal_(self.item_id.weight, std=0.01)
        self.user_mlp = nn.Sequential(
            nn.Linear(n_features + dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )

    def items(self, x: torch.Tensor, ids: torch.Tensor, id_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.item_mlp(x) + id_mask[:, None] * self.item_id(ids), dim=-1)

    def users(self, pooled_x: torch.Tensor, pooled_e: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.user_mlp(torch.cat([pooled_x, pooled_e], dim=-1)), dim=-1)
