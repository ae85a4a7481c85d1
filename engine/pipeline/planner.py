"""The build plan: the registered steps in dependency order, each hashed from its inputs.

A step's hash covers its own code version, the config sections it reads, the seed and the hashes
of the steps it depends on, so a change anywhere upstream rebuilds exactly what it affects and a
re-run skips every step whose folder with that hash already exists.
"""

from __future__ import annotations

import ast
import importlib.metadata
import platform
from pathlib import Path

from engine.config import BuildConfig, stable_hash
from engine.pipeline.step import STEPS, Step

ENGINE_ROOT = Path(__file__).resolve().parent.parent
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


def ordered_steps() -> tuple[Step, ...]:
    """Every registered step, dependencies first (ties in name order)."""
    by_name = {s.name: s for s in STEPS}
    done: list[str] = []
    pending = sorted(by_name)
    while pending:
        ready = [n for n in pending if all(d in done for d in by_name[n].deps)]
        if not ready:
            missing = {n: [d for d in by_name[n].deps if d not in done] for n in pending}
            raise ValueError(f"build steps with unknown or circular dependencies: {missing}")
        done.append(ready[0])
        pending.remove(ready[0])
    return tuple(by_name[n] for n in done)


def step_module_pattern(step: Step) -> str:
    """The step's own module, as a glob relative to ``engine/``."""
    module = step.run.__module__
    return module.removeprefix("engine.").replace(".", "/") + ".py"


def code_hash(patterns: tuple[str, ...]) -> str:
    """A hash of the code a step runs, so a code change marks its output stale.

    It hashes each file's syntax tree without its docstrings, not its text: reformatting or
    editing comments and docstrings does not force a rebuild, while any change to what the code
    does does.
    """
    files = sorted({p for pattern in patterns for p in ENGINE_ROOT.glob(pattern)})
    return stable_hash({str(p.relative_to(ENGINE_ROOT)): code_tree(p.read_text()) for p in files})


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def code_tree(source: str) -> str:
    """The syntax tree of ``source`` as text, without comments and docstrings."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, _DOCUMENTED) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def plan(cfg: BuildConfig) -> dict[str, str]:
    """The hash of every step for ``cfg``, in build order."""
    hashes: dict[str, str] = {}
    conf = cfg.to_dict()
    for step in ordered_steps():
        hashes[step.name] = stable_hash(
            {
                "step": step.name,
                "version": step.version,
                "code": code_hash((step_module_pattern(step), *step.code)),
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
