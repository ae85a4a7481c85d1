"""PixelMatch: the Streamlit entry point. ``make run`` starts it; pages live in ``pages/``."""

from __future__ import annotations

import streamlit as st

import engine  # noqa: F401  (offline hub and thread settings before any model import)
from engine.runtime import QUERY_THREADS, set_threads

st.set_page_config(page_title="PixelMatch", page_icon="🔎", layout="wide")
set_threads(QUERY_THREADS)

PAGES = {
    "Search": [
        st.Page("pages/text_search.py", title="Text search", icon="🔤", default=True),
        st.Page("pages/image_search.py", title="Image search", icon="🖼️"),
        st.Page("pages/multimodal_search.py", title="Multimodal search", icon="🧩"),
    ],
    "Analysis": [
        st.Page("pages/compare.py", title="Compare methods", icon="⚖️"),
        st.Page("pages/benchmarks.py", title="Benchmarks & latency", icon="📊"),
    ],
    "Catalog": [
        st.Page("pages/catalog_explorer.py", title="Catalog explorer", icon="🗂️"),
    ],
}

st.sidebar.markdown("### 🔎 PixelMatch")
st.sidebar.caption("Multimodal product search and retrieval-quality analysis")
st.navigation(PAGES).run()
