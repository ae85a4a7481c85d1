"""Image search: upload an image (or pick a catalog or sample image) and find products like it."""

from __future__ import annotations

import streamlit as st

from engine.retrieval.registry import available_retrievers, retriever_class
from engine.search import QueryError
from pages.image_query import image_query_picker, more_like_this, show_query_image
from pages.shared import (
    catalog_key,
    clip_notice,
    current_catalog,
    result_grid,
    run_search,
    show_timings,
    warm_retriever,
)

catalog = current_catalog()
st.title("Image search", anchor=False)
st.caption("Find products that look like a picture: same kind of thing, colour and pattern.")
clip_notice(catalog)

methods = available_retrievers(catalog, "image")
if not methods:
    st.warning("This catalog has no visual index yet.")
    st.code(catalog.manifest.get("rebuild_command", "python -m engine build"), language="bash")
    st.stop()
left, right = st.columns([1, 3])
with left:
    decoded = image_query_picker(catalog, "img")
    method = st.selectbox(
        "Method",
        methods,
        key="img_method",
        help="\n".join(f"**{m}**: {retriever_class(m).description}" for m in methods),
    )
    top_k = st.slider("Results", min_value=5, max_value=50, value=15, step=5, key="img_top_k")
    if decoded is not None:
        show_query_image(decoded)

with right:
    if decoded is None:
        st.info("Choose a query image on the left.")
        st.stop()
    warm_retriever(*catalog_key(), method)
    try:
        result = run_search(catalog, method, image=decoded, k=top_k)
    except QueryError as exc:
        st.warning(str(exc))
        st.stop()
    st.markdown(f"**{len(result)}** similar products with **{method}**")
    show_timings(result)
    result_grid(
        catalog,
        result.rows,
        result.scores,
        columns=4,
        key="img",
        more_like_this=lambda item_id: more_like_this("img", item_id),
    )
