"""Real-browser end-to-end tests: the app's Streamlit server + Debian's Chromium (Playwright).

One server (on a free loopback port, against the tiny catalog built by ``conftest.py``) and one
Chromium serve the whole module; each test opens its own browser context, walks one page's main
flow as a person would, asserts what appears, and saves a full-page screenshot to
``reports/screenshots/<page>.png``. ``PIXELMATCH_E2E_DATA=/path/to/data`` runs the same walk
against an existing data folder instead (e.g. the demo catalog, for the README screenshots).

Never downloads a browser (no ``playwright install``): skipped unless ``/usr/bin/chromium``
exists and ``playwright`` imports. Run with ``make test-browser``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.browser import EXCEPTION, launch_options, problems, unavailable_reason
from e2e.server import REPO, AppServer

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SCREENSHOTS = REPO / "reports" / "screenshots"
SAMPLES = REPO / "assets" / "samples"
WAIT = 90_000  # ms: the first query of a method loads its models
# True once the page is idle: no script running, no stale element, every image decoded.
SETTLED = """() =>
    !document.querySelector("[data-testid='stStatusWidgetRunningIcon']")
    && !document.querySelector("[data-stale='true'], [data-testid='stSkeleton']")
    && Array.from(document.images).every(i => i.complete)"""
FULL_HEIGHT = """() => Math.max(...["stMain", "stMainBlockContainer", "stAppViewContainer"]
    .map(t => document.querySelector(`[data-testid='${t}']`)?.scrollHeight || 0))"""
# Pages with a dedicated flow below; any other page of the navigation gets the generic walk.
WALKED = {
    "text_search",
    "image_search",
    "multimodal_search",
    "for_you",
    "compare",
    "benchmarks",
    "review",
    "catalog_explorer",
}


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The app served on a free loopback port; stops only the server it started."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    own = os.environ.get("PIXELMATCH_E2E_DATA")
    data = Path(own) if own else request.getfixturevalue("data_dir")
    if not own:
        request.getfixturevalue("tiny_catalog")  # build the tiny catalog first
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    server = AppServer(data, log)
    server.start()
    try:
        yield server
    finally:
        server.stop()
    server_log = server.log_text()
    assert "Traceback" not in server_log, server_log[-3000:]


@pytest.fixture(scope="module")
def browser(app: AppServer):
    """One headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(**launch_options())
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, app: AppServer) -> Iterator:
    """A fresh browser context (its own Streamlit session) and page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WAIT)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def open_page(page, app: AppServer, path: str, heading: str) -> None:
    """Go to a page of the app and wait for its title."""
    page.goto(f"{app.url}/{path}", wait_until="domcontentloaded")
    title = page.get_by_role("heading", name=heading, exact=True)
    refused = page.get_by_test_id("stAlert").or_(page.locator(EXCEPTION))
    title.or_(refused).first.wait_for()
    assert title.is_visible(), page.inner_text("[data-testid='stMain']")[:2000]
    # app.py ran, not the page alone: its navigation (titled, in sections) and logo are shown,
    # not Streamlit's listing of the pages/ folder (see pages/__init__.py), and the URL stayed.
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_text("Compare methods", exact=True).wait_for()
    assert nav.get_by_text("Analysis", exact=True).is_visible()
    assert not nav.get_by_text(re.compile(r"^(card html|cache diag|shared)$")).count()
    assert page.get_by_test_id("stSidebarLogo").or_(page.get_by_test_id("stLogo")).count()
    slug = "" if path == "text_search" else path  # the default page is served at the root
    assert page.url.rstrip("/") == f"{app.url}/{slug}".rstrip("/"), page.url


def settle(page) -> None:
    """Wait until Streamlit has finished the current run and every image has loaded."""
    page.wait_for_function(SETTLED, timeout=WAIT, polling=200)


def at_least(locator, n: int) -> int:
    """Wait until ``locator`` matches at least ``n`` elements; returns how many it matches."""
    locator.nth(n - 1).wait_for(state="attached")
    return locator.count()


def main_images(page, n: int) -> int:
    """Wait until the main area shows at least ``n`` images (st.image or an HTML card's);
    returns how many it shows."""
    return at_least(page.locator("[data-testid='stMain'] img"), n)


def finish(page, name: str) -> str:
    """Settle, save a full-page screenshot, assert the page shows no error; returns its text."""
    settle(page)
    # Streamlit scrolls inside its main container, not the document: grow the viewport to the
    # content's height so the screenshot holds the whole page.
    height = page.evaluate(FULL_HEIGHT)
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 9000))})
    settle(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    body = page.inner_text("body")
    assert problems(body, page.locator(EXCEPTION).count()) == []
    assert shot.stat().st_size > 10_000
    return body


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_text_search(page, app):
    open_page(page, app, "", "Text search")
    box = page.get_by_label("Query")
    box.fill("leather boots")
    box.press("Enter")
    page.get_by_text(re.compile("results for “leather boots” with")).wait_for()
    page.get_by_text(re.compile("^Latency: ")).wait_for()
    main_images(page, 5)

    choose(page, "Method", "bm25")  # switch method: the form applies it on submit
    page.get_by_role("button", name="Search").click()
    page.get_by_text(re.compile("results for “leather boots” with bm25")).wait_for()
    main_images(page, 5)
    body = finish(page, "text_search")
    assert "Latency:" in body


def test_image_search_upload(page, app):
    open_page(page, app, "image_search", "Image search")
    page.locator("input[type=file]").set_input_files(str(SAMPLES / "navy-dotted-backpack.jpg"))
    page.get_by_text(re.compile(r"\d+ similar products with")).wait_for()
    uploaded = page.get_by_test_id("stFileChipName")
    assert uploaded.get_attribute("title") == "navy-dotted-backpack.jpg"
    main_images(page, 1 + 5)  # the query image and the results

    page.get_by_role("combobox", name="More like this").click()  # the picker above the results
    page.get_by_role("option").first.click()
    expect_catalog_query = page.get_by_label("Product id")
    expect_catalog_query.wait_for()
    page.get_by_text(re.compile(r"\d+ similar products with")).wait_for()
    body = finish(page, "image_search")
    assert expect_catalog_query.input_value().strip()
    assert "Query image" in body


def test_multimodal_search(page, app):
    open_page(page, app, "multimodal_search", "Multimodal search")
    text = page.get_by_label("Text", exact=True)
    text.fill("in red")
    text.press("Enter")
    page.get_by_text(re.compile("results for “in red” with")).wait_for()
    page.locator("input[type=file]").set_input_files(str(SAMPLES / "pink-solid-dress.jpg"))
    page.get_by_text(re.compile(r"results for “in red” \+ the image \(weight 0\.50\)")).wait_for()
    main_images(page, 1 + 5)
    body = finish(page, "multimodal_search")
    assert "Latency:" in body


def test_for_you(page, app):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    open_page(page, app, "for_you", "For you")
    page.get_by_role("heading", name="Recommended").wait_for()
    user_box = page.get_by_label("User id")
    personas = page.get_by_role("button", name=re.compile("^loves "))
    at_least(personas, 2)
    first = user_box.input_value()
    changed = "u => document.querySelector(\"input[aria-label='User id']\").value !== u"
    for attempt in range(3):  # a click that lands while the first run still renders can be lost
        personas.nth(1).click()  # pick another user: the persona fills in the user id
        try:
            page.wait_for_function(changed, arg=first, timeout=30_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    # Type only once the user's run has finished: text typed into a widget that a run still in
    # progress then redraws can be reset to that run's value (a Streamlit race, not this app).
    settle(page)
    user = user_box.input_value()
    assert re.fullmatch(r"u\d+", user)
    at_least(page.get_by_text(re.compile("^Why: ")), 5)
    assert page.get_by_role("heading", name="Recent history").is_visible()

    search = page.get_by_label("Search", exact=True)
    search.fill("sneakers")
    search.press("Enter")
    page.get_by_text(f"Personalized for {user}").wait_for()
    # The search is a fragment: its rerun left the recommendations above it on screen.
    at_least(page.get_by_text(re.compile("^Why: ")), 5)
    settle(page)
    assert search.input_value() == "sneakers"
    # Another user (a full run): the search section follows, with the same query.
    user_box.fill(first)
    user_box.press("Enter")
    page.get_by_text(f"Personalized for {first}").wait_for()
    assert search.input_value() == "sneakers"
    body = finish(page, "for_you")
    assert "Not personalized" in body and f"Personalized for {user}" not in body


def test_compare_methods(page, app):
    open_page(page, app, "compare", "Compare methods")
    page.get_by_role("heading", name="Why this result?").wait_for()
    assert page.get_by_role("heading", name="bm25", exact=True).is_visible()
    main_images(page, 3 * 10)  # three methods side by side
    at_least(page.get_by_test_id("stDataFrame"), 2)  # overlap table, why-this-result table

    page.get_by_text("Labelled test query").click()
    page.get_by_text("Asks for:").wait_for()
    page.get_by_role("heading", name="Why this result?").wait_for()
    page.get_by_text(re.compile(r"grade [0-3]$")).first.wait_for()  # each result's grade
    at_least(page.get_by_test_id("stDataFrame"), 2)  # overlap, NDCG per method
    finish(page, "compare")


def test_benchmarks(page, app):
    open_page(page, app, "benchmarks", "Benchmarks & latency")
    page.get_by_role("tab", name="Quality").wait_for()
    if (REPO / "reports" / "benchmark.json").exists():
        page.get_by_text(re.compile("^Measured ")).first.wait_for()
        page.get_by_test_id("stPlotlyChart").first.wait_for()
        page.get_by_role("tab", name="Latency", exact=True).click()
        page.get_by_text("Query latency (total)").first.wait_for()
    page.get_by_role("tab", name="Live latency", exact=True).click()
    page.get_by_text(re.compile("queries run in this app process")).wait_for()
    finish(page, "benchmarks")


def test_review(page, app):
    if not (REPO / "pages" / "review.py").exists():
        pytest.skip("the Review page does not exist in this copy")
    open_page(page, app, "review", "Relevance review")
    reviewer = f"E2E Reviewer {os.getpid()}-{time.time_ns() % 10**6}"  # new to the judgment db
    name = page.get_by_label("Your name")
    name.fill(reviewer)
    name.press("Enter")
    page.get_by_text(f"Rating as {reviewer}").wait_for()
    main_images(page, 3)
    grades = page.get_by_test_id("stButtonGroup")
    at_least(grades, 3)
    grades.first.get_by_role("radio").last.click()  # the highest grade of the first result
    page.get_by_text(re.compile("^Saved grade")).wait_for()
    finish(page, "review")


def test_catalog_explorer(page, app):
    open_page(page, app, "catalog_explorer", "Catalog explorer")
    page.get_by_text(re.compile(r"products match")).wait_for()
    assert main_images(page, 20) == 20  # one page of products
    page.get_by_role("combobox", name="Open a product").click()  # the picker above the cards
    page.get_by_role("option").first.click()
    page.get_by_role("button", name="Close").wait_for()
    page.get_by_test_id("stDataFrame").first.wait_for()  # the product's attributes

    page.get_by_role("tab", name="Embedding map").click()
    page.get_by_text(re.compile(r"^Showing [\d,]+ of [\d,]+ products")).wait_for()
    page.get_by_role("tab", name="Browse").click()
    finish(page, "catalog_explorer")


def test_every_page_of_the_navigation_opens(page, app):
    """Each sidebar link opens its page without an error (new pages included)."""
    page.goto(app.url, wait_until="domcontentloaded")
    links = page.locator("[data-testid='stSidebarNav'] a[data-testid='stSidebarNavLink']")
    links.first.wait_for()
    targets = [
        (links.nth(i).get_attribute("href") or "", links.nth(i).inner_text().splitlines()[-1])
        for i in range(links.count())
    ]
    assert len(targets) >= 7
    for i, (href, title) in enumerate(targets):
        links.nth(i).click()
        page.wait_for_url(href)
        page.get_by_role("heading", name=title.strip(), exact=True).wait_for()
        slug = href.rstrip("/").rsplit("/", 1)[-1]
        slug = "text_search" if slug.endswith(f":{app.port}") else slug
        if slug in WALKED:
            settle(page)
            assert problems(page.inner_text("body"), page.locator(EXCEPTION).count()) == []
        else:
            finish(page, slug)
