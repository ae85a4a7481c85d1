"""Tests of the three fusion strategies (early, late, learned MLP) and the fusion build step.

Pure functions are checked against independent numpy computations on hand-made or random data;
the built ``tiny`` catalog's tuned weights are checked against the tuning curves the build saved
(and one curve point is recomputed here from the item vectors).
"""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from engine.components import clip_encoder, text_encoder
from engine.encoders.fusion_mlp import (
    META,
    WEIGHTS,
    load_fusion_mlp,
    project,
    save_fusion_mlp,
    train_fusion_mlp,
)
from engine.evaluation.metrics import ndcg_at_k
from engine.pipeline.steps.fusion import GRID
from engine.retrieval.fusion import QueryFeatures, early_vector, late_fuse, mlp_input
from engine.retrieval.understanding import make_query
from engine.search import search

FUSION_METHODS = ("fusion-early", "fusion-late", "fusion-mlp")


def _z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return (x - x.mean()) / x.std()


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.normal(size=shape)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


# -- late fusion -------------------------------------------------------------------------------
A = (np.array([0, 1, 2]), np.array([3.0, 2.0, 1.0]))
B = (np.array([2, 3]), np.array([10.0, 0.0]))


def test_late_fuse_hand_example():
    pool, fused = late_fuse({"a": A, "b": B}, {"a": 0.7, "b": 0.3})
    assert pool.tolist() == [0, 1, 2, 3]
    # a: rows 0, 1, 2 scored; row 3 missing -> a's minimum (1.0)
    a = _z([3.0, 2.0, 1.0, 1.0])
    # b: rows 2, 3 scored; rows 0, 1 missing -> b's minimum (0.0)
    b = _z([0.0, 0.0, 10.0, 0.0])
    np.testing.assert_allclose(fused, 0.7 * a + 0.3 * b, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fused, [0.8821, 0.0379, -0.1136, -0.8064], atol=1e-4)
    # shifting the weight to b makes row 2 (b's best, a's worst) win
    pool, fused = late_fuse({"a": A, "b": B}, {"a": 0.2, "b": 0.8})
    assert pool[np.argsort(-fused)].tolist()[0] == 2


def test_late_fuse_uses_exact_scores_for_missing_candidates():
    exact = {"b": np.array([5.0, 6.0, 10.0, 0.0])}
    pool, fused = late_fuse({"a": A, "b": B}, {"a": 1.0, "b": 1.0}, exact=exact)
    expected = _z([3.0, 2.0, 1.0, 1.0]) + _z([5.0, 6.0, 10.0, 0.0])
    np.testing.assert_allclose(fused, expected, rtol=1e-6, atol=1e-9)


def test_a_signal_with_weight_zero_has_no_effect():
    rng = np.random.default_rng(0)
    base_pool, base = late_fuse({"a": A, "b": B}, {"a": 1.0, "b": 0.0})
    for _ in range(5):
        other = (B[0], rng.normal(size=len(B[0])) * 100)
        pool, fused = late_fuse({"a": A, "b": other}, {"a": 1.0, "b": 0.0})
        assert pool.tolist() == base_pool.tolist()
        np.testing.assert_allclose(fused, base)
    # ... and a weight missing from the dict counts as zero
    pool, fused = late_fuse({"a": A, "b": B}, {"a": 1.0})
    np.testing.assert_allclose(fused, base)
    # with weight zero the ranking is a's alone (rows a did not score get a's minimum)
    np.testing.assert_allclose(base, _z([3.0, 2.0, 1.0, 1.0]), atol=1e-9)


@pytest.mark.parametrize("scale, shift", [(5.0, 3.0), (0.01, -100.0), (1e4, 0.0)])
def test_late_fuse_is_invariant_to_affine_rescaling_of_one_signal(scale, shift):
    rng = np.random.default_rng(1)
    sig = {
        "sbert": (np.arange(0, 30), np.sort(rng.random(30))[::-1]),
        "clip": (np.arange(15, 45), np.sort(rng.random(30) * 0.3)[::-1]),
    }
    w = {"sbert": 0.4, "clip": 0.6}
    pool, fused = late_fuse(sig, w)
    rows, scores = sig["clip"]
    pool2, fused2 = late_fuse({**sig, "clip": (rows, scores * scale + shift)}, w)
    assert pool.tolist() == pool2.tolist()
    np.testing.assert_allclose(fused, fused2, rtol=1e-6, atol=1e-6)
    # a non-affine change of the same signal does change the fused scores
    _, fused3 = late_fuse({**sig, "clip": (rows, scores**4)}, w)
    assert not np.allclose(fused, fused3, atol=1e-3)


# -- early fusion ------------------------------------------------------------------------------
@pytest.mark.parametrize("a, h", [(0.0, 0.0), (0.25, 1.5), (9.0, 0.11)])
def test_early_vector_inner_product_is_the_weighted_sum_of_cosines(a, h):
    rng = np.random.default_rng(2)
    ds, dc, dh = 12, 8, 5
    items_s, items_c, items_h = _unit(rng, 50, ds), _unit(rng, 50, dc), _unit(rng, 50, dh)
    items = np.concatenate([np.sqrt(a) * items_s, items_c, np.sqrt(h) * items_h], axis=1)
    f = QueryFeatures(_unit(rng, ds), _unit(rng, dc), _unit(rng, dh))
    q = early_vector(f, a, h, (ds, dc, dh))
    assert q.shape == (ds + dc + dh,) and q.dtype == np.float32
    expected = a * items_s @ f.sbert + items_c @ f.clip + h * items_h @ f.colour
    np.testing.assert_allclose(items @ q, expected, rtol=1e-5, atol=1e-5)


def test_early_vector_and_mlp_input_zero_the_missing_parts():
    rng = np.random.default_rng(3)
    clip = _unit(rng, 4)
    f = QueryFeatures(None, clip, None)
    q = early_vector(f, 2.0, 3.0, (3, 4, 2))
    np.testing.assert_array_equal(q, np.concatenate([np.zeros(3), clip, np.zeros(2)]))
    np.testing.assert_array_equal(mlp_input(f, (3, 4, 2)), q)
    s, h = _unit(rng, 3), _unit(rng, 2)
    np.testing.assert_allclose(
        mlp_input(QueryFeatures(s, clip, h), (3, 4, 2)), np.concatenate([s, clip, h])
    )


# -- the fusion MLP ----------------------------------------------------------------------------
N_ITEMS, DIM, NOISE, COPIES, EPOCHS = 300, 24, 0.8, 4, 6


def _noisy_copies(items: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (items[idx] + NOISE * rng.normal(size=(len(idx), items.shape[1]))).astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_mlp():
    """A fusion MLP trained on queries that are noisy copies of their item's features."""
    rng = np.random.default_rng(4)
    items = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    item_index = np.repeat(np.arange(N_ITEMS), COPIES)
    queries = _noisy_copies(items, item_index, rng)
    model, stats = train_fusion_mlp(
        queries, item_index, items, seed=7, epochs=EPOCHS, batch_size=128
    )
    return model, stats, items, rng


def test_training_lowers_the_loss(synthetic_mlp):
    _, stats, _, _ = synthetic_mlp
    assert stats["pairs"] == N_ITEMS * COPIES
    assert stats["steps"] == EPOCHS * (N_ITEMS * COPIES // 128)
    assert stats["final_loss"] < 0.5 * stats["initial_loss"], stats


def test_trained_mlp_retrieves_the_right_item_far_above_chance(synthetic_mlp):
    model, _, items, rng = synthetic_mlp
    idx = rng.integers(N_ITEMS, size=400)
    fresh = _noisy_copies(items, idx, rng)  # queries never seen in training
    q = project(model, fresh, side="query")
    it = project(model, items, side="item")
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(it, axis=1), 1.0, atol=1e-5)
    top1 = np.argmax(q @ it.T, axis=1)
    accuracy = float(np.mean(top1 == idx))
    assert accuracy > 0.6, accuracy  # chance is 1/300


def test_an_untrained_mlp_does_not_retrieve(synthetic_mlp):
    """The check above is meaningful: the same towers before training are near chance."""
    _, _, items, rng = synthetic_mlp
    untrained, _ = train_fusion_mlp(
        items[:1], np.array([0]), items, seed=7, epochs=1, batch_size=128
    )  # fewer pairs than one batch: no step is taken
    idx = rng.integers(N_ITEMS, size=400)
    q = project(untrained, _noisy_copies(items, idx, rng), side="query")
    top1 = np.argmax(q @ project(untrained, items, side="item").T, axis=1)
    assert float(np.mean(top1 == idx)) < 0.2


def test_save_load_round_trip_gives_identical_projections(synthetic_mlp, tmp_path):
    model, stats, items, _ = synthetic_mlp
    save_fusion_mlp(model, tmp_path, stats)
    loaded = load_fusion_mlp(tmp_path)
    assert not loaded.training
    for side in ("query", "item"):
        np.testing.assert_array_equal(
            project(model, items, side=side), project(loaded, items, side=side)
        )
    meta = json.loads((tmp_path / META).read_text())
    assert meta["stats"] == stats
    assert meta["config"]["query_dim"] == DIM and meta["config"]["item_dim"] == DIM


def test_load_never_unpickles(synthetic_mlp, tmp_path, monkeypatch):
    model, stats, items, _ = synthetic_mlp
    save_fusion_mlp(model, tmp_path, stats)
    raw = (tmp_path / WEIGHTS).read_bytes()
    # safetensors layout: u64 little-endian header length, then a JSON header of tensors
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert "query_tower.0.weight" in header and "logit_scale" in header
    assert b"\x80\x04\x95" not in raw[:16]  # not a pickle protocol-4 stream

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = load_fusion_mlp(tmp_path)
    np.testing.assert_array_equal(
        project(model, items[:5], side="query"), project(loaded, items[:5], side="query")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([WEIGHTS, META])


# -- the built tiny catalog --------------------------------------------------------------------
@pytest.fixture(scope="module")
def fusion_params(tiny_catalog) -> dict:
    return json.loads((tiny_catalog.step_dir("fusion") / "fusion.json").read_text())


def _ratio(x: float) -> float:
    return x / (1 - x)


def _chosen(curve: dict[str, float]) -> float:
    """The weight a grid search over ``curve`` should choose (ties: the smaller weight)."""
    best = max(curve.values())
    return min(float(x) for x, v in curve.items() if v == best)


def test_fusion_json_weights_are_the_best_points_of_their_tuning_curves(fusion_params):
    p, t = fusion_params, fusion_params["tuning"]
    assert t["grid"] == list(GRID)
    for name in ("early_text", "early_image", "late_text", "late_image"):
        curve = t[name]
        assert sorted(float(x) for x in curve) == sorted(GRID), name
        assert all(0.0 <= v <= 1.0 for v in curve.values()), name
        assert len(set(curve.values())) > 1 or name.endswith("image"), f"{name} is flat"
    # early: item vectors carry sqrt(x / (1 - x)) for the grid point x chosen
    assert p["early"]["text"]["sbert"] == pytest.approx(_ratio(_chosen(t["early_text"])))
    assert p["early"]["text"]["colour"] == 0.0
    assert p["early"]["image"]["colour"] == pytest.approx(_ratio(_chosen(t["early_image"])))
    assert p["early"]["image"]["sbert"] == p["early"]["text"]["sbert"]
    # late: the weight is the grid point itself, and the weights sum to one
    a_l, c_l = _chosen(t["late_text"]), _chosen(t["late_image"])
    assert p["late"]["text"] == pytest.approx({"sbert": a_l, "clip": 1 - a_l})
    assert p["late"]["image"]["colour"] == pytest.approx(c_l)
    assert p["late"]["image"]["clip"] == pytest.approx(1 - c_l)
    assert a_l in GRID and c_l in GRID


def test_fusion_json_dims_match_the_item_vectors(fusion_params, tiny_catalog):
    ds = np.load(tiny_catalog.step_dir("sbert") / "sbert_items.npy").shape[1]
    dc = np.load(tiny_catalog.step_dir("visual") / "clip_items.npy").shape[1]
    dh = np.load(tiny_catalog.step_dir("visual") / "colour_items.npy").shape[1]
    assert fusion_params["dims"] == [ds, dc, dh]


def test_early_text_curve_recomputed_from_the_item_vectors(fusion_params, tiny_catalog):
    """Two points of the early/text tuning curve, recomputed on the validation queries."""
    c = tiny_catalog
    val = c.table("queries")
    val = val[val["split"] == "val"]
    texts, qids = val["query"].tolist(), val["query_id"].tolist()
    # the step tunes on the queries as a search understands them (their dense rewrite)
    texts = [make_query(c, t).text_as("dense") for t in texts]
    qrels = c.qrels("text")
    ss = text_encoder(c).encode_texts(texts) @ np.load(c.step_dir("sbert") / "sbert_items.npy").T
    sc = clip_encoder(c).encode_texts(texts) @ np.load(c.step_dir("visual") / "clip_items.npy").T
    curve = fusion_params["tuning"]["early_text"]
    for x in (0.0, 0.5):
        scores = _ratio(x) * ss + sc
        ndcg = np.mean(
            [
                ndcg_at_k(c.item_ids[np.argsort(-s, kind="stable")[:10]], qrels.get(q, {}), k=10)
                for s, q in zip(scores, qids)
            ]
        )
        assert curve[str(x)] == pytest.approx(ndcg, abs=2e-3), x


def test_mlp_stats_show_training_lowered_the_loss(fusion_params, tiny_manifest):
    mlp = fusion_params["mlp"]
    assert mlp["final_loss"] < mlp["initial_loss"]
    assert 0.0 <= mlp["val_ndcg@10"] <= 1.0
    assert tiny_manifest["steps"]["fusion"]["info"]["mlp"]["steps"] == mlp["steps"] > 0


def _query_image(catalog, row: int = 3) -> Image.Image:
    with Image.open(catalog.image_path(row)) as im:
        return im.convert("RGB")


@pytest.mark.parametrize("method", FUSION_METHODS)
@pytest.mark.parametrize("parts", ["text", "image", "text+image"])
def test_fusion_methods_return_valid_results(tiny_catalog, method, parts):
    kw = {}
    if "text" in parts:
        kw["text"] = "red striped t-shirt"
    if "image" in parts:
        kw["image"] = _query_image(tiny_catalog)
    result = search(tiny_catalog, method, k=12, **kw)
    rows = result.rows
    assert result.method == method and len(result) == 12
    assert len(set(rows.tolist())) == 12
    assert rows.min() >= 0 and rows.max() < len(tiny_catalog.items)
    assert np.all(np.isfinite(result.scores)) and np.all(np.diff(result.scores) <= 1e-6)
    assert {"encode", "search"} <= set(result.timings_ms)


def test_fusion_early_scores_are_the_weighted_cosines(tiny_catalog, fusion_params):
    """The early-fusion score of a text query = a·sbert + clip cosines, recomputed here."""
    c, text = tiny_catalog, "navy polka dot backpack"
    result = search(c, "fusion-early", text=text, k=10, understand=False)
    a = fusion_params["early"]["text"]["sbert"]
    sb = np.load(c.step_dir("sbert") / "sbert_items.npy") @ text_encoder(c).encode_texts([text])[0]
    cl = np.load(c.step_dir("visual") / "clip_items.npy") @ clip_encoder(c).encode_texts([text])[0]
    expected = a * sb + cl
    np.testing.assert_allclose(result.scores, expected[result.rows], rtol=1e-4, atol=1e-4)
    # HNSW finds (nearly) the exact top 10
    exact = set(np.argsort(-expected)[:10].tolist())
    assert len(exact & set(result.rows.tolist())) >= 9


def test_fusion_late_agrees_with_late_fuse_of_the_member_scores(tiny_catalog, fusion_params):
    c, text = tiny_catalog, "green checked mug"
    result = search(c, "fusion-late", text=text, k=10, understand=False)
    sb = np.load(c.step_dir("sbert") / "sbert_items.npy") @ text_encoder(c).encode_texts([text])[0]
    cl = np.load(c.step_dir("visual") / "clip_items.npy") @ clip_encoder(c).encode_texts([text])[0]
    w = fusion_params["late"]["text"]
    # exact top-200 lists of each signal, fused independently here (a candidate missing from
    # one list gets that list's lowest score)
    tops = {"sbert": np.argsort(-sb)[:200], "clip": np.argsort(-cl)[:200]}
    pool = np.union1d(tops["sbert"], tops["clip"])
    fused = np.zeros(len(pool))
    for name, full in (("sbert", sb), ("clip", cl)):
        s = np.where(np.isin(pool, tops[name]), full[pool], full[tops[name]].min())
        fused += w[name] * _z(s)
    expected = pool[np.argsort(-fused, kind="stable")[:10]]
    assert len(set(expected.tolist()) & set(result.rows.tolist())) >= 9


@pytest.mark.parametrize("method", ["clip", "fusion-late", "fusion-mlp"])
def test_image_weight_changes_a_text_plus_image_query(tiny_catalog, method):
    c = tiny_catalog
    text, image = "yellow umbrella", _query_image(c, row=10)
    w0 = search(c, method, text=text, image=image, k=10, image_weight=0.0)
    w1 = search(c, method, text=text, image=image, k=10, image_weight=1.0)
    assert w0.rows.tolist() != w1.rows.tolist()
    if method == "clip":  # the extremes are the pure text and pure image queries
        text_only = search(c, "clip", text=text, k=10)
        image_only = search(c, "clip", image=image, k=10)
        assert w0.rows.tolist() == text_only.rows.tolist()
        assert w1.rows.tolist() == image_only.rows.tolist()
        np.testing.assert_allclose(w1.scores, image_only.scores, atol=1e-5)


def test_numpy_towers_equal_pytorchs_projections(synthetic_mlp, tmp_path):
    """Serving projects with NumPy (no torch): the same vectors as the trained PyTorch towers."""
    from engine.encoders.fusion_towers import FusionTowers

    model, stats, items, _ = synthetic_mlp
    save_fusion_mlp(model, tmp_path, stats)
    towers = FusionTowers.load(tmp_path)
    for side in ("query", "item"):
        want = project(model, items, side=side)
        got = towers.project(items, side=side)
        assert got.dtype == np.float32 and got.shape == want.shape
        assert np.abs(got - want).max() < 1e-5, side
    assert towers.project(items[0], side="query").shape == (1, want.shape[1])
    with pytest.raises(ValueError, match="valid: query, item"):
        towers.project(items, side="both")
