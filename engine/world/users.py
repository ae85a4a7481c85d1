"""Users with latent tastes, their interactions and their search sessions.

Each user has peaked preferences over categories, colours and patterns (Dirichlet draws) and a
preferred price level. The utility of item *i* for user *u* is

    U(u, i) = 1.6 log p_cat[u, cat_i] + 1.2 log p_col[u, col_i] + 0.6 log p_pat[u, pat_i]
              - 0.6 (log price_i - mu_u)^2 + 0.5 log popularity_i (+ 0.4 for NEW items after launch)

with a Zipfian popularity prior. Items are drawn per user by Gumbel-top-k sampling from U, so
collaborative filtering has real tastes to find, not only popularity. Interactions before the
cutoff day only touch items launched by then; NEW items (launched after the cutoff) receive only
held-out interactions, from users whose tastes they match. Timestamps derive from the seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.config import WorldConfig
from engine.world import vocab

EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z: day 0 of the world (not the wall clock)
EVENTS = ("view", "click", "add_to_cart", "purchase")
_CHUNK = 256


def generate_users(cfg: WorldConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Users and their latent preferences (kept so tests and personas can use them)."""
    n = cfg.n_users
    pc = rng.dirichlet(np.full(len(vocab.CATEGORIES), 0.35), size=n)
    pcol = rng.dirichlet(np.full(len(vocab.COLOURS), 0.35), size=n)
    ppat = rng.dirichlet(np.full(len(vocab.PATTERNS), 0.6), size=n)
    activity = rng.lognormal(0.0, 0.8, size=n)
    return pd.DataFrame(
        {
            "user_id": [f"u{i:06d}" for i in range(n)],
            "pref_category": list(pc.astype(np.float32)),
            "pref_colour": list(pcol.astype(np.float32)),
            "pref_pattern": list(ppat.astype(np.float32)),
            "price_level": rng.normal(np.log(50), 0.6, size=n).astype(np.float32),
            "activity": activity.astype(np.float32),
            "top_category": [vocab.CATEGORIES[i].name for i in pc.argmax(1)],
            "top_colour": [vocab.COLOURS[i].name for i in pcol.argmax(1)],
        }
    )


def _codes(items: pd.DataFrame, field_name: str) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(vocab.names(field_name))}
    return items[field_name].map(lookup).to_numpy()


def generate_interactions(
    cfg: WorldConfig, items: pd.DataFrame, users: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Sample (user, item, event, timestamp) rows: one row per user-item pair, its deepest event."""
    return interactions_and_prior(cfg, items, users, rng)[0]


def interactions_and_prior(
    cfg: WorldConfig, items: pd.DataFrame, users: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`generate_interactions` and each item's popularity prior (truth: the recommenders'
    oracle ceiling uses it; no recommender sees it)."""
    n_items = len(items)
    cat, col, pat = (_codes(items, f) for f in ("category", "colour", "pattern"))
    log_price = np.log(items["price"].to_numpy())
    launch = items["launch_day"].to_numpy()
    is_new = items["is_new"].to_numpy()
    popularity = 1.0 / (rng.permutation(n_items) + 1.0) ** 0.9
    item_prior = 0.5 * np.log(popularity / popularity.max())
    test_frac = (cfg.days - cfg.cutoff_day) / cfg.days
    activity = users["activity"].to_numpy()
    counts = np.maximum(1, np.round(activity / activity.sum() * cfg.n_interactions)).astype(int)
    counts = np.minimum(counts, n_items // 4)
    n_test = rng.binomial(counts, test_frac)
    n_train = counts - n_test
    pc = np.log(np.stack(users["pref_category"].to_numpy()) + 1e-4)
    pcol = np.log(np.stack(users["pref_colour"].to_numpy()) + 1e-4)
    ppat = np.log(np.stack(users["pref_pattern"].to_numpy()) + 1e-4)
    level = users["price_level"].to_numpy()
    available_train = launch < cfg.cutoff_day
    rows_u, rows_i, rows_t, rows_util = [], [], [], []
    for start in range(0, len(users), _CHUNK):
        sl = slice(start, start + _CHUNK)
        util = (
            1.6 * pc[sl][:, cat]
            + 1.2 * pcol[sl][:, col]
            + 0.6 * ppat[sl][:, pat]
            - 0.6 * (log_price[None, :] - level[sl, None]) ** 2
            + item_prior[None, :]
        )
        seen: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(util)
        for phase, n_phase in (("train", n_train[sl]), ("test", n_test[sl])):
            u_phase = util + (
                0.4 * is_new if phase == "test" else np.where(available_train, 0, -np.inf)
            )
            noisy = u_phase + rng.gumbel(size=u_phase.shape)
            for r, items_seen in enumerate(seen):
                noisy[r, items_seen] = -np.inf  # one row per (user, item) pair
            kmax = int(n_phase.max(initial=0))
            if kmax == 0:
                continue
            top = np.argpartition(-noisy, kmax - 1, axis=1)[:, :kmax]
            for r, k in enumerate(n_phase):
                # Gumbel-top-k: this user's k best noisy utilities (a sample without replacement).
                chosen = top[r][np.argsort(-noisy[r, top[r]], kind="stable")[:k]]
                if phase == "train":
                    lo, hi = launch[chosen], np.full(k, float(cfg.cutoff_day))
                    seen[r] = chosen
                else:
                    lo, hi = np.maximum(cfg.cutoff_day, launch[chosen]), np.full(k, float(cfg.days))
                rows_u.append(np.full(k, start + r))
                rows_i.append(chosen)
                rows_t.append(rng.uniform(lo, np.maximum(hi, lo + 1e-3)))
                rows_util.append(util[r, chosen])
    u = np.concatenate(rows_u)
    i = np.concatenate(rows_i)
    day = np.concatenate(rows_t)
    utility = np.concatenate(rows_util)
    # Deeper funnel events for items the user likes more (relative to their own choices).
    z = (utility - utility.mean()) / (utility.std() + 1e-9)
    depth = np.clip(np.floor(rng.normal(0.3 + 0.6 * z, 0.9)), 0, 3).astype(int)
    df = pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy()[u],
            "item_id": items["item_id"].to_numpy()[i],
            "event": np.array(EVENTS)[depth],
            "timestamp": (EPOCH + np.round(day * 86_400)).astype(np.int64),
            "split": np.where(day < cfg.cutoff_day, "train", "test"),
        }
    )
    df = df.sort_values(["timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)
    return df, item_prior


def oracle_rankings(
    items: pd.DataFrame, users: pd.DataFrame, inter: pd.DataFrame, item_prior: np.ndarray,
    n: int = 20,
) -> pd.DataFrame:
    """The ceiling of any recommender: each test user's ``n`` items of highest TRUE utility for
    the test period (the world's own formula, without the sampling noise), excluding the
    user's training items. Columns ``user_id, item_id, rank``. Truth: evaluation only."""
    cat, col, pat = (_codes(items, f) for f in ("category", "colour", "pattern"))
    log_price = np.log(items["price"].to_numpy())
    is_new = items["is_new"].to_numpy()
    test_users = set(inter.loc[inter["split"] == "test", "user_id"])
    rows = np.flatnonzero(users["user_id"].isin(test_users).to_numpy())
    train = inter[inter["split"] == "train"]
    item_row = pd.Series(np.arange(len(items)), index=items["item_id"].to_numpy())
    seen = train.groupby("user_id")["item_id"].agg(list).to_dict()
    pc = np.log(np.stack(users["pref_category"].to_numpy()) + 1e-4)
    pcol = np.log(np.stack(users["pref_colour"].to_numpy()) + 1e-4)
    ppat = np.log(np.stack(users["pref_pattern"].to_numpy()) + 1e-4)
    level = users["price_level"].to_numpy()
    out_u, out_i, out_r = [], [], []
    for start in range(0, len(rows), _CHUNK):
        sl = rows[start : start + _CHUNK]
        util = (
            1.6 * pc[sl][:, cat]
            + 1.2 * pcol[sl][:, col]
            + 0.6 * ppat[sl][:, pat]
            - 0.6 * (log_price[None, :] - level[sl, None]) ** 2
            + item_prior[None, :]
            + 0.4 * is_new[None, :]
        )
        for r, u in enumerate(users["user_id"].to_numpy()[sl]):
            util[r, item_row.reindex(seen.get(u, [])).to_numpy()] = -np.inf
        top = np.argsort(-util, axis=1, kind="stable")[:, :n]
        for r, u in enumerate(users["user_id"].to_numpy()[sl]):
            out_u += [u] * n
            out_i += items["item_id"].to_numpy()[top[r]].tolist()
            out_r += list(range(1, n + 1))
    return pd.DataFrame({"user_id": out_u, "item_id": out_i, "rank": out_r})


def generate_sessions(
    cfg: WorldConfig, items: pd.DataFrame, interactions: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Search sessions (user, query text, converted item), like Unsplash Lite's conversions."""
    converted = interactions[interactions["event"].isin(["add_to_cart", "purchase"])]
    n = min(cfg.n_sessions, len(converted))
    pick = converted.iloc[np.sort(rng.choice(len(converted), size=n, replace=False))]
    by_id = items.set_index("item_id")
    queries = []
    for item_id in pick["item_id"]:
        row = by_id.loc[item_id]
        parts = []
        if rng.random() < 0.6:
            parts.append(_pick_word(rng, "colour", row["colour"]))
        if rng.random() < 0.3 and row["pattern"] != "solid":
            parts.append(_pick_word(rng, "pattern", row["pattern"]))
        if rng.random() < 0.25:
            parts.append(_pick_word(rng, "material", row["material"]))
        parts.append(_pick_word(rng, "category", row["category"]))
        queries.append(" ".join(parts))
    return pd.DataFrame(
        {
            "session_id": [f"s{i:06d}" for i in range(n)],
            "user_id": pick["user_id"].to_numpy(),
            "query": queries,
            "item_id": pick["item_id"].to_numpy(),
            "timestamp": pick["timestamp"].to_numpy(),
            "split": pick["split"].to_numpy(),
        }
    )


def _pick_word(rng: np.random.Generator, field_name: str, name: str) -> str:
    words = vocab.term(field_name, name).words
    return words[int(rng.integers(len(words)))]
