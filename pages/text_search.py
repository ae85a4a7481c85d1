"""Text search: type a query, pick a method, see the ranked products and each stage's latency."""

from __future__ import annotations

import streamlit as st

from engine.retrieval.registry import available_retrievers, retriever_class
from engine.search import QueryError
from pages.shared import (
    catalog_key,
    current_catalog,
    esc,
    result_grid,
    run_search,
    show_timings,
    warm_retriever,
)

EXAMPLES = (
    "navy polka dot backpack",
    "red sneakers",
    "leather boots",
    "striped mug",
    "something crimson",
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
    method = m_col.selectbox(
        "Method",
        methods,
        key="text_method",
        help="\n".join(f"**{m}**: {retriever_class(m).description}" for m in methods),
    )
    top_k = k_col.number_input("Top-k", min_value=1, max_value=100, value=15, key="text_top_k")
    b_col.form_submit_button("Search", type="primary", width="stretch")

st.caption("Try: " + " · ".join(f"`{esc(e)}`" for e in EXAMPLES))

text = st.session_state.get("text_query", "")
if not text or not text.strip():
    st.info("Type a query above to search the catalog.")
    st.stop()

warm_retriever(*catalog_key(), method)
try:
    result = run_search(catalog, method, text=text, k=int(top_k))
except QueryError as exc:
    st.warning(str(exc))
    st.stop()

if not len(result):
    st.warning(f"No results for “{esc(text)}”. " + " ".join(esc(n) for n in result.notes))
    st.stop()
st.markdown(f"**{len(result)}** results for “{esc(text)}” with **{esc(method)}**")
show_timings(result)
result_grid(catalog, result.rows, result.scores, key="text")
