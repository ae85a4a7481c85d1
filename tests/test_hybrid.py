"""Tests of the LambdaMART re-ranker and the Hybrid retriever.

The ranker is trained on a small synthetic learning-to-rank set where one feature carries the
label (plus noise) and the others are pure noise; its held-out NDCG@10 is compared with random
rankings. On the built ``tiny`` catalog, ``explain()`` is checked against the scores Hybrid
returns, and the ranker's manifest against the query table.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.components import text_encoder
from engine.evaluation.metrics import ndcg_at_k
from engine.ranking.features import FEATURES, POOL
from engine.ranking.ltr import META_FILE, MODEL_FILE, LambdaMartRanker
from engine.retrieval.understanding import make_query
from engine.search import get_retriever, search

NAMES = ("noise_a", "noise_b", "signal", "noise_c", "noise_d")
DOCS = 30


def _ltr_set(n_queries: int, rng: np.random.Generator):
    """Groups of DOCS rows; grade 0..3; column 2 = grade + noise, the rest noise."""
    y = rng.choice(4, size=(n_queries, DOCS), p=[0.55, 0.25, 0.12, 0.08])
    X = rng.normal(size=(n_queries, DOCS, len(NAMES)))
    X[:, :, 2] = y + rng.normal(scale=1.0, size=y.shape)
    return (
        X.reshape(-1, len(NAMES)).astype(np.float32),
        y.reshape(-1),
        np.full(n_queries, DOCS),
    )


def _mean_ndcg(scores: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    vals, start = [], 0
    for n in groups:
        s, g = scores[start : start + n], y[start : start + n]
        ranking = np.argsort(-s, kind="stable")
        vals.append(ndcg_at_k(ranking, {i: int(x) for i, x in enumerate(g)}, k=10))
        start += n
    return float(np.mean(vals))


@pytest.fixture(scope="module")
def ltr():
    rng = np.random.default_rng(0)
    train, val, test = _ltr_set(60, rng), _ltr_set(20, rng), _ltr_set(40, rng)
    ranker = LambdaMartRanker(feature_names=NAMES, n_estimators=200, seed=3)
    fitted = ranker.fit(*train, X_val=val[0], y_val=val[1], groups_val=val[2])
    return ranker, fitted, train, val, test


def test_fit_returns_self(ltr):
    ranker, fitted, *_ = ltr
    assert fitted is ranker
    assert 1 <= ranker.best_iteration_ <= 200
    assert 0.0 < ranker.val_ndcg_ <= 1.0


def test_constructor_only_stores_and_unfitted_ranker_refuses():
    ranker = LambdaMartRanker(feature_names=NAMES)
    assert ranker.booster_ is None
    X = np.zeros((3, len(NAMES)), np.float32)
    for call in (ranker.predict, ranker.contributions):
        with pytest.raises(RuntimeError, match="not fitted"):
            call(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        ranker.importances()


def test_ranker_beats_random_rankings_on_held_out_queries(ltr):
    ranker, _, _, _, (X, y, groups) = ltr
    model = _mean_ndcg(ranker.predict(X), y, groups)
    rng = np.random.default_rng(1)
    random = np.mean([_mean_ndcg(rng.random(len(y)), y, groups) for _ in range(20)])
    oracle = _mean_ndcg(y + rng.random(len(y)) * 0.1, y, groups)
    assert model > random + 0.2, (model, random)
    assert model <= oracle + 1e-9
    # ... and is about as good as sorting by the informative column itself
    assert model > _mean_ndcg(X[:, 2], y, groups) - 0.05


def test_save_load_round_trip_predicts_identically(ltr, tmp_path):
    ranker, _, _, _, (X, _, _) = ltr
    ranker.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MODEL_FILE, META_FILE])
    loaded = LambdaMartRanker.load(tmp_path)
    assert loaded.feature_names == NAMES
    assert loaded.best_iteration_ == ranker.best_iteration_
    np.testing.assert_array_equal(loaded.predict(X), ranker.predict(X))
    np.testing.assert_array_equal(loaded.contributions(X[:7]), ranker.contributions(X[:7]))
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["importances"] == ranker.importances()
    assert (tmp_path / MODEL_FILE).read_text().startswith("tree")  # LightGBM text, no pickle


def test_importances_rank_the_informative_feature_first(ltr):
    ranker, *_ = ltr
    imp = ranker.importances()
    assert set(imp) == set(NAMES)
    assert sum(imp.values()) > 0
    assert next(iter(imp)) == "signal"
    assert list(imp.values()) == sorted(imp.values(), reverse=True)
    assert imp["signal"] > sum(v for k, v in imp.items() if k != "signal")


def test_contributions_sum_to_the_prediction(ltr):
    ranker, _, _, _, (X, _, _) = ltr
    contrib = ranker.contributions(X[:50])
    assert contrib.shape == (50, len(NAMES) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), ranker.predict(X[:50]), rtol=1e-6, atol=1e-6)
    # the informative column explains most of the spread of the predictions
    spread = np.abs(contrib[:, :-1]).mean(axis=0)
    assert int(np.argmax(spread)) == NAMES.index("signal")


# -- Hybrid on the tiny catalog ----------------------------------------------------------------
QUERIES = ("red striped t-shirt", "navy polka dot backpack", "leather boots", "ceramic vase")


@pytest.mark.parametrize("text", QUERIES)
def test_hybrid_returns_ranked_results_with_its_stages(tiny_catalog, text):
    result = search(tiny_catalog, "hybrid", text=text, k=10)
    assert len(result) == 10 and len(set(result.rows.tolist())) == 10
    assert set(result.timings_ms) == {"understand", "encode", "lexical", "candidates", "rerank"}
    assert all(v >= 0 for v in result.timings_ms.values())
    assert np.all(np.diff(result.scores) <= 0)


def test_hybrid_scores_are_the_rankers_predictions(tiny_catalog):
    from engine.retrieval.base import StageTimer

    hybrid = get_retriever(tiny_catalog, "hybrid")
    builder, _, ranker = hybrid._parts()
    text = "green checked mug"
    s = hybrid.signals(make_query(tiny_catalog, text), StageTimer())
    rows, full = builder.candidates(s)
    pred = ranker.predict(builder.features(s, rows, full))
    result = search(tiny_catalog, "hybrid", text=text, k=10)
    best = rows[np.argsort(-pred, kind="stable")[:10]]
    assert result.rows.tolist() == best.tolist()
    np.testing.assert_allclose(result.scores, np.sort(pred)[::-1][:10], rtol=1e-6)


@pytest.mark.parametrize("text", QUERIES[:2])
def test_explain_contributions_add_up_to_the_hybrid_score(tiny_catalog, text):
    hybrid = get_retriever(tiny_catalog, "hybrid")
    result = search(tiny_catalog, "hybrid", text=text, k=3)
    for row, score in zip(result.rows.tolist(), result.scores.tolist()):
        why = hybrid.explain(text, row, top=len(FEATURES))
        contrib = why["contributions"]
        assert {c["feature"] for c in contrib} == set(FEATURES)
        total = sum(c["contribution"] for c in contrib) + why["bias"]
        assert total == pytest.approx(score, abs=len(FEATURES) * 5e-5 + 1e-6)
        mags = [abs(c["contribution"]) for c in contrib]
        assert mags == sorted(mags, reverse=True)
    assert len(hybrid.explain(text, row)["contributions"]) == 6  # the default top


def test_explain_generator_ranks_match_the_generators(tiny_catalog):
    c, text = tiny_catalog, "black leather boots"
    hybrid = get_retriever(c, "hybrid")
    bm25 = search(c, "bm25", text=text, k=POOL).rows.tolist()
    keyword = search(c, "keyword", text=text, k=POOL).rows.tolist()
    sbert_scores = np.load(c.step_dir("sbert") / "sbert_items.npy") @ text_encoder(c).encode_texts(
        [text]
    )[0]
    sbert = np.argsort(-sbert_scores, kind="stable")[:POOL].tolist()
    rows = search(c, "hybrid", text=text, k=5).rows.tolist() + [bm25[7], len(c.items) - 1]
    for row in rows:
        gens = hybrid.explain(text, row)["generators"]
        assert set(gens) == {"bm25", "keyword", "sbert", "clip", "attr"}
        for name, ranking in (("bm25", bm25), ("keyword", keyword), ("sbert", sbert)):
            expected = ranking.index(row) + 1 if row in ranking else None
            assert gens[name]["rank"] == expected, (name, row)
        assert gens["sbert"]["score"] == pytest.approx(sbert_scores[row], abs=1e-4)


def test_ranker_was_trained_on_train_queries_and_early_stopped_on_val(tiny_catalog):
    info = tiny_catalog.manifest["steps"]["ranker"]["info"]
    queries = tiny_catalog.table("queries")
    split = queries["split"].value_counts()
    assert info["train_queries"] == split["train"]
    assert info["val_queries"] == split["val"]
    assert info["train_rows"] > info["train_queries"]  # candidate pools, not single rows
    meta = json.loads((tiny_catalog.step_dir("ranker") / META_FILE).read_text())
    assert meta["best_iteration"] == info["best_iteration"]
    assert meta["val_ndcg@10"] == pytest.approx(info["val_ndcg@10"], abs=1e-4)
    assert 1 <= info["best_iteration"] <= 400  # LambdaMartRanker's n_estimators
    assert info["importances"] == meta["importances"]
    assert set(info["importances"]) == set(FEATURES)
    # the saved model holds exactly the early-stopped number of trees
    model = (tiny_catalog.step_dir("ranker") / MODEL_FILE).read_text()
    assert model.count("Tree=") == info["best_iteration"]


def test_ranker_validation_score_is_reproducible_from_the_val_queries(tiny_catalog):
    """The manifest's val NDCG@10 is LightGBM's on the val candidate pools; re-rank them."""
    from engine.retrieval.base import StageTimer

    hybrid = get_retriever(tiny_catalog, "hybrid")
    builder, _, ranker = hybrid._parts()
    queries = tiny_catalog.table("queries")
    val = queries[queries["split"] == "val"]
    qrels = tiny_catalog.qrels("text")
    vals = []
    for qid, text in zip(val["query_id"], val["query"]):
        s = hybrid.signals(make_query(tiny_catalog, text), StageTimer())
        rows, full = builder.candidates(s)
        pred = ranker.predict(builder.features(s, rows, full))
        judged = qrels.get(qid, {})
        grades = {i: judged.get(tiny_catalog.item_ids[r], 0) for i, r in enumerate(rows)}
        # LightGBM counts a query with no relevant candidate as NDCG 1
        ranking = np.argsort(-pred, kind="stable")
        vals.append(ndcg_at_k(ranking, grades, k=10) if any(grades.values()) else 1.0)
    info = tiny_catalog.manifest["steps"]["ranker"]["info"]
    assert len(vals) == info["val_queries"]
    assert info["val_ndcg@10"] == pytest.approx(np.mean(vals), abs=2e-3)


def test_rank_features_follow_a_full_stable_sort_even_with_ties():
    """Ranks come from a partial selection now; they must equal a stable sort of every item."""
    from engine.ranking.features import FeatureBuilder, QuerySignals

    rng = np.random.default_rng(7)
    n = 400
    builder = FeatureBuilder(
        sbert_items=rng.integers(0, 3, (n, 4)).astype(np.float32),  # many tied scores
        clip_items=None, keyword_index=None, popularity=np.zeros(n), price=np.ones(n),
        is_new=np.zeros(n, dtype=bool),
    )
    s = QuerySignals("q", rng.integers(0, 4, n).astype(float),  # zeros are "no match"
                     rng.integers(-1, 3, n).astype(float), np.ones(4, np.float32), None)
    rows, full = builder.candidates(s)
    X = builder.features(s, rows, full)
    for g in ("bm25", "keyword", "sbert"):
        order = np.argsort(-full[g], kind="stable")[:POOL]
        valid = (order[full[g][order] > 0] if g != "sbert" else order).tolist()
        expected = [valid.index(r) + 1 if r in valid else POOL + 1 for r in rows.tolist()]
        assert X[:, FEATURES.index(f"{g}_rank")].tolist() == expected, g
