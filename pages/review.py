"""Relevance review (stakeholder mode, in the spirit of Quepid): rate each method's results 0–3.

The reviewer enters their name, picks the catalog's test queries or types their own, picks the
methods, and grades each result with one click. Every click is saved at once in the local
judgment database (``data/judgments.db``) with the reviewer's name and the UTC time, so closing
the tab loses nothing and several reviewers can rate at the same time. Below the results:
metrics recomputed from the human grades next to the generated ones, reviewer agreement, and
CSV export / import.
"""

from __future__ import annotations

import hashlib
import sqlite3

import pandas as pd
import streamlit as st

from engine.judgments.agreement import mean_agreement, pairwise_agreement
from engine.judgments.csvio import import_csv, to_csv_text
from engine.judgments.qrels import AGGREGATION, build_qrels
from engine.judgments.store import GRADE_LABELS, GRADES, JudgmentStore, check_reviewer
from engine.retrieval.registry import available_retrievers, retriever_class
from engine.schema import RELEVANT_GRADE
from engine.search import QueryError, clean_query_text
from engine.serving.review import catalog_qrels_by_text, query_set_summary, query_summary
from pages.shared import current_catalog, esc, item_caption, try_search

SCALE = " · ".join(f"**{g}** {label}" for g, label in GRADE_LABELS.items())
KEYBOARD = (
    "Click a grade to save it; click it again to take it back. Keyboard: Tab moves to the next "
    "grade button, Enter or Space picks it."
)


def rating_key(digest: str, method: str, item_id: str) -> str:
    """Session key of one grade control (``rv|<catalog+query+reviewer>|<method>|<item>``)."""
    return f"rv|{digest}|{method}|{item_id}"


def save_grade(
    key: str,
    catalog: str,
    query: str,
    item_id: str,
    title: str,
    reviewer: str,
    digest: str,
    methods: tuple[str, ...],
) -> None:
    """On click: store (or take back) the grade now, and show it in the other methods' columns."""
    grade = st.session_state[key]
    store = JudgmentStore()
    try:
        if grade is None:
            store.delete(catalog, query, item_id, reviewer)
            st.session_state["rv_saved"] = f"Took back your grade for “{title}”."
        else:
            saved = store.rate(catalog, query, item_id, grade, reviewer)
            st.session_state["rv_saved"] = (
                f"Saved grade {saved.grade} for “{title}” at {saved.judged_at} (UTC)."
            )
    except (ValueError, sqlite3.Error) as exc:
        st.session_state["rv_error"] = f"The grade was not saved: {exc}"
        return
    for other in methods:
        twin = rating_key(digest, other, item_id)
        if twin != key and twin in st.session_state:
            st.session_state[twin] = grade


catalog = current_catalog()
try:
    store = JudgmentStore()
except (OSError, sqlite3.Error) as exc:  # e.g. a read-only data folder
    st.error(esc(f"The judgment database cannot be opened: {exc}"))
    st.stop()
st.title("Relevance review", anchor=False)
st.caption(
    "Grade each method's results for a query. Every grade is saved at once, with your name and "
    f"the time, in `{esc(store.path.name)}` in the data folder. " + KEYBOARD
)

# -- who -----------------------------------------------------------------------------------------
if "rv_name" not in st.session_state and st.session_state.get("reviewer"):
    st.session_state["rv_name"] = st.session_state["reviewer"]  # back from another page
name = st.text_input("Your name", key="rv_name", max_chars=100)
try:
    reviewer = check_reviewer(name)
except ValueError:
    st.info("Enter your name to start rating: every grade is saved with it.")
    st.stop()
st.session_state["reviewer"] = reviewer

# -- which queries -------------------------------------------------------------------------------
mine_all = store.judgments(catalog.name, reviewer=reviewer)
rated_by_me: dict[str, int] = {}
for j in mine_all:
    rated_by_me[j.query] = rated_by_me.get(j.query, 0) + 1
source = st.radio(
    "Queries", ["Catalog test queries", "My own queries"], horizontal=True, key="rv_source"
)
if source == "Catalog test queries":
    queries_df = catalog.table("queries")
    query_set = list(
        dict.fromkeys(
            " ".join(q.split()) for q in queries_df.loc[queries_df["split"] == "test", "query"]
        )
    )
else:
    typed = st.text_area("One query per line", key="rv_own", placeholder="navy polka dot backpack")
    query_set = []
    for line in typed.splitlines():
        try:
            cleaned = clean_query_text(line)
        except QueryError as exc:
            st.warning(esc(str(exc)))
            continue
        if cleaned and cleaned not in query_set:
            query_set.append(cleaned)
    if not query_set:
        st.info("Type one or more queries, one per line.")
        st.stop()
query = st.selectbox(
    f"Query ({sum(q in rated_by_me for q in query_set)} of {len(query_set)} rated by you)",
    query_set,
    format_func=lambda q: f"{q}  ·  {rated_by_me[q]} rated" if q in rated_by_me else q,
    key="rv_query",
)
if query is None:
    st.stop()

# -- which methods -------------------------------------------------------------------------------
options = available_retrievers(catalog, "text")
if "rv_methods" not in st.session_state:
    preferred = [m for m in ("bm25", "hybrid", "clip") if m in options]
    st.session_state["rv_methods"] = (preferred + [m for m in options if m not in preferred])[:2]
methods = st.multiselect(
    "Methods",
    options,
    max_selections=4,
    key="rv_methods",
    help="\n".join(f"**{m}**: {retriever_class(m).description}" for m in options),
)
k = st.slider("Results per method", 3, 20, 10, key="rv_k")
if not methods:
    st.info("Pick at least one method.")
    st.stop()

if msg := st.session_state.pop("rv_error", None):
    st.error(esc(msg))
if msg := st.session_state.pop("rv_saved", None):
    st.caption(esc(msg))
st.markdown(f"Rating as **{esc(reviewer)}** · query: **{esc(query)}**")
st.caption(f"Scale: {SCALE}")

# -- results and grades --------------------------------------------------------------------------
results = {}
for m in methods:
    result = try_search(catalog, m, name_method=True, text=query, k=k)
    if result is not None:
        results[m] = result
ids = {m: [str(catalog.item_ids[r]) for r in res.rows] for m, res in results.items()}
mine = {j.item_id: j.grade for j in mine_all if j.query == query}
digest = hashlib.sha1(f"{catalog.name}\n{query}\n{reviewer}".encode()).hexdigest()[:12]

everyone = build_qrels(store.judgments(catalog.name, query=query)).get(query, {})
generated = catalog_qrels_by_text(catalog).get(query)
st.dataframe(query_summary(ids, everyone, generated, k), hide_index=True)
st.caption(
    f"Human metrics use every reviewer's grades for this query, combined by the {AGGREGATION}; "
    f"unjudged results count as not relevant (see the unjudged column). Relevant = grade ≥ "
    f"{RELEVANT_GRADE}."
)

cols = st.columns(len(results)) if results else []
for col, m in zip(cols, results):
    with col:
        st.markdown(f"#### {esc(m)}")
        for i, (row, item_id) in enumerate(zip(results[m].rows, ids[m])):
            title = str(catalog.items["title"].iat[int(row)])
            key = rating_key(digest, m, item_id)
            if key not in st.session_state:
                st.session_state[key] = mine.get(item_id)
            with st.container(border=True):
                st.image(str(catalog.image_path(int(row))), width=110)
                st.markdown(f"**{i + 1}. {esc(title)}**")
                st.caption(item_caption(catalog, int(row)))
                st.segmented_control(
                    f"Grade for {esc(title)}",
                    GRADES,
                    key=key,
                    on_change=save_grade,
                    args=(key, catalog.name, query, item_id, title, reviewer, digest, methods),
                    label_visibility="collapsed",
                    help=KEYBOARD,
                )

# -- the whole query set, agreement, CSV ----------------------------------------------------------
st.subheader("Across the query set", anchor=False)
judged_here = build_qrels(store.judgments(catalog.name))
judged_set = {q: judged_here[q] for q in query_set if q in judged_here}
if not judged_set:
    st.caption("No query of this set has been graded yet.")
elif st.toggle(f"Score the {len(judged_set)} graded queries of this set", key="rv_all"):
    with st.spinner("Running the graded queries…"):
        table = query_set_summary(catalog, methods, judged_set, catalog_qrels_by_text(catalog), k)
    st.dataframe(table, hide_index=True)

with st.expander("Reviewer agreement (Cohen's kappa)"):
    pairs = pairwise_agreement(store.judgments(catalog.name))
    if not pairs:
        st.caption("Agreement needs at least two reviewers on this catalog.")
    else:
        st.dataframe(pd.DataFrame(pairs), hide_index=True)
        mean = mean_agreement(pairs)
        st.caption(
            f"Mean pairwise kappa {mean['kappa']:.3f}, quadratic-weighted "
            f"{mean['kappa_quadratic']:.3f}, over {mean['pairs_with_kappa']} pair(s) that rated "
            "results in common (NaN: nothing in common, or no variation)."
        )

with st.expander("Export / import judgments (CSV)"):
    st.download_button(
        "Download this catalog's judgments",
        to_csv_text(store.judgments(catalog.name)),
        file_name=f"judgments-{catalog.name}.csv",
        mime="text/csv",
        key="rv_export",
    )
    upload = st.file_uploader("Import a judgments CSV", type=["csv"], key="rv_import")
    if upload is not None and st.session_state.get("rv_imported") != upload.file_id:
        try:
            read = import_csv(store, upload.getvalue().decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as exc:
            st.error(esc(f"Not imported: {exc}"))
        else:  # imported once per uploaded file; the summary stays while the file is there
            st.session_state["rv_imported"] = upload.file_id
            st.session_state["rv_import_summary"] = (bool(read.bad), read.summary())
    if upload is not None and st.session_state.get("rv_imported") == upload.file_id:
        had_bad, text = st.session_state["rv_import_summary"]
        (st.warning if had_bad else st.success)(esc(text))
    st.caption(
        "Columns: catalog, query, item_id, grade, reviewer, judged_at. Bad rows are listed, "
        "not dropped silently. `python -m engine bench --judgments FILE` scores every method "
        "against such a file."
    )
