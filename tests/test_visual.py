"""Tests of visual search on the built ``tiny`` catalog: CLIP text→image and image→image, the
colour retriever, HNSW against exact search, decoded query images, the registry's visual methods
and the embedding-map projection.

The tiny catalog's CLIP is the compact model trained for ~20 s, so text→image quality is checked
against chance (the base rate of the colour asked for), not against a high absolute bar.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from engine.components import clip_encoder, vector_index
from engine.imageio import load_image
from engine.projection import fit_pca, map_sample
from engine.retrieval.registry import available_retrievers, list_retrievers, retriever_class
from engine.search import QueryError, search
from engine.world import vocab
from tests.catalog_fixtures import with_truth

IMAGE_METHODS = {"clip", "colour", "rrf", "fusion-early", "fusion-late", "fusion-mlp"}


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def clip_items(tiny_catalog) -> np.ndarray:
    return np.load(tiny_catalog.step_dir("visual") / "clip_items.npy")


# -- CLIP --------------------------------------------------------------------------------------
def test_clip_text_to_image_finds_the_colour_asked_for_above_chance(tiny_catalog):
    items = with_truth(tiny_catalog)
    hits, base = [], []
    for colour in vocab.names("colour"):
        for category in ("t-shirt", "mug", "handbag"):
            result = search(tiny_catalog, "clip", text=f"{colour} {category}", k=10)
            assert len(result) == 10
            hits.append(float((items["colour"].iloc[result.rows] == colour).mean()))
            base.append(float((items["colour"] == colour).mean()))
    # a random ranking would match the colour at its base rate (~1/14)
    assert np.mean(hits) > 2 * np.mean(base), (np.mean(hits), np.mean(base))


def test_clip_text_scores_are_cosines_with_the_item_images(tiny_catalog, clip_items):
    text = "purple striped dress"
    result = search(tiny_catalog, "clip", text=text, k=10, understand=False)
    q = clip_encoder(tiny_catalog).encode_texts([text])[0]
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(result.scores, clip_items[result.rows] @ q, atol=1e-4)
    assert set(result.timings_ms) == {"load", "encode", "search"}
    understood = search(tiny_catalog, "clip", text=text, k=10)
    assert set(understood.timings_ms) == {"understand", "load", "encode", "search"}


@pytest.mark.parametrize("row", [0, 41, 222, 599])
def test_clip_image_query_with_an_items_own_image_finds_that_item_first(tiny_catalog, row):
    decoded = load_image(tiny_catalog.image_path(row))
    result = search(tiny_catalog, "clip", image=decoded, k=5)
    assert result.rows[0] == row
    assert result.scores[0] == pytest.approx(1.0, abs=1e-3)
    assert result.scores[1] < result.scores[0]


def test_clip_image_to_image_neighbours_share_the_look(tiny_catalog):
    """Nearest images (excluding the item itself) share category or colour far above chance."""
    items = with_truth(tiny_catalog)
    rng = np.random.default_rng(0)
    same, base = [], []
    for row in rng.choice(len(items), size=20, replace=False).tolist():
        with Image.open(tiny_catalog.image_path(row)) as im:
            result = search(tiny_catalog, "clip", image=im.convert("RGB"), k=11)
        others = [r for r in result.rows.tolist() if r != row][:10]
        it = items.iloc[row]
        match = (items["category"].iloc[others] == it["category"]) | (
            items["colour"].iloc[others] == it["colour"]
        )
        same.append(float(match.mean()))
        alike = (items["category"] == it["category"]) | (items["colour"] == it["colour"])
        base.append(float(alike.mean()))
    assert np.mean(same) > 2 * np.mean(base), (np.mean(same), np.mean(base))


# -- colour ------------------------------------------------------------------------------------
@pytest.mark.parametrize("colour", ["red", "yellow", "teal", "navy", "pink", "black", "white"])
def test_colour_retriever_with_a_swatch_returns_that_colour(tiny_catalog, colour):
    rgb = vocab.term("colour", colour).rgb
    items = with_truth(tiny_catalog)
    solid = Image.new("RGB", (64, 64), rgb)
    framed = Image.new("RGB", (64, 64), (255, 255, 255))  # a product on a white backdrop
    framed.paste(Image.new("RGB", (32, 32), rgb), (16, 16))
    n_colour = int((items["colour"] == colour).sum())
    k = min(20, n_colour)
    for swatch in (solid, framed):
        result = search(tiny_catalog, "colour", image=swatch, k=k)
        share = float((items["colour"].iloc[result.rows] == colour).mean())
        # measured 1.0 for every colour on the tiny catalog; chance is ~0.07
        assert share >= 0.8, (colour, share)
        assert np.all(np.diff(result.scores) <= 1e-6)
        assert result.scores.min() >= 0.0 and result.scores.max() <= 1.0 + 1e-5


def test_colour_retriever_refuses_a_text_query(tiny_catalog):
    with pytest.raises(QueryError, match="needs a image query"):
        search(tiny_catalog, "colour", text="red")


# -- approximate vs exact search ---------------------------------------------------------------
def test_clip_hnsw_recall_against_exact_search(tiny_catalog, clip_items):
    texts = tiny_catalog.table("queries")["query"].tolist()
    queries = clip_encoder(tiny_catalog).encode_texts(texts)
    exact = np.argsort(-(queries @ clip_items.T), axis=1, kind="stable")[:, :10]
    hnsw = vector_index(tiny_catalog, "visual", "clip", "hnsw")
    flat = vector_index(tiny_catalog, "visual", "clip", "flat")
    assert hnsw.ntotal == flat.ntotal == len(clip_items)
    ids, _ = hnsw.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), exact.tolist())])
    assert recall >= 0.95, recall
    flat_ids, flat_scores = flat.search(queries, 10)
    exact_scores = np.take_along_axis(queries @ clip_items.T, exact, axis=1)
    np.testing.assert_allclose(flat_scores, exact_scores, atol=1e-4)
    # the clip retriever uses the HNSW index: its results are those ids
    result = search(tiny_catalog, "clip", text=texts[0], k=10, understand=False)
    assert result.rows.tolist() == ids[0].tolist()


# -- decoded query images ----------------------------------------------------------------------
def test_search_with_a_decoded_image_reports_decode_time_and_notes(tiny_catalog):
    with Image.open(tiny_catalog.image_path(7)) as im:
        rgba = im.convert("RGBA").resize((1500, 1500))
    alpha = Image.new("L", rgba.size, 255)
    alpha.paste(0, (0, 0, 200, 200))  # a transparent corner
    rgba.putalpha(alpha)
    decoded = load_image(_png(rgba))
    assert any("composited" in n for n in decoded.notes)
    assert any("downscaled" in n for n in decoded.notes)
    for method in ("clip", "colour", "fusion-late", "rrf"):
        result = search(tiny_catalog, method, image=decoded, k=5)
        assert next(iter(result.timings_ms)) == "decode", method
        assert result.timings_ms["decode"] == pytest.approx(decoded.decode_ms)
        assert result.notes[: len(decoded.notes)] == decoded.notes
        assert result.total_ms >= decoded.decode_ms
    assert decoded.notes == load_image(_png(rgba)).notes  # the decoder's notes are not mutated


def test_search_with_a_plain_pil_image_has_no_decode_stage(tiny_catalog):
    with Image.open(tiny_catalog.image_path(7)) as im:
        result = search(tiny_catalog, "clip", image=im.convert("RGB"), k=5)
    assert "decode" not in result.timings_ms
    assert result.notes == []


# -- registry ----------------------------------------------------------------------------------
def test_image_methods_are_listed_only_when_the_visual_step_is_built(tiny_catalog):
    image_methods = set(available_retrievers(tiny_catalog, "image"))
    assert image_methods >= IMAGE_METHODS
    assert {"clip", "hybrid", "fusion-mlp"} <= set(available_retrievers(tiny_catalog, "text"))
    text_only = SimpleNamespace(built_steps={"world", "lexical", "sbert"})
    assert available_retrievers(text_only, "image") == []
    text_methods = set(available_retrievers(text_only, "text"))
    assert text_methods >= {"bm25", "tfidf", "keyword", "sbert", "rrf"}
    assert set(available_retrievers(text_only)) == text_methods
    for name in text_methods:
        assert "visual" not in retriever_class(name).requires, name
    assert not text_methods & {"clip", "colour", "hybrid", "fusion-early"}
    # visual without the fusion/ranker steps: CLIP and colour, no fused or re-ranked methods
    visual = SimpleNamespace(built_steps={"world", "lexical", "sbert", "clip", "visual"})
    visual_image = set(available_retrievers(visual, "image"))
    assert visual_image >= {"clip", "colour", "rrf"}
    assert not visual_image & {"fusion-early", "fusion-late", "fusion-mlp"}
    assert visual_image < image_methods
    assert set(list_retrievers("image")) >= IMAGE_METHODS


# -- projection --------------------------------------------------------------------------------
def test_fit_pca_matches_an_eigendecomposition_and_is_deterministic():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 6)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.2, 0.1]) + 2.0
    p1, p2 = fit_pca(x), fit_pca(x)
    np.testing.assert_array_equal(p1.components, p2.components)
    np.testing.assert_array_equal(p1.transform(x), p2.transform(x))
    cov = np.cov(x, rowvar=False, bias=True)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    for i in range(2):
        v = vecs[:, i] * np.sign(vecs[0, i])
        np.testing.assert_allclose(p1.components[i], v, atol=1e-6)
        assert p1.explained[i] == pytest.approx(vals[i] / vals.sum(), rel=1e-6)
    assert np.all(p1.components[:, 0] >= 0)  # the sign convention
    xy = p1.transform(x)
    assert xy.shape == (400, 2)
    np.testing.assert_allclose(xy.mean(axis=0), 0, atol=1e-9)
    # a sign flip of the data's axes must not flip the projection's sign convention
    np.testing.assert_allclose(fit_pca(-x).components[:, 0], p1.components[:, 0], atol=1e-6)


def test_fit_pca_on_a_seeded_sample():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 4))
    a, b = fit_pca(x, max_fit=50, seed=1), fit_pca(x, max_fit=50, seed=1)
    np.testing.assert_array_equal(a.mean, b.mean)
    c = fit_pca(x, max_fit=50, seed=2)
    assert not np.allclose(a.mean, c.mean)
    assert not np.allclose(a.mean, fit_pca(x).mean)


def test_map_sample_is_deterministic_and_always_includes_the_requested_rows():
    assert map_sample(10, 50).tolist() == list(range(10))
    s1, s2 = map_sample(1000, 100), map_sample(1000, 100)
    assert s1.tolist() == s2.tolist() and len(s1) == 100
    assert np.all(np.diff(s1) > 0)
    always = np.array([999, 0, 500, 500])
    s = map_sample(1000, 100, always=always)
    assert set(always.tolist()) <= set(s.tolist())
    assert set(s1.tolist()) <= set(s.tolist())
    assert len(s) == len(set(s.tolist())) <= 103
    assert np.all(np.diff(s) > 0)
    assert map_sample(1000, 100, always=np.array([], dtype=int)).tolist() == s1.tolist()
    assert map_sample(1000, 100, seed=7).tolist() != s1.tolist()


def test_embedding_projection_of_the_tiny_catalog(clip_items):
    proj = fit_pca(clip_items)
    xy = proj.transform(clip_items)
    assert xy.shape == (len(clip_items), 2) and np.all(np.isfinite(xy))
    assert 0 < proj.explained[1] <= proj.explained[0] < 1
