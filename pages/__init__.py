"""Streamlit pages (registered in app.py with st.navigation) and their shared helpers.

Streamlit 1.67 keeps a relic of its first multipage API: while the class flag
``PagesManager.uses_pages_directory`` is set (it is, because this folder is named ``pages/``),
a run executes the page its URL names from this folder *without* ``app.py``. Only a call to
``st.navigation`` clears the flag, for the whole server. So a server whose first visitor opened
a deep link (``/for_you``) never ran ``app.py`` for anyone: the sidebar listed this folder's
files (helpers included), the logo was missing and the one-thread query setting was never made.

``app.py`` clears the flag before it imports this package. If the flag is still set when this
package is first imported, a page is running without ``app.py``: clear it and rerun, so that
run (and every later one) goes through ``app.py``'s navigation, on the same page.
"""

from __future__ import annotations


def _adopt_navigation() -> None:
    """Clear Streamlit's pages-folder relic; rerun a page run that bypassed ``app.py``."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    if get_script_run_ctx() is not None:
        import streamlit as st

        st.rerun()


_adopt_navigation()
