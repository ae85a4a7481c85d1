"""PixelMatch: the Streamlit entry point. ``make run`` starts it; pages live in ``pages/``."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

# Before importing pages/: this app navigates with st.navigation, never by the pages folder
# (see pages/__init__.py for the relic this clears).
PagesManager.uses_pages_directory = False

import engine  # noqa: E402, F401  (offline hub and thread settings before any model import)
from engine.runtime import QUERY_THREADS, set_serving_threads  # noqa: E402
from pages.cache_diag import timed_page_run  # noqa: E402

ASSETS = Path(__file__).resolve().parent / "assets"
st.set_page_config(page_title="PixelMatch", page_icon=str(ASSETS / "icon.png"), layout="wide")
st.logo(str(ASSETS / "logo.png"), size="large", icon_image=str(ASSETS / "icon.png"))
set_serving_threads(QUERY_THREADS)


def page(script: str, title: str, icon: str, **kw) -> st.Page:
    """A page of ``pages/`` with a Material icon (emoji fonts are not everywhere)."""
    return st.Page(f"pages/{script}.py", title=title, icon=f":material/{icon}:", **kw)


PAGES = {
    "Search": [
        page("text_search", "Text search", "search", default=True),
        page("image_search", "Image search", "image_search"),
        page("multimodal_search", "Multimodal search", "join_inner"),
        page("for_you", "For you", "person"),
    ],
    "Analysis": [
        page("compare", "Compare methods", "compare"),
        page("benchmarks", "Benchmarks & latency", "monitoring"),
        page("review", "Relevance review", "rate_review"),
    ],
    "Catalog": [
        page("catalog_explorer", "Catalog explorer", "grid_view"),
    ],
}

current = st.navigation(PAGES)
with timed_page_run(current):  # a no-op unless PIXELMATCH_DIAG_FILE is set
    current.run()
