"""A small world with planted preferences for the recommender tests, built once per session.

The world comes straight from the generator functions (no images): 400 items, 150 users, 6,000
interactions, plus one extra user without any interaction (``COLD_USER``). Every registered
recommender is fitted once on it, in fit order, with small-world settings where a model needs
them (fewer factors, more and smaller steps than the defaults); a new recommender is fitted with
its own defaults and joins every contract test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import WorldConfig
from engine.recommend import InteractionData, create_recommender
from engine.recommend.registry import fit_order
from engine.world import catalog, users

WORLD = WorldConfig(n_items=400, n_users=150, n_interactions=6000, n_sessions=300)
COLD_USER = "u_cold"
TT = {"epochs": 15, "batch_size": 256, "hidden": 64, "input_dim": 32}  # 45 -> 32: PCA path
ALS = {"factors": 16, "alpha": 5.0}
SMALL = {
    "als": ALS,
    "two_tower": TT,
    "fm": {"epochs": 30, "batch_size": 256},
    "deepfm": {"epochs": 30, "batch_size": 256},
    "hybrid": {"params": {"als": ALS, "two_tower": TT}, "val_users": 150},
}


@pytest.fixture(scope="session")
def rec_world() -> dict[str, pd.DataFrame]:
    rng_items, rng_users, rng_inter, rng_sess = (
        np.random.default_rng(s) for s in np.random.SeedSequence(7).spawn(4)
    )
    items = catalog.generate_products(WORLD, rng_items)
    people = users.generate_users(WORLD, rng_users)
    inter = users.generate_interactions(WORLD, items, people, rng_inter)
    sessions = users.generate_sessions(WORLD, items, inter, rng_sess)
    return {
        "items": items,
        "users": people,
        "interactions": inter,
        "sessions": sessions,
        "keywords": noisy_tags(items),
    }


def noisy_tags(items: pd.DataFrame, accuracy: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """A stand-in for the image tagger on a world without images: each item's colour and
    pattern tag is its true value with probability ``accuracy``, else another value, with
    overlapping confidences (what recommenders may see; never the truth columns themselves)."""
    rng = np.random.default_rng(seed)
    rows = []
    for field in ("colour", "pattern"):
        values = sorted(items[field].unique())
        for item, true in zip(items["item_id"], items[field]):
            right = rng.random() < accuracy
            value = true if right else values[int(rng.integers(len(values)))]
            conf = float(rng.uniform(0.5, 1.0) if right else rng.uniform(0.3, 0.9))
            rows.append((item, value, round(conf, 3), "tagger", field))
    return pd.DataFrame(rows, columns=["item_id", "keyword", "confidence", "source", "field"])


@pytest.fixture(scope="session")
def rec_data(rec_world) -> InteractionData:
    people = pd.concat([rec_world["users"][["user_id"]], pd.DataFrame({"user_id": [COLD_USER]})])
    catalog_items = rec_world["items"].drop(columns=["colour", "pattern", "material"])
    return InteractionData.from_tables(
        catalog_items, rec_world["interactions"], users=people, keywords=rec_world["keywords"]
    )


def fit_all(data: InteractionData) -> dict:
    """Every registered recommender fitted on ``data`` (and whether ``fit`` returned self)."""
    models, returned = {}, {}
    for name in fit_order():
        model = create_recommender(name, **SMALL.get(name, {}))
        fitted = model.fit(data, fitted=models) if model.fuses else model.fit(data)
        returned[name] = fitted is model
        models[name] = model
    return {"models": models, "fit_returned_self": returned}


@pytest.fixture(scope="session")
def rec_fitted(rec_data) -> dict:
    return fit_all(rec_data)
