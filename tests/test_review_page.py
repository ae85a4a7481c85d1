"""AppTest tests of the Relevance review page on the session's tiny catalog.

Grades are clicked on the page and then read back from the judgment database (the session's
data folder), never only from the page; catalog and typed text must show as text.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score
from streamlit.testing.v1 import AppTest

from engine.judgments import JudgmentStore
from engine.judgments.csvio import COLUMNS
from engine.search import search
from pages.shared import esc

APP = str(Path(__file__).parents[1] / "app.py")
PAGE = "pages/review.py"


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def rerun(at: AppTest) -> AppTest:
    at.run()
    no_exception(at)
    return at


def open_review(name: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["catalog_name"] = "tiny"
    rerun(at)
    at.switch_page(PAGE)
    rerun(at)
    if name is not None:
        at.text_input(key="rv_name").input(name)
        rerun(at)
    return at


def query_with_results(catalog, method: str = "bm25", n: int = 3) -> str:
    """The first test query for which ``method`` returns at least ``n`` results."""
    test = catalog.table("queries")
    return next(
        q
        for q in test.loc[test["split"] == "test", "query"]
        if len(search(catalog, method, text=q, k=10)) >= n
    )


def controls(at: AppTest, method: str) -> list:
    """The grade controls of one method's column, in rank order (keys rv|digest|method|item)."""
    return [g for g in at.button_group if g.key and g.key.split("|")[2] == method]


def item_of(control) -> str:
    return control.key.split("|")[3]


@pytest.fixture
def reviewer() -> str:
    return f"Reviewer {uuid.uuid4().hex[:8]}"  # each test rates as someone new


@pytest.fixture
def store(tiny_catalog) -> JudgmentStore:
    return JudgmentStore()  # data/judgments.db of the session's data folder


def test_the_page_asks_for_a_name_before_rating(tiny_catalog):
    at = open_review()
    assert [i.value for i in at.info] == [
        "Enter your name to start rating: every grade is saved with it."
    ]
    assert not at.button_group


def test_each_method_shows_its_results_with_a_grade_control(tiny_catalog, reviewer):
    at = open_review(reviewer)
    at.selectbox(key="rv_query").set_value(query_with_results(tiny_catalog))
    at.multiselect(key="rv_methods").set_value(["bm25", "tfidf"])
    rerun(at)
    query = at.selectbox(key="rv_query").value
    for method in ("bm25", "tfidf"):
        expected = tiny_catalog.item_ids[search(tiny_catalog, method, text=query, k=10).rows]
        shown = controls(at, method)
        assert [item_of(c) for c in shown] == expected.tolist()
        assert all(c.options == ["0", "1", "2", "3"] and c.value is None for c in shown)


def test_a_click_saves_the_grade_with_name_and_utc_time(tiny_catalog, reviewer, store):
    at = open_review(reviewer)
    at.selectbox(key="rv_query").set_value(query_with_results(tiny_catalog))
    at.multiselect(key="rv_methods").set_value(["bm25"])
    rerun(at)
    query = at.selectbox(key="rv_query").value
    first = controls(at, "bm25")[0]
    item = item_of(first)
    assert item == tiny_catalog.item_ids[search(tiny_catalog, "bm25", text=query, k=10).rows[0]]
    first.set_value(3)
    rerun(at)
    (saved,) = store.judgments("tiny", reviewer=reviewer)
    assert (saved.catalog, saved.query, saved.item_id, saved.grade) == ("tiny", query, item, 3)
    when = datetime.fromisoformat(saved.judged_at)
    assert when.tzinfo is not None and abs(datetime.now(UTC) - when) < timedelta(minutes=2)
    assert any(c.value.startswith("Saved grade 3 for") for c in at.caption)
    table = at.dataframe[0].value.set_index("method")
    assert table.loc["bm25", "judged"] == 1
    # a grade of 3 at rank 1, nothing else judged by anyone else yet: NDCG and MRR are 1
    assert table.loc["bm25", "MRR (human)"] == pytest.approx(1.0)


def test_grades_come_back_after_a_restart_and_can_be_taken_back(tiny_catalog, reviewer, store):
    query = query_with_results(tiny_catalog)
    at = open_review(reviewer)
    at.selectbox(key="rv_query").set_value(query)
    at.multiselect(key="rv_methods").set_value(["bm25"])
    rerun(at)
    second = controls(at, "bm25")[1]
    second.set_value(1)
    rerun(at)
    assert store.grades("tiny", query, reviewer) == {item_of(second): 1}
    again = open_review(reviewer)  # a new session: the tab was closed
    again.selectbox(key="rv_query").set_value(query)
    again.multiselect(key="rv_methods").set_value(["bm25"])
    rerun(again)
    values = [c.value for c in controls(again, "bm25")]
    assert values[1] == 1 and values[0] is None
    controls(again, "bm25")[1].set_value(None)  # clicked again: taken back
    rerun(again)
    assert store.judgments("tiny", reviewer=reviewer) == []


def test_an_item_in_two_columns_shows_one_grade(tiny_catalog, reviewer, store):
    test = tiny_catalog.table("queries")
    queries = test.loc[test["split"] == "test", "query"].tolist()
    for query in queries:  # a test query where bm25 and tfidf share a result
        a = tiny_catalog.item_ids[search(tiny_catalog, "bm25", text=query, k=10).rows].tolist()
        b = tiny_catalog.item_ids[search(tiny_catalog, "tfidf", text=query, k=10).rows].tolist()
        if shared := [i for i in a if i in b]:
            break
    else:
        pytest.fail("no test query where bm25 and tfidf share a result")
    at = open_review(reviewer)
    at.selectbox(key="rv_query").set_value(query)
    at.multiselect(key="rv_methods").set_value(["bm25", "tfidf"])
    rerun(at)
    (in_bm25,) = [c for c in controls(at, "bm25") if item_of(c) == shared[0]]
    in_bm25.set_value(2)
    rerun(at)
    (in_tfidf,) = [c for c in controls(at, "tfidf") if item_of(c) == shared[0]]
    assert in_tfidf.value == 2
    assert store.grades("tiny", query, reviewer) == {shared[0]: 2}
    assert f"{query}  ·  1 rated" in at.selectbox(key="rv_query").options


def test_catalog_and_typed_text_is_shown_as_text(tiny_catalog, store):
    name = "*Ann* <b>" + uuid.uuid4().hex[:6]
    at = open_review(name)
    at.radio(key="rv_source").set_value("My own queries")
    rerun(at)
    query = "**navy** backpack [link](http://example.com) <script>x</script> $x$"
    at.text_area(key="rv_own").input(query)
    rerun(at)
    at.multiselect(key="rv_methods").set_value(["bm25"])
    rerun(at)
    assert at.selectbox(key="rv_query").value == query
    markdown = [m.value for m in at.markdown]
    assert f"Rating as **{esc(name)}** · query: **{esc(query)}**" in markdown
    assert not any("**navy**" in m or "<script>" in m or "<b>" in m for m in markdown)
    rows = search(tiny_catalog, "bm25", text=query, k=10).rows
    titles = [f"**{i + 1}. {esc(tiny_catalog.items['title'].iat[r])}**" for i, r in enumerate(rows)]
    assert [m for m in markdown if m.startswith("**") and ". " in m[:6]] == titles
    controls(at, "bm25")[0].set_value(0)
    rerun(at)
    (saved,) = store.judgments("tiny", reviewer=name)
    assert saved.query == query and saved.reviewer == name  # stored as typed, not escaped


def test_agreement_of_two_reviewers_is_shown(tiny_catalog, store):
    a, b = f"A {uuid.uuid4().hex[:6]}", f"B {uuid.uuid4().hex[:6]}"
    items = tiny_catalog.item_ids[:6].tolist()
    grades_a, grades_b = [3, 2, 0, 1, 3, 0], [3, 1, 0, 1, 2, 0]
    for item, ga, gb in zip(items, grades_a, grades_b):
        store.rate("tiny", "agreement query", item, ga, a)
        store.rate("tiny", "agreement query", item, gb, b)
    at = open_review(a)
    pairs = next(d.value for d in at.dataframe if "kappa" in d.value.columns)
    (row,) = pairs[(pairs["reviewer_a"] == a) & (pairs["reviewer_b"] == b)].to_dict("records")
    assert row["both_rated"] == 6
    assert row["kappa"] == pytest.approx(cohen_kappa_score(grades_a, grades_b, labels=[0, 1, 2, 3]))
    assert row["kappa_quadratic"] == pytest.approx(
        cohen_kappa_score(grades_a, grades_b, labels=[0, 1, 2, 3], weights="quadratic")
    )


def test_csv_import_on_the_page_reports_bad_rows(tiny_catalog, reviewer, store):
    item = tiny_catalog.item_ids[0]
    text = "\n".join(
        [
            ",".join(COLUMNS),
            f"tiny,imported query,{item},2,{reviewer},2026-01-01T00:00:00Z",
            f"tiny,imported query,{item},7,{reviewer},2026-01-01T00:00:00Z",
        ]
    )
    at = open_review(reviewer)
    at.file_uploader(key="rv_import").set_value(("j.csv", text.encode(), "text/csv"))
    rerun(at)
    assert store.grades("tiny", "imported query", reviewer) == {item: 2}
    (warning,) = [w.value for w in at.warning]
    assert warning.replace("\\", "") == (
        "2 row(s): 1 valid, 1 refused, 1 stored. Refused: line 3: a grade must be from 0 to 3, "
        "got 7."
    )
