"""Security: no network, no unpickling of replaceable files, catalog text shown as text, query
images never written to disk, and image paths confined to the catalog folder."""

from __future__ import annotations

import ast
import html
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catalog_fixtures import copy_catalog
from streamlit.testing.v1 import AppTest

from engine.artifacts import STEP_RECORD, ArtifactError
from engine.bad_inputs import case
from engine.imageio import load_image
from engine.retrieval.registry import available_retrievers, retriever_class
from engine.search import search
from engine.serving import open_catalog
from tests.html_cards import card_html_blocks, shown_cards

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")

# -- no network --------------------------------------------------------------------------------
GUARD = '''
"""Loaded first by every Python process of the test: refuse and record any network use."""
import os, socket

_LOG = os.environ["PIXELMATCH_NET_LOG"]
_LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}


def _record(what):
    with open(_LOG, "a") as fh:
        fh.write(repr(what) + "\\n")
    return OSError(101, "Network is unreachable (blocked by the test)")


def _local(address):
    return isinstance(address, (str, bytes)) or str(address[0]) in _LOCAL


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
_create_connection, _getaddrinfo = socket.create_connection, socket.getaddrinfo


def connect(self, address):
    if self.family != socket.AF_UNIX and not _local(address):
        raise _record(("connect", address))
    return _connect(self, address)


def connect_ex(self, address):
    if self.family != socket.AF_UNIX and not _local(address):
        raise _record(("connect_ex", address))
    return _connect_ex(self, address)


def create_connection(address, *args, **kwargs):
    if not _local(address):
        raise _record(("create_connection", address))
    return _create_connection(address, *args, **kwargs)


def getaddrinfo(host, *args, **kwargs):
    if host is not None and str(host) not in _LOCAL:
        _record(("getaddrinfo", host))
        raise socket.gaierror(-3, "Temporary failure in name resolution (blocked by the test)")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo
'''


@pytest.fixture
def offline(tmp_path) -> tuple[dict[str, str], Path]:
    """An environment whose Python processes cannot open a network connection (and log tries).

    HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE are removed: the engine must set them itself.
    """
    site = tmp_path / "guard"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "network.log"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE",
                                                           "TRANSFORMERS_OFFLINE")}
    env.update(PYTHONPATH=str(site), PIXELMATCH_NET_LOG=str(log))
    return env, log


def _run(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_network_guard_works(offline):
    """Control: a process that does try to connect is caught and logged."""
    env, log = offline
    proc = _run(env, "-c", "import urllib.request; urllib.request.urlopen('http://example.com')")
    assert proc.returncode != 0
    assert "example.com" in log.read_text()


def test_searches_make_no_connection(tiny_catalog, data_dir, offline, tmp_path):
    env, log = offline
    env["PIXELMATCH_DATA"] = str(data_dir)
    image = tmp_path / "q.jpg"
    image.write_bytes(case("image-cmyk").value())
    for args in (
        ["--method", "sbert", "--query", "leather boots"],
        ["--method", "hybrid", "--query", "red striped mug"],
        ["--method", "clip", "--image", str(image), "--query", "in red"],
    ):
        proc = _run(env, "-m", "engine", "search", "--catalog", "tiny", "--json", *args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert len(json.loads(proc.stdout)["item_ids"]) == 10
    proc = _run(env, "-m", "engine", "recommend", "--catalog", "tiny", "--user", "u000001",
                "--method", "two_tower", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not log.exists(), log.read_text()


@pytest.mark.slow
def test_a_whole_build_makes_no_connection(offline, tmp_path):
    env, log = offline
    env["PIXELMATCH_DATA"] = str(tmp_path / "data")
    proc = _run(env, "-m", "engine", "build", "--preset", "tiny", "--items", "100", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _run(env, "-m", "engine", "search", "--catalog", "tiny", "--method", "hybrid",
                "--query", "leather boots", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["item_ids"]
    assert not log.exists(), log.read_text()


# -- no unpickling -----------------------------------------------------------------------------
UNSAFE_CALLS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "cPickle.load", "dill.load",
    "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load", "pd.read_pickle",
    "pandas.read_pickle", "shelve.open", "marshal.load", "marshal.loads", "yaml.load",
    "yaml.unsafe_load", "torch.serialization.load",
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def unsafe_loads(source: str, filename: str = "<string>") -> list[str]:
    """Calls in ``source`` that may unpickle a file somebody could replace."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(m.split(".")[0] in ("pickle", "cPickle", "dill", "cloudpickle", "joblib",
                                       "shelve", "marshal") for m in mods):
                found.append(f"{filename}:{node.lineno}: imports {mods}")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        kw = {k.arg: k.value for k in node.keywords}
        literal = {k: v.value for k, v in kw.items() if isinstance(v, ast.Constant)}
        if name in UNSAFE_CALLS:
            found.append(f"{filename}:{node.lineno}: {name}")
        elif name.endswith(("np.load", "numpy.load")) and "allow_pickle" in kw and (
            literal.get("allow_pickle") is not False
        ):
            found.append(f"{filename}:{node.lineno}: {name}(allow_pickle=...)")
        elif name.endswith("torch.load") and literal.get("weights_only") is not True:
            found.append(f"{filename}:{node.lineno}: torch.load without weights_only=True")
        elif "weights_only" in kw and literal.get("weights_only") is not True:
            found.append(f"{filename}:{node.lineno}: {name}(weights_only not True)")
    return found


def test_engine_never_unpickles():
    files = sorted((REPO / "engine").rglob("*.py")) + sorted((REPO / "pages").rglob("*.py"))
    assert len(files) > 40
    found = [hit for f in files for hit in unsafe_loads(f.read_text(), str(f.relative_to(REPO)))]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "import pickle\n",
        "from joblib import load\n",
        "x = pd.read_pickle(p)\n",
        "x = np.load(p, allow_pickle=True)\n",
        "x = np.load(p, allow_pickle=flag)\n",
        "x = torch.load(p)\n",
        "x = torch.load(p, weights_only=False)\n",
        "m = open_clip.create_model_and_transforms(n, pretrained=p, weights_only=False)\n",
    ],
)
def test_the_unpickling_check_catches(source):
    """Control: each unsafe form is reported (and the safe forms are not)."""
    assert unsafe_loads(source)
    assert not unsafe_loads("np.load(p)\nnp.load(p, allow_pickle=False)\n"
                            "torch.load(p, weights_only=True)\n")


class Planted:
    """Unpickling this creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _fix_record(path: Path) -> None:
    """Update the step record's size of a replaced file (as a careful attacker would)."""
    folder = next(p for p in path.parents if (p / STEP_RECORD).is_file())
    record = json.loads((folder / STEP_RECORD).read_text())
    record["files"][str(path.relative_to(folder))] = path.stat().st_size
    (folder / STEP_RECORD).write_text(json.dumps(record))


def test_pickles_planted_in_place_of_arrays_are_refused(tiny_catalog, data_dir, tmp_path):
    root = copy_catalog(data_dir, tmp_path, "planted")
    marker = tmp_path / "executed"
    planted = []
    for path in sorted(root.rglob("*.np[yz]")):
        payload = np.array([Planted(marker)], dtype=object)
        if path.suffix == ".npy":
            with open(path, "wb") as fh:
                np.save(fh, payload, allow_pickle=True)
        else:
            with open(path, "wb") as fh:
                np.savez(fh, data=payload, indices=payload, indptr=payload, shape=payload)
        _fix_record(path)
        planted.append(path)
    assert len(planted) > 10
    catalog = open_catalog("planted", root=root)  # sizes agree: the open check passes
    refused = 0
    for method in available_retrievers(catalog):
        if "text" in retriever_class(method).modalities:
            kw = {"text": "leather boots"}
        else:
            kw = {"image": load_image(case("image-cmyk").value())}
        try:
            search(catalog, method, k=5, **kw)
        except ArtifactError as exc:
            refused += 1
            assert "Fix: python -m engine build" in str(exc)
    from engine.recommend.service import RecommendationService

    service = RecommendationService.for_catalog(catalog)
    for model in service.models():
        try:
            service.recommend("u000001", model, k=5)
        except ValueError as exc:
            refused += 1
            assert "allow_pickle" in str(exc) or "pickle" in str(exc).lower(), exc
    assert refused >= 8
    assert not marker.exists(), "a planted pickle was executed"


# -- catalog text is shown as text -------------------------------------------------------------
NASTY = "**bold** [click](javascript:alert(1)) <script>alert(1)</script> $x^2$ _it_ ![i](x.png)"


@pytest.fixture
def nasty_catalog(tiny_catalog, data_dir, tmp_path, monkeypatch) -> Path:
    """A copy of tiny named 'nasty' whose every title and brand is Markdown/HTML injection."""
    data = tmp_path / "data"
    root = copy_catalog(data_dir, data, "nasty")
    manifest = json.loads((root / "manifest.json").read_text())
    items_path = root / manifest["steps"]["world"]["dir"] / "items.parquet"
    items = pd.read_parquet(items_path)
    items["title"] = NASTY
    items.to_parquet(items_path, index=False)
    _fix_record(items_path)
    monkeypatch.setenv("PIXELMATCH_DATA", str(data))
    return root


def test_injected_titles_display_as_text(nasty_catalog):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["catalog_name"] = "nasty"
    at.run()
    at.text_input(key="text_query").input("leather boots")
    at.button(key="FormSubmitter:text-search-Search").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # Result cards are HTML (pages/card_html.py): the title is escaped text there.
    cards = shown_cards(at)
    assert [c.rank for c in cards] == list(range(1, 16))
    for card in cards:
        assert card.title == NASTY, card.title  # shown as the literal text
        _assert_safe_html(card.raw)
    at.switch_page("pages/for_you.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # For you draws its cards as HTML (pages/card_html.py): the title is escaped text there.
    cards = card_html_blocks(at)
    assert len(cards) >= 10
    for card in cards:
        assert f'<p class="pm-title">{html.escape(NASTY)}' in card, card
        _assert_safe_html(card)


def _assert_safe_html(card: str) -> None:
    """A card's HTML holds the hostile title as text: no script, link or foreign image."""
    assert f"{html.escape(NASTY)}" in card, card
    assert "<script" not in card and "<a " not in card and 'src="x.png"' not in card
    assert card.count("<img ") <= 1 and '<img src="data:image/' in card


# -- query images are never written to disk ----------------------------------------------------
_WRITES: list[str] = []
_WATCH = threading.local()


def _audit(event: str, args: tuple) -> None:
    if event == "open" and getattr(_WATCH, "on", False):
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writing:
            _WRITES.append(str(path))


sys.addaudithook(_audit)


def test_uploaded_images_are_never_written_to_disk(tiny_catalog):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["catalog_name"] = "tiny"
    at.run()
    at.switch_page("pages/image_search.py")
    at.run()
    data = case("image-exif-rotated").value()
    _WRITES.clear()
    _WATCH.on = True
    try:
        decoded = load_image(data)
        search(tiny_catalog, "clip", image=decoded, k=5)
        search(tiny_catalog, "colour", image=decoded, k=5)
        at.file_uploader(key="img_upload").set_value(("photo.jpg", data, "image/jpeg"))
        at.run()
    finally:
        _WATCH.on = False
    assert not at.exception and len([m for m in at.markdown if "similar products" in m.value])
    assert _WRITES == []


def test_the_write_watch_sees_writes(tmp_path):
    """Control: the audit hook does record a write (so an empty list above means something)."""
    _WRITES.clear()
    _WATCH.on = True
    try:
        load_image(case("image-cmyk").value()).image.save(tmp_path / "x.png")
    finally:
        _WATCH.on = False
    assert str(tmp_path / "x.png") in _WRITES and len(_WRITES) == 1


# -- image paths stay inside the catalog -------------------------------------------------------
def test_catalog_image_paths_cannot_escape(tiny_catalog, data_dir, tmp_path):
    root = copy_catalog(data_dir, tmp_path, "escape")
    catalog = open_catalog("escape", root=root)
    world = catalog.world_dir
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"secret")
    items = catalog.items
    items.loc[0, "image_path"] = "../../../../../../etc/passwd"
    items.loc[1, "image_path"] = str(outside)  # absolute
    link = world / "images" / "link.jpg"
    link.symlink_to(outside)
    items.loc[2, "image_path"] = str(link.relative_to(world))
    for row in (0, 1, 2):
        with pytest.raises(ArtifactError, match="escapes the catalog folder"):
            catalog.image_path(row)
    assert catalog.image_path(3).is_relative_to(world.resolve())
