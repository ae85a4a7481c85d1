"""Text search: type a query, pick a method, see the ranked products and each stage's latency."""

from __future__ import annotations

import streamlit as st

from engine.retrieval.registry import available_retrievers
from pages.shared import (
    current_catalog,
    esc,
    method_select,
    result_grid,
    show_timings,
    understood_search,
)

EXAMPLES = (
    "navy polka dot backpack",
    "crimson knapsack with spots",
    "striped tee under $30",
    "leather boots not black",
    "new arrivals ceramic mug",
)

catalog = current_catalog()
st.title("Text search", anchor=False)
st.caption(
    "Find products by describing them. Titles rarely name colours or patterns: compare "
    "how each method copes."
)

methods = available_retrievers(catalog, "text")
with st.form("text-search", border=False):
    q_col, m_col, k_col, b_col = st.columns([5, 2, 1, 1], vertical_alignment="bottom")
    query = q_col.text_input("Query", key="text_query", placeholder="e.g. navy polka dot backpack")
    method = method_select("Method", methods, "text_method", container=m_col)
    top_k = k_col.number_input("Top-k", min_value=1, max_value=100, value=15, key="text_top_k")
    b_col.form_submit_button("Search", type="primary", width="stretch")

st.caption("Try: " + " · ".join(f"`{esc(e)}`" for e in EXAMPLES))

text = st.session_state.get("text_query", "")
if not text or not text.strip():
    st.info("Type a query above to search the catalog.")
    st.stop()

result = understood_search(catalog, method, "text", text, k=int(top_k))

if not len(result):
    st.warning(f"No results for “{esc(text)}”. " + " ".join(esc(n) for n in result.notes))
    st.stop()
st.markdown(f"**{len(result)}** results for “{esc(text)}” with **{esc(method)}**")
show_timings(result)
for note in result.notes:
    st.caption(f"ℹ️ {esc(note)}")
result_grid(catalog, result.rows, result.scores, key="text")
