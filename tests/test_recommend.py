"""What is special about each recommender, on the session's small world with planted tastes
(``tests/recommender_fixtures.py``): quality against popularity, cold start, training losses, the
hybrid's fallback, personalised search and the build step. The contract every recommender meets
is in ``test_recommender_contract.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import engine  # noqa: F401  (offline env)
from engine.recommend import (
    InteractionData,
    content_features,
    load_recommender,
)
from engine.recommend.evaluate import (
    evaluate_personalized_search,
    evaluate_recommenders,
    personalized_rerank,
)
from engine.recommend.registry import fit_order, recommender_class
from engine.world import vocab
from tests.recommender_fixtures import COLD_USER

ALL = tuple(fit_order())
SCORES_NEW = tuple(n for n in ALL if recommender_class(n).scores_new_items and n != "popularity")


@pytest.fixture(scope="module")
def world(rec_world):
    return rec_world


@pytest.fixture(scope="module")
def data(rec_data):
    return rec_data


@pytest.fixture(scope="module")
def fitted(rec_fitted):
    return rec_fitted


@pytest.fixture(scope="module")
def metrics(fitted, data, world) -> dict:
    inter = world["interactions"]
    new_ids = set(world["items"].loc[world["items"]["is_new"], "item_id"])
    return evaluate_recommenders(
        fitted["models"],
        data,
        inter[inter["split"] == "test"],
        new_item_ids=new_ids,
        latency_users=30,
    )


def _train_items(data: InteractionData, user_id: str) -> set[str]:
    return set(data.item_ids[data.history(data.user_index[user_id])[0]])


def test_data_weights_new_items_and_validation_split(world, data) -> None:
    inter = world["interactions"]
    row = inter[(inter["split"] == "train") & (inter["event"] == "purchase")].iloc[0]
    assert data.matrix[data.user_index[row.user_id], data.item_index[row.item_id]] == 8.0
    assert data.matrix.nnz == (inter["split"] == "train").sum()
    assert data.popularity[data.is_new].sum() == 0 and data.is_new.sum() == 40
    fit, val = data.split_validation(0.2)
    assert fit.matrix.nnz + len(val) == data.matrix.nnz
    assert val["timestamp"].min() >= fit.times.data.max()


def test_content_features_blocks(world) -> None:
    items = world["items"]
    rng = np.random.default_rng(0)
    attrs = content_features(items)
    both = content_features(items, rng.normal(size=(400, 8)), rng.normal(size=(400, 6)))
    assert both.shape == (400, attrs.shape[1] + 14)
    np.testing.assert_allclose(np.linalg.norm(both[:, :8], axis=1), 1.0, rtol=1e-5)
    n_blocks = 2  # the merchant category one-hot + price bumps, each of unit norm
    np.testing.assert_allclose(np.linalg.norm(attrs, axis=1) ** 2, n_blocks, rtol=1e-5)
    # the tagger's colour and pattern confidences join as two more unit blocks (truth never)
    tags = pd.DataFrame(
        {
            "item_id": list(items["item_id"]) * 2,
            "keyword": ["red"] * len(items) + ["striped"] * len(items),
            "confidence": 0.7,
            "field": ["colour"] * len(items) + ["pattern"] * len(items),
        }
    )
    tagged = content_features(items, keywords=tags)
    np.testing.assert_allclose(np.linalg.norm(tagged, axis=1) ** 2, 4, rtol=1e-5)
    with pytest.raises(ValueError, match="rows"):
        content_features(items, clip_items=np.zeros((3, 4)))


def test_models_can_share_saved_data(fitted, data, tmp_path) -> None:
    data.save(tmp_path / "data")
    for name in ("content", "als"):
        fitted["models"][name].save(tmp_path / name, data_folder=tmp_path / "data")
        assert not (tmp_path / name / "data").exists()
        loaded = load_recommender(tmp_path / name)
        a, b = fitted["models"][name].recommend("u000003"), loaded.recommend("u000003")
        np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("name", [n for n in ALL if n != "popularity"])
def test_beats_popularity_on_held_out(name, metrics) -> None:
    res, pop = metrics["models"][name], metrics["models"]["popularity"]
    # Measured on this world: popularity NDCG@10 0.03; ALS 0.10, content 0.19, the rest > 0.2.
    assert res["ndcg@10"] >= 2.0 * pop["ndcg@10"], (name, res["ndcg@10"], pop["ndcg@10"])
    assert res["recall@10"] >= pop["recall@10"] + 0.03


def test_evaluation_report(metrics) -> None:
    pop, content = metrics["models"]["popularity"], metrics["models"]["content"]
    assert metrics["test_users"] > 100 and metrics["unknown_users_skipped"] == 0
    assert content["cold_start"]["users"] > 10
    assert pop["popularity_percentile"] > content["popularity_percentile"]
    assert pop["coverage"] < content["coverage"] <= 1.0
    assert pop["new_item_share"] == 0.0
    for res in metrics["models"].values():
        assert res["latency_ms"]["n"] == 30 and res["latency_ms"]["p95"] > 0


@pytest.mark.parametrize("name", SCORES_NEW)
def test_new_items_recommendable(name, fitted, data, metrics) -> None:
    model = fitted["models"][name]
    new = set(data.item_ids[data.is_new])
    recommended = {i for u in data.user_ids for i in model.recommend(u, 10)[0]}
    assert recommended & new, f"{name} never recommends a NEW item"
    assert metrics["models"][name]["cold_start"]["recall@10"] > 0


def test_als_never_recommends_new_items(fitted, data, metrics) -> None:
    als = fitted["models"]["als"]
    new = set(data.item_ids[data.is_new])
    for u in data.user_ids:
        assert not set(als.recommend(u, 20, exclude_seen=False)[0]) & new
    scores = als.score_items("u000001", np.arange(data.n_items))
    assert scores[data.is_new].max() < scores[~data.is_new].min()
    assert metrics["models"]["als"]["cold_start"]["recall@10"] == 0.0
    assert len(als.similar_items(data.item_ids[data.is_new][0])[0]) == 0


@pytest.mark.parametrize("name", ["fm", "deepfm", "two_tower"])
def test_training_loss_decreases(name, fitted) -> None:
    losses = np.array(fitted["models"][name].loss_history_)
    n = max(3, len(losses) // 10)
    assert losses[:n].mean() > 1.15 * losses[-n:].mean(), (losses[:n].mean(), losses[-n:].mean())
    if name != "two_tower":  # BPR starts at log 2 (random scores)
        assert abs(losses[0] - np.log(2)) < 0.05


def test_hybrid_cold_start_fallback(fitted, data) -> None:
    hybrid = fitted["models"]["hybrid"]
    cold = hybrid.weights_["cold"]
    assert cold["als"] == 0.0 and cold["content"] + cold["two_tower"] >= 0.5
    assert data.history_lengths[data.user_index[COLD_USER]] == 0
    ids, _ = hybrid.recommend(COLD_USER, 10)
    assert len(ids) == 10
    before = hybrid.score_items(COLD_USER, np.arange(data.n_items))
    als = hybrid.models_["als"]
    als._scores = lambda user: np.random.default_rng(user).normal(size=data.n_items)
    try:  # ALS scores do not matter for a user without history
        after = hybrid.score_items(COLD_USER, np.arange(data.n_items))
    finally:
        del als._scores
    np.testing.assert_allclose(before, after, rtol=1e-6)
    assert hybrid.validation_["warm"]["users"] > 0


def _category_search(world):
    """A toy search: the items of the query's category, most popular first (no personalisation)."""
    items, inter = world["items"], world["interactions"]
    pop = inter[inter["split"] == "train"]["item_id"].value_counts()
    by_word = {w: c.name for c in vocab.CATEGORIES for w in c.words}

    def search(query: str):
        cat = next(by_word[w] for w in sorted(by_word, key=len, reverse=True) if query.endswith(w))
        hits = items.loc[items["category"] == cat, "item_id"].to_numpy()
        scores = pop.reindex(hits, fill_value=0).to_numpy(dtype=float)
        order = np.argsort(-scores, kind="stable")[:50]
        return hits[order], scores[order]

    return search


def test_personalized_rerank(fitted, world) -> None:
    model = fitted["models"]["hybrid"]
    ids = np.array(["p000003", "p000001", "p000002"])
    base = np.array([3.0, 2.0, 1.0])
    for user, weight in (("u000001", 0.0), ("anonymous", 5.0)):  # no weight / unknown: as is
        order = personalized_rerank(ids, base, user, model, weight)
        np.testing.assert_array_equal(order, [0, 1, 2])
    sessions = world["sessions"]
    held_out = sessions[sessions["split"] == "test"]
    res = evaluate_personalized_search(held_out, _category_search(world), model, weight=1.0)
    assert res["sessions"] == len(held_out) > 20
    assert res["personalized"]["mrr"] > res["search"]["mrr"]
    assert res["personalized"]["recall@10"] >= res["search"]["recall@10"]


def test_build_step(world, tmp_path) -> None:
    from engine.pipeline.step import StepContext
    from engine.pipeline.steps.recommend import run as build_recommenders
    from engine.recommend.registry import list_recommenders

    folder = tmp_path / "world"
    folder.mkdir()
    for name in ("items", "users", "interactions", "sessions", "keywords"):
        world[name].to_parquet(folder / f"{name}.parquet", index=False)
    ctx = StepContext(
        cfg=SimpleNamespace(seed=3, build_threads=1),
        inputs={"world": folder},
        progress=lambda it, total, desc, **kw: it,
        log=lambda msg: None,
    )
    info = build_recommenders(ctx, tmp_path / "out")
    assert set(info["evaluation"]["models"]) == set(list_recommenders()) == set(ALL)
    assert info["features"]["blocks"] == ["category", "tags", "price"]
    assert info["hybrid"]["weights"]["cold"]["als"] == 0.0
    assert "personalized_search" not in info  # no lexical step given
    hybrid = load_recommender(tmp_path / "out" / "hybrid")
    assert len(hybrid.recommend("u000005", 10)[0]) == 10
    assert not (tmp_path / "out" / "hybrid" / "data").exists()  # one shared data folder
