"""What the recommender figures mean: a random ranking and an oracle, measured like the models.

* **random** — each test user gets ``k`` items drawn at random (seeded) from those they did not
  engage with before the cutoff: the floor any model must clear.
* **oracle** — each test user gets the items of highest *true* utility in the synthetic world
  (the world's own taste model, without its sampling noise; ``oracle`` table, written by the
  world step). No model may read those tastes; the oracle shows how much a perfect model of them
  could reach, since the held-out engagements are themselves noisy draws.

Both are scored with the recommend step's own metric code on the same test engagements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.catalog import Catalog
from engine.recommend.evaluate import score_rankings, test_qrels


def ceilings(catalog: Catalog, k: int = 10, seed: int = 42) -> dict[str, Any] | None:
    """Random and oracle recall/NDCG/MAP@k on the catalog's test engagements (None when the
    catalog has no interactions, or no oracle: an ingested catalog has no true tastes)."""
    inter = catalog.table("interactions")
    try:
        oracle = catalog.table("oracle")
    except Exception:  # a catalog built before the oracle table, or an ingested one
        return None
    if not len(oracle) or "recommend" not in catalog.built_steps:
        return None
    test = inter[inter["split"] == "test"]
    qrels = test_qrels(test)
    train = inter[inter["split"] == "train"].groupby("user_id")["item_id"].agg(set).to_dict()
    item_ids = catalog.item_ids
    rng = np.random.default_rng(seed)
    random_recs: dict[str, np.ndarray] = {}
    for u in sorted(qrels):
        seen = train.get(u, set())
        pick = rng.choice(len(item_ids), size=min(len(item_ids), k + len(seen)), replace=False)
        random_recs[u] = np.array([i for i in item_ids[pick] if i not in seen][:k])
    ranked = oracle.sort_values(["user_id", "rank"], kind="stable")
    oracle_recs = {
        u: g["item_id"].to_numpy()[:k] for u, g in ranked.groupby("user_id", sort=False)
    }
    oracle_recs = {u: oracle_recs.get(u, np.array([], dtype=object)) for u in qrels}
    return {
        "k": k,
        "random": score_rankings(random_recs, qrels, k),
        "oracle": score_rankings(oracle_recs, qrels, k),
        "note": "random: k unseen items at random; oracle: the world's true tastes (truth)",
    }



