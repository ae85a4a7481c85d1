"""Catalog explorer: browse and filter the products; open one to see everything about it."""

from __future__ import annotations

import streamlit as st

from engine.serving.explore import filter_rows
from pages.embedding_map import embedding_map
from pages.shared import (
    catalog_key,
    current_catalog,
    esc,
    facet_values,
    item_details,
    result_grid,
    truth_label,
)

PAGE_SIZE = 20

catalog = current_catalog()
items = catalog.items
key = catalog_key()
st.title("Catalog explorer", anchor=False)

with st.sidebar:
    st.markdown("**Filters**")
    cats = st.multiselect("Category", facet_values(*key, "category"), key="ex_cat")
    truth = truth_label(catalog)
    colours = st.multiselect(f"Colour ({truth})", facet_values(*key, "colour"), key="ex_col")
    patterns = st.multiselect(f"Pattern ({truth})", facet_values(*key, "pattern"), key="ex_pat")
    lo, hi = float(items["price"].min()), float(items["price"].max())
    price = st.slider("Price", min_value=lo, max_value=hi, value=(lo, hi), key="ex_price")
    age = st.radio("Launch", ["all", "existing", "new"], horizontal=True, key="ex_age")
    title_filter = st.text_input("Title contains", key="ex_title")

rows = filter_rows(
    items,
    truth=catalog.truth,
    facets={"category": cats, "colour": colours, "pattern": patterns},
    price=price,
    launch=age,
    title_contains=title_filter,
)


def _close() -> None:
    st.session_state["ex_open"] = None
    st.session_state["map_version"] = st.session_state.get("map_version", 0) + 1  # clear selection


opened = st.session_state.get("ex_open")
if opened is not None and 0 <= opened < len(items):
    with st.container(border=True):
        item_details(catalog, int(opened))
        st.button("Close", key="ex_close", on_click=_close)

browse, emb_map = st.tabs(["Browse", "Embedding map"])
with emb_map:
    embedding_map(catalog)

with browse:
    n_pages = max(1, -(-len(rows) // PAGE_SIZE))
    top = st.columns([3, 1], vertical_alignment="bottom")
    top[0].markdown(f"**{len(rows):,}** of {len(items):,} products match")
    page = top[1].number_input("Page", min_value=1, max_value=n_pages, value=1, key="ex_page")
    if not len(rows):
        st.info("No product matches these filters. Clear a filter in the sidebar to see more.")
    else:
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        result_grid(catalog, shown, key="explore", on_open="ex_open")
        st.caption(f"Page {page} of {n_pages} · {esc(catalog.name)} catalog")
