"""Image search: upload an image (or pick a catalog or sample image) and find products like it."""

from __future__ import annotations

import streamlit as st

from engine.retrieval.registry import available_retrievers
from pages.image_query import image_query_picker, more_like_this, show_query_image
from pages.shared import (
    clip_notice,
    current_catalog,
    method_select,
    require_methods,
    result_grid,
    search_or_stop,
    show_timings,
)

catalog = current_catalog()
st.title("Image search", anchor=False)
st.caption("Find products that look like a picture: same kind of thing, colour and pattern.")
clip_notice(catalog)

methods = available_retrievers(catalog, "image")
require_methods(catalog, methods, "Image search")
left, right = st.columns([1, 3])
with left:
    decoded = image_query_picker(catalog, "img")
    method = method_select("Method", methods, "img_method")
    top_k = st.slider("Results", min_value=5, max_value=50, value=15, step=5, key="img_top_k")
    if decoded is not None:
        show_query_image(decoded)

with right:
    if decoded is None:
        st.info("Choose a query image on the left.")
        st.stop()
    result = search_or_stop(catalog, method, image=decoded, k=top_k)
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
