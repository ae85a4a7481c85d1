"""Interaction data for the recommenders: id maps, a confidence matrix and item content features.

Confidence weights per event (the deepest event of a user-item pair; the world keeps one row per
pair): ``view`` 1, ``click`` 2, ``add_to_cart`` 4, ``purchase`` 8 — each funnel step doubles how
sure we are the user liked the item. Only the rows passed in (the *train* split) are used, so
NEW items (launched after the cutoff) have all-zero columns. Item order is the items table's
order, so an item index is also the catalog row. Saved as ``.npy`` + JSON (never pickle).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine.vectors import l2_normalise

EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
TAG_FIELDS = ("colour", "pattern")  # what the image tagger reports besides the category
SIDE_FIELDS = ("category", *TAG_FIELDS, "price_bucket")
PRICE_BUCKETS = 10
_PRICE_BUMPS = 8


def _one_hot(values: pd.Series) -> np.ndarray:
    levels = sorted(values.unique())
    codes = values.map({v: i for i, v in enumerate(levels)}).to_numpy()
    return np.eye(len(levels), dtype=np.float32)[codes]


def tag_confidences(items: pd.DataFrame, keywords: pd.DataFrame | None, field: str) -> np.ndarray:
    """(items × values) confidences of the tagger's ``field`` tags (zeros where none), catalog
    order; the columns are the field's tag words in sorted order."""
    if keywords is None or "field" not in keywords or not len(items):
        return np.zeros((len(items), 0), np.float32)
    tags = keywords[keywords["field"] == field]
    words = sorted(tags["keyword"].astype(str).unique())
    if not words:
        return np.zeros((len(items), 0), np.float32)
    rows = pd.Series(np.arange(len(items)), index=items["item_id"].to_numpy())
    r = rows.reindex(tags["item_id"]).to_numpy()
    ok = ~np.isnan(r)
    out = np.zeros((len(items), len(words)), np.float32)
    col = {w: j for j, w in enumerate(words)}
    c = tags["keyword"].astype(str).map(col).to_numpy(dtype=np.int64)
    np.maximum.at(out, (r[ok].astype(int), c[ok]), tags["confidence"].to_numpy(np.float32)[ok])
    return out


def top_tags(items: pd.DataFrame, keywords: pd.DataFrame | None) -> pd.DataFrame:
    """Per item (catalog order): its merchant category and the tagger's most confident value
    of each tagged field ("" when it has none). What a recommender may know about an item."""
    out = pd.DataFrame({"category": items["category"].astype(str).to_numpy()})
    for field in TAG_FIELDS:
        top = pd.Series("", index=items["item_id"].to_numpy())
        if keywords is not None and "field" in keywords:
            tags = keywords[keywords["field"] == field]
            if len(tags):
                best = tags.loc[tags.groupby("item_id")["confidence"].idxmax()]
                top = top.index.to_series().map(best.set_index("item_id")["keyword"]).fillna("")
        out[field] = top.to_numpy()
    return out


def content_features(
    items: pd.DataFrame,
    clip_items: np.ndarray | None = None,
    sbert_items: np.ndarray | None = None,
    *,
    keywords: pd.DataFrame | None = None,
    weights: dict[str, float] | None = None,
) -> np.ndarray:
    """Item content features: concatenated blocks, each of unit L2 norm per item (times a weight).

    Blocks: CLIP image embeddings and SBERT text embeddings (when given, L2-normalised), the
    merchant category one-hot, the image tagger's colour and pattern confidences (when a tagged
    ``keywords`` table is given), and log-price encoded as 8 Gaussian bumps over its range (a raw
    scalar under cosine similarity would reward only the extremes; bumps reward *similar*
    prices). ``weights`` scales blocks by name (``clip``, ``sbert``, ``category``, ``colour``,
    ``pattern``, ``price``); all default to 1. Only what a catalog holds: never true attributes.
    """
    w = {"clip": 1.0, "sbert": 1.0, "category": 1.0, **{f: 1.0 for f in TAG_FIELDS}}
    w.update({"price": 1.0, **(weights or {})})
    blocks = []
    for name, emb in (("clip", clip_items), ("sbert", sbert_items)):
        if emb is not None:
            if len(emb) != len(items):
                raise ValueError(f"{name}_items has {len(emb)} rows for {len(items)} items")
            blocks.append(w[name] * l2_normalise(np.asarray(emb, np.float32)))
    blocks.append(w["category"] * _one_hot(items["category"].astype(str)))
    for field in TAG_FIELDS:
        conf = tag_confidences(items, keywords, field)
        if conf.shape[1]:
            blocks.append(w[field] * l2_normalise(conf))
    lp = np.log(items["price"].to_numpy(dtype=np.float64))
    centres = np.linspace(lp.min(), lp.max(), _PRICE_BUMPS)
    width = (centres[1] - centres[0]) if _PRICE_BUMPS > 1 else 1.0
    width = width or 1.0  # every price equal (e.g. a catalog without prices): one flat bump
    bumps = np.exp(-0.5 * ((lp[:, None] - centres[None, :]) / width) ** 2)
    blocks.append(w["price"] * l2_normalise(np.asarray(bumps, np.float32)))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def side_field_codes(items: pd.DataFrame, keywords: pd.DataFrame | None = None) -> dict:
    """Integer codes of the item side fields for FM models: the merchant category, the tagger's
    top colour and pattern ("" = untagged is a value of its own) and the log-price decile."""
    tags = top_tags(items, keywords)
    out = {}
    for f in ("category", *TAG_FIELDS):
        levels = sorted(tags[f].unique())
        out[f] = tags[f].map({v: i for i, v in enumerate(levels)}).to_numpy().astype(np.int64)
    lp = np.log(items["price"].to_numpy(dtype=np.float64))
    edges = np.quantile(lp, np.linspace(0, 1, PRICE_BUCKETS + 1)[1:-1])
    out["price_bucket"] = np.searchsorted(edges, lp).astype(np.int64)
    return out


class InteractionData:
    """Users × items confidences (CSR), interaction times, item features, NEW mask, popularity."""

    def __init__(
        self,
        *,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        matrix: sp.csr_matrix,
        times: sp.csr_matrix,
        features: np.ndarray,
        is_new: np.ndarray,
        side_fields: dict[str, np.ndarray],
    ):
        self.user_ids = np.asarray(user_ids).astype(str)
        self.item_ids = np.asarray(item_ids).astype(str)
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {it: i for i, it in enumerate(self.item_ids)}
        self.matrix = matrix.astype(np.float32).tocsr()  # confidences
        self.times = times.tocsr()  # unix seconds, same sparsity as ``matrix``
        self.features = np.asarray(features, dtype=np.float32)
        self.is_new = np.asarray(is_new, dtype=bool)
        self.side_fields = {k: np.asarray(v, dtype=np.int64) for k, v in side_fields.items()}
        #: Train-period interaction counts per item (how many users engaged with it).
        self.popularity = np.diff(self.matrix.tocsc().indptr).astype(np.float32)
        #: Train interactions per user.
        self.history_lengths = np.diff(self.matrix.indptr).astype(np.int64)

    n_users = property(lambda self: len(self.user_ids))
    n_items = property(lambda self: len(self.item_ids))

    @classmethod
    def from_tables(
        cls,
        items: pd.DataFrame,
        interactions: pd.DataFrame,
        *,
        users: pd.DataFrame | None = None,
        features: np.ndarray | None = None,
        keywords: pd.DataFrame | None = None,
        split: str | None = "train",
    ) -> InteractionData:
        """Build from the world tables; only rows of ``split`` (None: all rows given) count.

        Users come from ``users`` when given (so users without train rows are known, with an
        empty history), else from ``interactions``. ``features`` defaults to
        ``content_features(items, keywords=keywords)`` (category, tags and price only);
        ``keywords`` (the tagger's table) also gives the FM side fields.
        """
        if split is not None and "split" in interactions:
            interactions = interactions[interactions["split"] == split]
        user_ids = (
            users["user_id"].to_numpy()
            if users is not None
            else np.sort(interactions["user_id"].unique())
        )
        item_ids = items["item_id"].to_numpy()
        u_map = pd.Series(np.arange(len(user_ids)), index=user_ids)
        i_map = pd.Series(np.arange(len(item_ids)), index=item_ids)
        u = u_map.reindex(interactions["user_id"]).to_numpy()
        i = i_map.reindex(interactions["item_id"]).to_numpy()
        if np.isnan(u).any() or np.isnan(i).any():
            raise ValueError("interactions mention users or items missing from the tables")
        unknown = set(interactions["event"].unique()) - set(EVENT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown events {sorted(unknown)}; valid: {', '.join(EVENT_WEIGHTS)}")
        w = interactions["event"].map(EVENT_WEIGHTS).to_numpy(dtype=np.float32)
        t = interactions["timestamp"].to_numpy(dtype=np.float64)
        shape = (len(user_ids), len(item_ids))
        return cls(
            user_ids=user_ids,
            item_ids=item_ids,
            matrix=_csr(u, i, w, shape),
            times=_csr(u, i, t, shape),
            features=(
                content_features(items, keywords=keywords) if features is None else features
            ),
            is_new=items["is_new"].to_numpy(),
            side_fields=side_field_codes(items, keywords),
        )

    def subset(self, keep: np.ndarray) -> InteractionData:
        """The same users/items/features with only the interactions where ``keep`` (COO order)."""
        coo, tcoo = self.matrix.tocoo(), self.times.tocoo()
        shape = self.matrix.shape
        return InteractionData(
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            matrix=sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=shape),
            times=sp.csr_matrix((tcoo.data[keep], (tcoo.row[keep], tcoo.col[keep])), shape=shape),
            features=self.features,
            is_new=self.is_new,
            side_fields=self.side_fields,
        )

    def split_validation(self, fraction: float = 0.15) -> tuple[InteractionData, pd.DataFrame]:
        """Chronological hold-out of the last ``fraction`` of the (train) time span, for tuning.

        Returns the data before that time and the held-out rows (``user_id``, ``item_id``,
        ``weight``, ``timestamp``). The test split is never involved.
        """
        coo, tcoo = self.matrix.tocoo(), self.times.tocoo()
        t = tcoo.data
        cut = t.min() + (1.0 - fraction) * (t.max() - t.min())
        held = t >= cut
        val = pd.DataFrame(
            {
                "user_id": self.user_ids[coo.row[held]],
                "item_id": self.item_ids[coo.col[held]],
                "weight": coo.data[held],
                "timestamp": t[held].astype(np.int64),
            }
        )
        return self.subset(~held), val

    def history(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A user's train items, confidences and times, oldest first."""
        lo, hi = self.matrix.indptr[user], self.matrix.indptr[user + 1]
        items, conf = self.matrix.indices[lo:hi], self.matrix.data[lo:hi]
        times = self.times.data[lo:hi]
        order = np.lexsort((items, times))
        return items[order], conf[order], times[order]

    def save(self, folder: Path) -> None:
        """Write the data as ``.npy`` arrays and JSON id lists."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ids.json").write_text(
            json.dumps({"users": self.user_ids.tolist(), "items": self.item_ids.tolist()})
        )
        for name, m in (("matrix", self.matrix), ("times", self.times)):
            for part in ("indptr", "indices", "data"):
                np.save(folder / f"{name}_{part}.npy", getattr(m, part))
        np.save(folder / "features.npy", self.features)
        np.save(folder / "is_new.npy", self.is_new)
        for f, codes in self.side_fields.items():
            np.save(folder / f"side_{f}.npy", codes)

    @classmethod
    def load(cls, folder: Path) -> InteractionData:
        ids = json.loads((folder / "ids.json").read_text())
        shape = (len(ids["users"]), len(ids["items"]))

        def arr(name: str) -> np.ndarray:
            return np.load(folder / f"{name}.npy", allow_pickle=False)

        mats = {
            n: sp.csr_matrix((arr(f"{n}_data"), arr(f"{n}_indices"), arr(f"{n}_indptr")), shape)
            for n in ("matrix", "times")
        }
        return cls(
            user_ids=np.array(ids["users"]),
            item_ids=np.array(ids["items"]),
            matrix=mats["matrix"],
            times=mats["times"],
            features=arr("features"),
            is_new=arr("is_new"),
            side_fields={f: arr(f"side_{f}") for f in SIDE_FIELDS},
        )


def _csr(u: np.ndarray, i: np.ndarray, v: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """CSR from (row, col, value); a repeated (row, col) keeps its largest value (never summed)."""
    df = pd.DataFrame({"u": u.astype(np.int64), "i": i.astype(np.int64), "v": v})
    agg = df.groupby(["u", "i"], sort=True)["v"].max()
    rows = agg.index.get_level_values(0).to_numpy()
    cols = agg.index.get_level_values(1).to_numpy()
    m = sp.csr_matrix((agg.to_numpy(), (rows, cols)), shape=shape)
    m.sort_indices()
    return m
