"""The build pipeline: an ordered plan of steps, each hashed from its config and inputs.

A step's hash covers its own code version, the config sections it reads, the seed and the hashes
of the steps it depends on, so a change anywhere upstream rebuilds exactly what it affects and a
re-run skips every step whose folder with that hash already exists. The manifest is written last
(see :mod:`engine.artifacts`), so an interrupted build leaves the previous artifacts usable.
"""

from __future__ import annotations

import ast
import importlib.metadata
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.artifacts import ArtifactError, ArtifactStore
from engine.build import steps
from engine.build.fusion import build_fusion
from engine.build.ranker import build_ranker
from engine.build.recommend import build_recommenders
from engine.build.visual import build_clip, build_visual
from engine.config import BuildConfig, config_from_dict, stable_hash
from engine.paths import artifacts_dir

ProgressFn = Callable[[Iterable, int, str], Iterable]
MIN_TRAIN_QUERIES = 10  # fewer judged training queries cannot train a re-ranker
_PACKAGES = (
    "numpy",
    "pandas",
    "pyarrow",
    "pillow",
    "torch",
    "open_clip_torch",
    "sentence-transformers",
    "faiss-cpu",
    "rank-bm25",
    "scikit-learn",
    "lightgbm",
    "implicit",
)


@dataclass(frozen=True)
class Step:
    """One build step: what it reads, what it depends on, and the function that runs it."""

    name: str
    version: int
    deps: tuple[str, ...]
    sections: tuple[str, ...]
    run: Callable[[steps.StepContext, Path], dict[str, Any]]
    description: str = ""
    code: tuple[str, ...] = ()  # source files (globs under engine/) whose text is in the hash
    # Why the step cannot run on this catalog (e.g. no interactions), or None. An unavailable
    # step records the reason instead of artifacts, and the methods that need it are hidden.
    unavailable: Callable[[steps.StepContext], str | None] | None = None


STEPS: tuple[Step, ...] = (
    Step(
        "world",
        3,
        (),
        ("world", "source"),
        steps.build_world,
        "generate the synthetic world (or import an ingested catalog)",
        ("world/*.py",),
    ),
    Step(
        "lexical",
        3,
        ("world",),
        ("text",),
        steps.build_lexical,
        "BM25, TF-IDF, keywords",
        ("indexes/bm25.py", "indexes/tfidf.py", "indexes/keywords.py", "indexes/tokenize.py"),
    ),
    Step(
        "sbert",
        1,
        ("world",),
        ("text",),
        steps.build_sbert,
        "Sentence-BERT embeddings + FAISS",
        ("encoders/text.py", "indexes/vector.py"),
    ),
    Step(
        "clip",
        1,
        ("world",),
        ("clip",),
        build_clip,
        "compact catalog CLIP (or pretrained)",
        ("encoders/clip.py", "encoders/compact_clip.py"),
    ),
    Step(
        "visual",
        1,
        ("world", "clip"),
        (),
        build_visual,
        "CLIP + colour image embeddings",
        ("encoders/colour.py", "build/visual.py"),
    ),
    Step(
        "fusion",
        1,
        ("world", "sbert", "clip", "visual"),
        ("text",),
        build_fusion,
        "fusion weights (tuned on validation) and the fusion MLP",
        ("build/fusion.py", "encoders/fusion_mlp.py", "retrieval/fusion.py"),
        steps.needs_queries(val=1, image_val=1),
    ),
    Step(
        "ranker",
        1,
        ("world", "lexical", "sbert", "clip", "visual"),
        (),
        build_ranker,
        "Hybrid LambdaMART re-ranker (train queries; early-stopped on validation)",
        ("build/ranker.py", "ranking/*.py"),
        steps.needs_queries(train=MIN_TRAIN_QUERIES, val=1),
    ),
    Step(
        "recommend",
        1,
        ("world", "lexical", "sbert", "visual"),
        (),
        build_recommenders,
        "recommenders (ALS, two-tower, content, FM, DeepFM, hybrid) and their evaluation",
        ("recommend/[a-r]*.py", "recommend/two_tower.py", "build/recommend.py"),
        steps.needs_interactions,
    ),
)


def code_hash(patterns: tuple[str, ...]) -> str:
    """A hash of the code a step runs, so a code change marks its output stale.

    It hashes each file's syntax tree, not its text: reformatting or editing comments does not
    force a rebuild, while any change to what the code does (or to a docstring) does.
    """
    root = Path(__file__).resolve().parent.parent
    files = sorted({p for pattern in patterns for p in root.glob(pattern)})
    return stable_hash(
        {str(p.relative_to(root)): ast.dump(ast.parse(p.read_text())) for p in files}
    )


def plan(cfg: BuildConfig) -> dict[str, str]:
    """The hash of every step for ``cfg``, in build order."""
    hashes: dict[str, str] = {}
    conf = cfg.to_dict()
    for step in STEPS:
        hashes[step.name] = stable_hash(
            {
                "step": step.name,
                "version": step.version,
                "code": code_hash(step.code),
                "seed": cfg.seed,
                # ``source`` is absent from a synthetic world's config (its hashes predate it).
                "config": {s: conf[s] for s in step.sections if s in conf},
                "deps": {d: hashes[d] for d in step.deps},
            }
        )
    return hashes


def package_versions() -> dict[str, str]:
    """Installed versions of the packages whose output the artifacts depend on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class BuildStatus:
    """Whether a catalog's artifacts can be served, and if not, why and how to fix it."""

    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    fix: str = ""
    manifest: dict[str, Any] | None = None


def check(name: str, *, root: Path | None = None) -> BuildStatus:
    """Verify a catalog's manifest, step folders and hashes against the current code."""
    store = ArtifactStore(root or artifacts_dir(name))
    try:
        manifest = store.read_manifest()
    except ArtifactError as exc:
        return BuildStatus(name, False, [exc.reason], exc.fix or "")
    fix = store.default_fix(manifest)
    try:
        cfg = config_from_dict(manifest["config"])
    except (KeyError, TypeError, ValueError) as exc:
        return BuildStatus(name, False, [f"The manifest's config is unreadable ({exc})."], fix)
    problems = _source_problems(cfg)
    expected = plan(cfg)
    for step, step_hash in expected.items():
        rec = manifest.get("steps", {}).get(step)
        if rec is None:
            problems.append(f"Step '{step}' has not been built.")
        elif rec.get("hash") != step_hash:
            problems.append(f"Step '{step}' is stale (built by another version of the code).")
        else:
            try:
                store.step_dir(step, manifest)
            except ArtifactError as exc:
                problems.append(exc.reason)
    return BuildStatus(name, not problems, problems, fix, manifest)


def _source_problems(cfg: BuildConfig) -> list[str]:
    """An ingested catalog whose source was ingested again since the build is stale."""
    if cfg.source is None:
        return []
    from engine.ingest.source import read_source

    try:
        current = read_source(cfg.source.name).get("fingerprint")
    except ArtifactError:
        return []  # the source folder was removed: the build's own copy is still complete
    if current != cfg.source.fingerprint:
        return [f"The catalog '{cfg.source.name}' was ingested again after this build."]
    return []


def _rebuild_command(cfg: BuildConfig, name: str) -> str:
    if cfg.source is not None:
        cmd = f"python -m engine build --catalog {cfg.source.name}"
        if cfg.preset != "catalog":
            cmd += f" --preset {cfg.preset}"
        return cmd + (f" --seed {cfg.seed}" if cfg.seed != 42 else "")
    cmd = f"python -m engine build --preset {cfg.preset}"
    if name != cfg.preset:
        cmd += f" --name {name}"
    if cfg.seed != 42:
        cmd += f" --seed {cfg.seed}"
    return cmd


def run_build(
    cfg: BuildConfig,
    *,
    name: str | None = None,
    root: Path | None = None,
    progress: ProgressFn | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build (or bring up to date) the artifacts of ``cfg``; returns the new manifest."""
    name = name or cfg.preset
    store = ArtifactStore(root or artifacts_dir(name))
    progress = progress or (lambda it, total, desc: it)
    hashes = plan(cfg)
    records: dict[str, Any] = {}
    t_start = time.perf_counter()
    with store.lock():
        for step in STEPS:
            step_hash = hashes[step.name]
            done = store.finished_step(step.name, step_hash)
            if done is not None:
                log(f"[{step.name}] up to date ({step_hash}), skipped")
                records[step.name] = {**done.__dict__, "skipped": True}
                continue
            log(f"[{step.name}] building: {step.description}")
            ctx = steps.StepContext(
                cfg=cfg,
                inputs={d: store.root / records[d]["dir"] for d in step.deps},
                progress=progress,
                log=log,
            )
            reason = step.unavailable(ctx) if step.unavailable else None
            info: dict[str, Any] = {}
            with store.write_step(step.name, step_hash, info) as out:
                info.update({"unavailable": reason} if reason else step.run(ctx, out))
            rec = store.finished_step(step.name, step_hash)
            records[step.name] = {**rec.__dict__, "skipped": False}
            if reason:
                log(f"[{step.name}] not available for this catalog: {reason}")
            else:
                log(f"[{step.name}] done in {rec.seconds:.1f} s")
        manifest = {
            "name": name,
            "preset": cfg.preset,
            "config": cfg.to_dict(),
            "config_hash": stable_hash(cfg.to_dict()),
            "steps": records,
            "versions": package_versions(),
            "machine": {"platform": platform.platform(), "cpus": _cpu_count()},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - t_start, 2),
            "rebuild_command": _rebuild_command(cfg, name),
        }
        store.commit(manifest)
    return manifest


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
