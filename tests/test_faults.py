"""Faults: real builds killed mid-step, a full disk and a read-only data folder while writing,
artifacts damaged before or after opening, and a method failing at serve time in the app.

Kill tests start ``python -m engine build`` as a real process, watch its log and its ``steps/``
folder, and SIGKILL it while a given step is running. One kill test of each kind runs by
default; killing every step and re-running to completion is marked slow.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from catalog_fixtures import app_page, copy_catalog
from streamlit.testing.v1 import AppTest

from engine.artifacts import ArtifactError
from engine.benchmark.robustness import FAULTS, inject_faults
from engine.cli import main
from engine.search import search
from engine.serving import open_catalog

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
SMALL = ["--preset", "tiny", "--items", "100"]  # another config than the session's tiny build


# -- helpers -----------------------------------------------------------------------------------
def env_for(data: Path) -> dict[str, str]:
    return {**os.environ, "PIXELMATCH_DATA": str(data), "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def temp_folders(root: Path) -> list[str]:
    steps = root / "steps"
    return sorted(p.name for p in steps.glob(".tmp-*")) if steps.exists() else []


def kill_during(data: Path, step: str, args: list[str], *, timeout: float = 400) -> list[str]:
    """Run ``python -m engine build ARGS`` and SIGKILL it while ``step`` is running.

    "Running" means its log said ``[step] building`` and its temporary step folder exists.
    Returns the log lines read before the kill.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "build", "--quiet", *args],
        cwd=REPO, env=env_for(data), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith(f"[{step}] building"):
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(timeout), f"[{step}] never started:\n" + "\n".join(lines[-20:])
        steps = data / "artifacts" / "tiny" / "steps"
        deadline = time.monotonic() + 30
        while not list(steps.glob(f".tmp-{step}-*")):
            assert proc.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline, f"no temporary folder for {step}"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        reader.join(10)
    return lines


def run_cli(data: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, env=env_for(data),
                          capture_output=True, text=True, timeout=timeout)


# -- a build killed mid-step -------------------------------------------------------------------
def test_first_build_killed_mid_step_refuses_with_the_rebuild_command(tmp_path):
    """A first build killed in a step leaves the partial manifest of its finished steps (the
    app serves them); the CLI and the API refuse it with the command that finishes it."""
    data = tmp_path / "data"
    kill_during(data, "sbert", SMALL)
    root = data / "artifacts" / "tiny"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["partial"] and "world" in manifest["steps"]
    assert "sbert" not in manifest["steps"]
    assert temp_folders(root), "the killed step's temporary folder is what a kill leaves"
    with pytest.raises(ArtifactError) as info:
        open_catalog("tiny", root=root)
    assert "The 'tiny' catalog is only partly built" in str(info.value)
    assert info.value.fix == "python -m engine build --preset tiny"
    assert open_catalog("tiny", root=root, partial=True).built_steps == set(manifest["steps"])
    proc = run_cli(data, "search", "--catalog", "tiny", "--query", "boots")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: The 'tiny' catalog is only partly built: its first build is "
                           "running or stopped (") and "sbert" in line
    assert line.endswith("not built yet). Fix: python -m engine build --preset tiny")


def test_build_killed_mid_step_keeps_serving_the_previous_build(tiny_catalog, data_dir, tmp_path):
    data = tmp_path / "data"
    root = copy_catalog(data_dir, data)
    before = (root / "manifest.json").read_bytes()
    expected = search(tiny_catalog, "bm25", text="leather boots", k=10).rows.tolist()
    log = kill_during(data, "sbert", SMALL)
    assert any(line.startswith("[world] done") for line in log)  # it had got somewhere
    assert (root / "manifest.json").read_bytes() == before
    assert temp_folders(root)
    catalog = open_catalog("tiny", root=root)  # the previous, complete build
    assert len(catalog.items) == 600
    assert search(catalog, "bm25", text="leather boots", k=10).rows.tolist() == expected
    assert len(search(catalog, "sbert", text="leather boots", k=10)) == 10
    # The lock died with the process: the next build runs, and removes the leftovers.
    proc = run_cli(data, "build", "--preset", "tiny", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "8 up to date" in proc.stderr or "are up to date (" in proc.stderr
    assert temp_folders(root) == []
    hashes = {s: r["hash"] for s, r in json.loads(before)["steps"].items()}
    after = open_catalog("tiny", root=root).manifest["steps"]
    assert {s: r["hash"] for s, r in after.items()} == hashes
    assert all(r["skipped"] for r in after.values())


@pytest.mark.slow
@pytest.mark.parametrize("step", ["world", "lexical", "clip", "visual", "ranker", "recommend"])
def test_build_killed_in_any_step_then_rerun_completes(data_dir, tmp_path, step):
    data = tmp_path / "data"
    root = copy_catalog(data_dir, data)
    before = (root / "manifest.json").read_bytes()
    log = kill_during(data, step, SMALL)
    finished = [line.split("]")[0][1:] for line in log if line.endswith(" s") and "done in" in line]
    assert (root / "manifest.json").read_bytes() == before
    assert len(open_catalog("tiny", root=root).items) == 600  # still the previous build
    proc = run_cli(data, "build", *SMALL, "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for done in finished:  # steps finished before the kill are reused, not rebuilt
        assert f"[{done}] up to date" in proc.stderr, done
    assert f"[{step}] building" in proc.stderr
    assert temp_folders(root) == []
    catalog = open_catalog("tiny", root=root)
    assert len(catalog.items) == 100
    assert len(search(catalog, "hybrid", text="leather boots", k=5)) == 5


# -- a full disk and a read-only data folder while writing -------------------------------------
@pytest.fixture
def private_tiny(tiny_catalog, data_dir, tmp_path, monkeypatch) -> Path:
    """A copy of the session's tiny build; PIXELMATCH_DATA points at it for this test."""
    data = tmp_path / "data"
    root = copy_catalog(data_dir, data)
    monkeypatch.setenv("PIXELMATCH_DATA", str(data))
    return root


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def _assert_untouched(root: Path, before: bytes) -> None:
    assert (root / "manifest.json").read_bytes() == before
    assert temp_folders(root) == []
    assert not list(root.glob(".manifest.json.*"))
    assert len(search(open_catalog("tiny", root=root), "bm25", text="boots", k=5)) == 5


def test_disk_full_mid_step_is_one_line_and_leaves_nothing(private_tiny, capsys, monkeypatch):
    root = private_tiny
    before = (root / "manifest.json").read_bytes()
    real = pd.DataFrame.to_parquet
    calls: list[Path] = []

    def fill_disk(self, path, *args, **kwargs):
        calls.append(Path(path))
        if len(calls) == 3:  # half a file is on disk when the disk fills up
            Path(path).write_bytes(b"PAR1" + b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fill_disk)
    code, err = _cli(capsys, "build", *SMALL, "--quiet")
    assert len(calls) == 3 and calls[-1].parent.name.startswith(".tmp-world-")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1] == (
        f"error: No space left on device ({calls[-1]}); free some disk space (or set "
        "PIXELMATCH_DATA to a bigger disk) and re-run. Nothing was half-written: the previous "
        "artifacts are still in place."
    )
    assert all(line.startswith("[") for line in lines[:-1])  # the build log, then one error
    assert not calls[-1].exists()
    _assert_untouched(root, before)


def test_disk_full_while_committing_the_manifest(private_tiny, capsys, monkeypatch):
    root = private_tiny
    before = (root / "manifest.json").read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    code, err = _cli(capsys, "build", "--preset", "tiny", "--quiet")  # all steps up to date
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(
        "error: No space left on device; free some disk space"
    )
    _assert_untouched(root, before)


def test_read_only_data_folder_refuses_to_build_clearly(private_tiny, capsys, monkeypatch):
    """Simulated (``mkdtemp`` raising EROFS): chmod does not restrict root."""
    import tempfile

    root = private_tiny
    before = (root / "manifest.json").read_bytes()

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    code, err = _cli(capsys, "build", *SMALL, "--quiet")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"error: Read-only file system ({root / 'steps'}); the data folder is read-only: set "
        "PIXELMATCH_DATA to a writable folder. Nothing was half-written: the previous artifacts "
        "are still in place."
    )
    monkeypatch.undo()
    _assert_untouched(root, before)


def test_a_librarys_own_disk_full_error_is_reported_as_a_full_disk(tmp_path):
    """FAISS reports a full disk as RuntimeError("... (No space left on device)")."""
    from engine.artifacts import ArtifactStore
    from engine.errors import os_error_message

    store = ArtifactStore(tmp_path / "cat")
    with pytest.raises(OSError) as info, store.write_step("sbert", "h", {}) as out:
        (out / "sbert_ivf.faiss").write_bytes(b"x" * 10)
        raise RuntimeError("Error in faiss::write_InvertedLists: write error in "
                           f"{out}/sbert_ivf.faiss: 5 != 10 (No space left on device)")
    assert info.value.errno == errno.ENOSPC
    assert isinstance(info.value.__cause__, RuntimeError)
    assert list(store.steps_dir.iterdir()) == []
    assert os_error_message(info.value, building=True).startswith(
        f"No space left on device ({store.steps_dir}); free some disk space")
    with pytest.raises(RuntimeError), store.write_step("s", "h", {}):
        raise RuntimeError("some other failure")  # not a disk error: left as it is


def test_read_only_by_permissions(tiny_catalog, data_dir, tmp_path):
    """Real permissions, as a normal user (root ignores them: skipped then)."""
    data = tmp_path / "data"
    root = copy_catalog(data_dir, data)
    before = (root / "manifest.json").read_bytes()
    for folder in (root, root / "steps"):
        folder.chmod(0o555)
    try:
        if os.access(root, os.W_OK):
            pytest.skip("running as root: permissions do not restrict writes")
        proc = run_cli(data, "build", *SMALL, "--quiet")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "Permission denied" in proc.stderr and "writable folder" in proc.stderr
        proc = run_cli(data, "search", "--catalog", "tiny", "--query", "boots", "--json")
        assert proc.returncode == 0  # a read-only catalog still serves
    finally:
        for folder in (root, root / "steps"):
            folder.chmod(0o755)
    assert (root / "manifest.json").read_bytes() == before


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tiny_catalog, data_dir, tmp_path):
    """A real tmpfs just big enough for a copy of the session's tiny build (needs root)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    src = data_dir / "artifacts" / "tiny"
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={size + 6_000_000}", "tmpfs",
                                       str(mnt)):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        copy_catalog(data_dir, mnt)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_real_full_disk_while_building(small_disk):
    data, root = small_disk, small_disk / "artifacts" / "tiny"
    before = (root / "manifest.json").read_bytes()
    proc = run_cli(data, "build", "--preset", "tiny", "--items", "400", "--quiet")
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: No space left on device"), last
    assert last.endswith("Nothing was half-written: the previous artifacts are still in place.")
    assert (root / "manifest.json").read_bytes() == before
    assert temp_folders(root) == []
    proc = run_cli(data, "search", "--catalog", "tiny", "--method", "sbert", "--query", "boots",
                   "--json")
    assert proc.returncode == 0 and len(json.loads(proc.stdout)["item_ids"]) == 10


def test_real_read_only_mount(small_disk):
    data, root = small_disk, small_disk / "artifacts" / "tiny"
    (root / ".build.lock").unlink(missing_ok=True)
    assert _mount("-o", "remount,ro", str(data))
    proc = run_cli(data, "build", *SMALL, "--quiet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"error: Read-only file system ({root / '.build.lock'}); the data folder is read-only"
    )
    proc = run_cli(data, "search", "--catalog", "tiny", "--query", "leather boots", "--json")
    assert proc.returncode == 0 and len(json.loads(proc.stdout)["item_ids"]) == 10


# -- damaged artifacts -------------------------------------------------------------------------
def test_each_fault_is_survived(tiny_catalog, data_dir):
    manifest = (data_dir / "artifacts" / "tiny" / "manifest.json").read_bytes()
    outcomes = inject_faults(tiny_catalog)
    assert [o.case for o in outcomes] == [f[0] for f in FAULTS]
    for o in outcomes:
        assert o.ok, (o.case, o.got, o.message)
        if o.expected == "refuse" or o.case.endswith("after-open"):
            assert "Fix: python -m engine build --preset tiny" in o.message, o
    # The faults were injected into a copy: the session's catalog is intact.
    assert (data_dir / "artifacts" / "tiny" / "manifest.json").read_bytes() == manifest
    fresh = open_catalog("tiny")
    for method in ("clip", "tfidf", "sbert"):
        assert len(search(fresh, method, text="leather boots", k=5)) == 5


def test_an_undetected_fault_would_be_reported(tiny_catalog, monkeypatch):
    """Control: if the engine served a damaged manifest, the fault would count as not survived."""
    import engine.serving.catalogs
    from engine.pipeline.status import BuildStatus

    monkeypatch.setattr(engine.serving.catalogs, "check", lambda name, root=None: BuildStatus(
        name, True, [], "", {"steps": {}}))
    outcomes = {o.case: o for o in inject_faults(tiny_catalog)}
    assert not outcomes["manifest-truncated"].ok
    assert outcomes["manifest-truncated"].got == "serve"


# -- a method failing at serve time in the app -------------------------------------------------
@pytest.fixture
def broken_clip(tiny_catalog, data_dir, tmp_path, monkeypatch) -> Path:
    """A copy of tiny named 'brokenclip' whose CLIP index is noise (same size: opens fine)."""
    data = tmp_path / "data"
    root = copy_catalog(data_dir, data, "brokenclip")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["rebuild_command"] = "python -m engine build --preset tiny --name brokenclip"
    (root / "manifest.json").write_text(json.dumps(manifest))
    index = root / manifest["steps"]["visual"]["dir"] / "clip_hnsw.faiss"
    index.write_bytes(os.urandom(index.stat().st_size))
    monkeypatch.setenv("PIXELMATCH_DATA", str(data))
    return root


def _app(page: str | None = None) -> AppTest:
    return app_page("brokenclip", page)


def _search_text(at: AppTest, text: str, method: str) -> None:
    at.text_input(key="text_query").input(text)
    option = next(o for o in at.selectbox(key="text_method").options
                  if o.split(" — ")[0] == method)
    at.selectbox(key="text_method").set_value(option)
    at.button(key="FormSubmitter:text-search-Search").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_a_broken_method_shows_an_error_and_the_rest_of_the_app_works(broken_clip):
    assert open_catalog("brokenclip", root=broken_clip)  # the damage is not visible at open
    at = _app()
    _search_text(at, "leather boots", "clip")
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert errors[0].startswith("The clip method is unavailable: Could not load the faiss clip")
    assert "Other methods and pages still work." in errors[0]
    assert [c.value for c in at.code] == ["python -m engine build --preset tiny --name brokenclip"]
    _search_text(at, "leather boots", "bm25")  # the same page, another method
    assert not at.error
    assert any(m.value.startswith("**15** results for") for m in at.markdown)
    # Image search: CLIP fails, colour answers.
    at.switch_page("pages/image_search.py")
    at.run()
    at.radio(key="img_source").set_value("Catalog image")
    at.run()
    assert not at.exception and any("clip method is unavailable" in e.value for e in at.error)
    at.selectbox(key="img_method").set_value("colour")
    at.run()
    assert not at.exception and not at.error
    assert any("similar products with **colour**" in m.value for m in at.markdown)


def test_compare_page_compares_what_still_works(broken_clip):
    at = _app("pages/compare.py")
    at.multiselect(key="cmp_methods").set_value(["bm25", "clip", "sbert"])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("clip method is unavailable" in e.value for e in at.error)
    headers = [m.value[5:] for m in at.markdown if m.value.startswith("#### ")]
    assert headers == ["bm25", "sbert"]
    assert at.dataframe[0].value["pair"].tolist() == ["bm25 vs sbert"]


def test_a_failing_text_encoder_is_one_methods_error(tiny_catalog, data_dir, tmp_path,
                                                     monkeypatch):
    """The Sentence-BERT model raising at load time: sbert says so, bm25 still answers."""
    import engine.encoders.text as text

    def no_model(name: str):
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {name}")

    def no_onnx_model(*args, **kwargs):
        raise OSError("the ONNX export of MiniLM is missing and its source cannot be read")

    import engine.encoders.onnx_text as onnx_text

    monkeypatch.setattr(text, "create_text_encoder", no_model)
    monkeypatch.setattr(onnx_text, "OnnxSbertEncoder", no_onnx_model)  # both runtimes fail
    data = tmp_path / "data"
    root = copy_catalog(data_dir, data, "noencoder")
    catalog = open_catalog("noencoder", root=root)
    with pytest.raises(ArtifactError, match="Could not load the text_encoder"):
        search(catalog, "sbert", text="boots")
    assert len(search(catalog, "bm25", text="boots", k=5)) == 5
    monkeypatch.setenv("PIXELMATCH_DATA", str(data))
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["catalog_name"] = "noencoder"
    at.run()
    _search_text(at, "leather boots", "sbert")
    assert any("sbert method is unavailable" in e.value for e in at.error)
    _search_text(at, "leather boots", "tfidf")
    assert not at.error and any(m.value.startswith("**15** results") for m in at.markdown)
