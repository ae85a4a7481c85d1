"""Whether a catalog's artifacts can be served: its manifest, step folders and hashes verified
against the current code, and the one command that rebuilds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.artifacts import ArtifactError, ArtifactStore
from engine.config import BuildConfig, config_from_dict, load_preset
from engine.paths import artifacts_dir
from engine.pipeline.planner import plan


@dataclass
class BuildStatus:
    """Whether a catalog's artifacts can be served, and if not, why and how to fix it."""

    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    fix: str = ""
    manifest: dict[str, Any] | None = None
    # steps of the plan that a partial manifest (a first build still running, or stopped) has
    # not built yet; the others are up to date and complete
    unbuilt: list[str] = field(default_factory=list)
    # steps built by another version of the code whose folders are complete
    stale: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """A first build's partial manifest whose finished steps (world among them) can be
        served; the missing ones are in :attr:`unbuilt`."""
        return bool(self.manifest and self.manifest.get("partial") and self.unbuilt
                    and "world" not in self.unbuilt
                    and len(self.problems) == len(self.unbuilt))

    @property
    def outdated(self) -> bool:
        """A complete catalog whose only problem is steps built by other code (:attr:`stale`,
        their folders complete): the app serves it while a rebuild runs."""
        return bool(self.manifest and not self.manifest.get("partial") and self.stale
                    and len(self.problems) == len(self.stale))


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
    unbuilt: list[str] = []
    stale: list[str] = []
    for step, step_hash in expected.items():
        rec = manifest.get("steps", {}).get(step)
        if rec is None:
            problems.append(f"Step '{step}' has not been built.")
            unbuilt.append(step)
        else:
            try:
                store.step_dir(step, manifest)
            except ArtifactError as exc:
                problems.append(exc.reason)
                continue
            if rec.get("hash") != step_hash:
                problems.append(stale_problem(step))
                stale.append(step)
    return BuildStatus(name, not problems, problems, fix, manifest, unbuilt, stale)


def stale_problem(step: str) -> str:
    """What :func:`check` says of a step built by another version of the code."""
    return f"Step '{step}' is stale (built by another version of the code)."


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


def rebuild_command(cfg: BuildConfig, name: str) -> str:
    if cfg.source is not None:
        cmd = f"python -m engine build --catalog {cfg.source.name}"
        if cfg.preset != "catalog":
            cmd += f" --preset {cfg.preset}"
        return (
            cmd + (f" --seed {cfg.seed}" if cfg.seed != 42 else "") + _precision_flag(cfg)
            + _store_flags(cfg)
        )
    cmd = f"python -m engine build --preset {cfg.preset}"
    if name != cfg.preset:
        cmd += f" --name {name}"
    if cfg.seed != 42:
        cmd += f" --seed {cfg.seed}"
    return cmd + _precision_flag(cfg) + _store_flags(cfg)


def _store_flags(cfg: BuildConfig) -> str:
    """``--vector-store milvus [--milvus-uri URI]`` when the build also wrote Milvus."""
    store = cfg.vector_store
    if store.kind == "faiss":
        return ""
    return " --vector-store milvus" + (f" --milvus-uri {store.uri}" if store.uri else "")


def _precision_flag(cfg: BuildConfig) -> str:
    """``--sbert-precision P`` when the build's precision differs from its preset's."""
    try:
        preset = load_preset(cfg.preset).text.sbert_precision
    except ValueError:
        preset = "fp32"
    precision = cfg.text.sbert_precision
    return "" if precision == preset else f" --sbert-precision {precision}"


