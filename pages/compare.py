"""Compare methods side by side: same query, 2–4 methods, overlap, moves, and why each result.

Labelled mode picks a test query with judgments: each result shows its relevance grade, each
method its NDCG/recall for the query, and queries can be sorted by how much the methods disagree.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from engine.evaluation.metrics import jaccard_at_k, ndcg_at_k, rank_biased_overlap, recall_at_k
from engine.retrieval.registry import available_retrievers
from engine.search import QueryError, get_retriever
from engine.world.queries import RELEVANT_GRADE
from pages.image_query import image_query_picker
from pages.shared import (
    catalog_key,
    current_catalog,
    disagreement_table,
    esc,
    item_caption,
    method_unavailable,
    run_search,
    warm_retriever,
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
    try:
        warm_retriever(*catalog_key(), m)
        results[m] = run_search(catalog, m, text=text, image=decoded, k=k)
    except QueryError as exc:
        st.warning(f"{m}: {exc}")
    except Exception as exc:  # a broken index or model: the other methods are still compared
        method_unavailable(m, exc)
if len(results) < 2:
    st.stop()
ids = {m: [catalog.item_ids[r] for r in res.rows] for m, res in results.items()}

# -- overlap ------------------------------------------------------------------------------------
names = list(results)
pairs = [
    {
        "pair": f"{a} vs {b}",
        f"Jaccard@{k}": jaccard_at_k(ids[a], ids[b], k=k),
        "RBO (p=0.9)": rank_biased_overlap(ids[a], ids[b], p=0.9),
    }
    for i, a in enumerate(names)
    for b in names[i + 1 :]
]
st.dataframe(pd.DataFrame(pairs), hide_index=True)
if qrels:
    scores = [
        {
            "method": m,
            f"NDCG@{k}": ndcg_at_k(ids[m], qrels, k=k),
            f"recall@{k}": recall_at_k(ids[m], qrels, k=k, threshold=RELEVANT_GRADE),
        }
        for m in names
    ]
    df = pd.DataFrame(scores)
    df[f"Δ NDCG vs {names[0]}"] = df[f"NDCG@{k}"] - df[f"NDCG@{k}"].iloc[0]
    st.dataframe(df, hide_index=True)

# -- side-by-side results -----------------------------------------------------------------------
base_rank = {item: i for i, item in enumerate(ids[names[0]])}
cols = st.columns(len(names))
for col, m in zip(cols, names):
    res = results[m]
    with col:
        st.markdown(f"#### {esc(m)}")
        st.caption(f"{res.total_ms:.1f} ms")
        for i, (row, score) in enumerate(zip(res.rows, res.scores)):
            item_id = catalog.item_ids[row]
            with st.container(border=True):
                st.image(str(catalog.image_path(int(row))), width=110)
                moved = ""
                if m != names[0]:
                    before = base_rank.get(item_id)
                    moved = (
                        ":violet-badge[new]"
                        if before is None
                        else f":orange-badge[▲{before - i}]"
                        if before > i
                        else f":gray-badge[▼{i - before}]"
                        if before < i
                        else ""
                    )
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
    rows = []
    for other in available_retrievers(catalog, modality):
        if other in ("rrf", "hybrid"):
            continue
        try:
            r = run_search(catalog, other, text=text, image=decoded, k=100)
        except QueryError:
            continue
        except Exception:  # a broken method (shown as unavailable above or on its own page)
            rows.append({"retriever": other, "rank": "unavailable", "score": None})
            continue
        hit = [i for i, x in enumerate(r.rows) if int(x) == row]
        rows.append(
            {
                "retriever": other,
                "rank": str(hit[0] + 1) if hit else "> 100",
                "score": round(float(r.scores[hit[0]]), 4) if hit else None,
            }
        )
    st.markdown(f"**{esc(catalog.items['title'].iat[row])}** — each retriever's rank and score:")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    if wm == "hybrid" and text.strip():
        why = get_retriever(catalog, "hybrid").explain(text, row)
        st.markdown("Re-ranker's largest feature contributions (LightGBM per-row contributions):")
        st.dataframe(pd.DataFrame(why["contributions"]), hide_index=True)
