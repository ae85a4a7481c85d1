"""Streamlit AppTest tests of the image, multimodal, compare, benchmarks and explorer pages.

Every page runs on the session's ``tiny`` catalog. What a page shows is compared with the engine's
own answers (``engine.search.search`` on the same input), with the report it reads, or with
metrics recomputed here — not only checked for the absence of exceptions.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import CSS4_COLORS
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine.bad_inputs import bomb_png
from engine.evaluation.metrics import jaccard_at_k, ndcg_at_k
from engine.imageio import load_image
from engine.ranking.features import FEATURES
from engine.retrieval.registry import available_retrievers
from engine.search import search
from tests.catalog_fixtures import with_truth
from tests.html_cards import ranked_item_ids, ranked_scores, ranked_titles

APP = str(Path(__file__).parents[1] / "app.py")
IMAGE_PAGE = "pages/image_search.py"
MM_PAGE = "pages/multimodal_search.py"
COMPARE_PAGE = "pages/compare.py"
BENCH_PAGE = "pages/benchmarks.py"
EXPLORER_PAGE = "pages/catalog_explorer.py"
STRATEGIES = ["clip", "fusion-early", "fusion-late", "fusion-mlp"]


# -- helpers -----------------------------------------------------------------------------------
def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["catalog_name"] = "tiny"
    at.run()
    no_exception(at)
    at.switch_page(page)
    at.run()
    no_exception(at)
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    no_exception(at)
    return at


def result_rows(at: AppTest, prefix: str) -> list[int]:
    """Catalog rows of the result cards, in order, read from their ``data-item`` ids; the
    page's "More like this" picker offers the same results in the same order."""
    from engine.serving import open_catalog

    ids = ranked_item_ids(at)
    picker = [s for s in at.selectbox if s.key == f"{prefix}-mlt"]
    assert len(picker) == (1 if ids else 0)
    if ids:
        assert picker[0].options == [f"{i + 1}. " + t for i, t in enumerate(ranked_titles(at))]
    row_of = open_catalog(at.session_state["catalog_name"]).row_of
    return [row_of[i] for i in ids]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def score_captions(at: AppTest) -> list[float]:
    """The scores shown on the result cards, in order."""
    return ranked_scores(at)


def timings_caption(at: AppTest) -> str:
    (line,) = [c for c in captions(at) if c.startswith("Latency:")]
    return line


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def figure(chart) -> dict:
    return json.loads(chart.proto.spec)


def trace_array(value) -> np.ndarray:
    """A Plotly trace array: a list, or a base64 typed array ``{"dtype", "bdata"}``."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


# -- image search ------------------------------------------------------------------------------
@pytest.fixture
def image_page(tiny_catalog) -> AppTest:
    return open_page(IMAGE_PAGE)


def test_image_search_starts_with_the_upload_source_and_a_hint(image_page):
    at = image_page
    assert at.radio(key="img_source").value == "Upload"
    assert len(at.file_uploader) == 1
    assert [i.value for i in at.info] == ["Choose a query image on the left."]
    assert not result_rows(at, "img")


def test_catalog_image_source_shows_scored_results_and_timings(image_page, tiny_catalog):
    at = image_page
    at.radio(key="img_source").set_value("Catalog image")
    rerun(at)
    item_id = at.text_input(key="img_item").value
    row = tiny_catalog.row_of[item_id]
    rows = result_rows(at, "img")
    assert len(rows) == 15
    expected = search(tiny_catalog, "clip", image=load_image(tiny_catalog.image_path(row)), k=15)
    assert rows == expected.rows.tolist()
    assert rows[0] == row  # its own image comes first
    scores = score_captions(at)
    assert len(scores) == 15
    np.testing.assert_allclose(scores, expected.scores, atol=1e-4)
    line = timings_caption(at)
    for stage in ("decode", "encode", "search", "total"):
        assert f"{stage} **" in line, line
    assert "**15** similar products with **clip**" in [m.value for m in at.markdown]


def test_upload_of_a_valid_png_shows_results(image_page, tiny_catalog):
    at = image_page
    img = Image.new("RGB", (80, 60), (245, 215, 30))
    at.file_uploader(key="img_upload").set_value(("yellow.png", png_bytes(img), "image/png"))
    rerun(at)
    assert not at.error
    rows = result_rows(at, "img")
    expected = search(tiny_catalog, "clip", image=img, k=15)
    assert rows == expected.rows.tolist()
    assert "80×60 RGB PNG" in captions(at)
    assert "decode **" in timings_caption(at)


def test_colour_method_on_an_upload_finds_that_colour(image_page, tiny_catalog):
    at = image_page
    at.selectbox(key="img_method").set_value("colour")
    img = Image.new("RGB", (64, 64), (40, 160, 60))  # the world's green
    at.file_uploader(key="img_upload").set_value(("green.png", png_bytes(img), "image/png"))
    rerun(at)
    rows = result_rows(at, "img")
    assert len(rows) == 15
    assert (with_truth(tiny_catalog)["colour"].iloc[rows] == "green").mean() >= 0.8


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("x.png", b"hello, I am a text file and not a picture", "looks like a text file"),
        ("t.jpg", "truncated-jpeg", "looks damaged or truncated"),
        ("bomb.png", "bomb", "far too large"),
        ("empty.png", b"", "empty"),
    ],
)
def test_bad_uploads_show_a_clear_error(image_page, name, data, message):
    at = image_page
    if data == "truncated-jpeg":
        buf = io.BytesIO()
        Image.new("RGB", (200, 200), (20, 130, 30)).save(buf, "JPEG")
        data = buf.getvalue()[: len(buf.getvalue()) // 2]
    elif data == "bomb":
        data = bomb_png()
    at.file_uploader(key="img_upload").set_value((name, data, "image/png"))
    rerun(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and message in errors[0], errors
    assert "Traceback" not in errors[0]
    assert not result_rows(at, "img")
    assert [i.value for i in at.info] == ["Choose a query image on the left."]


def test_the_query_image_is_shown_inline_with_its_size(image_page):
    at = image_page
    img = Image.new("RGB", (900, 600), (20, 30, 100))
    at.file_uploader(key="img_upload").set_value(("big.png", png_bytes(img), "image/png"))
    rerun(at)
    (figure,) = [h.value for h in at.html if 'class="pm-query"' in h.value]
    assert '<img src="data:image/jpeg;base64,' in figure and "Query image" in figure
    assert not at.get("imgs")  # no st.image: no media file per rerun
    assert "900×600 RGB PNG" in captions(at)


def test_a_good_upload_after_a_bad_one_recovers(image_page):
    at = image_page
    at.file_uploader(key="img_upload").set_value(("x.png", b"not an image", "image/png"))
    rerun(at)
    assert at.error
    img = Image.new("RGB", (64, 64), (20, 30, 100))
    at.file_uploader(key="img_upload").set_value(("ok.png", png_bytes(img), "image/png"))
    rerun(at)
    assert not at.error
    assert len(result_rows(at, "img")) == 15


def test_more_like_this_switches_the_query_to_that_item(image_page, tiny_catalog):
    at = image_page
    at.radio(key="img_source").set_value("Catalog image")
    rerun(at)
    rows = result_rows(at, "img")
    target = rows[3]
    at.selectbox(key="img-mlt").set_value(3)
    rerun(at)
    assert at.radio(key="img_source").value == "Catalog image"
    assert at.text_input(key="img_item").value == tiny_catalog.item_ids[target]
    new_rows = result_rows(at, "img")
    assert new_rows[0] == target
    expected = search(
        tiny_catalog, "clip", image=load_image(tiny_catalog.image_path(target)), k=15
    )
    assert new_rows == expected.rows.tolist()


def test_more_like_this_from_an_upload_switches_the_source(image_page, tiny_catalog):
    at = image_page
    img = Image.new("RGB", (64, 64), (210, 30, 35))
    at.file_uploader(key="img_upload").set_value(("red.png", png_bytes(img), "image/png"))
    rerun(at)
    target = result_rows(at, "img")[0]
    at.selectbox(key="img-mlt").set_value(0)
    rerun(at)
    assert at.radio(key="img_source").value == "Catalog image"
    assert result_rows(at, "img")[0] == target


def test_unknown_product_id_warns(image_page):
    at = image_page
    at.radio(key="img_source").set_value("Catalog image")
    rerun(at)
    at.text_input(key="img_item").input("no-such-id")
    rerun(at)
    assert any("No product has the id" in w.value for w in at.warning)
    assert not result_rows(at, "img")


# -- multimodal --------------------------------------------------------------------------------
@pytest.fixture
def mm_page(tiny_catalog) -> AppTest:
    return open_page(MM_PAGE)


def _mm_query(at: AppTest, text: str | None, image: bool, method: str, weight: float = 0.5):
    if text is not None:
        at.text_input(key="mm_text").input(text)
    at.radio(key="mm_source").set_value("Catalog image" if image else "Upload")
    at.selectbox(key="mm_method").set_value(method)
    at.slider(key="mm_weight").set_value(weight)
    return rerun(at)


def test_multimodal_starts_with_a_hint_and_offers_the_four_strategies(mm_page):
    at = mm_page
    assert [i.value for i in at.info] == ["Type a text, choose an image, or both."]
    assert at.selectbox(key="mm_method").options == STRATEGIES


@pytest.mark.parametrize("method", STRATEGIES)
@pytest.mark.parametrize("parts", ["text", "image", "text+image"])
def test_multimodal_query_matches_the_engine(mm_page, tiny_catalog, method, parts):
    at = mm_page
    text = "red striped t-shirt" if "text" in parts else None
    _mm_query(at, text, "image" in parts, method)
    rows = result_rows(at, "mm")
    assert len(rows) == 15
    kw = {"text": text}
    if "image" in parts:
        item_id = at.text_input(key="mm_item").value
        kw["image"] = load_image(tiny_catalog.image_path(tiny_catalog.row_of[item_id]))
    expected = search(tiny_catalog, method, k=15, image_weight=0.5, **kw)
    assert rows == expected.rows.tolist()
    np.testing.assert_allclose(score_captions(at), expected.scores, atol=1e-4)
    headline = next(m.value for m in at.markdown if m.value.startswith("**15** results for"))
    assert f"with **{method}**" in headline
    assert ("the image (weight 0.50)" in headline) == ("image" in parts)
    assert ("“red striped t\\-shirt”" in headline) == ("text" in parts)
    line = timings_caption(at)
    assert ("decode **" in line) == ("image" in parts)


def test_multimodal_image_weight_slider_changes_the_results(mm_page, tiny_catalog):
    at = mm_page
    text = "yellow umbrella"
    _mm_query(at, text, True, "clip", weight=0.0)
    text_side = result_rows(at, "mm")
    assert text_side == search(tiny_catalog, "clip", text=text, k=15).rows.tolist()
    _mm_query(at, None, True, "clip", weight=1.0)
    image_side = result_rows(at, "mm")
    item_id = at.text_input(key="mm_item").value
    image = load_image(tiny_catalog.image_path(tiny_catalog.row_of[item_id]))
    assert image_side == search(tiny_catalog, "clip", image=image, k=15).rows.tolist()
    assert text_side != image_side
    assert any("weight 1.00" in m.value for m in at.markdown)


# -- compare -----------------------------------------------------------------------------------
@pytest.fixture
def compare_page(tiny_catalog) -> AppTest:
    return open_page(COMPARE_PAGE)


def _method_columns(at: AppTest) -> list[str]:
    """Method names heading the result columns (escaped for Markdown on the page)."""
    return [m.value[5:].replace("\\", "") for m in at.markdown if m.value.startswith("#### ")]


def test_compare_free_query_shows_method_columns_and_overlap(compare_page, tiny_catalog):
    at = compare_page
    text = at.text_input(key="cmp_text").value
    methods = at.multiselect(key="cmp_methods").value
    assert 2 <= len(methods) <= 3
    assert _method_columns(at) == methods
    overlap = at.dataframe[0].value
    ids = {
        m: tiny_catalog.item_ids[search(tiny_catalog, m, text=text, k=10).rows].tolist()
        for m in methods
    }
    pairs = [f"{a} vs {b}" for i, a in enumerate(methods) for b in methods[i + 1 :]]
    assert overlap["pair"].tolist() == pairs
    for pair, jac in zip(overlap["pair"], overlap["Jaccard@10"]):
        a, b = pair.split(" vs ")
        assert jac == pytest.approx(jaccard_at_k(ids[a], ids[b], k=10))
    assert not any("badge[grade" in m.value for m in at.markdown)  # no judgments for free text


def test_compare_with_four_methods(compare_page):
    at = compare_page
    at.multiselect(key="cmp_methods").set_value(["bm25", "sbert", "clip", "rrf"])
    rerun(at)
    assert _method_columns(at) == ["bm25", "sbert", "clip", "rrf"]
    assert len(at.dataframe[0].value) == 6  # 4 choose 2 pairs


def test_compare_needs_two_methods(compare_page):
    at = compare_page
    at.multiselect(key="cmp_methods").set_value(["bm25"])
    rerun(at)
    assert [i.value for i in at.info] == ["Pick at least two methods."]
    assert not _method_columns(at)


def test_compare_labelled_mode_shows_grades_and_ndcg(compare_page, tiny_catalog):
    at = compare_page
    at.radio(key="cmp_mode").set_value("Labelled test query")
    rerun(at)
    qid = at.selectbox(key="cmp_qid").value
    queries = tiny_catalog.table("queries").set_index("query_id")
    assert queries.loc[qid, "split"] == "test"
    text = queries.loc[qid, "query"]
    qrels = tiny_catalog.qrels("text")[qid]
    methods = at.multiselect(key="cmp_methods").value
    table = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert table["method"].tolist() == methods
    for m, got in zip(table["method"], table["NDCG@10"]):
        ids = tiny_catalog.item_ids[search(tiny_catalog, m, text=text, k=10).rows]
        assert got == pytest.approx(ndcg_at_k(ids, qrels, k=10)), m
    delta = table[f"Δ NDCG vs {methods[0]}"].to_numpy()
    np.testing.assert_allclose(delta, table["NDCG@10"] - table["NDCG@10"].iloc[0])
    badges = [m.value for m in at.markdown if "badge[grade" in m.value]
    shown = [search(tiny_catalog, m, text=text, k=10).rows for m in methods]
    assert len(badges) == sum(len(r) for r in shown)  # BM25 may find nothing for a paraphrase
    grades = [qrels.get(tiny_catalog.item_ids[r], 0) for rows in shown for r in rows]
    assert [int(re.search(r"badge\[grade (\d)\]", b).group(1)) for b in badges] == grades


def test_compare_labelled_mode_other_query(compare_page, tiny_catalog):
    at = compare_page
    at.radio(key="cmp_mode").set_value("Labelled test query")
    rerun(at)
    options = at.selectbox(key="cmp_qid").options
    assert len(options) == int((tiny_catalog.table("queries")["split"] == "test").sum())
    at.selectbox(key="cmp_qid").set_value(at.selectbox(key="cmp_qid").options[5])
    rerun(at)
    assert any(c.value.startswith("Asks for:") for c in at.caption)


def test_compare_sort_by_disagreement_reorders_the_test_queries(compare_page, tiny_catalog):
    at = compare_page
    at.radio(key="cmp_mode").set_value("Labelled test query")
    rerun(at)
    at.multiselect(key="cmp_methods").set_value(["bm25", "sbert"])
    rerun(at)
    before = list(at.selectbox(key="cmp_qid").options)
    sort = next(b for b in at.button if b.label == "Sort test queries by biggest disagreement")
    sort.click()
    rerun(at)
    after = list(at.selectbox(key="cmp_qid").options)
    assert sorted(after) == sorted(before) and after != before
    queries = tiny_catalog.table("queries")
    test = queries[queries["split"] == "test"]
    qid_of = {
        f"{r.query}  ·  {r.type}{'' if r.wording == 'catalog' else ' · ' + r.wording}": r.query_id
        for r in test.itertuples()
    }
    after = [qid_of[label] for label in after]  # the options are shown as labels
    assert at.selectbox(key="cmp_qid").value in after  # the current choice is kept
    queries = queries.set_index("query_id")
    qrels = tiny_catalog.qrels("text")

    def spread(qid: str) -> float:
        text = queries.loc[qid, "query"]
        vals = [
            ndcg_at_k(
                tiny_catalog.item_ids[search(tiny_catalog, m, text=text, k=10).rows],
                qrels.get(qid, {}),
                k=10,
            )
            for m in ("bm25", "sbert")
        ]
        return max(vals) - min(vals)

    spreads = [spread(q) for q in after]
    assert spreads == sorted(spreads, reverse=True)


def test_compare_why_section_for_hybrid_shows_contributions(compare_page, tiny_catalog):
    at = compare_page
    at.selectbox(key="why_method").set_value("hybrid")
    at.number_input(key="why_rank").set_value(2)
    rerun(at)
    text = at.text_input(key="cmp_text").value
    row = int(search(tiny_catalog, "hybrid", text=text, k=10).rows[1])
    frames = [d.value for d in at.dataframe]
    ranks = next(f for f in frames if "retriever" in f.columns)
    contrib = next(f for f in frames if "contribution" in f.columns)
    assert set(contrib["feature"]) <= set(FEATURES) and len(contrib) == 6
    mags = contrib["contribution"].abs().tolist()
    assert mags == sorted(mags, reverse=True)
    # the rank table says where each plain retriever put this row
    assert "hybrid" not in set(ranks["retriever"]) and "rrf" not in set(ranks["retriever"])
    bm25 = search(tiny_catalog, "bm25", text=text, k=100).rows.tolist()
    got = ranks.set_index("retriever").loc["bm25", "rank"]
    assert got == (str(bm25.index(row) + 1) if row in bm25 else "> 100")
    title = tiny_catalog.items["title"].iat[row]
    assert any(title.split()[0] in m.value and "each retriever" in m.value for m in at.markdown)


def test_compare_why_section_without_hybrid_has_no_contributions(compare_page):
    at = compare_page
    at.selectbox(key="why_method").set_value("bm25")
    rerun(at)
    assert not any("contribution" in d.value.columns for d in at.dataframe)


def _compare_image_only(at: AppTest) -> AppTest:
    at.text_input(key="cmp_text").input("")
    at.checkbox(key="cmp_use_image").check()
    rerun(at)
    at.radio(key="cmp_source").set_value("Catalog image")
    return rerun(at)


def test_compare_with_an_image_query(compare_page, tiny_catalog):
    at = _compare_image_only(compare_page)
    options = at.multiselect(key="cmp_methods").options
    assert options == available_retrievers(tiny_catalog, "image")
    at.multiselect(key="cmp_methods").set_value(["colour", "clip", "fusion-late"])
    rerun(at)
    assert _method_columns(at) == ["colour", "clip", "fusion-late"]
    item_id = at.text_input(key="cmp_item").value
    image = load_image(tiny_catalog.image_path(tiny_catalog.row_of[item_id]))
    ids = {
        m: tiny_catalog.item_ids[search(tiny_catalog, m, image=image, k=10).rows].tolist()
        for m in ("colour", "clip")
    }
    overlap = at.dataframe[0].value.set_index("pair")
    assert overlap.loc["colour vs clip", "Jaccard@10"] == pytest.approx(
        jaccard_at_k(ids["colour"], ids["clip"], k=10)
    )


def test_compare_image_query_defaults_to_at_least_two_methods(compare_page):
    at = _compare_image_only(compare_page)
    assert len(at.multiselect(key="cmp_methods").value) >= 2
    assert not [i.value for i in at.info if "Pick at least two" in i.value]


# -- benchmarks --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_report(tiny_catalog, tmp_path_factory) -> tuple[Path, dict]:
    from engine.benchmark.harness import run_benchmark
    from engine.benchmark.report import write_reports

    folder = tmp_path_factory.mktemp("bench-reports")
    report = run_benchmark(tiny_catalog, limit=5)
    write_reports(report, folder)
    return folder, report


def test_benchmarks_page_renders_the_report(small_report, monkeypatch):
    folder, report = small_report
    monkeypatch.setenv("PIXELMATCH_REPORTS", str(folder))
    at = open_page(BENCH_PAGE)
    charts = at.get("plotly_chart")
    figs = [figure(c) for c in charts]
    titles = [f["layout"]["title"]["text"] for f in figs]
    assert "Text queries: ndcg@10 with 95 % intervals (5 queries)" in titles
    assert "Image queries: ndcg@10 with 95 % intervals (5 queries)" in titles
    assert "Query latency (total), single thread" in titles
    assert {"sbert: recall vs latency", "clip: recall vs latency"} <= set(titles)
    assert any(t.startswith("LambdaMART feature importance") for t in titles)
    # the quality bars are the report's numbers
    bars = figs[titles.index("Text queries: ndcg@10 with 95 % intervals (5 queries)")]["data"][0]
    got = dict(zip(trace_array(bars["x"]).tolist(), trace_array(bars["y"]).tolist()))
    expected = {m: r["overall"]["ndcg@10"]["mean"] for m, r in report["text"]["methods"].items()}
    assert got == pytest.approx(expected)
    assert any(report["commit"] in c for c in captions(at))
    assert [m.value for m in at.markdown if m.value.startswith("- All text queries")]
    assert not any("No benchmark report yet" in i.value for i in at.info)


def test_benchmarks_metric_selector_changes_the_chart(small_report, monkeypatch):
    folder, report = small_report
    monkeypatch.setenv("PIXELMATCH_REPORTS", str(folder))
    at = open_page(BENCH_PAGE)
    at.selectbox(key="bench_metric").set_value("mrr")
    rerun(at)
    titles = [figure(c)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Text queries: mrr with 95 % intervals (5 queries)" in titles


def test_benchmarks_page_without_a_report_says_run_make_bench(tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELMATCH_REPORTS", str(tmp_path))
    at = open_page(BENCH_PAGE)
    infos = [i.value for i in at.info]
    assert any("make bench" in i for i in infos), infos
    assert not at.get("plotly_chart")


def test_live_latency_tab_counts_searches_run_in_the_app(tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELMATCH_REPORTS", str(tmp_path))
    at = open_page(IMAGE_PAGE)
    at.radio(key="img_source").set_value("Catalog image")
    rerun(at)
    at.switch_page(BENCH_PAGE)
    rerun(at)
    live = [d.value for d in at.dataframe if "stage" in d.value.columns]
    assert live, "the live latency table should list the image search just run"
    table = live[0]
    assert {"clip"} <= set(table["method"])
    stages = set(table.loc[table["method"] == "clip", "stage"])
    assert {"decode", "encode", "search", "total"} <= stages


# -- catalog explorer: embedding map -----------------------------------------------------------
@pytest.fixture
def explorer(tiny_catalog) -> AppTest:
    return open_page(EXPLORER_PAGE)


def _map_figure(at: AppTest) -> dict:
    (chart,) = at.get("plotly_chart")
    return figure(chart)


@pytest.mark.parametrize(
    "space, method",
    [("CLIP image embeddings", "clip"), ("Sentence-BERT text embeddings", "sbert")],
)
def test_embedding_map_highlights_a_querys_results(explorer, tiny_catalog, space, method):
    at = explorer
    at.selectbox(key="map_space").set_value(space)
    at.text_input(key="map_query").input("red sneakers")
    rerun(at)
    fig = _map_figure(at)
    stars = [t for t in fig["data"] if t.get("name") == "results: red sneakers"]
    assert len(stars) == 1
    rows = trace_array(stars[0]["customdata"]).astype(int).tolist()
    assert rows == search(tiny_catalog, method, text="red sneakers", k=20).rows.tolist()
    points = sum(len(trace_array(t["customdata"])) for t in fig["data"][:-1])
    assert points == len(tiny_catalog.items)  # the tiny catalog is drawn whole
    assert fig["layout"]["title"]["text"].startswith(f"PCA of {space.lower()}")
    assert any("Stars: the top 20 results" in c for c in captions(at))


def test_embedding_map_without_a_query_has_no_stars(explorer, tiny_catalog):
    fig = _map_figure(explorer)
    assert not any(str(t.get("name", "")).startswith("results:") for t in fig["data"])
    names = {t["name"] for t in fig["data"]}
    assert names == set(tiny_catalog.items["category"].astype(str))


def test_embedding_map_colour_by(explorer, tiny_catalog):
    at = explorer
    at.selectbox(key="map_by").set_value("colour")
    rerun(at)
    fig = _map_figure(at)
    assert {t["name"] for t in fig["data"]} == set(with_truth(tiny_catalog)["colour"])
    red = next(t for t in fig["data"] if t["name"] == "red")
    assert red["marker"]["color"] == CSS4_COLORS["red"]  # the colour name's CSS colour
    rows = trace_array(red["customdata"]).astype(int)
    assert (with_truth(tiny_catalog)["colour"].iloc[rows] == "red").all()


# -- the pages/ folder relic ---------------------------------------------------------------------
def test_pages_package_turns_off_the_folder_relic_and_reruns_a_bypassing_run(monkeypatch):
    """A page run that bypassed app.py (Streamlit's pages/ relic) is rerun through app.py."""
    import streamlit
    import streamlit.runtime.scriptrunner as scriptrunner
    from streamlit.runtime.pages_manager import PagesManager

    import pages

    reruns: list[bool] = []
    monkeypatch.setattr(streamlit, "rerun", lambda: reruns.append(True))
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    monkeypatch.setattr(scriptrunner, "get_script_run_ctx", lambda: None)
    pages._adopt_navigation()  # outside a run (an import by a test or a tool): no rerun
    assert PagesManager.uses_pages_directory is False and reruns == []

    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    monkeypatch.setattr(scriptrunner, "get_script_run_ctx", lambda: object())
    pages._adopt_navigation()  # inside a page run without app.py
    assert PagesManager.uses_pages_directory is False and reruns == [True]

    pages._adopt_navigation()  # app.py cleared the flag first: nothing to do
    assert reruns == [True]

