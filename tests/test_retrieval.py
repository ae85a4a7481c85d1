"""Tests for indexes (BM25, TF-IDF, FAISS), retrievers, the registry and search() validation.

BM25 is checked against rank-bm25's own ``get_scores``; approximate vector indexes against
exact search computed with numpy; lexical and dense methods on a hand-made 8-product catalog.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from rank_bm25 import BM25Okapi

from engine.components import text_encoder
from engine.indexes.bm25 import BM25Index
from engine.indexes.tfidf import TfidfIndex
from engine.indexes.tokenize import tokenize
from engine.indexes.vector import VectorIndex
from engine.retrieval import registry
from engine.retrieval.base import RETRIEVERS, Query, Retriever
from engine.retrieval.lexical import NO_MATCH
from engine.retrieval.registry import create_retriever, list_retrievers, retriever_class
from engine.schema import item_texts
from engine.search import MAX_QUERY_CHARS, MAX_TOP_K, QueryError, search
from engine.vectors import top_k

CORE = ("bm25", "tfidf", "sbert")
STAGES = {
    "bm25": {"load", "score", "rank"},
    "tfidf": {"load", "score", "rank"},
    "sbert": {"load", "encode", "search"},
}

# A hand-made catalog: the right answer to each query below is obvious to a person.
PRODUCTS = [
    "Leather ankle boots. Sturdy brown leather boots for winter walks.",
    "Canvas sneakers. Lightweight canvas running shoes for the gym.",
    "Ceramic coffee mug. A stoneware mug for your morning coffee.",
    "Table lamp. A ceramic table lamp with a linen shade.",
    "Wool hat. A warm woollen beanie hat.",
    "Striped cotton t-shirt. A soft cotton tee with stripes.",
    "Leather handbag. A leather tote bag with a zip pocket.",
    "Rain umbrella. A compact umbrella that folds into any bag.",
]
KEYWORD_QUERIES = {
    "leather boots": 0,
    "canvas sneakers": 1,
    "coffee mug": 2,
    "wool hat": 4,
    "striped tee": 5,
    "leather handbag": 6,
}
# No word in common with the right product: only a semantic model can answer these.
SEMANTIC_QUERIES = {
    "footwear for hiking in the snow": 0,
    "trainers for jogging": 1,
    "a cup for drinking tea": 2,
    "light for my desk": 3,
    "a purse": 6,
    "something to keep me dry when it rains": 7,
}


# -- BM25 vs rank-bm25 -------------------------------------------------------------------------
def _bm25_queries(catalog) -> list[str]:
    table = catalog.table("queries")
    queries = table.loc[table["wording"] == "catalog", "query"].tolist()  # the catalog's words
    return queries + [
        "leather leather leather boots",  # repeated tokens count again
        "boots boots",
        "zzqx unknownword",  # unknown tokens only
        "blorp leather mug qqq",  # unknown mixed with known
        "the and of with",  # stop words only
        "T-Shirt CAFÉ Crème",
        "Cobalt & Co",
        "p000001",
        "",
    ]


@pytest.fixture(scope="module")
def corpus(tiny_catalog) -> list[str]:
    return item_texts(tiny_catalog.items)


def test_bm25_scores_equal_rank_bm25(corpus, tiny_catalog):
    k1, b = 1.2, 0.6
    index = BM25Index(k1=k1, b=b).fit(corpus)
    reference = BM25Okapi([tokenize(d) or ["<empty>"] for d in corpus], k1=k1, b=b)
    queries = _bm25_queries(tiny_catalog)
    assert len(queries) > 30
    n_nonzero = 0
    for q in queries:
        ours = index.scores(q)
        theirs = np.asarray(reference.get_scores(tokenize(q)))
        assert ours.shape == (len(corpus),)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9, err_msg=q)
        n_nonzero += bool(np.any(theirs))
    assert n_nonzero > 0.6 * len(queries)  # the comparison is not between zero vectors
    rep = index.scores("leather leather boots") - index.scores("leather boots")
    np.testing.assert_allclose(rep, index.scores("leather"), atol=1e-9)
    assert not np.any(index.scores("zzqx unknownword"))


def test_built_bm25_index_matches_rank_bm25_with_the_build_config(corpus, tiny_catalog):
    cfg = tiny_catalog.config["text"]
    index = BM25Index.load(tiny_catalog.step_dir("lexical"))
    reference = BM25Okapi(
        [tokenize(d) or ["<empty>"] for d in corpus], k1=cfg["bm25_k1"], b=cfg["bm25_b"]
    )
    for q in _bm25_queries(tiny_catalog)[::3]:
        np.testing.assert_allclose(
            index.scores(q), reference.get_scores(tokenize(q)), rtol=1e-9, atol=1e-9
        )


def test_bm25_search_ranks_like_rank_bm25(corpus, tiny_catalog):
    cfg = tiny_catalog.config["text"]
    reference = BM25Okapi(
        [tokenize(d) or ["<empty>"] for d in corpus], k1=cfg["bm25_k1"], b=cfg["bm25_b"]
    )
    for q in ("leather boots", "red striped mug", "navy polka dot backpack", "tee"):
        s = np.asarray(reference.get_scores(tokenize(q)))
        rows = np.flatnonzero(s > 0)
        expected = rows[np.lexsort((rows, -s[rows]))][:20]
        result = search(tiny_catalog, "bm25", text=q, k=20, understand=False)
        # Same scores rank by rank; rows may swap only within (floating-point) ties.
        assert len(result) == len(expected) > 0, q
        np.testing.assert_allclose(result.scores, s[expected], rtol=1e-5, err_msg=q)
        np.testing.assert_allclose(s[result.rows], result.scores, rtol=1e-5, err_msg=q)
        assert len(set(result.rows.tolist())) == len(result)


def test_unfitted_indexes_say_so():
    with pytest.raises(RuntimeError, match="fit"):
        BM25Index().scores("x")
    with pytest.raises(RuntimeError, match="fit"):
        TfidfIndex().scores("x")


def test_tokenize():
    assert tokenize("Navy-Blue T-Shirt, CAFÉ!") == ["navy", "blue", "t", "shirt", "cafe"]
    assert tokenize("show me the boots") == ["boots"]
    assert tokenize("🥾 赤い") == []


def test_top_k_is_ordered_stable_and_positive_only():
    s = np.array([0.0, 2.0, 1.0, 2.0, -1.0, 3.0])
    rows, scores = top_k(s, 3)
    assert rows.tolist() == [5, 1, 3] and scores.tolist() == [3.0, 2.0, 2.0]
    rows, _ = top_k(s, 10, positive_only=True)
    assert rows.tolist() == [5, 1, 3, 2]
    rows, scores = top_k(np.zeros(4), 3, positive_only=True)
    assert len(rows) == 0 and len(scores) == 0



def _score_vectors(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Long score vectors with ties, -inf, NaN, +inf, few positives, float32 and read-only."""
    ties = rng.integers(-5, 6, n).astype(np.float64)
    out = [rng.standard_normal(n), ties, ties.astype(np.float32)]
    with_inf = rng.standard_normal(n)
    with_inf[rng.random(n) < 0.3] = -np.inf
    mostly_inf = np.full(n, -np.inf)
    mostly_inf[:5] = [1.0, 2.0, 2.0, -1.0, 0.5]
    nan, pos_inf = rng.standard_normal(n), rng.standard_normal(n)
    nan[7], pos_inf[3] = np.nan, np.inf
    few_positive = -np.abs(rng.standard_normal(n))
    few_positive[[10, 20]] = 1.0
    read_only = rng.standard_normal(n)
    read_only.flags.writeable = False
    return [*out, with_inf, mostly_inf, nan, pos_inf, few_positive, read_only, ties[::2]]


def test_top_k_shortcut_returns_what_the_plain_path_returns(monkeypatch):
    """The torch.topk shortcut (taken for long float arrays when torch is loaded) must give the
    plain numpy path's rows, ties and -inf / NaN / +inf handling included."""
    import torch  # noqa: F401 - the shortcut is only taken when torch is already imported

    import engine.vectors as vectors

    rng = np.random.default_rng(0)
    cases = _score_vectors(rng, 2 * vectors.FAST_TOP_K_MIN)
    flags = [{}, {"positive_only": True}, {"finite_only": True}]
    fast = [top_k(s, k, **f) for s in cases for k in (1, 10, 57) for f in flags]
    taken = sum(vectors._kth_best_fast(s, 10, False) is not None for s in cases)
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # the plain path only
    plain = [top_k(s, k, **f) for s in cases for k in (1, 10, 57) for f in flags]
    assert taken >= 6  # the shortcut really ran
    for (r1, s1), (r2, s2) in zip(fast, plain):
        assert r1.tolist() == r2.tolist()
        np.testing.assert_array_equal(s1, s2)

# -- TF-IDF and SBERT on a hand-made catalog ---------------------------------------------------
def test_tfidf_top_hits_on_a_hand_made_catalog(tmp_path):
    index = TfidfIndex().fit(PRODUCTS)
    for q, want in KEYWORD_QUERIES.items():
        s = index.scores(q)
        assert int(np.argmax(s)) == want, (q, s)
        assert s[want] > 0 and np.all(s <= 1.0 + 1e-6)
    for q in SEMANTIC_QUERIES:  # no shared word: TF-IDF honestly finds nothing
        if q != "something to keep me dry when it rains":
            assert not np.any(index.scores(q) > 0.05), q
    index.save(tmp_path)
    loaded = TfidfIndex.load(tmp_path)
    for q in KEYWORD_QUERIES:
        np.testing.assert_allclose(loaded.scores(q), index.scores(q), rtol=1e-6)


def test_sbert_top_hits_on_a_hand_made_catalog(tiny_catalog):
    encoder = text_encoder(tiny_catalog)  # the catalog's MiniLM, loaded once per session
    vectors = encoder.encode_texts(PRODUCTS)
    assert vectors.shape == (8, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    index = VectorIndex.build(vectors, "flat")
    for q, want in {**KEYWORD_QUERIES, **SEMANTIC_QUERIES}.items():
        ids, scores = index.search(encoder.encode_texts([q]), 3)
        assert ids[0][0] == want, (q, ids[0].tolist())
        assert scores[0][0] >= scores[0][1] >= scores[0][2]


# -- approximate vector search vs exact --------------------------------------------------------
def _exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_built_hnsw_and_ivf_agree_with_exact_search(tiny_catalog):
    folder = tiny_catalog.step_dir("sbert")
    vectors = np.load(folder / "sbert_items.npy")
    rng = np.random.default_rng(0)
    queries = _unit(vectors[rng.choice(len(vectors), 100)] + rng.normal(0, 0.05, (100, 384)))
    encoder = text_encoder(tiny_catalog)
    extra = encoder.encode_texts(["leather boots", "red mug", "a purse"])
    queries = np.concatenate([queries, extra])
    exact = _exact_top(vectors, queries, 10)
    minimum = {"flat": 0.999, "hnsw": 0.95, "ivf": 0.9}
    for kind, floor in minimum.items():
        index = VectorIndex.load(folder / f"sbert_{kind}.faiss", kind)
        assert index.ntotal == len(vectors)
        ids, scores = index.search(queries, 10)
        assert _recall(ids, exact) >= floor, kind
        assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_fresh_hnsw_and_ivf_recall_on_clustered_vectors():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(30, 48))
    x = _unit(centres[rng.integers(0, 30, 3000)] + rng.normal(0, 0.6, (3000, 48)))
    q = _unit(x[rng.choice(3000, 150)] + rng.normal(0, 0.1, (150, 48)))
    exact = _exact_top(x, q, 10)
    flat = VectorIndex.build(x, "flat")
    assert _recall(flat.search(q, 10)[0], exact) > 0.999
    hnsw, ivf = VectorIndex.build(x, "hnsw"), VectorIndex.build(x, "ivf")
    assert _recall(hnsw.search(q, 10)[0], exact) >= 0.95
    assert _recall(ivf.search(q, 10)[0], exact) >= 0.9
    # The knobs matter: a tiny beam / one probe loses neighbours, a wide one finds them all.
    assert _recall(ivf.search(q, 10, nprobe=1)[0], exact) < _recall(
        ivf.search(q, 10, nprobe=64)[0], exact
    )
    assert _recall(hnsw.search(q, 10, ef_search=200)[0], exact) >= 0.99


def test_vector_index_k_larger_than_the_index_and_bad_kind():
    x = _unit(np.random.default_rng(2).normal(size=(5, 8)))
    ids, scores = VectorIndex.build(x, "flat").search(x[:1], 50)
    assert sorted(ids[0].tolist()) == [0, 1, 2, 3, 4] and ids[0][0] == 0
    with pytest.raises(ValueError, match="flat, hnsw, ivf"):
        VectorIndex.build(x, "annoy")


# -- search() validation -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["", "   ", "\t\n  \r", "\x00\x07\x1b", "\u200b\u200d\ufeff", "\u2028\u2029"]
)
@pytest.mark.parametrize("method", CORE)
def test_empty_or_invisible_queries_are_refused(tiny_catalog, method, text):
    with pytest.raises(QueryError, match="Type something"):
        search(tiny_catalog, method, text=text)


def test_none_and_non_text_queries_are_refused(tiny_catalog):
    with pytest.raises(QueryError, match="Type something"):
        search(tiny_catalog, "bm25", text=None)
    with pytest.raises(QueryError, match="must be text"):
        search(tiny_catalog, "bm25", text=12345)


@pytest.mark.parametrize("method", CORE)
def test_huge_query_is_refused_with_a_clear_message(tiny_catalog, method):
    with pytest.raises(QueryError) as info:
        search(tiny_catalog, method, text="b" * 10_000)
    msg = str(info.value)
    assert "10,000 characters" in msg and f"{MAX_QUERY_CHARS:,}" in msg
    search(tiny_catalog, method, text="boots " + " " * 5000)  # white space collapses: fine


def test_control_characters_inside_a_query_are_ignored(tiny_catalog):
    clean = search(tiny_catalog, "bm25", text="leather boots", k=10)
    dirty = search(tiny_catalog, "bm25", text="leather\x00\u200b\nboots\x07", k=10)
    assert dirty.rows.tolist() == clean.rows.tolist() and len(clean) == 10


@pytest.mark.parametrize(
    "text",
    ["🥾👢🔥", "bottes en cuir", "赤いスニーカー", "Кожаные ботинки", "Café crème ☕", "<b>x</b>"],
)
@pytest.mark.parametrize("method", CORE)
def test_emoji_and_non_english_queries_answer_or_say_no_match(tiny_catalog, method, text):
    result = search(tiny_catalog, method, text=text, k=10, understand=False)
    assert len(result) > 0 or NO_MATCH in result.notes
    if method != "sbert" and not tokenize(text):
        assert len(result) == 0 and result.notes == [NO_MATCH]
    if method == "sbert":
        assert len(result) == 10  # a dense model always has nearest neighbours


@pytest.mark.parametrize("k", [0, -1, MAX_TOP_K + 1, 10**9, "abc", "", True, False, 2.5, None])
def test_bad_top_k_is_refused(tiny_catalog, k):
    with pytest.raises(QueryError, match="Top-k"):
        search(tiny_catalog, "bm25", text="boots", k=k)


@pytest.mark.parametrize("k, n", [("7", 7), (3.0, 3), (np.int64(4), 4), (1, 1)])
def test_numeric_top_k_forms_are_accepted(tiny_catalog, k, n):
    assert len(search(tiny_catalog, "sbert", text="boots", k=k)) == n


def test_unknown_method_lists_the_valid_choices(tiny_catalog):
    with pytest.raises(QueryError) as info:
        search(tiny_catalog, "bm26", text="boots")
    msg = str(info.value)
    assert "bm26" in msg
    for name in CORE:
        assert name in msg


def test_method_that_cannot_use_the_query_says_which_can(tiny_catalog):
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    with pytest.raises(QueryError, match="needs a text query"):
        search(tiny_catalog, "bm25", image=image)


@pytest.mark.parametrize("method", CORE)
@pytest.mark.parametrize(
    "text", ["leather boots", "red striped mug", "navy polka dot backpack", "crimson tee"]
)
def test_results_are_unique_sorted_and_timed(tiny_catalog, method, text):
    result = search(tiny_catalog, method, text=text, k=25, understand=False)
    assert result.method == method
    rows = result.rows.tolist()
    assert 0 < len(rows) <= 25 and len(set(rows)) == len(rows)
    assert all(0 <= r < len(tiny_catalog.items) for r in rows)
    assert np.all(np.diff(result.scores) <= 1e-6), result.scores
    assert set(result.timings_ms) == STAGES[method]
    assert all(v >= 0 for v in result.timings_ms.values())
    assert result.total_ms == pytest.approx(sum(result.timings_ms.values()))
    payload = result.to_dict(tiny_catalog.item_ids)
    assert payload["item_ids"] == [tiny_catalog.item_ids[r] for r in rows]
    assert len(payload["scores"]) == len(rows)


def test_search_finds_the_products_asked_for(tiny_catalog):
    """Catalog-level sanity: 'leather boots' returns leather boots with every text method."""
    items = tiny_catalog.items.merge(tiny_catalog.truth, on="item_id")  # grading: ground truth
    for method in CORE:
        result = search(tiny_catalog, method, text="leather boots", k=5)
        top = items.iloc[result.rows]
        assert (top["category"] == "boots").all(), (method, top["title"].tolist())
        assert (top["material"] == "leather").mean() >= 0.6, method


# -- the registry ------------------------------------------------------------------------------
def test_list_retrievers(tiny_catalog):
    names = list_retrievers()
    assert set(CORE) <= set(names) and len(names) == len(set(names))
    text = list_retrievers("text")
    assert set(CORE) <= set(text) and set(text) <= set(names)
    assert not set(CORE) & set(list_retrievers("image"))
    assert list_retrievers("smell") == []


@pytest.mark.parametrize("name", CORE)
def test_create_retriever(tiny_catalog, name):
    retriever = create_retriever(name, tiny_catalog)
    assert isinstance(retriever, Retriever) and isinstance(retriever, retriever_class(name))
    assert retriever.name == name and retriever.catalog is tiny_catalog
    assert retriever.description and "text" in retriever.modalities
    retriever.warm_up()
    assert len(retriever.search(Query(text="wool hat"), 5)) == 5


def test_create_unknown_retriever_lists_the_choices(tiny_catalog):
    with pytest.raises(ValueError) as info:
        create_retriever("nope", tiny_catalog)
    assert all(name in str(info.value) for name in CORE)


def test_register_retriever_refuses_a_second_class_under_a_taken_name(monkeypatch):
    list_retrievers()  # load the built-in methods
    monkeypatch.setattr(RETRIEVERS, "_members", dict(RETRIEVERS._members))

    class Impostor(retriever_class("bm25")):
        name = "bm25"

    with pytest.raises(ValueError, match="registered twice"):
        registry.register_retriever(Impostor)
    assert retriever_class("bm25") is not Impostor

    class Echo(retriever_class("bm25")):
        name = "echo-test"

    assert registry.register_retriever(Echo) is Echo
    assert "echo-test" in list_retrievers("text")
    assert registry.register_retriever(Echo) is Echo  # re-registering the same class is fine
