"""Driving Debian's Chromium with Playwright: launch settings and the signs of a broken page.

Never downloads a browser (no ``playwright install``): ``/usr/bin/chromium`` or nothing.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXCEPTION = "[data-testid='stException']"
# What Streamlit shows when the page loses its server (websocket closed or never opened).
CONNECTION_LOST = ("Connection error", "Is Streamlit still running?")


def unavailable_reason() -> str | None:
    """Why a real-browser run is impossible here, or None when Chromium and Playwright exist."""
    if not CHROMIUM.exists():
        return "Debian's Chromium is not installed: apt-get install chromium"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def launch_options() -> dict:
    """Keyword arguments for ``playwright.chromium.launch``."""
    return {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS, "headless": True}


def problems(body: str, n_exceptions: int) -> list[str]:
    """Errors visible on a page, given its text and its number of exception elements."""
    found = []
    if n_exceptions:
        found.append(f"{n_exceptions} exception element(s)")
    if "Traceback" in body:
        found.append("a Traceback in the page text")
    found += [f"connection problem: {s!r}" for s in CONNECTION_LOST if s in body]
    return found
