"""Factorization machine (Rendle 2010) and DeepFM (Guo et al. 2017) trained with BPR loss.

Fields: user id, item id, category, colour, pattern, material and log-price decile. FM score
``Σ w_f + Σ_{f<g} <v_f, v_g>``; DeepFM adds an MLP over the concatenated field embeddings (shared
with the FM part). BPR (Rendle et al. 2009): for each train pair (u, i) and a negative j drawn
uniformly from items with train interactions, minimise −log σ(s(u,i) − s(u,j)) (+ L2 on the
embeddings used). The item-id field is dropped at random in training (``id_dropout``) and always
for items without train interactions, so NEW items are scored from their side features.
Honest limit: with uniform negatives the item id also absorbs each item's popularity, so NEW
items are scored but rarely reach a top 10 on the 20k-item demo world (popularity-weighted
negatives did not change that and cost accuracy). Per-step losses are in ``loss_history_``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from engine.recommend.base import Recommender, register_recommender
from engine.recommend.data import SIDE_FIELDS, InteractionData


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


@register_recommender
class FMRecommender(Recommender):
    """A factorization machine over user, item and item side features, trained with BPR."""

    name = "fm"
    description = "factorization machine + BPR over ids and item attributes (scores NEW items)"
    deep: tuple[int, ...] = ()

    def __init__(
        self,
        *,
        dim: int = 32,
        epochs: int = 10,
        batch_size: int = 2048,
        lr: float = 5e-3,
        l2: float = 1e-5,
        id_dropout: float = 0.1,
        seed: int = 42,
        threads: int = 1,
    ):
        super().__init__()
        self.dim, self.epochs, self.batch_size, self.lr = dim, epochs, batch_size, lr
        self.l2, self.id_dropout, self.seed, self.threads = l2, id_dropout, seed, threads
        self.net_: FMNet | None = None
        self.loss_history_: list[float] = []

    def _field_sizes(self, data: InteractionData) -> list[int]:
        return [data.n_users, data.n_items] + [
            int(data.side_fields[f].max()) + 1 for f in SIDE_FIELDS
        ]

    def _item_codes(self, data: InteractionData) -> np.ndarray:
        """(n_items, 1 + side fields): item id then its side-field codes."""
        return np.stack([np.arange(data.n_items)] + [data.side_fields[f] for f in SIDE_FIELDS], 1)

    def _fit(self, data: InteractionData) -> None:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        prev = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            self._train(data, rng)
        finally:
            torch.set_num_threads(prev)
        self._precompute(data)

    def _train(self, data: InteractionData, rng: np.random.Generator) -> None:
        net = FMNet(self._field_sizes(data), self.dim, tuple(self.deep))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        coo = data.matrix.tocoo()
        users, pos = coo.row.astype(np.int64), coo.col.astype(np.int64)
        warm = np.flatnonzero(data.popularity > 0)
        item_codes = torch.from_numpy(self._item_codes(data))
        n_fields = 1 + item_codes.shape[1]
        self.loss_history_ = []
        net.train()
        for _ in range(self.epochs):
            perm = rng.permutation(len(users))
            for start in range(0, len(perm), self.batch_size):
                b = perm[start : start + self.batch_size]
                u = torch.from_numpy(users[b])[:, None]
                neg = torch.from_numpy(warm[rng.integers(len(warm), size=len(b))])
                scores, regs = [], 0.0
                for items in (torch.from_numpy(pos[b]), neg):
                    codes = torch.cat([u, item_codes[items]], dim=1)
                    mask = torch.ones(len(b), n_fields)
                    mask[:, 1] = (torch.rand(len(b)) >= self.id_dropout).float()
                    s, v = net(codes, mask)
                    scores.append(s)
                    regs = regs + (v * v).sum() / len(b)
                loss = -F.logsigmoid(scores[0] - scores[1]).mean()
                opt.zero_grad()
                (loss + self.l2 * regs).backward()
                opt.step()
                self.loss_history_.append(loss.item())
        self.net_ = net.eval()

    @torch.no_grad()
    def _precompute(self, data: InteractionData) -> None:
        """Split the score into a user part and per-item parts so a query is a few mat-vecs."""
        net = self.net_
        codes = torch.from_numpy(self._item_codes(data)) + net.offsets[1:]
        mask = torch.ones(codes.shape, dtype=torch.float32)
        mask[:, 0] = torch.from_numpy((data.popularity > 0).astype(np.float32))  # cold: no id
        v = net.emb(codes) * mask[..., None]  # (items, item fields, dim)
        w = net.lin(codes).squeeze(-1) * mask
        s = v.sum(1)
        self.item_sum_ = s.numpy()
        self.item_term_ = (w.sum(1) + 0.5 * ((s * s).sum(-1) - (v * v).sum((1, 2)))).numpy()
        self.user_vec_ = net.emb.weight[: data.n_users].numpy()
        if net.deep is not None:
            first = net.deep[0]
            w_user, w_items = first.weight[:, : self.dim], first.weight[:, self.dim :]
            self.deep_item_ = (v.flatten(1) @ w_items.T + first.bias).numpy()
            self.deep_user_w_ = w_user.numpy()
            self.deep_rest_ = [
                (m.weight.numpy().T.copy(), m.bias.numpy())
                for m in net.deep[1:]
                if isinstance(m, nn.Linear)
            ]

    def _scores(self, user: int) -> np.ndarray:
        vu = self.user_vec_[user]
        out = self.item_sum_ @ vu + self.item_term_
        if self.net_.deep is not None:
            h = np.maximum(self.deep_item_ + self.deep_user_w_ @ vu, 0.0)
            for i, (w, b) in enumerate(self.deep_rest_):
                h = h @ w + b
                if i < len(self.deep_rest_) - 1:
                    h = np.maximum(h, 0.0)
            out = out + h[:, 0]
        return out

    def _similar(self, item: int) -> np.ndarray:
        s = self.item_sum_
        norms = np.linalg.norm(s, axis=1) + 1e-9
        return (s @ s[item]) / (norms * norms[item])

    def _save_state(self, folder: Path) -> None:
        tensors = {k: v.contiguous() for k, v in self.net_.state_dict().items()}
        tensors["loss_history"] = torch.tensor(self.loss_history_, dtype=torch.float32)
        save_file(tensors, str(folder / f"{self.name}.safetensors"))

    def _load_state(self, folder: Path) -> None:
        t = load_file(str(folder / f"{self.name}.safetensors"))
        self.loss_history_ = t.pop("loss_history").tolist()
        net = FMNet(self._field_sizes(self.data), self.dim, tuple(self.deep))
        net.load_state_dict(t)
        self.net_ = net.eval()
        self._precompute(self.data)


@register_recommender
class DeepFMRecommender(FMRecommender):
    """DeepFM: the FM above plus an MLP (64, 32) over the concatenated field embeddings."""

    name = "deepfm"
    description = "DeepFM (FM + MLP over field embeddings) + BPR (scores NEW items)"
    deep = (64, 32)
