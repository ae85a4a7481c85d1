"""Tests of reciprocal-rank fusion, the RRF retriever, keyword matching and query parsing.

RRF is checked against hand-computed sums of ``1 / (60 + rank)``; keyword scores against an
independent pandas computation from the world's ``keywords.parquet`` table.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.indexes.keywords import KeywordIndex
from engine.indexes.tokenize import tokenize
from engine.retrieval.rrf import POOL, RRF_K, RRFRetriever, reciprocal_rank_fusion
from engine.search import get_retriever, search


# -- reciprocal_rank_fusion --------------------------------------------------------------------
def test_rrf_hand_example_with_k_60():
    rows, scores = reciprocal_rank_fusion([np.array([1, 2, 3]), np.array([3, 1])])
    expected = {1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61}
    assert rows.tolist() == [1, 3, 2]
    np.testing.assert_allclose(scores, [expected[r] for r in rows.tolist()], rtol=1e-6)
    assert RRF_K == 60


def test_rrf_k_changes_the_scores():
    rows, scores = reciprocal_rank_fusion([np.array([4, 5])], k=1)
    assert rows.tolist() == [4, 5]
    np.testing.assert_allclose(scores, [1 / 2, 1 / 3], rtol=1e-6)


def test_an_item_ranked_first_everywhere_wins():
    rng = np.random.default_rng(0)
    rankings = []
    for _ in range(4):
        rest = rng.permutation(np.arange(1, 40))[:25]
        rankings.append(np.concatenate([[77], rest]))
    rows, scores = reciprocal_rank_fusion(rankings)
    assert rows[0] == 77
    assert scores[0] == pytest.approx(4 / 61, rel=1e-6)
    assert np.all(np.diff(scores) <= 0)


def test_rrf_scores_are_invariant_to_the_order_of_the_input_lists():
    rng = np.random.default_rng(1)
    lists = [rng.permutation(50)[: rng.integers(5, 30)] for _ in range(4)]
    base_rows, base_scores = reciprocal_rank_fusion(lists)
    base = dict(zip(base_rows.tolist(), base_scores.tolist()))
    for perm in itertools.permutations(lists):
        rows, scores = reciprocal_rank_fusion(list(perm))
        assert dict(zip(rows.tolist(), scores.tolist())) == pytest.approx(base, rel=1e-6)
        np.testing.assert_allclose(scores, base_scores, rtol=1e-6)  # same sorted scores


def test_rrf_ranking_is_invariant_to_the_order_of_the_input_lists():
    rng = np.random.default_rng(1)
    lists = [rng.permutation(50)[: rng.integers(5, 30)] for _ in range(4)]
    base_rows, _ = reciprocal_rank_fusion(lists)
    for perm in itertools.permutations(lists):
        rows, _ = reciprocal_rank_fusion(list(perm))
        assert rows.tolist() == base_rows.tolist()


def test_rrf_keeps_items_found_by_one_list_only():
    rows, scores = reciprocal_rank_fusion([np.array([9, 8]), np.array([7])])
    assert set(rows.tolist()) == {7, 8, 9}
    assert rows.tolist()[2] == 8
    np.testing.assert_allclose(scores, [1 / 61, 1 / 61, 1 / 62], rtol=1e-6)


def test_rrf_breaks_ties_by_row():
    # 9 and 7 are both ranked first once: a tie, broken by the smaller row
    rows, _ = reciprocal_rank_fusion([np.array([9, 8]), np.array([7])])
    assert rows.tolist() == [7, 9, 8]


def test_rrf_scores_are_independent_sums():
    rng = np.random.default_rng(2)
    lists = [rng.permutation(100)[:40] for _ in range(3)]
    rows, scores = reciprocal_rank_fusion(lists)
    expected: dict[int, float] = {}
    for ranking in lists:
        for i, r in enumerate(ranking):
            expected[int(r)] = expected.get(int(r), 0.0) + 1.0 / (60 + i + 1)
    assert sorted(rows.tolist()) == sorted(expected)
    np.testing.assert_allclose(scores, [expected[r] for r in rows.tolist()], rtol=1e-6)
    order = sorted(expected, key=lambda r: (-expected[r], r))
    # float32 scores may merge near-ties; the order must agree wherever the gap is real
    got = rows.tolist()
    for a, b in zip(order, got):
        if a != b:
            assert expected[a] == pytest.approx(expected[b], rel=1e-6)


@pytest.mark.parametrize("rankings", [[], [np.array([], dtype=np.int64)], [np.array([]), []]])
def test_rrf_of_nothing_is_empty(rankings):
    rows, scores = reciprocal_rank_fusion(rankings)
    assert len(rows) == 0 and len(scores) == 0
    assert rows.dtype == np.int64


# -- the RRF retriever -------------------------------------------------------------------------
def _catalog_image(catalog, row: int) -> Image.Image:
    with Image.open(catalog.image_path(row)) as im:
        return im.convert("RGB")


def test_rrf_retriever_fuses_its_members_text_query(tiny_catalog):
    c, text = tiny_catalog, "black leather boots"
    result = search(c, "rrf", text=text, k=15)
    members = ("bm25", "sbert", "clip")  # colour cannot use a text query
    stages = set(result.timings_ms)
    assert "fuse" in stages
    assert {s.split(".")[0] for s in stages - {"fuse", "understand"}} == set(members)
    assert {"bm25.score", "sbert.encode", "clip.encode"} <= stages
    # recompute the fusion from each member's own results
    lists = [search(c, m, text=text, k=POOL).rows for m in members]
    expected: dict[int, float] = {}
    for ranking in lists:
        for i, r in enumerate(ranking.tolist()):
            expected[r] = expected.get(r, 0.0) + 1.0 / (61 + i)
    top = sorted(expected, key=lambda r: (-expected[r], r))[:15]
    np.testing.assert_allclose(result.scores, [expected[r] for r in top], rtol=1e-5)
    # every result carries its own fused score (equal scores may come in any order)
    np.testing.assert_allclose(
        result.scores, [expected[r] for r in result.rows.tolist()], rtol=1e-5
    )
    assert set(result.rows.tolist()) <= set(expected)


def test_rrf_retriever_answers_image_queries_with_visual_members(tiny_catalog):
    c = tiny_catalog
    image = _catalog_image(c, 5)
    result = search(c, "rrf", image=image, k=10)
    assert len(result) == 10
    members = {s.split(".")[0] for s in result.timings_ms if s != "fuse"}
    assert members == {"clip", "colour"}
    # the query is a catalog image: both members rank that item first, so RRF does too
    assert result.rows[0] == 5
    assert result.scores[0] == pytest.approx(2 / 61, rel=1e-5)


def test_rrf_retriever_supports_what_its_members_support(tiny_catalog):
    from engine.retrieval.base import Query

    rrf = get_retriever(tiny_catalog, "rrf")
    assert rrf.supports(Query(text="red mug"))
    assert rrf.supports(Query(image=Image.new("RGB", (32, 32))))
    assert not rrf.supports(Query())
    only_colour = RRFRetriever(tiny_catalog, members=("colour",))
    assert not only_colour.supports(Query(text="red mug"))
    assert only_colour.supports(Query(image=Image.new("RGB", (32, 32))))


# -- keyword index -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keyword_index(tiny_catalog) -> KeywordIndex:
    return KeywordIndex.load(tiny_catalog.step_dir("lexical"))


@pytest.fixture(scope="module")
def keywords(tiny_catalog) -> pd.DataFrame:
    df = tiny_catalog.table("keywords").copy()
    df["key"] = [" ".join(tokenize(k)) for k in df["keyword"]]
    return df


def _expected_scores(query: str, keywords: pd.DataFrame, item_ids: np.ndarray) -> np.ndarray:
    """Sum over an item's distinct keywords that occur in the query of their max confidence."""
    tokens = tokenize(query)
    phrases = {
        " ".join(tokens[i : i + n]) for n in (1, 2, 3) for i in range(len(tokens) - n + 1)
    }
    hit = keywords[keywords["key"].isin(phrases)]
    per_item = hit.groupby(["item_id", "key"])["confidence"].max().groupby("item_id").sum()
    return per_item.reindex(item_ids, fill_value=0.0).to_numpy()


def test_matched_finds_multi_word_phrases():
    tags = pd.DataFrame({
        "item_id": ["a"] * 6,
        "keyword": ["navy blue", "navy", "blue", "polka dot", "rucksack", "red"],
        "confidence": [0.9] * 6,
    })
    index = KeywordIndex().fit(tags, np.array(["a"]))
    found = index.matched("Navy Blue polka-dot rucksack")
    assert set(found) == {"navy blue", "polka dot", "rucksack", "navy", "blue"}
    assert found.index("navy blue") < found.index("navy")  # longest phrases first
    assert len(found) == len(set(found))
    assert "dot rucksack" not in found and "polka" not in found


def test_the_catalog_index_holds_one_vendor_word_per_value(keyword_index):
    """The image tagger emits one word per value (``polka dot``, ``navy``), never synonyms such
    as ``navy blue`` or ``rucksack``, and no material."""
    found = keyword_index.matched("Navy Blue polka-dot backpack, a navy blue rucksack")
    assert {"navy", "blue", "polka dot", "backpack"} <= set(found)
    assert "navy blue" not in found and "rucksack" not in found
    assert "leather" not in keyword_index.vocab and "cotton" not in keyword_index.vocab


@pytest.mark.parametrize(
    "query",
    [
        "navy blue polka dot backpack",
        "red striped cotton t-shirt",
        "jet black leather ankle boots",
        "ceramic coffee mug",
        "plain white tee",
    ],
)
def test_keyword_scores_are_sums_of_matched_confidences(keyword_index, keywords, tiny_catalog,
                                                        query):
    got = keyword_index.scores(query)
    expected = _expected_scores(query, keywords, tiny_catalog.item_ids)
    assert (expected > 0).sum() > 0, "the query should match some items"
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_keyword_retriever_ranks_by_those_scores(tiny_catalog, keywords):
    query = "green zigzag umbrella"
    expected = _expected_scores(query, keywords, tiny_catalog.item_ids)
    result = search(tiny_catalog, "keyword", text=query, k=10)
    np.testing.assert_allclose(result.scores, np.sort(expected)[::-1][:10], rtol=1e-5)
    np.testing.assert_allclose(expected[result.rows], result.scores, rtol=1e-5)


def test_a_keyword_tagged_twice_counts_once_at_its_max_confidence():
    tags = pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "b", "b", "c"],
            "keyword": ["red", "Red", "mug", "red", "polka dot", "unknown-item"],
            "confidence": [0.4, 0.9, 0.5, 0.3, 0.7, 0.8],
        }
    )
    index = KeywordIndex().fit(tags, np.array(["a", "b"]))  # "c" is not in the catalog
    np.testing.assert_allclose(index.scores("red"), [0.9, 0.3])
    np.testing.assert_allclose(index.scores("red mug"), [1.4, 0.3])
    np.testing.assert_allclose(index.scores("red polka dot"), [0.9, 1.0])
    np.testing.assert_allclose(index.scores("dot"), [0.0, 0.0])  # half a phrase is no match
    assert "unknown item" not in index.vocab


def test_unknown_words_score_zero(keyword_index, tiny_catalog):
    for query in ("zzzqx flibber", "", "the and of", "🙂"):
        scores = keyword_index.scores(query)
        assert scores.shape == (len(tiny_catalog.items),)
        assert not scores.any(), query
    assert keyword_index.matched("zzzqx flibber") == []


def test_unfitted_keyword_index_refuses_to_score():
    with pytest.raises(RuntimeError, match="not fitted"):
        KeywordIndex().scores("red")


def test_saved_and_loaded_keyword_index_scores_the_same(tmp_path, keyword_index):
    keyword_index.save(tmp_path)
    loaded = KeywordIndex.load(tmp_path)
    for q in ("navy blue backpack", "red mug"):
        np.testing.assert_array_equal(loaded.scores(q), keyword_index.scores(q))


# -- query parsing -----------------------------------------------------------------------------
