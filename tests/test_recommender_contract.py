"""The recommender contract, run against every registered recommender (implicit's shared test
in spirit): a new recommender gets these assertions without a line of test code.

Each model is fitted once per session on the small world of ``tests/recommender_fixtures.py``:
``fit`` returns self; recommendations are unique catalog items, best first, never the user's
training items, at most k; unknown users and items raise errors that say so; the model refuses
before it is fitted; a saved model (never a pickle) loads back to the same answers; the same
seed fits the same model.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.recommend import (
    InteractionData,
    NotFittedError,
    UnknownItemError,
    UnknownUserError,
    create_recommender,
    list_recommenders,
    load_recommender,
)
from engine.recommend.registry import fit_order, recommender_class
from tests.recommender_fixtures import COLD_USER, fit_all

NAMES = list_recommenders()


def _train_items(data: InteractionData, user_id: str) -> set[str]:
    return set(data.item_ids[data.history(data.user_index[user_id])[0]])


def test_registry_lists_every_module_and_orders_blends_after_members() -> None:
    assert len(NAMES) == len(set(NAMES)) >= 7
    order = fit_order()
    for name in NAMES:
        assert all(order.index(m) < order.index(name) for m in recommender_class(name).fuses)
    with pytest.raises(ValueError, match="unknown recommender 'nope'; valid: .*als"):
        create_recommender("nope")


@pytest.mark.parametrize("name", NAMES)
def test_declarations_and_build_params(name) -> None:
    cls = recommender_class(name)
    assert cls.name == name and cls.description
    params = cls.build_params(seed=7, threads=2)
    assert set(params) <= {"seed", "threads"}
    if "threads" in params:
        assert params["threads"] == (2 if cls.parallel_fit else 1)
    assert cls(**params).get_params().get("seed", 7) == 7


@pytest.mark.parametrize("name", NAMES)
def test_recommendations(name, rec_fitted, rec_data) -> None:
    model = rec_fitted["models"][name]
    assert rec_fitted["fit_returned_self"][name]
    for user in ("u000001", "u000042", COLD_USER):
        ids, scores = model.recommend(user, k=10)
        assert 0 < len(ids) <= 10 and len(set(ids)) == len(ids)
        assert set(ids) <= set(rec_data.item_ids)
        assert np.all(np.diff(scores) <= 1e-6), "scores must be sorted best first"
        assert not set(ids) & _train_items(rec_data, user)
    ids, _ = model.recommend("u000001", k=400, exclude_seen=True)
    assert not set(ids) & _train_items(rec_data, "u000001")
    assert np.all(np.isfinite(model.score_items("u000001", np.arange(50))))
    if not model.scores_new_items:
        assert not set(model.recommend("u000001", k=400)[0]) & set(
            rec_data.item_ids[rec_data.is_new]
        )


def _same_ranking(a: tuple, b: tuple) -> bool:
    """Same scores (to float error) and the same items, except that items whose scores tie
    within that error may swap places."""
    (a_ids, a_s), (b_ids, b_s) = a, b
    if len(a_ids) != len(b_ids) or not np.allclose(a_s, b_s, rtol=1e-5, atol=1e-6):
        return False
    tied = np.isclose(a_s[:, None], a_s[None, :], rtol=1e-5, atol=1e-6).sum(1) > 1
    return bool(np.all((a_ids == b_ids) | tied)) and set(a_ids[tied]) == set(b_ids[tied])


@pytest.mark.parametrize("name", NAMES)
def test_batched_recommendations_match_one_at_a_time(name, rec_fitted, rec_data) -> None:
    model = rec_fitted["models"][name]
    users = [*rec_data.user_ids[:40], COLD_USER, *rec_data.user_ids[-20:]]
    one = [model.recommend(u, k=10) for u in users]
    for batch in (7, None):  # across batch boundaries, and the default size
        many = model.recommend_many(users, k=10, batch=batch)
        assert len(many) == len(users)
        bad = [u for u, a, b in zip(users, one, many) if not _same_ranking(a, b)]
        assert not bad, f"{name}: batched and one-at-a-time rankings differ for {bad[:5]}"
    with pytest.raises(UnknownUserError, match="unknown user 'nobody'"):
        model.recommend_many(["u000001", "nobody"])


@pytest.mark.parametrize("name", NAMES)
def test_similar_items(name, rec_fitted, rec_data) -> None:
    model = rec_fitted["models"][name]
    warm_item = rec_data.item_ids[np.argmax(rec_data.popularity)]
    try:
        sim_ids, sim_scores = model.similar_items(warm_item, k=5)
    except NotImplementedError:
        pytest.skip(f"{name} has no item similarities")
    assert 0 < len(sim_ids) <= 5 and warm_item not in sim_ids
    assert np.all(np.diff(sim_scores) <= 1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_users_items_and_bad_k(name, rec_fitted) -> None:
    model = rec_fitted["models"][name]
    with pytest.raises(UnknownUserError, match="unknown user 'nobody'") as err:
        model.recommend("nobody")
    assert isinstance(err.value, ValueError)
    with pytest.raises(UnknownItemError, match="unknown item 'p999999'"):
        model.item_row("p999999")
    for k in (0, -3, 2.5, "10", True):
        with pytest.raises(ValueError, match="k must be"):
            model.recommend("u000001", k=k)


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load(name, rec_fitted, rec_data, tmp_path) -> None:
    model = rec_fitted["models"][name]
    model.save(tmp_path / name)
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))
    loaded = load_recommender(tmp_path / name)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    for user in ("u000001", "u000077", COLD_USER):
        a, b = model.recommend(user, 10), loaded.recommend(user, 10)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_refuses_before_fit(name, tmp_path) -> None:
    model = create_recommender(name)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.recommend("u000001")
    with pytest.raises(NotFittedError):
        model.similar_items("p000001")
    with pytest.raises(NotFittedError):
        model.save(tmp_path)


def test_same_seed_fits_the_same_models(rec_fitted, rec_data) -> None:
    again = fit_all(rec_data)["models"]
    for name, model in rec_fitted["models"].items():
        for user in ("u000001", "u000042", COLD_USER):
            a, b = model.recommend(user, 10), again[name].recommend(user, 10)
            np.testing.assert_array_equal(a[0], b[0], err_msg=name)
