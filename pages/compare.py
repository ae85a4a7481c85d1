"""Compare methods side by side: same query, 2–4 methods, overlap, moves, and why each result.

Labelled mode picks a test query with judgments: each result shows its relevance grade, each
method its NDCG/recall for the query, and queries can be sorted by how much the methods disagree.
"""

from __future__ import annotations

import json

import streamlit as st

from engine.retrieval.registry import available_retrievers
from engine.serving.compare import (
    explanation,
    overlap_table,
    quality_table,
    rank_moves,
    why_ranks,
)
from pages.image_query import image_query_picker
from pages.shared import (
    catalog_key,
    current_catalog,
    disagreement_table,
    esc,
    item_caption,
    try_search,
)

GRADE_BADGE = {
    3: ":green-badge[grade 3]",
    2: ":blue-badge[grade 2]",
    1: ":gray-badge[grade 1]",
    0: ":red-badge[grade 0]",
}


def _wording_label(r) -> str:
    """A test query label's wording suffix: " · paraphrase", " · wild" or nothing (catalog)."""
    old = "paraphrase" if getattr(r, "paraphrase", False) else "catalog"  # catalogs built before
    wording = getattr(r, "wording", old)
    return "" if wording == "catalog" else f" · {wording}"


catalog = current_catalog()
st.title("Compare methods", anchor=False)
mode = st.radio("Mode", ["Free query", "Labelled test query"], horizontal=True, key="cmp_mode")
qrels: dict[str, int] = {}
decoded = None
if mode == "Free query":
    c1, c2 = st.columns([2, 1])
    text = c1.text_input("Text", key="cmp_text", value="navy polka dot backpack")
    with c2.expander("Add an image"):
        use_image = st.checkbox("Use an image query", key="cmp_use_image")
        decoded = image_query_picker(catalog, "cmp") if use_image else None
else:
    queries = catalog.table("queries")
    test = queries[queries["split"] == "test"].reset_index(drop=True)
    labels = {r.query_id: f"{r.query}  ·  {r.type}{_wording_label(r)}" for r in test.itertuples()}
    order = list(labels)
    if st.session_state.get("cmp_sorted"):
        order = st.session_state["cmp_sorted"]
    qid = st.selectbox("Test query", order, format_func=lambda q: labels[q], key="cmp_qid")
    text = test.set_index("query_id").loc[qid, "query"]
    qrels = catalog.qrels("text").get(qid, {})
    st.caption("Asks for: " + esc(json.loads(test.set_index("query_id").loc[qid, "attributes"])))

modality = "image" if decoded is not None and not text.strip() else "text"
options = available_retrievers(catalog, modality)
preferred = [m for m in ("bm25", "clip", "hybrid") if m in options]
defaults = (preferred + [m for m in options if m not in preferred])[:3]
if st.session_state.get("cmp_modality") != modality or "cmp_methods" not in st.session_state:
    # A new kind of query: start from methods that can answer it.
    st.session_state["cmp_modality"] = modality
    st.session_state["cmp_methods"] = defaults
methods = st.multiselect("Methods (2–4)", options, max_selections=4, key="cmp_methods")
k = st.slider("Results per method", 5, 20, 10, key="cmp_k")
if len(methods) < 2:
    st.info("Pick at least two methods.")
    st.stop()
if mode == "Labelled test query" and st.button("Sort test queries by biggest disagreement"):
    with st.spinner("Running every test query with each method…"):
        table = disagreement_table(*catalog_key(), tuple(methods))
    st.session_state["cmp_sorted"] = table["query_id"].tolist()
    st.rerun()

results = {}
for m in methods:
    result = try_search(catalog, m, name_method=True, text=text, image=decoded, k=k)
    if result is not None:
        results[m] = result
if len(results) < 2:
    st.stop()
ids = {m: [catalog.item_ids[r] for r in res.rows] for m, res in results.items()}

# -- overlap ------------------------------------------------------------------------------------
names = list(results)
st.dataframe(overlap_table(ids, k), hide_index=True)
if qrels:
    st.dataframe(quality_table(ids, qrels, k), hide_index=True)


def move_badge(moved: int | None) -> str:
    if moved is None:
        return ":violet-badge[new]"
    if moved > 0:
        return f":orange-badge[▲{moved}]"
    return f":gray-badge[▼{-moved}]" if moved < 0 else ""


# -- side-by-side results -----------------------------------------------------------------------
cols = st.columns(len(names))
for col, m in zip(cols, names):
    res = results[m]
    moves = rank_moves(ids[names[0]], ids[m]) if m != names[0] else [0] * len(ids[m])
    with col:
        st.markdown(f"#### {esc(m)}")
        st.caption(f"{res.total_ms:.1f} ms")
        for i, (row, score) in enumerate(zip(res.rows, res.scores)):
            item_id = catalog.item_ids[row]
            with st.container(border=True):
                st.image(str(catalog.image_path(int(row))), width=110)
                moved = move_badge(moves[i])
                grade = GRADE_BADGE[qrels.get(item_id, 0)] if qrels else ""
                st.markdown(
                    f"**{i + 1}.** {esc(catalog.items['title'].iat[int(row)])} {moved} {grade}"
                )
                st.caption(f"{item_caption(catalog, int(row))} · score {float(score):.3f}")

# -- why this result ----------------------------------------------------------------------------
st.subheader("Why this result?", anchor=False)
c1, c2 = st.columns(2)
wm = c1.selectbox("Method", names, key="why_method")
rank = c2.number_input("Rank", 1, max(1, len(results[wm])), 1, key="why_rank")
if len(results[wm]):
    row = int(results[wm].rows[rank - 1])
    st.markdown(f"**{esc(catalog.items['title'].iat[row])}** — each retriever's rank and score:")
    st.dataframe(why_ranks(catalog, row, text=text, image=decoded), hide_index=True)
    contributions = explanation(catalog, wm, text, row)
    if contributions is not None:
        st.markdown("Re-ranker's largest feature contributions (LightGBM per-row contributions):")
        st.dataframe(contributions, hide_index=True)
