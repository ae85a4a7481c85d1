"""The For-you page and the recommend CLI on the tiny catalog (recommend step built)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.cli import main
from pages.shared import esc
from tests.html_cards import card_html_blocks

APP = str(Path(__file__).parents[1] / "app.py")


@pytest.fixture
def page(tiny_catalog):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["catalog_name"] = "tiny"
    at.run()
    at.switch_page("pages/for_you.py").run()
    assert not at.exception
    return at


def _markdown(at) -> list[str]:
    return [m.value for m in at.markdown]


def _cards(at) -> list[str]:
    """The HTML of every card on the page (cards are one st.html element per column)."""
    return card_html_blocks(at)


def test_persona_gets_history_and_recommendations_from_each_model(page, tiny_catalog):
    at = page
    user = at.text_input(key="fy_user").value
    history = tiny_catalog.table("interactions")
    assert (history["user_id"] == user).any()
    md = _markdown(at)
    for model in at.multiselect(key="fy_models").value:
        assert f"#### {esc(model)}" in md  # names are shown escaped (two\_tower)
    # Cards show catalog titles (HTML-escaped), k per model, each with a reason.
    k = at.slider(key="fy_k").value
    cards = _cards(at)
    titles = set(tiny_catalog.table("items")["title"].map(html.escape))
    assert len(cards) == k * len(at.multiselect(key="fy_models").value)
    assert all('<p class="pm-why">Why: ' in c for c in cards)
    assert all(c.split('<p class="pm-title">')[1].split("<")[0] in titles for c in cards)
    # The history row: one figure per recent event, captioned with the event.
    row = [h.value for h in at.html if 'class="pm-history"' in h.value]
    events = history.loc[history["user_id"] == user, "event"].str.replace("_", " ")
    assert len(row) == 1 and 0 < row[0].count("<figure>") <= 8
    captions = [x.split("</figcaption>")[0] for x in row[0].split("<figcaption>")[1:]]
    assert len(captions) == row[0].count("<figure>") and set(captions) <= set(events)
    assert '<img src="data:image/' in row[0]


def test_unknown_user_gets_a_message_and_cold_start_recommendations(page):
    at = page
    at.text_input(key="fy_user").set_value("nobody-here").run()
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "No history" in infos and "cold-start" in infos
    assert len(_cards(at)) >= at.slider(key="fy_k").value


def test_persona_buttons_switch_user(page):
    at = page
    before = at.text_input(key="fy_user").value
    buttons = [b for b in at.button if b.key and b.key.startswith("fy_p_")]
    assert len(buttons) >= 2
    target = next(b for b in buttons if not b.key.endswith(before))
    target.click().run()
    assert at.text_input(key="fy_user").value == target.key.removeprefix("fy_p_")


def test_personalized_search_shows_both_rankings(page, tiny_catalog):
    at = page
    at.text_input(key="fy_query").set_value("sneakers").run()
    assert not at.exception
    md = _markdown(at)
    assert "**Not personalized** (BM25)" in md
    assert any(m.startswith("**Personalized for") for m in md)
    k, models = at.slider(key="fy_k").value, at.multiselect(key="fy_models").value
    assert len(_cards(at)) == k * len(models) + 2 * k  # both rankings' cards are there


def test_personalized_search_that_matches_nothing_says_why(page, tiny_catalog):
    at = page
    at.text_input(key="fy_query").set_value("zorblax").run()  # a word no product text has
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("No results for “zorblax” with BM25.")
    assert "No product text contains any of the query's words" in warning


def test_cli_recommend_json_and_batch(tiny_catalog, tmp_path, capsys):
    user = tiny_catalog.table("interactions")["user_id"].iat[0]
    assert main(["recommend", "--catalog", "tiny", "--user", user, "--method", "als",
                 "--top-k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["user_id"] == user and len(out["item_ids"]) == 5
    assert out["scores"] == sorted(out["scores"], reverse=True)
    users = tmp_path / "users.txt"
    users.write_text(f"{user}\nnobody-here\n")
    dest = tmp_path / "recs.jsonl"
    assert main(["recommend", "--catalog", "tiny", "--users", str(users), "--out", str(dest)]) == 0
    rows = [json.loads(x) for x in dest.read_text().splitlines()]
    assert [r["user_id"] for r in rows] == [user, "nobody-here"]
    assert rows[1]["notes"] and len(rows[1]["item_ids"]) == 10


def test_cli_recommend_bad_input_is_one_clear_line(tiny_catalog, capsys):
    assert main(["recommend", "--catalog", "tiny", "--user", "u1", "--method", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown recommender 'nope'; valid:" in err and "Traceback" not in err
    assert main(["recommend", "--catalog", "tiny", "--user", "u1", "--top-k", "0"]) == 2
    assert "Top-k must be from 1" in capsys.readouterr().err


def test_serving_service_answers_like_the_plain_one(tiny_catalog):
    """The app's memoised service gives the plain service's histories and reasons, for users
    with a history (asked twice: the second answer comes from its memo) and without one."""
    from engine.recommend.service import RecommendationService
    from engine.serving.recommendations import ServingRecommendations

    plain = RecommendationService.for_catalog(tiny_catalog)
    served = ServingRecommendations.for_catalog(tiny_catalog)
    inter = tiny_catalog.table("interactions")
    users = inter.loc[inter["split"] == "train", "user_id"].value_counts().index[:3].tolist()
    items = tiny_catalog.item_ids[:5]
    for user in [*users, "no-such-user"]:
        for _ in range(2):
            assert served.history(user, 8).equals(plain.history(user, 8))
            assert [served.why(user, str(i)) for i in items] == [
                plain.why(user, str(i)) for i in items
            ]


@pytest.mark.parametrize("memoised", [False, True])
def test_reason_skips_history_items_without_features(tiny_catalog, memoised):
    """A history item the feature index does not know is left out of the reason (its neighbours
    are not shifted onto other items), and an unknown item gets the generic reason; for the
    plain service and the app's memoised one."""
    from engine.recommend.service import RecommendationService
    from engine.serving.recommendations import ServingRecommendations

    served = (ServingRecommendations if memoised else RecommendationService).for_catalog(
        tiny_catalog)
    inter = tiny_catalog.table("interactions")
    user = inter.loc[inter["split"] == "train", "user_id"].value_counts().index[0]
    item = str(tiny_catalog.item_ids[0])
    before = served.why(user, item, n=1)
    hist = served._history_ids(user)[:50]
    data = served._data()
    nearest = before.removeprefix("Like ").split(".")[0]
    titles = served._attributes()[1]["title"]
    pos = served._attributes()[0]
    drop = next(i for i in hist if titles[pos[i]] == nearest)  # the nearest history item
    served._data().item_index = {k: v for k, v in data.item_index.items() if k != drop}
    after = served.why(user, item, n=1)
    assert after != before and nearest not in after.split(".")[0]
    assert served.why(user, "no-such-item") == "Popular or new in the catalog."
