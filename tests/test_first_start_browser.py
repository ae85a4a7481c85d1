"""A first start in a real browser (``e2e.first_start`` on the tiny preset): ``make run`` on an
empty data folder shows the build, then the app on the partial catalog, which searches, then
the complete catalog; Ctrl+C stops it all. Run with ``make test-browser``."""

from __future__ import annotations

import pytest

from e2e.browser import unavailable_reason
from e2e.first_start import measure, page_state, published_steps
from e2e.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_page_state_and_published_steps(tmp_path):
    assert page_state("Building the catalog\n3 of 10 steps") == "panel"
    assert page_state("Text search\nFind products by describing them.") == "app"
    assert page_state("Connection error") == "other"
    manifest = tmp_path / "manifest.json"
    assert published_steps(manifest) is None
    manifest.write_text('{"partial": true, "steps": {"world": {}, "lexical": {}}}')
    assert published_steps(manifest) == (True, ["lexical", "world"])
    manifest.write_text('{"steps": ')
    assert published_steps(manifest) is None


def test_a_first_start_serves_the_partial_catalog_then_the_whole_one():
    if (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    body = measure("tiny", free_port(), max_seconds=600)
    events = body["events"]
    assert body["complete"], events
    assert events[0]["page"] == "panel" and events[0]["steps"] is None
    assert any(e["page"] == "app" and e["partial"] for e in events), events
    assert "results for “red backpack” with" in body["first_search"]["shown"]
    assert body["build_partial"] is None and set(body["step_seconds"]) >= {"world", "lexical"}
