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
from safetensors.numpy import load_file, save_file

from engine.recommend.base import Recommender, register_recommender
from engine.recommend.data import SIDE_FIELDS, InteractionData


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
        self.weights_: dict[str, np.ndarray] | None = None  # the trained network's arrays
        self.loss_history_: list[float] = []

    def _field_sizes(self, data: InteractionData) -> list[int]:
        return [data.n_users, data.n_items] + [
            int(data.side_fields[f].max()) + 1 for f in SIDE_FIELDS
        ]

    def _item_codes(self, data: InteractionData) -> np.ndarray:
        """(n_items, 1 + side fields): item id then its side-field codes."""
        return np.stack([np.arange(data.n_items)] + [data.side_fields[f] for f in SIDE_FIELDS], 1)

    def _fit(self, data: InteractionData) -> None:
        import torch

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
        import torch
        import torch.nn.functional as F

        from engine.recommend._torch_nets import FMNet

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
        self.weights_ = {k: v.detach().numpy().copy() for k, v in net.eval().state_dict().items()}

    def _precompute(self, data: InteractionData) -> None:
        """Split the score into a user part and per-item parts so a query is a few mat-vecs
        (NumPy, from the trained arrays)."""
        w = self.weights_
        codes = self._item_codes(data) + w["offsets"][1:]
        mask = np.ones(codes.shape, dtype=np.float32)
        mask[:, 0] = (data.popularity > 0).astype(np.float32)  # cold: no id
        v = w["emb.weight"][codes] * mask[..., None]  # (items, item fields, dim)
        lin = w["lin.weight"][codes][..., 0] * mask
        s = v.sum(1)
        self.item_sum_ = s
        self.item_term_ = lin.sum(1) + 0.5 * ((s * s).sum(-1) - (v * v).sum((1, 2)))
        self.user_vec_ = w["emb.weight"][: data.n_users]
        self.deep_item_ = None
        deep = sorted((int(k.split(".")[1]), k) for k in w if k.startswith("deep.")
                      and k.endswith(".weight"))
        if deep:
            first, b0 = w[deep[0][1]], w[deep[0][1].replace(".weight", ".bias")]
            w_user, w_items = first[:, : self.dim], first[:, self.dim :]
            self.deep_item_ = v.reshape(len(v), -1) @ w_items.T + b0
            self.deep_user_w_ = w_user
            self.deep_rest_ = [(w[k].T.copy(), w[k.replace(".weight", ".bias")])
                               for _, k in deep[1:]]

    def _scores(self, user: int) -> np.ndarray:
        vu = self.user_vec_[user]
        out = self.item_sum_ @ vu + self.item_term_
        if self.deep_item_ is not None:
            h = np.maximum(self.deep_item_ + self.deep_user_w_ @ vu, 0.0)
            for i, (w, b) in enumerate(self.deep_rest_):
                h = h @ w + b
                if i < len(self.deep_rest_) - 1:
                    h = np.maximum(h, 0.0)
            out = out + h[:, 0]
        return out

    def _scores_many(self, users: np.ndarray) -> np.ndarray:
        if self.deep_item_ is not None:  # the deep part is per user anyway
            return super()._scores_many(users)
        return self.user_vec_[users] @ self.item_sum_.T + self.item_term_

    def _similar(self, item: int) -> np.ndarray:
        s = self.item_sum_
        norms = np.linalg.norm(s, axis=1) + 1e-9
        return (s @ s[item]) / (norms * norms[item])

    def _save_state(self, folder: Path) -> None:
        arrays = {k: np.ascontiguousarray(v) for k, v in self.weights_.items()}
        arrays["loss_history"] = np.asarray(self.loss_history_, dtype=np.float32)
        save_file(arrays, str(folder / f"{self.name}.safetensors"))

    def _load_state(self, folder: Path) -> None:
        t = load_file(str(folder / f"{self.name}.safetensors"))
        self.loss_history_ = t.pop("loss_history").tolist()
        self.weights_ = t
        self._precompute(self.data)


@register_recommender
class DeepFMRecommender(FMRecommender):
    """DeepFM: the FM above plus an MLP (64, 32) over the concatenated field embeddings."""

    name = "deepfm"
    description = "DeepFM (FM + MLP over field embeddings) + BPR (scores NEW items)"
    deep = (64, 32)
