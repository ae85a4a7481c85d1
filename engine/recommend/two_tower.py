"""Two-tower retrieval model (PyTorch), trained with in-batch sampled softmax + logQ correction.

Item tower: MLP(content features) + item-id embedding, L2-normalised. The id embedding is zeroed
for items without train interactions (NEW items: content alone) and dropped at random during
training (``id_dropout``) so the tower learns to work without it. User tower: MLP over the
confidence-weighted mean of the user's recent history (last ``max_history`` items) — their content
features and id embeddings — so any user with history gets an embedding (no history: the tower's
output for an empty history). Training pairs leave the target item out of its own history.
Loss: softmax over the batch's items of cos(u, i)/τ − log q(i), q = the item's share of train
rows (Yi et al. 2019), so popular items are not over-penalised as negatives. Weights and
embeddings are saved as safetensors.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from engine.recommend.base import Recommender, register_recommender
from engine.recommend.data import InteractionData
from engine.vectors import l2_normalise


def recent_window(data: InteractionData, max_history: int) -> sp.csr_matrix:
    """Each user's last ``max_history`` train items (by time) with their confidences."""
    m, t = data.matrix, data.times
    keep = np.zeros(m.nnz, dtype=bool)
    for u in np.flatnonzero(np.diff(m.indptr) > max_history):
        lo, hi = m.indptr[u], m.indptr[u + 1]
        keep[lo + np.argsort(-t.data[lo:hi], kind="stable")[:max_history]] = True
    keep |= np.repeat(np.diff(m.indptr) <= max_history, np.diff(m.indptr))
    data_ = np.where(keep, m.data, 0).astype(np.float32)
    w = sp.csr_matrix((data_, m.indices.copy(), m.indptr.copy()), m.shape)
    w.eliminate_zeros()
    return w


def _ragged(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the entries of ``rows`` in a CSR, and the bag offsets."""
    starts, lens = indptr[rows], indptr[rows + 1] - indptr[rows]
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    pos = np.arange(lens.sum()) - np.repeat(offsets, lens) + np.repeat(starts, lens)
    return pos, offsets


@register_recommender
class TwoTowerRecommender(Recommender):
    """Content + id item tower, history-pooling user tower; cosine scores."""

    name = "two_tower"
    description = "PyTorch two-tower (content + id item tower, history user tower; scores NEW)"

    def __init__(
        self,
        *,
        dim: int = 64,
        hidden: int = 256,
        epochs: int = 6,
        batch_size: int = 1024,
        lr: float = 3e-3,
        temperature: float = 0.07,
        id_dropout: float = 0.5,
        max_history: int = 50,
        input_dim: int = 128,
        max_seconds: float | None = None,
        seed: int = 42,
        threads: int = 1,
    ):
        super().__init__()
        self.dim, self.hidden, self.epochs, self.batch_size = dim, hidden, epochs, batch_size
        self.lr, self.temperature, self.id_dropout = lr, temperature, id_dropout
        self.max_history, self.input_dim, self.max_seconds = max_history, input_dim, max_seconds
        self.seed, self.threads = seed, threads
        self.weights_: dict[str, np.ndarray] | None = None  # the trained towers' arrays
        self.item_emb_: np.ndarray | None = None
        self.user_emb_: np.ndarray | None = None
        self.loss_history_: list[float] = []

    def _fit(self, data: InteractionData) -> None:
        import torch

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            self._train(data, rng)
        finally:
            torch.set_num_threads(prev_threads)

    def _train(self, data: InteractionData, rng: np.random.Generator) -> None:
        import torch
        import torch.nn.functional as F

        from engine.recommend._torch_nets import Towers

        self._fit_projection(data.features, rng)
        feats = self._inputs(data.features)
        X = torch.from_numpy(feats)
        net = Towers(data.n_items, X.shape[1], self.hidden, self.dim)
        opts = [torch.optim.Adam(net.parameters(), lr=self.lr)]
        win = recent_window(data, self.max_history)
        win_sum_x = torch.from_numpy(np.asarray(win @ feats, dtype=np.float32))
        win_total = torch.from_numpy(np.asarray(win.sum(axis=1), dtype=np.float32).ravel())
        coo = data.matrix.tocoo()
        users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        target_w = np.asarray(win[users, items], dtype=np.float32).ravel()
        logq = torch.from_numpy(np.log(np.maximum(data.popularity, 1) / len(users))).float()
        w_idx, w_val = torch.from_numpy(win.indices.astype(np.int64)), torch.from_numpy(win.data)
        self.loss_history_ = []
        t0 = time.perf_counter()
        net.train()
        for _ in range(self.epochs):
            perm = rng.permutation(len(users))
            for start in range(0, len(perm), self.batch_size):
                b = perm[start : start + self.batch_size]
                if len(b) < 2:
                    continue
                bu, bi, tw = users[b], items[b], torch.from_numpy(target_w[b])
                pos, offsets = _ragged(win.indptr, bu)
                bag = F.embedding_bag(
                    w_idx[pos],
                    net.item_id.weight,
                    torch.from_numpy(offsets),
                    mode="sum",
                    per_sample_weights=w_val[pos],
                )
                bu_t, bi_t = torch.from_numpy(bu), torch.from_numpy(bi)
                denom = win_total[bu_t] - tw
                scale = torch.where(
                    denom > 1e-6, 1.0 / denom.clamp_min(1e-6), torch.zeros_like(denom)
                )
                px = (win_sum_x[bu_t] - tw[:, None] * X[bi_t]) * scale[:, None]
                pe = (bag - tw[:, None] * net.item_id(bi_t)) * scale[:, None]
                u = net.users(px, pe)
                uniq, inv = np.unique(bi, return_inverse=True)
                uq = torch.from_numpy(uniq)
                keep = (torch.rand(len(uniq)) >= self.id_dropout).float()
                v = net.items(X[uq], uq, keep)
                logits = u @ v.T / self.temperature - logq[uq][None, :]
                loss = F.cross_entropy(logits, torch.from_numpy(inv.astype(np.int64)))
                for opt in opts:
                    opt.zero_grad()
                loss.backward()
                for opt in opts:
                    opt.step()
                self.loss_history_.append(loss.item())
            if self.max_seconds is not None and time.perf_counter() - t0 > self.max_seconds:
                break
        self.weights_ = {k: v.detach().numpy().copy() for k, v in net.eval().state_dict().items()}
        self._embed_all(data, win)

    def _fit_projection(self, features: np.ndarray, rng: np.random.Generator) -> None:
        """PCA to ``input_dim`` dims when the features are wider (e.g. CLIP + SBERT + attributes).

        Fitted on a seeded sample of at most 5,000 items; identity when already narrow enough.
        """
        d = features.shape[1]
        self.proj_mean_ = np.zeros(d, dtype=np.float32)
        self.proj_ = np.eye(d, dtype=np.float32)
        if d <= self.input_dim:
            return
        sample = features[rng.choice(len(features), min(5000, len(features)), replace=False)]
        self.proj_mean_ = sample.mean(axis=0).astype(np.float32)
        centred = sample - self.proj_mean_
        _, vectors = np.linalg.eigh((centred.T @ centred).astype(np.float64))  # ascending
        self.proj_ = vectors[:, ::-1][:, : self.input_dim].astype(np.float32).copy()

    def _inputs(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.proj_mean_) @ self.proj_).astype(np.float32)

    def _mlp(self, side: str, x: np.ndarray) -> np.ndarray:
        """A tower's MLP (Linear -> ReLU -> Linear) in NumPy, from the trained arrays."""
        w = self.weights_
        h = np.maximum(x @ w[f"{side}_mlp.0.weight"].T + w[f"{side}_mlp.0.bias"], 0.0)
        return (h @ w[f"{side}_mlp.2.weight"].T + w[f"{side}_mlp.2.bias"]).astype(np.float32)

    def _users(self, px: np.ndarray, pe: np.ndarray) -> np.ndarray:
        return l2_normalise(self._mlp("user", np.concatenate([px, pe], axis=1)))

    def _embed_all(self, data: InteractionData, win: sp.csr_matrix) -> None:
        feats, ids = self._inputs(data.features), self.weights_["item_id.weight"]
        has_id = (data.popularity > 0).astype(np.float32)[:, None]
        self.item_emb_ = l2_normalise(self._mlp("item", feats) + has_id * ids)
        total = np.asarray(win.sum(axis=1), dtype=np.float32).ravel()
        inv = np.where(total > 0, 1.0 / np.maximum(total, 1e-6), 0.0).astype(np.float32)[:, None]
        px = np.asarray(win @ feats, dtype=np.float32) * inv
        pe = np.asarray(win @ ids, dtype=np.float32) * inv
        self.user_emb_ = self._users(px, pe)

    def embed_history(
        self, item_rows: np.ndarray, confidences: np.ndarray | None = None
    ) -> np.ndarray:
        """A user embedding for an ad-hoc history (e.g. an anonymous session)."""
        rows = np.asarray(item_rows, dtype=np.int64)
        w = np.ones(len(rows), np.float32) if confidences is None else np.asarray(confidences)
        w = (w / max(w.sum(), 1e-6)).astype(np.float32)[:, None]
        px = (w * self._inputs(self.data.features[rows])).sum(0, keepdims=True)
        pe = (w * self.weights_["item_id.weight"][rows]).sum(0, keepdims=True)
        return self._users(px, pe)[0]

    def _scores(self, user: int) -> np.ndarray:
        return self.item_emb_ @ self.user_emb_[user]

    def _scores_many(self, users: np.ndarray) -> np.ndarray:
        return self.user_emb_[users] @ self.item_emb_.T

    def _similar(self, item: int) -> np.ndarray:
        return self.item_emb_ @ self.item_emb_[item]

    def _save_state(self, folder: Path) -> None:
        arrays = {f"net.{k}": np.ascontiguousarray(v) for k, v in self.weights_.items()}
        arrays["item_emb"] = np.ascontiguousarray(self.item_emb_)
        arrays["user_emb"] = np.ascontiguousarray(self.user_emb_)
        arrays["loss_history"] = np.asarray(self.loss_history_, dtype=np.float32)
        arrays["proj_mean"] = np.ascontiguousarray(self.proj_mean_)
        arrays["proj"] = np.ascontiguousarray(self.proj_)
        save_file(arrays, str(folder / "two_tower.safetensors"))

    def _load_state(self, folder: Path) -> None:
        t = load_file(str(folder / "two_tower.safetensors"))
        self.proj_mean_, self.proj_ = t["proj_mean"], t["proj"]
        self.weights_ = {k[4:]: v for k, v in t.items() if k.startswith("net.")}
        self.item_emb_, self.user_emb_ = t["item_emb"], t["user_emb"]
        self.loss_history_ = t["loss_history"].tolist()
