"""PixelMatch: the Streamlit entry point. ``make run`` starts it; pages live in ``pages/``."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import engine  # noqa: F401  (offline hub and thread settings before any model import)
from engine.runtime import QUERY_THREADS, set_threads

ASSETS = Path(__file__).resolve().parent / "assets"
st.set_page_config(page_title="PixelMatch", page_icon=str(ASSETS / "icon.png"), layout="wide")
st.logo(str(ASSETS / "logo.png"), size="large", icon_image=str(ASSETS / "icon.png"))
set_threads(QUERY_THREADS)

ICON = ":material/{}:"
PAGES = {
    "Search": [
        st.Page(
            "pages/text_search.py", title="Text search", icon=":material/search:", default=True
        ),
        st.Page("pages/image_search.py", title="Image search", icon=":material/image_search:"),
        st.Page(
            "pages/multimodal_search.py", title="Multimodal search", icon=":material/join_inner:"
        ),
    ],
    "Analysis": [
        st.Page("pages/compare.py", title="Compare methods", icon=ICON.format("compare")),
        st.Page(
            "pages/benchmarks.py", title="Benchmarks & latency", icon=ICON.format("monitoring")
        ),
    ],
    "Catalog": [
        st.Page(
            "pages/catalog_explorer.py", title="Catalog explorer", icon=ICON.format("grid_view")
        ),
    ],
}

st.navigation(PAGES).run()
