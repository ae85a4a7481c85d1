"""For you: a user's history, their recommendations from 2–3 models, and personalized search."""

from __future__ import annotations

import streamlit as st

from engine.serving.personalize import BASE_METHOD, personalized_search
from pages.cache_diag import timed_page_run
from pages.card_html import cards_html, history_html
from pages.shared import (
    card_image_uri,
    catalog_key,
    current_catalog,
    esc,
    guarded,
    html_card,
    method_unavailable,
    not_built_yet,
    persona_users,
    recommendation_service,
)

catalog = current_catalog()
st.title("For you", anchor=False)
if "recommend" not in catalog.built_steps:
    why = catalog.unavailable("recommend")
    if why != "it has not been built":  # e.g. a catalog without interactions
        st.warning(f"This catalog has no recommenders: {why}.")
        st.stop()
    not_built_yet(catalog, "Recommendations", "the recommenders",
                  "This catalog has no recommenders: it has not been built.")
service = recommendation_service(*catalog_key())
personas = persona_users(*catalog_key())


def _use_persona(user_id: str) -> None:
    st.session_state["fy_user"] = user_id


cols = st.columns(len(personas) + 1, vertical_alignment="bottom")
user_id = cols[0].text_input("User id", key="fy_user", value=next(iter(personas.values())))
for col, (label, uid) in zip(cols[1:], personas.items()):
    col.button(label, key=f"fy_p_{uid}", on_click=_use_persona, args=(uid,), width="stretch")
if catalog.is_synthetic:
    st.caption(
        "Personas are picked from the synthetic world's ground-truth tastes, which no "
        "recommender sees: check whether the recommendations fit them."
    )
user_id = user_id.strip()

models = service.models()
default = [m for m in ("hybrid", "als", "two_tower") if m in models]
chosen = st.multiselect("Models", models, default=default, max_selections=3, key="fy_models")
k = st.slider("Recommendations", 5, 20, 10, key="fy_k")


def cards(entries: list[tuple[int, float | None, str | None]], image_px: int = 120) -> None:
    """A column of widget-free cards as one HTML element: (row, score, reason) each."""
    st.html(cards_html([html_card(catalog, row, score, why) for row, score, why in entries],
                       image_px=image_px))


history = service.history(user_id, 8)
st.subheader("Recent history", anchor=False)
if not len(history):
    st.info(
        f"No history for “{esc(user_id)}” before the training cutoff: the recommendations "
        "below are cold-start recommendations."
    )
else:
    st.html(history_html([
        (card_image_uri(catalog, row), str(catalog.items["title"].iat[row]),
         str(event).replace("_", " "))
        for row, event in zip([catalog.row_of[i] for i in history["item_id"]], history["event"])
    ]))

if chosen:
    st.subheader("Recommended", anchor=False)
    rcols = st.columns(len(chosen))
    for col, name in zip(rcols, chosen):
        with col:
            st.markdown(f"#### {esc(name)}")
            try:
                recs = service.recommend(user_id, name, k=k)
            except Exception as exc:  # a broken model: the other columns still work
                method_unavailable(name, exc)
                continue
            st.caption(f"{recs.latency_ms:.1f} ms")
            for note in recs.notes:
                st.info(esc(note))
            cards([(catalog.row_of[str(i)], float(sc), service.why(user_id, str(i)))
                   for i, sc in zip(recs.item_ids, recs.scores)])


@st.fragment
def personalized_search_section(user_id: str, models: list[str], k: int) -> None:
    """Search, then re-rank for the user. A fragment: typing a query or moving the slider reruns
    this section only, not the history and recommendation cards above it (a full run of the page
    still runs it, with the user and models of that run)."""
    with timed_page_run("For you · personalized search"):  # only its own reruns are recorded
        _personalized_search(user_id, models, k)


def _personalized_search(user_id: str, models: list[str], k: int) -> None:
    st.subheader("Personalized search", anchor=False)
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    query = c1.text_input("Search", key="fy_query", placeholder="e.g. sneakers")
    model = c2.selectbox(
        "Personalize with",
        models,
        index=models.index("hybrid") if "hybrid" in models else 0,
        key="fy_pmodel",
    )
    weight = c3.slider("Personalization", 0.0, 2.0, 0.7, 0.1, key="fy_weight")
    if not query.strip():
        return
    found = guarded(
        BASE_METHOD,
        lambda: personalized_search(catalog, service, user_id, query, model=model, weight=weight),
    )
    if found is None:
        return
    if not len(found.rows):
        st.warning(
            f"No results for “{esc(query.strip())}” with {esc(found.method.upper())}. "
            + " ".join(esc(n) for n in found.notes)
        )
        return
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Not personalized** ({esc(found.method.upper())})")
        cards([(int(row), float(score), None)
               for row, score in zip(found.rows[:k], found.scores[:k])])
    with right:
        st.markdown(f"**Personalized for {esc(user_id)}** ({esc(model)}, weight {weight:.1f})")
        cards([(int(row), None, None) for row in found.personalized_rows[:k]])


personalized_search_section(user_id, models, k)
