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
_ORACLE_CHUNK = 32  # users scored at once: small blocks keep the temporaries in cache


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
    sampled = 0 < cfg.interaction_candidates < n_items
    if sampled:  # leave every user room to draw their count from the candidates
        counts = np.minimum(counts, cfg.interaction_candidates // 4)
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
        n_rows = len(level[sl])
        # Column j of this block is item cand[r, j] when sampled, else item j (every item).
        if sampled:
            cand = _candidates(rng, n_rows, n_items, cfg.interaction_candidates)
            rows: np.ndarray | slice = np.arange(n_rows)[:, None]
        else:
            cand, rows = np.arange(n_items), slice(None)
        util = (
            1.6 * pc[sl][rows, cat[cand]]
            + 1.2 * pcol[sl][rows, col[cand]]
            + 0.6 * ppat[sl][rows, pat[cand]]
            - 0.6 * (log_price[cand] - level[sl, None]) ** 2
            + item_prior[cand]
        )
        if sampled:
            util[:, 1:][cand[:, 1:] == cand[:, :-1]] = -np.inf  # a repeated draw counts once
        seen: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(util)
        for phase, n_phase in (("train", n_train[sl]), ("test", n_test[sl])):
            u_phase = util + (
                0.4 * is_new[cand] if phase == "test"
                else np.where(available_train[cand], 0, -np.inf)
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
                pos = top[r][np.argsort(-noisy[r, top[r]], kind="stable")[:k]]
                chosen = cand[r, pos] if sampled else pos
                if phase == "train":
                    lo, hi = launch[chosen], np.full(k, float(cfg.cutoff_day))
                    seen[r] = pos
                else:
                    lo, hi = np.maximum(cfg.cutoff_day, launch[chosen]), np.full(k, float(cfg.days))
                rows_u.append(np.full(k, start + r))
                rows_i.append(chosen)
                rows_t.append(rng.uniform(lo, np.maximum(hi, lo + 1e-3)))
                rows_util.append(util[r, pos])
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


def _candidates(rng: np.random.Generator, n_rows: int, n_items: int, size: int) -> np.ndarray:
    """``size`` items drawn uniformly per user (sorted; a repeated draw stays in place and is
    masked by the caller): the candidate set that Gumbel-top-k samples from at scale."""
    return np.sort(rng.integers(n_items, size=(n_rows, size)), axis=1)


def oracle_rankings(
    items: pd.DataFrame, users: pd.DataFrame, inter: pd.DataFrame, item_prior: np.ndarray,
    n: int = 20,
) -> pd.DataFrame:
    """The ceiling of any recommender: each test user's ``n`` items of highest TRUE utility for
    the test period (the world's own formula, without the sampling noise), excluding the
    user's training items. Columns ``user_id, item_id, rank``. Truth: evaluation only."""
    cat, col, pat = (_codes(items, f) for f in ("category", "colour", "pattern"))
    n_col, n_pat = len(vocab.COLOURS), len(vocab.PATTERNS)
    cells = np.arange(len(vocab.CATEGORIES) * n_col * n_pat)  # every (category, colour, pattern)
    cell_cat, cell_col, cell_pat = cells // (n_col * n_pat), cells // n_pat % n_col, cells % n_pat
    item_cell = (cat * n_col + col) * n_pat + pat
    log_price = np.log(items["price"].to_numpy())
    is_new = items["is_new"].to_numpy()
    item_ids, user_ids = items["item_id"].to_numpy(), users["user_id"].to_numpy()
    test_users = set(inter.loc[inter["split"] == "test", "user_id"])
    rows = np.flatnonzero(users["user_id"].isin(test_users).to_numpy())
    train = inter[inter["split"] == "train"]
    seen_user = pd.Index(user_ids).get_indexer(train["user_id"])
    seen_item = pd.Index(item_ids).get_indexer(train["item_id"])
    pc = np.log(np.stack(users["pref_category"].to_numpy()) + 1e-4)
    pcol = np.log(np.stack(users["pref_colour"].to_numpy()) + 1e-4)
    ppat = np.log(np.stack(users["pref_pattern"].to_numpy()) + 1e-4)
    level = users["price_level"].to_numpy()
    out_u, out_i = [], []
    row_in_block = np.full(len(users), -1)
    for start in range(0, len(rows), _ORACLE_CHUNK):
        sl = rows[start : start + _ORACLE_CHUNK]
        # The taste terms take one value per cell: score the cells, then look items up.
        taste = (
            1.6 * pc[sl][:, cell_cat] + 1.2 * pcol[sl][:, cell_col] + 0.6 * ppat[sl][:, cell_pat]
        )
        util = (
            taste[:, item_cell]
            - 0.6 * (log_price[None, :] - level[sl, None]) ** 2
            + item_prior[None, :]
            + 0.4 * is_new[None, :]
        )
        row_in_block[sl] = np.arange(len(sl))
        mine = row_in_block[seen_user] >= 0
        util[row_in_block[seen_user[mine]], seen_item[mine]] = -np.inf
        row_in_block[sl] = -1
        # The n best, ordered as a stable sort of the whole row would order them.
        top = np.sort(np.argpartition(-util, n - 1, axis=1)[:, :n], axis=1)
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(util, top, 1), 1, "stable"), 1)
        out_u.append(np.repeat(user_ids[sl], n))
        out_i.append(item_ids[top].ravel())
    out_r = np.tile(np.arange(1, n + 1), len(rows))
    if not out_u:
        return pd.DataFrame({"user_id": [], "item_id": [], "rank": []})
    out_u, out_i = np.concatenate(out_u), np.concatenate(out_i)
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
