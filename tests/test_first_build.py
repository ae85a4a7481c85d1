"""A first build serves its finished steps while the others build: the partial manifest it
publishes after each step, the catalog opened from it, the app on it, and a rebuild of a
complete catalog, which never publishes one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.artifacts import ArtifactError, ArtifactStore
from engine.config import load_preset
from engine.pipeline import check, run_build
from engine.pipeline.live import LiveState
from engine.serving import open_catalog
from tests.catalog_fixtures import app_page

REBUILT = ("lexical", "fusion", "ranker", "vectorstore")  # the cheapest steps of the tiny build


def _copy(src: Path, dst: Path, drop: tuple[str, ...], manifest: bool) -> None:
    """The built tiny catalog's step folders (without those of ``drop``), and its manifest."""
    shutil.copytree(src / "steps", dst / "steps")
    for step in drop:
        for folder in (dst / "steps").glob(f"{step}-*"):
            shutil.rmtree(folder)
    if manifest:
        shutil.copy(src / "manifest.json", dst / "manifest.json")


def test_a_first_build_publishes_each_finished_step(tiny_manifest, data_dir, tmp_path,
                                                    monkeypatch):
    root = tmp_path / "tiny"
    _copy(data_dir / "artifacts" / "tiny", root, REBUILT, manifest=False)
    seen: dict[str, tuple] = {}
    published: list[set[str]] = []
    real = ArtifactStore.publish_partial

    def publish(store, manifest):
        published.append(set(manifest["steps"]))
        real(store, manifest)

    monkeypatch.setattr(ArtifactStore, "publish_partial", publish)

    def log(line: str) -> None:
        if "] building:" in line:
            manifest = json.loads((root / "manifest.json").read_text())
            status = check("tiny", root=root)
            seen[line[1:line.index("]")]] = (manifest.get("partial"), set(manifest["steps"]),
                                             status.ok, status.partial, set(status.unbuilt))

    run_build(load_preset("tiny"), name="tiny", root=root, log=log)
    done = {"world", "query", "sbert", "clip", "visual", "recommend"}  # the steps kept
    assert seen == {
        "lexical": (True, done, False, True, set(REBUILT)),
        "fusion": (True, done | {"lexical"}, False, True, {"fusion", "ranker", "vectorstore"}),
        "ranker": (True, done | {"lexical", "fusion"}, False, True, {"ranker", "vectorstore"}),
        "vectorstore": (True, done | {"lexical", "fusion", "ranker"}, False, True,
                        {"vectorstore"}),
    }
    final = json.loads((root / "manifest.json").read_text())
    assert "partial" not in final and check("tiny", root=root).ok
    # once per new set of steps, never with every step (that one is the complete manifest)
    assert len(published) == 4 and set(final["steps"]) not in published


def test_a_partial_catalog_opens_only_when_asked_with_its_missing_steps_unavailable(
        tiny_manifest, data_dir, tmp_path):
    root = tmp_path / "tiny"
    _copy(data_dir / "artifacts" / "tiny", root, (), manifest=True)
    manifest = json.loads((root / "manifest.json").read_text())
    kept = {k: v for k, v in manifest["steps"].items() if k in ("world", "lexical")}
    (root / "manifest.json").write_text(json.dumps({**manifest, "steps": kept, "partial": True}))
    with pytest.raises(ArtifactError, match="only partly built: .*sbert"):
        open_catalog("tiny", root=root)  # the API and the CLI serve complete catalogs only
    catalog = open_catalog("tiny", root=root, partial=True)
    assert catalog.built_steps == {"world", "lexical"}
    assert catalog.unavailable("sbert") == "it has not been built"
    # a partial manifest with another problem (a stale step), or without the world, is not
    # served
    stale = {**kept, "lexical": {**kept["lexical"], "hash": "0" * 16}}
    (root / "manifest.json").write_text(json.dumps({**manifest, "steps": stale, "partial": True}))
    assert not check("tiny", root=root).partial
    no_world = {"lexical": kept["lexical"]}
    (root / "manifest.json").write_text(json.dumps({**manifest, "steps": no_world,
                                                    "partial": True}))
    assert not check("tiny", root=root).partial


def test_a_rebuild_keeps_the_complete_manifest_until_it_ends(tiny_manifest, data_dir, tmp_path):
    root = tmp_path / "tiny"
    _copy(data_dir / "artifacts" / "tiny", root, ("fusion", "vectorstore"), manifest=True)
    before = (root / "manifest.json").read_bytes()
    seen: list[bool] = []

    def log(line: str) -> None:
        if "] building:" in line:
            seen.append((root / "manifest.json").read_bytes() == before)

    run_build(load_preset("tiny"), name="tiny", root=root, log=log)
    assert seen == [True, True]
    assert "partial" not in json.loads((root / "manifest.json").read_text())


# -- the app on a partial catalog ------------------------------------------------------------
@pytest.fixture
def partial_data(tiny_manifest, data_dir, tmp_path, monkeypatch) -> Path:
    """A data folder whose tiny catalog has only its world and lexical steps built."""
    folder = tmp_path / "artifacts" / "tiny"
    _copy(data_dir / "artifacts" / "tiny", folder, (), manifest=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    kept = {k: v for k, v in manifest["steps"].items() if k in ("world", "lexical")}
    (folder / "manifest.json").write_text(json.dumps({**manifest, "steps": kept,
                                                      "partial": True}))
    monkeypatch.setenv("PIXELMATCH_DATA", str(tmp_path))
    return folder


def _page(page: str | None = None) -> AppTest:
    return app_page("tiny", page)


def test_the_app_searches_a_first_build_with_what_is_built(partial_data):
    live = LiveState(partial_data, "tiny", ["world", "lexical", "sbert"], ["world", "lexical"],
                     {})
    live.started("sbert")
    try:
        at = _page()
        assert at.selectbox(key="text_method").options == ["bm25", "tfidf", "keyword", "rrf"]
        notes = [i.value for i in at.sidebar.info]
        assert notes == ["**tiny** is being built (2 of 3 steps). The methods of the steps "
                         "built so far work now; the others appear as their steps finish."]
        at.text_input(key="text_query").input("red backpack")
        at.button(key="FormSubmitter:text-search-Search").click()
        at.run()
        assert not at.exception and not at.error
        assert any("results for “red backpack” with **bm25**" in m.value for m in at.markdown)
        image = _page("pages/image_search.py")  # says it is coming, not a build command
        assert [i.value for i in image.main.info] == [
            "Image search will work as soon as the CLIP model and the image embeddings are "
            "built: this catalog's first build is running (its progress is in the sidebar), and "
            "the page updates by itself."]
        assert not image.main.warning and not image.main.code
        for_you = _page("pages/for_you.py")
        assert [i.value for i in for_you.main.info][0].startswith(
            "Recommendations will work as soon as the recommenders are built")
        explorer = _page("pages/catalog_explorer.py")
        assert not explorer.error
    finally:
        live.close("done")


def test_a_stopped_first_build_says_the_catalog_is_partly_built_and_why(partial_data):
    LiveState(partial_data, "tiny", ["world", "lexical", "sbert"], ["world", "lexical"],
              {}).close("failed", "No space left on device")
    at = _page()
    assert not at.sidebar.info
    assert [w.value for w in at.sidebar.warning] == [
        "This catalog is only partly built (its build stopped): the methods of the missing "
        "steps are not offered. `python -m engine build --preset tiny` finishes it."]
    assert [w.value for w in at.main.warning] == [
        "The last build of 'tiny' did not finish: No space left on device. Its log, when "
        f"`make run` started it: `{partial_data.parent.parent / 'build-tiny.log'}`."]


def test_a_newer_manifest_frees_the_caches_of_the_older_one(monkeypatch):
    """Each step of a first build publishes a newer manifest: the app drops the catalog and the
    recommenders it opened for the older one (and only those) instead of keeping them until
    evicted."""
    from pages import shared

    cleared: list[tuple] = []

    class Cache:
        def __init__(self, name: str):
            self.name = name

        def clear(self, *args) -> None:
            cleared.append((self.name, *args))

    for cache in ("_cached_catalog", "recommendation_service"):
        monkeypatch.setattr(shared, cache, Cache(cache))
    shared._drop_superseded("first-build-test", 1.0)
    shared._drop_superseded("another-catalog", 9.0)
    assert cleared == []
    shared._drop_superseded("first-build-test", 2.0)
    assert cleared == [("_cached_catalog", "first-build-test", 1.0, "faiss"),
                       ("_cached_catalog", "first-build-test", 1.0, "milvus"),
                       ("recommendation_service", "first-build-test", 1.0)]
    shared._drop_superseded("first-build-test", 2.0)
    shared._drop_superseded("first-build-test", 1.0)  # a session that read the older mtime
    assert len(cleared) == 3


# -- a catalog built by other code --------------------------------------------------------------
@pytest.fixture
def stale_data(tiny_manifest, data_dir, tmp_path, monkeypatch) -> Path:
    """A data folder whose tiny catalog's ranker step was built by other code (its folder is
    complete; only its recorded hash differs)."""
    folder = tmp_path / "artifacts" / "tiny"
    _copy(data_dir / "artifacts" / "tiny", folder, (), manifest=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["steps"]["ranker"]["hash"] = "0" * 16
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("PIXELMATCH_DATA", str(tmp_path))
    return folder


def test_an_outdated_catalog_serves_only_while_it_is_rebuilt(stale_data):
    status = check("tiny", root=stale_data)
    assert not status.ok and status.outdated and status.stale == ["ranker"]
    with pytest.raises(ArtifactError, match="Step 'ranker' is stale"):
        open_catalog("tiny", root=stale_data)
    assert open_catalog("tiny", root=stale_data, outdated=True).stale_steps == ["ranker"]
    at = _page()  # no build runs: refused with the command that rebuilds it
    assert [e.value for e in at.error] == [
        "The 'tiny' catalog cannot be served: Step 'ranker' is stale (built by another version "
        "of the code)."]
    live = LiveState(stale_data, "tiny", ["world", "ranker"], ["world"], {})
    live.started("ranker")
    try:
        at = _page()  # a rebuild runs: the built version answers meanwhile, and says so
        assert not at.error
        assert [i.value for i in at.sidebar.info] == [
            "A rebuild of **tiny** is running (1 of 2 steps). This version answers until it is "
            "done."]
    finally:
        live.close("done")
