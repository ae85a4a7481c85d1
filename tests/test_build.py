"""Tests for the build pipeline (engine.pipeline) and the artifact store (engine.artifacts).

Pipeline mechanics use fast fake steps (``engine.pipeline.planner.ordered_steps`` monkeypatched) in
temporary roots; the last tests look at the session's real tiny build.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

import engine.pipeline as build
import engine.pipeline.planner as plan_module
from engine.artifacts import FORMAT_VERSION, ArtifactError, ArtifactStore, atomic_write_bytes
from engine.compute import resolve_compute
from engine.config import (
    BuildConfig,
    config_from_dict,
    list_presets,
    load_preset,
    stable_hash,
)
from engine.pipeline import Step, check, plan, run_build
from engine.serving import open_catalog

NAME = "fakecat"


class Boom(RuntimeError):
    """Raised by a fake step that fails half-way."""


class FakePipeline:
    """Three fake steps a -> b -> c reading the world, text and clip sections."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[str] = []
        self.logs: list[str] = []
        self.fail: dict[str, BaseException] = {}
        self.gate: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}

    def _run(self, name: str):
        def run(ctx, out: Path) -> dict:
            self.calls.append(name)
            if name in self.started:
                self.started[name].set()
            if name in self.gate:
                assert self.gate[name].wait(30)
            for dep, folder in ctx.inputs.items():  # dependencies are finished folders
                assert (folder / f"{dep}.txt").is_file()
            (out / "sub").mkdir()
            (out / "sub" / f"{name}.bin").write_bytes(os.urandom(256))
            if name in self.fail:  # a partial file is on disk when the step dies
                raise self.fail[name]
            (out / f"{name}.txt").write_text(f"{name} seed={ctx.cfg.seed}")
            return {"rows": len(name) * 10}

        return run

    def steps(self, versions: dict[str, int] | None = None) -> tuple[Step, ...]:
        v = {"a": 1, "b": 1, "c": 1, **(versions or {})}
        return (
            Step("a", v["a"], (), ("world",), self._run("a"), "fake world"),
            Step("b", v["b"], ("a",), ("text",), self._run("b"), "fake text"),
            Step("c", v["c"], ("b",), ("clip",), self._run("c"), "fake clip"),
        )

    def build(self, cfg: BuildConfig) -> dict:
        self.calls.clear()
        return run_build(cfg, name=NAME, root=self.root, log=self.logs.append)

    def check(self):
        return check(NAME, root=self.root)

    def step_folders(self) -> list[str]:
        steps = self.root / "steps"
        return sorted(p.name for p in steps.iterdir()) if steps.exists() else []


@pytest.fixture
def cfg() -> BuildConfig:
    return load_preset("tiny")


@pytest.fixture
def pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePipeline:
    p = FakePipeline(tmp_path / "artifacts" / NAME)
    use_steps(monkeypatch, p.steps())
    return p


def use_steps(monkeypatch: pytest.MonkeyPatch, fake: tuple) -> None:
    """Run the pipeline on ``fake`` steps instead of the registered ones."""
    monkeypatch.setattr(plan_module, "ordered_steps", lambda: tuple(fake))


def manifest_bytes(p: FakePipeline) -> bytes:
    return (p.root / "manifest.json").read_bytes()


def assert_servable(p: FakePipeline, manifest: dict | None = None) -> None:
    status = p.check()
    assert status.ok, status.problems
    if manifest is not None:
        assert status.manifest == json.loads(json.dumps(manifest, default=str))
    store = ArtifactStore(p.root)
    for step in ("a", "b", "c"):
        folder = store.step_dir(step)
        assert (folder / f"{step}.txt").read_text().startswith(step)


# -- the pipeline --------------------------------------------------------------------------------
def test_first_build_runs_every_step_and_commits_a_manifest(pipe, cfg):
    manifest = pipe.build(cfg)
    assert pipe.calls == ["a", "b", "c"]
    hashes = plan(cfg)
    assert pipe.step_folders() == sorted(f"{s}-{h}" for s, h in hashes.items())
    assert manifest["name"] == NAME and manifest["config_hash"] == stable_hash(cfg.to_dict())
    on_disk = json.loads((pipe.root / "manifest.json").read_text())
    assert on_disk["format_version"] == FORMAT_VERSION
    for step, h in hashes.items():
        rec = on_disk["steps"][step]
        assert rec["hash"] == h and rec["skipped"] is False
        assert rec["info"] == {"rows": len(step) * 10}
        assert rec["n_files"] == 2 and rec["bytes"] > 256
    assert on_disk["rebuild_command"] == "python -m engine build --preset tiny --name fakecat"
    assert not list(pipe.root.glob("steps/.tmp-*"))
    assert_servable(pipe, on_disk)


def test_rerun_with_nothing_changed_skips_every_step(pipe, cfg):
    pipe.build(cfg)
    folders = pipe.step_folders()
    manifest = pipe.build(cfg)
    assert pipe.calls == []
    assert all(rec["skipped"] for rec in manifest["steps"].values())
    assert sum("up to date" in line for line in pipe.logs) == 3
    assert pipe.step_folders() == folders
    assert_servable(pipe)


def test_a_changed_section_rebuilds_only_the_steps_that_read_it(pipe, cfg):
    pipe.build(cfg)
    text_changed = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, bm25_k1=1.2))
    pipe.build(text_changed)
    assert pipe.calls == ["b", "c"]  # c depends on b
    clip_changed = dataclasses.replace(text_changed, clip=dataclasses.replace(cfg.clip, lr=1e-3))
    pipe.build(clip_changed)
    assert pipe.calls == ["c"]
    pipe.build(dataclasses.replace(cfg, seed=7))
    assert pipe.calls == ["a", "b", "c"]  # the seed feeds every step
    # The replaced manifest's folders stay one build longer (an app may still be loading from
    # them); older ones are removed after a successful build.
    seven = plan(dataclasses.replace(cfg, seed=7))
    assert pipe.step_folders() == sorted(
        {f"{s}-{h}" for s, h in seven.items()} | {f"{s}-{h}" for s, h in plan(clip_changed).items()}
    )
    pipe.build(dataclasses.replace(cfg, seed=7))  # a no-op build replaces nothing new
    assert pipe.step_folders() == sorted(f"{s}-{h}" for s, h in seven.items())
    assert_servable(pipe)


@pytest.mark.parametrize(
    "exc", [Boom("disk on fire"), KeyboardInterrupt()], ids=["error", "ctrl-c"]
)
def test_interrupted_build_keeps_previous_artifacts_and_rerun_resumes(pipe, cfg, exc):
    pipe.build(cfg)
    before = manifest_bytes(pipe)
    new_cfg = dataclasses.replace(cfg, seed=123)
    new_hashes = plan(new_cfg)
    pipe.fail["b"] = exc
    with pytest.raises(type(exc)):
        pipe.build(new_cfg)
    assert pipe.calls == ["a", "b"]
    # The manifest is untouched and still points at complete, servable folders.
    assert manifest_bytes(pipe) == before
    assert_servable(pipe)
    assert open_catalog(NAME, root=pipe.root).manifest["config"]["seed"] == cfg.seed
    # The failed step left nothing behind; the finished step 1 stays for the re-run.
    assert not (pipe.root / "steps" / f"b-{new_hashes['b']}").exists()
    assert not list(pipe.root.glob("steps/.tmp-*"))
    assert (pipe.root / "steps" / f"a-{new_hashes['a']}" / "step.json").is_file()
    # The lock was released: the re-run goes ahead and skips step 1.
    del pipe.fail["b"]
    manifest = pipe.build(new_cfg)
    assert pipe.calls == ["b", "c"]
    assert manifest["steps"]["a"]["skipped"] is True
    assert any(line.startswith("[a] up to date") for line in pipe.logs)
    assert_servable(pipe)
    assert pipe.check().manifest["config"]["seed"] == 123


def test_failing_first_build_leaves_no_manifest_and_no_step_folder(pipe, cfg):
    pipe.fail["a"] = Boom("half-written")
    with pytest.raises(Boom):
        pipe.build(cfg)
    assert not (pipe.root / "manifest.json").exists()
    assert pipe.step_folders() == []
    status = pipe.check()
    assert not status.ok and "python -m engine build" in status.fix


def test_leftover_temp_folder_of_a_killed_build_is_removed(pipe, cfg):
    pipe.build(cfg)
    junk = pipe.root / "steps" / ".tmp-b-killed"
    junk.mkdir()
    (junk / "half.bin").write_bytes(b"x" * 10)
    assert pipe.check().ok  # a stray temp folder does not break serving
    pipe.build(cfg)
    assert not junk.exists()


def test_code_change_makes_old_manifest_stale(pipe, cfg, monkeypatch):
    pipe.build(cfg)
    assert pipe.check().ok
    use_steps(monkeypatch, pipe.steps({"b": 2}))
    status = pipe.check()
    assert not status.ok
    assert status.problems == [
        "Step 'b' is stale (built by another version of the code).",
        "Step 'c' is stale (built by another version of the code).",
    ]
    assert status.fix == "python -m engine build --preset tiny --name fakecat"
    with pytest.raises(ArtifactError, match="stale") as info:
        open_catalog(NAME, root=pipe.root)
    assert "python -m engine build --preset tiny" in str(info.value)
    pipe.build(cfg)
    assert pipe.calls == ["b", "c"]
    assert pipe.check().ok


def test_a_new_step_in_the_code_is_reported_as_not_built(pipe, cfg, monkeypatch):
    pipe.build(cfg)
    extra = Step("d", 1, ("a",), ("world",), pipe._run("d"), "fake extra")
    use_steps(monkeypatch, (*pipe.steps(), extra))
    status = pipe.check()
    assert status.problems == ["Step 'd' has not been built."]


@pytest.mark.parametrize("damage", ["truncate", "delete", "grow"])
def test_damaged_artifact_file_is_detected(pipe, cfg, damage):
    pipe.build(cfg)
    target = ArtifactStore(pipe.root).step_dir("b") / "sub" / "b.bin"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "delete":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes() + b"\0")
    status = pipe.check()
    assert not status.ok
    assert len(status.problems) == 1 and "b.bin" in status.problems[0]
    assert "missing or has the wrong size" in status.problems[0]
    with pytest.raises(ArtifactError, match="python -m engine build"):
        open_catalog(NAME, root=pipe.root)


def test_deleted_step_folder_is_detected_and_rebuilt(pipe, cfg):
    pipe.build(cfg)
    shutil.rmtree(ArtifactStore(pipe.root).step_dir("c"))
    status = pipe.check()
    assert not status.ok and "missing or partial" in status.problems[0]
    pipe.build(cfg)
    assert pipe.calls == ["c"]
    assert pipe.check().ok


def test_rebuild_repairs_a_truncated_artifact(pipe, cfg):
    pipe.build(cfg)
    target = ArtifactStore(pipe.root).step_dir("b") / "b.txt"
    target.write_text("")
    assert not pipe.check().ok
    pipe.build(cfg)  # what the error message tells the user to run
    assert pipe.check().ok, pipe.check().problems


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "unreadable"),
        ("", "unreadable"),
        ("[1, 2]", "format version None"),
        ("OTHER", "format version 99"),
    ],
)
def test_corrupt_or_foreign_manifest_is_refused_with_the_rebuild_command(
    pipe, cfg, content, reason
):
    pipe.build(cfg)
    path = pipe.root / "manifest.json"
    if content == "OTHER":
        content = json.dumps({**json.loads(path.read_text()), "format_version": 99})
    path.write_text(content)
    status = pipe.check()
    assert not status.ok
    assert reason in status.problems[0]
    # The folder name is not a preset: the fix names it with --name (and the manifest's own
    # rebuild command when the manifest is readable).
    assert status.fix.startswith("python -m engine build --preset ")
    assert f"--name {NAME}" in status.fix
    with pytest.raises(ArtifactError) as info:
        open_catalog(NAME, root=pipe.root)
    assert reason in str(info.value) and "python -m engine build" in str(info.value)
    with pytest.raises(ArtifactError, match=reason):
        ArtifactStore(pipe.root).read_manifest()


def test_fix_for_a_foreign_manifest_of_a_named_catalog_is_a_valid_command(pipe, cfg):
    from engine.cli import build_parser

    pipe.build(cfg)
    path = pipe.root / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    fix = pipe.check().fix
    assert fix.startswith("python -m engine ")
    try:
        args = build_parser().parse_args(fix.split()[3:])
    except SystemExit:
        pytest.fail(f"the suggested fix is not a valid command: {fix}")
    assert args.preset == "tiny" and args.name == NAME


def test_missing_manifest_says_how_to_build(tmp_path):
    status = check("nothing", root=tmp_path / "nothing")
    assert not status.ok
    assert "No built artifacts for 'nothing'" in status.problems[0]
    assert status.fix == "python -m engine build --preset PRESET --name nothing"
    demo = check("demo", root=tmp_path / "demo")  # a folder named after a preset
    assert demo.fix == "python -m engine build --preset demo"


def test_manifest_with_unreadable_config_is_refused(pipe, cfg):
    pipe.build(cfg)
    path = pipe.root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"]["world"]["n_galaxies"] = 3
    path.write_text(json.dumps(manifest))
    status = pipe.check()
    assert not status.ok and "config is unreadable" in status.problems[0]
    assert "n_galaxies" in status.problems[0]


def test_concurrent_build_fails_fast_with_a_clear_message(pipe, cfg):
    pipe.gate["a"] = threading.Event()
    pipe.started["a"] = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            run_build(cfg, name=NAME, root=pipe.root, log=lambda m: None)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert pipe.started["a"].wait(30)
        with pytest.raises(ArtifactError, match="Another build of 'fakecat' is running"):
            run_build(cfg, name=NAME, root=pipe.root, log=lambda m: None)
    finally:
        pipe.gate["a"].set()
        t.join(30)
    assert not errors
    assert pipe.calls == ["a", "b", "c"]  # the second build never ran a step
    assert pipe.check().ok
    with ArtifactStore(pipe.root).lock():  # released afterwards
        pass


# -- atomic writes -----------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "manifest.json"
    atomic_write_bytes(path, b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"new content")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left
    monkeypatch.undo()
    atomic_write_bytes(path, b"new content")
    assert path.read_bytes() == b"new content"


def test_write_step_publishes_a_folder_whole_or_not_at_all(tmp_path):
    store = ArtifactStore(tmp_path / "cat")
    with pytest.raises(Boom), store.write_step("s", "h1", {}) as out:
        (out / "part.bin").write_bytes(b"x" * 100)
        assert not (store.steps_dir / "s-h1").exists()  # not visible while being written
        raise Boom("mid-write")
    assert list(store.steps_dir.iterdir()) == []
    assert store.finished_step("s", "h1") is None
    info: dict = {}
    with store.write_step("s", "h1", info) as out:
        (out / "part.bin").write_bytes(b"x" * 100)
        info["n"] = 1
    rec = store.finished_step("s", "h1")
    assert rec is not None and rec.info == {"n": 1} and rec.n_files == 1 and rec.bytes == 100
    assert [p.name for p in store.steps_dir.iterdir()] == ["s-h1"]


# -- presets and configs -----------------------------------------------------------------------
def test_load_preset_unknown_name_lists_the_presets():
    with pytest.raises(ValueError) as info:
        load_preset("galaxy")
    msg = str(info.value)
    assert "galaxy" in msg
    for name in ("demo", "tiny", "seed-scale"):
        assert name in msg
    assert set(list_presets()) >= {"demo", "tiny", "seed-scale"}


def test_load_preset_unknown_keys_list_the_valid_settings():
    with pytest.raises(ValueError) as info:
        load_preset("tiny", world={"n_itemz": 5, "colour_count": 3})
    msg = str(info.value)
    assert "n_itemz" in msg and "colour_count" in msg
    assert "n_items" in msg and "title_omit_visual_rate" in msg
    with pytest.raises(ValueError, match="valid"):
        config_from_dict({**load_preset("tiny").to_dict(), "text": {"sbert": "x"}})


def test_load_preset_overrides_and_scaling():
    tiny = load_preset("tiny")
    assert tiny.preset == "tiny" and tiny.seed == 42 and tiny.world.n_items == 600
    assert load_preset("tiny", seed=9).seed == 9
    scaled = load_preset("demo", n_items=2000)
    demo = load_preset("demo")
    assert scaled.world.n_items == 2000
    assert scaled.world.n_users == round(demo.world.n_users * 2000 / demo.world.n_items)
    with pytest.raises(ValueError, match="at least 100"):
        load_preset("demo", n_items=10)
    assert config_from_dict(tiny.to_dict()) == tiny


def test_config_hash_is_stable_and_sensitive():
    a, b = load_preset("tiny"), load_preset("tiny")
    assert stable_hash(a.to_dict()) == stable_hash(b.to_dict())
    assert plan(a) == plan(b)
    assert stable_hash(load_preset("tiny", seed=43).to_dict()) != stable_hash(a.to_dict())
    changed = load_preset("tiny", world={"title_omit_visual_rate": 0.5})
    assert plan(changed)["world"] != plan(a)["world"]


# -- the real tiny build -----------------------------------------------------------------------
def test_real_tiny_manifest_records_config_versions_counts_and_timings(tiny_manifest, data_dir):
    m = json.loads((data_dir / "artifacts" / "tiny" / "manifest.json").read_text())
    assert m["format_version"] == FORMAT_VERSION
    assert m["config_hash"] == stable_hash(load_preset("tiny").to_dict())
    assert m["config"] == json.loads(json.dumps(load_preset("tiny").to_dict()))
    for pkg in ("python", "numpy", "faiss-cpu", "rank-bm25", "sentence-transformers"):
        assert m["versions"][pkg] and m["versions"][pkg] != "not installed", pkg
    assert set(m["steps"]) >= {"world", "lexical", "sbert"}
    assert set(m["steps"]) == {s.name for s in build.ordered_steps()}
    for step, rec in m["steps"].items():
        # the vectorstore step of a FAISS-only build only writes one small file: ~0 s
        assert rec["seconds"] > 0 or step == "vectorstore", step
        assert rec["n_files"] > 0 and rec["bytes"] > 0, step
    counts = m["steps"]["world"]["info"]["counts"]
    assert counts["items"] == 600 and counts["users"] == 120
    assert counts["interactions"] > 1000 and counts["queries"] > 50
    assert m["steps"]["world"]["info"]["n_new_items"] == 60
    assert m["steps"]["sbert"]["info"]["n"] == 600
    # fp32 MiniLM encodes each distinct text once: in bfloat16 on PyTorch where this CPU has it
    # natively (the "auto" compute), else on ONNX Runtime; the CLIP trains in the same format
    native = resolve_compute("auto")
    assert m["steps"]["sbert"]["info"]["compute"] == native
    assert m["steps"]["sbert"]["info"]["runtime"] == ("torch" if native == "bf16" else "onnx")
    assert m["steps"]["clip"]["info"]["compute"] == native
    assert 0 < m["steps"]["sbert"]["info"]["distinct_texts"] <= 600
    assert m["steps"]["sbert"]["info"]["hnsw_recall@10"]["recall_at_k"] >= 0.9
    assert (
        m["build_seconds"]
        >= sum(r["seconds"] for r in m["steps"].values() if not r["skipped"]) * 0.99
    )
    assert m["rebuild_command"] == "python -m engine build --preset tiny"
    assert check("tiny").ok


def test_real_tiny_rerun_skips_everything_and_truncation_is_caught(
    tiny_manifest, data_dir, tmp_path
):
    copy = tmp_path / "tiny"
    shutil.copytree(data_dir / "artifacts" / "tiny", copy)
    manifest = run_build(load_preset("tiny"), root=copy, log=lambda m: None)
    assert all(rec["skipped"] for rec in manifest["steps"].values())
    # a no-op rerun keeps the figures of the build that made the artifacts
    assert manifest["build_seconds"] == tiny_manifest["build_seconds"]
    assert manifest["machine"] == tiny_manifest["machine"]
    assert manifest["machine"]["peak_rss_mb"] > 0 and "checked_at" in manifest
    for step, rec in manifest["steps"].items():  # and each step's peak from when it was built
        assert rec["peak_rss_mb"] == tiny_manifest["steps"][step]["peak_rss_mb"] > 0, step
    assert check("tiny", root=copy).ok
    npz = ArtifactStore(copy).step_dir("lexical") / "bm25_matrix.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    status = check("tiny", root=copy)
    assert not status.ok and "bm25_matrix.npz" in " ".join(status.problems)
    assert check("tiny").ok  # the session's own artifacts are untouched


def test_code_hash_ignores_comments_and_docstrings_but_not_code():
    """Editing what a step's code says about itself does not make every catalog stale."""
    base = '"""Module."""\n\n\ndef f(x):\n    """Double."""\n    return 2 * x  # twice\n'
    same = [
        base.replace("Double.", "Twice x, documented at length."),
        base.replace("# twice", "# a new comment"),
        base.replace('"""Module."""', '"""Another module docstring."""'),
        base.replace('    """Double."""\n', ""),
        base.replace("return 2 * x", "return (2 *   x)"),
    ]
    changed = [
        base.replace("2 * x", "3 * x"),
        base.replace('    """Double."""\n', '    """Double."""\n    x = str(x)\n'),
        base.replace("return 2 * x", 'return "Double."'),  # a string that is not a docstring
        base + "\n\nclass C:\n    pass\n",
    ]
    tree = plan_module.code_tree
    assert all(tree(s) == tree(base) for s in same)
    assert all(tree(s) != tree(base) for s in changed)
    assert tree('def g():\n    """Only a docstring."""\n') == tree("def g():\n    pass\n")
