"""Streamlit AppTest tests of the text search and catalog explorer pages.

What the pages show is compared with the engine's own answers and the catalog's data
(independently filtered with pandas), not only checked for the absence of exceptions.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from engine.catalog import Catalog
from engine.search import search
from pages.shared import esc
from tests.catalog_fixtures import with_truth
from tests.html_cards import ranked_item_ids, ranked_scores, ranked_titles, shown_cards

APP = str(Path(__file__).parents[1] / "app.py")
EXPLORER = "pages/catalog_explorer.py"


# -- helpers -----------------------------------------------------------------------------------
def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def markdowns(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def card_titles(at: AppTest) -> list[str]:
    """The titles of the result cards, in order (as text: the cards are escaped HTML)."""
    return ranked_titles(at)


def card_rows(at: AppTest, prefix: str = "explore") -> list[int]:
    """Catalog rows of the grid's cards (their ``data-item`` ids), in order; the page's "Open a
    product" picker offers the same cards in the same order."""
    from engine.serving import open_catalog

    ids = ranked_item_ids(at)
    picker = [s for s in at.selectbox if s.key == f"{prefix}-open"]
    assert len(picker) == (1 if ids else 0)
    if ids:
        assert picker[0].options == [f"{i + 1}. {t}" for i, t in enumerate(ranked_titles(at))]
    rows = {item: row for row, item in enumerate(open_catalog("tiny").items["item_id"])}
    return [rows[i] for i in ids]


def open_card(at: AppTest, row: int, prefix: str = "explore") -> None:
    """Choose the card of catalog row ``row`` in the "Open a product" picker."""
    at.selectbox(key=f"{prefix}-open").set_value(card_rows(at, prefix).index(row)).run()


@pytest.fixture
def app(tiny_catalog) -> AppTest:
    at = new_app()
    at.session_state["catalog_name"] = "tiny"
    at.run()
    no_exception(at)
    return at


def run_query(at: AppTest, text: str, method: str | None = None, top_k: int | None = None):
    at.text_input(key="text_query").input(text)
    if method is not None:
        at.selectbox(key="text_method").set_value(method)
    if top_k is not None:
        at.number_input(key="text_top_k").set_value(top_k)
    at.button(key="FormSubmitter:text-search-Search").click()
    at.run()
    no_exception(at)
    return at


def method_options(at: AppTest) -> list[str]:
    return [label.split(" — ")[0] for label in at.selectbox(key="text_method").options]


# -- text search -------------------------------------------------------------------------------
def test_text_search_starts_with_a_hint(app):
    assert app.title[0].value == "Text search"
    assert [i.value for i in app.info] == ["Type a query above to search the catalog."]
    assert {"bm25", "tfidf", "sbert"} <= set(method_options(app))
    assert app.selectbox(key="catalog_name").value == "tiny"


def test_text_search_shows_the_engines_results(app, tiny_catalog):
    run_query(app, "leather boots", method="bm25", top_k=12)
    expected = search(tiny_catalog, "bm25", text="leather boots", k=12)
    header = [m for m in markdowns(app) if "results for" in m]
    assert header == ["**12** results for “leather boots” with **bm25**"]
    titles = tiny_catalog.items["title"].to_numpy()
    assert card_titles(app) == [str(titles[r]) for r in expected.rows]
    assert sum('<img src="data:image/' in c.raw for c in shown_cards(app)) == 12
    latency = [c.value for c in app.caption if c.value.startswith("Latency:")]
    assert len(latency) == 1
    for stage in ("load", "score", "rank", "total"):
        assert stage in latency[0]
    scores = ranked_scores(app)
    assert scores == pytest.approx(expected.scores.tolist(), abs=1e-4)
    assert not app.warning


def test_empty_query_shows_the_hint(app):
    run_query(app, "   ")
    assert [i.value for i in app.info] == ["Type a query above to search the catalog."]
    assert not card_titles(app)


def test_very_long_query_shows_a_warning(app):
    run_query(app, "boots " * 833 + "xx")  # 5,000 characters
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 1 and "5,000 characters" in warnings[0]
    assert not card_titles(app)


def test_nonsense_query_with_bm25_says_no_results(app):
    run_query(app, "zzqx blorp", method="bm25")
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 1
    assert warnings[0].startswith("No results for “zzqx blorp”")
    assert "No product text contains" in warnings[0]
    assert not card_titles(app)


@pytest.mark.parametrize("text", ["🥾👢", "赤いスニーカー", "**bold** <b>x</b> $5"])
def test_odd_queries_do_not_break_the_page(app, text):
    run_query(app, text, method="bm25")
    assert card_titles(app) or app.warning
    run_query(app, text, method="sbert")
    if "$5" in text:  # understood as "at most $5": nothing is that cheap, and the page says so
        assert not card_titles(app) and any("constraints" in w.value for w in app.warning)
        return
    assert len(card_titles(app)) == 15
    header = [m for m in markdowns(app) if "results for" in m][0]
    assert esc(text) in header  # the user's text is shown escaped


def test_every_method_in_the_selector_works(app, tiny_catalog):
    methods = method_options(app)
    assert {"bm25", "tfidf", "sbert"} <= set(methods)
    for method in methods:
        run_query(app, "red striped mug", method=method, top_k=5)
        expected = search(tiny_catalog, method, text="red striped mug", k=5)
        header = [m for m in markdowns(app) if "results for" in m]
        assert header == [f"**5** results for “red striped mug” with **{esc(method)}**"], method
        titles = tiny_catalog.items["title"].to_numpy()
        assert card_titles(app) == [str(titles[r]) for r in expected.rows], method
        assert not app.error and not app.warning, method


# -- catalog explorer --------------------------------------------------------------------------
@pytest.fixture
def explorer(app) -> AppTest:
    app.switch_page(EXPLORER).run()
    no_exception(app)
    return app


def match_count(at: AppTest) -> int:
    line = [m for m in markdowns(at) if "products match" in m][0]
    return int(line.split("**")[1].replace(",", ""))


def test_explorer_shows_the_first_page_of_the_catalog(explorer, tiny_catalog):
    assert explorer.title[0].value == "Catalog explorer"
    assert match_count(explorer) == len(tiny_catalog.items)
    assert card_rows(explorer) == list(range(20))
    titles = tiny_catalog.items["title"].to_numpy()
    assert card_titles(explorer) == [str(t) for t in titles[:20]]


def test_category_filter_narrows_the_cards(explorer, tiny_catalog):
    items = tiny_catalog.items
    explorer.multiselect(key="ex_cat").set_value(["boots"]).run()
    no_exception(explorer)
    expected = np.flatnonzero((items["category"] == "boots").to_numpy())
    assert match_count(explorer) == len(expected)
    rows = card_rows(explorer)
    assert rows == expected[:20].tolist()
    assert set(items.iloc[rows]["category"]) == {"boots"}


def test_combined_filters_match_pandas(explorer, tiny_catalog):
    items: pd.DataFrame = with_truth(tiny_catalog)
    explorer.multiselect(key="ex_cat").set_value(["mug", "vase", "lamp"])
    explorer.multiselect(key="ex_col").set_value(["red", "blue", "white", "black"])
    explorer.radio(key="ex_age").set_value("existing")
    explorer.run()
    no_exception(explorer)
    mask = (
        items["category"].isin(["mug", "vase", "lamp"])
        & items["colour"].isin(["red", "blue", "white", "black"])
        & ~items["is_new"]
    )
    expected = np.flatnonzero(mask.to_numpy())
    assert 0 < len(expected) < len(items)
    assert match_count(explorer) == len(expected)
    assert card_rows(explorer) == expected[:20].tolist()


def test_title_filter_and_pagination(explorer, tiny_catalog):
    items = tiny_catalog.items
    explorer.text_input(key="ex_title").input("LEATHER").run()
    expected = np.flatnonzero(items["title"].str.lower().str.contains("leather").to_numpy())
    assert len(expected) > 20
    assert match_count(explorer) == len(expected)
    explorer.number_input(key="ex_page").set_value(2).run()
    no_exception(explorer)
    assert card_rows(explorer) == expected[20:40].tolist()
    assert any(c.value.startswith("Page 2 of ") for c in explorer.caption)


def test_filters_with_no_match_say_so(explorer):
    explorer.text_input(key="ex_title").input("zzqx-no-such-title").run()
    no_exception(explorer)
    assert match_count(explorer) == 0
    assert any("No product matches these filters" in i.value for i in explorer.info)
    assert not card_rows(explorer)


def test_open_shows_the_items_details_and_close_hides_them(explorer, tiny_catalog):
    items = tiny_catalog.items
    explorer.multiselect(key="ex_cat").set_value(["handbag"]).run()
    row = card_rows(explorer)[2]
    open_card(explorer, row)
    no_exception(explorer)
    item = items.iloc[row]
    assert [s.value for s in explorer.subheader] == [item["title"]]
    assert any(t.value == item["description"] for t in explorer.text)
    table = explorer.dataframe[0].value
    details = dict(zip(table["attribute"], table["value"]))
    for field in ("item_id", "category", "brand"):
        assert details[field] == str(item[field]), field
    truth = tiny_catalog.truth.iloc[row]  # shown, and labelled as the world's ground truth
    for field in ("colour", "pattern", "material"):
        assert details[f"{field} (ground truth)"] == str(truth[field]), field
    assert float(details["price"]) == pytest.approx(item["price"])
    assert details["is_new"] == str(bool(item["is_new"]))
    inter = pd.read_parquet(tiny_catalog.world_dir / "interactions.parquet")
    n_train = int(((inter["item_id"] == item["item_id"]) & (inter["split"] == "train")).sum())
    assert details["interactions"] == str(n_train)
    explorer.button(key="ex_close").click().run()
    no_exception(explorer)
    assert not explorer.subheader and not explorer.dataframe


def test_details_title_is_escaped(explorer, monkeypatch):
    nasty = "**bold** <b>x</b> $5 [link](http://x)"
    real_describe = Catalog.describe

    def describe(self, row):
        return {**real_describe(self, row), "title": nasty}

    monkeypatch.setattr(Catalog, "describe", describe)
    row = card_rows(explorer)[0]
    open_card(explorer, row)
    no_exception(explorer)
    assert [s.value for s in explorer.subheader] == [esc(nasty)]


# -- escaping ----------------------------------------------------------------------------------
def _rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").renderInline(markdown)


@pytest.mark.parametrize(
    "text",
    [
        "**bold** <b>x</b> $5 [link](http://x)",
        "_it_ `code` # head ~~gone~~ \\ back|slash",
        "$x^2$ and $$y$$",
        "1. item\n- bullet\n> quote",
        "![img](http://x/y.png) <script>alert(1)</script>",
    ],
)
def test_esc_makes_markup_literal(text):
    escaped = esc(text)
    out = _rendered(escaped)
    for tag in ("<strong", "<em", "<b>", "<a ", "<img", "<code", "<script"):
        assert tag not in out, (text, out)
    visible = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert visible == text.replace("\n", " ")
    # Streamlit reads $...$ as LaTeX: no dollar sign may stay unescaped.
    assert not re.search(r"(?<!\\)\$", escaped)


def test_unescaped_text_would_render_as_markup():
    """Control: the renderer used above does turn the raw text into markup."""
    out = _rendered("**bold** <b>x</b> [link](http://x)")
    assert "<strong>" in out and "<a href" in out and "<b>" in out


# -- no catalog --------------------------------------------------------------------------------
def test_app_without_any_catalog_says_how_to_build(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELMATCH_DATA", str(tmp_path))
    at = new_app()
    at.run()
    no_exception(at)
    assert [e.value for e in at.error] == ["No catalog has been built yet."]
    assert any("python -m engine build" in c.value for c in at.code)
    at.switch_page(EXPLORER).run()
    no_exception(at)
    assert [e.value for e in at.error] == ["No catalog has been built yet."]


def test_app_with_a_broken_catalog_says_how_to_rebuild(tmp_path, monkeypatch):
    folder = tmp_path / "artifacts" / "broken"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{not json")
    monkeypatch.setenv("PIXELMATCH_DATA", str(tmp_path))
    at = new_app()
    at.run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("The 'broken' catalog cannot be served")
    assert any("python -m engine build" in c.value for c in at.code)
