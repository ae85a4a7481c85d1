"""Layers that only point down, and the wall between the world's truth and everything else.

Every import in the engine, the pages and the tools is read from the syntax tree (imports inside
functions included) and checked against ``LAYERS``: a module may import its own layer or a lower
one, never a higher one. The world generator (``engine.world``) sits behind a wall: only the
world build step and the CLI's sample renderer may import it, and it imports nothing above the
foundation. Ingested catalogs (``engine.ingest``) and the world do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module belongs to the layer of its longest listed prefix.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "engine",
        "engine.runtime",
        "engine.paths",
        "engine.config",
        "engine.errors",
        "engine.artifacts",
        "engine.imageio",
        "engine.registry",
        "engine.progress",
        "engine.schema",
        "engine.vectors",
    ),
    ("engine.world", "engine.ingest", "engine.evaluation"),  # sources; pure metrics
    ("engine.catalog",),
    ("engine.encoders", "engine.indexes"),
    ("engine.components", "engine.query"),  # shared, cached per-catalog components
    ("engine.retrieval", "engine.ranking"),
    ("engine.recommend",),
    ("engine.judgments",),
    ("engine.pipeline",),
    ("engine.search", "engine.serving", "engine.monitoring", "engine.projection"),
    ("engine.benchmark",),
    ("engine.cli", "engine.api", "engine.__main__"),
    ("pages", "app", "e2e"),
)
RANK = {prefix: i for i, layer in enumerate(LAYERS) for prefix in layer}

# Who may import the world generator (behind the wall). The int8 probe generates catalog-like
# texts and judged queries to time the text encoder on; nothing it makes reaches a method.
WORLD_IMPORTERS = ("engine.world", "engine.pipeline.steps.world", "engine.cli", "e2e.int8_probe")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def rank_of(module: str) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in RANK:
            return RANK[prefix]
    return None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file, function-level ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            # ``from engine.x import y`` imports the submodule engine.x.y when there is one
            subs = [f"{mod}.{alias.name}" for alias in node.names]
            modules = [m for m in subs if _is_module(m)]
            out += [(node.lineno, m) for m in modules]
            if len(modules) < len(subs):
                out.append((node.lineno, mod))
    return out


def source_files() -> list[Path]:
    files = sorted((ROOT / "engine").rglob("*.py")) + sorted((ROOT / "pages").glob("*.py"))
    files += sorted((ROOT / "e2e").glob("*.py")) + [ROOT / "app.py"]
    return [f for f in files if f.exists()]


def _is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations() -> list[str]:
    bad = []
    for path in source_files():
        me = module_name(path)
        mine = rank_of(me)
        assert mine is not None, f"{me} is in no layer: add it to LAYERS"
        for line, target in imports_of(path):
            if target.split(".")[0] not in ("engine", "pages", "e2e", "app"):
                continue
            if not _is_module(target):
                continue  # ``from engine.x import name``: the name is not a module
            theirs = rank_of(target)
            where = f"{path.relative_to(ROOT)}:{line}"
            if theirs is not None and theirs > mine:
                bad.append(f"{where} {me} (layer {mine}) imports {target} (layer {theirs})")
            if target.startswith("engine.world") and not me.startswith(WORLD_IMPORTERS):
                bad.append(f"{where} {me} imports the world generator {target} (the wall)")
            if me.startswith("engine.world") and target.startswith("engine.ingest"):
                bad.append(f"{where} the world imports ingest ({target})")
            if me.startswith("engine.world") and theirs not in (None, 0, RANK["engine.world"]):
                bad.append(f"{where} the world imports {target}: only the foundation is allowed")
    return bad


def test_every_import_points_down_and_respects_the_wall() -> None:
    bad = violations()
    assert not bad, "imports that point up or cross the wall:\n" + "\n".join(bad)


def import_graph() -> dict[str, set[str]]:
    """Module -> the engine modules it imports (function-level imports included)."""
    graph: dict[str, set[str]] = {}
    for path in source_files():
        me = module_name(path)
        graph[me] = {
            t for _, t in imports_of(path) if t.startswith("engine") and _is_module(t) and t != me
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    """Modules that import each other (even inside functions) are one concept split in two."""
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("def f():\n    from engine.pipeline import run_build\n", "engine.pipeline"),
        ("from engine import search\n", "engine.search"),
        ("import engine.world.vocab as v\n", "engine.world.vocab"),
    ],
)
def test_the_checker_sees_function_level_and_aliased_imports(tmp_path, source, expected) -> None:
    """The checker itself: an import inside a function or under an alias is still an import."""
    fake = ROOT / "engine" / "_layer_probe_tmp.py"
    fake.write_text(source)
    try:
        assert expected in {target for _, target in imports_of(fake)}
    finally:
        fake.unlink()


# -- the wall, in the data: what methods may read ---------------------------------------------
# Packages whose modules rank, retrieve, encode, index, recommend, parse queries or train them.
METHOD_PACKAGES = (
    "engine.retrieval",
    "engine.ranking",
    "engine.encoders",
    "engine.indexes",
    "engine.recommend",
    "engine.query",
    "engine.components",
    "engine.search",
    "engine.pipeline",
)
# Build steps that are evaluation or the world itself, not methods.
NOT_METHODS = ("engine.pipeline.steps.world",)
TRUTH_NAMES = {"truth", "user_truth", "title_mentions", "pref_category", "pref_colour",
               "pref_pattern", "price_level", "top_category", "top_colour"}
TRUE_ATTRIBUTES = {"colour", "pattern", "material"}


def truth_reads(path: Path) -> list[str]:
    """Where a module names a truth table or column, or subscripts items with a true attribute."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in TRUTH_NAMES:
            out.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in TRUTH_NAMES or node.value.startswith("truth."):
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            target = node.value
            name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
            if "item" in str(name) and node.slice.value in TRUE_ATTRIBUTES:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}[{node.slice.value!r}]")
    return out


def test_no_method_reads_the_truth() -> None:
    """Methods see only what a real catalog holds: the truth tables and columns are named only
    by the world, the schema, the catalog, the evaluation and the pages that label them."""
    bad = []
    for path in source_files():
        me = module_name(path)
        if me.startswith(METHOD_PACKAGES) and not me.startswith(NOT_METHODS):
            bad += truth_reads(path)
    assert not bad, "methods that read the answer key:\n" + "\n".join(bad)


def test_the_truth_check_sees_reads(tmp_path) -> None:
    """The checker itself finds the three kinds of read."""
    probe = ROOT / "engine" / "_truth_probe_tmp.py"
    probe.write_text(
        "def f(catalog, items):\n"
        "    a = catalog.truth\n"
        "    b = catalog.table('user_truth')\n"
        "    return items['colour'], a, b\n"
    )
    try:
        assert len(truth_reads(probe)) == 3
    finally:
        probe.unlink()
