"""Multimodal search: a text and an image together, a weight between them, a fusion strategy."""

from __future__ import annotations

import streamlit as st

from engine.retrieval.registry import available_retrievers
from pages.image_query import image_query_picker, more_like_this, show_query_image
from pages.shared import (
    clip_notice,
    current_catalog,
    esc,
    method_select,
    require_methods,
    result_grid,
    search_or_stop,
    show_timings,
    understood_search,
)

catalog = current_catalog()
st.title("Multimodal search", anchor=False)
st.caption("Describe what you want and show a picture: e.g. this bag, but in red.")
clip_notice(catalog)

strategies = available_retrievers(catalog, "image", mixing=True)
require_methods(catalog, strategies, "Multimodal search")
left, right = st.columns([1, 3])
with left:
    text = st.text_input("Text", key="mm_text", placeholder="e.g. in red, striped")
    decoded = image_query_picker(catalog, "mm")
    weight = st.slider(
        "Image weight",
        0.0,
        1.0,
        0.5,
        0.05,
        key="mm_weight",
        help="0 = only the text counts, 1 = only the image counts",
    )
    method = method_select("Fusion strategy", strategies, "mm_method")
    top_k = st.slider("Results", min_value=5, max_value=50, value=15, step=5, key="mm_top_k")
    if decoded is not None:
        show_query_image(decoded)

with right:
    if decoded is None and not text.strip():
        st.info("Type a text, choose an image, or both.")
        st.stop()
    if text.strip():
        result = understood_search(
            catalog, method, "mm", text, image=decoded, k=top_k, image_weight=weight
        )
    else:
        result = search_or_stop(catalog, method, image=decoded, k=top_k, image_weight=weight)
    parts = [f"“{esc(text.strip())}”"] if text.strip() else []
    if decoded is not None:
        parts.append(f"the image (weight {weight:.2f})")
    st.markdown(f"**{len(result)}** results for {' + '.join(parts)} with **{method}**")
    show_timings(result)
    result_grid(
        catalog,
        result.rows,
        result.scores,
        columns=4,
        key="mm",
        more_like_this=lambda item_id: more_like_this("mm", item_id),
    )
