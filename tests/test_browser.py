"""A real-browser smoke test: Streamlit server + Debian's Chromium driven by Playwright.

Never downloads a browser (no ``playwright install``): it skips unless ``/usr/bin/chromium``
exists and the ``playwright`` package imports. Run with ``make test-browser``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "reports" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@pytest.mark.slow
@pytest.mark.browser
def test_text_search_in_a_real_browser(tiny_catalog, data_dir, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")

    port = _free_port()
    env = {**os.environ, "PIXELMATCH_DATA": str(data_dir)}  # the tiny build is the only catalog
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{base}/_stcore/health", server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(base, wait_until="domcontentloaded", timeout=60_000)
                box = page.get_by_label("Query")
                box.wait_for(timeout=60_000)
                box.fill("leather boots")
                box.press("Enter")
                page.get_by_text("results for").first.wait_for(timeout=90_000)
                page.locator("[data-testid='stImage'] img").first.wait_for(timeout=30_000)
                page.wait_for_timeout(1500)  # let the remaining images paint
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                shot = SCREENSHOTS / "text_search.png"
                page.screenshot(path=str(shot), full_page=True)
                body = page.inner_text("body")
                n_exceptions = page.locator("[data-testid='stException']").count()
            finally:
                browser.close()
        assert "results for “leather boots”" in body
        assert "Latency:" in body
        assert "Traceback" not in body and n_exceptions == 0
        assert shot.stat().st_size > 10_000
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
    server_log = (tmp_path / "streamlit.log").read_text()
    assert "Traceback" not in server_log, server_log[-3000:]
