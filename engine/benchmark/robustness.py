"""Robustness figures: run the bad-input table through the engine and inject artifact faults.

``run_robustness(catalog)`` tries every row of :data:`engine.bad_inputs.BAD_INPUTS` against every
method or recommender it applies to, and injects faults into a throw-away copy of the catalog's
artifacts (a truncated or foreign manifest, a missing step folder, a truncated, corrupt or deleted
index, a pickle planted where an array is expected, a killed build's leftovers). It returns
counts and each case's outcome; ``python -m engine bench`` writes them to
``reports/robustness.json`` and the benchmark report.

A *crash* is any exception other than the clear, user-facing refusals (:class:`QueryError`,
:class:`ImageInputError`, :class:`ArtifactError`, an unknown recommender's ``ValueError``). A fault
is *survived* when the engine refuses it with the one-command rebuild message, or keeps serving
what still works, and never executes planted code.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.artifacts import MANIFEST, STEP_RECORD, ArtifactError
from engine.bad_inputs import BAD_INPUTS, BadInput
from engine.serving import open_catalog

_TEXT_OK = "leather boots"  # a valid query, for rows that vary something else
_MSG_CHARS = 240


@dataclass
class Outcome:
    """What happened to one bad input with one method (or one injected fault)."""

    case: str
    target: str  # method, recommender, "decode", or the fault's probe
    expected: str  # "answer", "refuse" (or "serve" for faults that must keep serving)
    got: str  # "answer", "refuse", "serve" or "crash"
    ok: bool
    message: str = ""


def _short(text: str) -> str:
    """One line of at most _MSG_CHARS; long ones keep their start and their end (the fix)."""
    text = " ".join(str(text).split())
    if len(text) <= _MSG_CHARS:
        return text
    tail = _MSG_CHARS // 3
    return text[: _MSG_CHARS - tail - 1] + "…" + text[-tail:]


def _judge(row: BadInput, target: str, run: Callable[[], list[str]]) -> Outcome:
    """Run one trial; ``run`` returns the notes of an answer or raises a refusal."""
    from engine.imageio import ImageInputError
    from engine.search import QueryError

    try:
        notes = run()
    except (QueryError, ImageInputError, ArtifactError) as exc:
        got, text = "refuse", str(exc)
    except ValueError as exc:  # the recommender service's unknown-name error
        got, text = ("refuse", str(exc)) if row.kind == "recommender" else ("crash", repr(exc))
    except Exception as exc:  # noqa: BLE001 - a crash is what this counts
        got, text = "crash", f"{type(exc).__name__}: {exc}"
    else:
        got, text = "answer", " ".join(notes)
    ok = got == row.expect and row.message in text
    return Outcome(row.case, target, row.expect, got, ok, _short(text))


def try_bad_input(catalog, row: BadInput, service=None) -> list[Outcome]:
    """Every trial of one row against ``catalog``: one outcome per method or recommender."""
    from engine.imageio import load_image
    from engine.retrieval.registry import available_retrievers
    from engine.search import search

    def searched(method: str, **kw: Any) -> Callable[[], list[str]]:
        def run() -> list[str]:
            result = search(catalog, method, **kw)
            if not len(result) and not result.notes:
                raise RuntimeError(f"{method} returned nothing and said nothing")
            return list(result.notes)

        return run

    value = row.value()
    if row.kind == "query":
        methods = available_retrievers(catalog, "text")
        return [_judge(row, m, searched(m, text=value, k=10)) for m in methods]
    if row.kind == "top_k":
        return [_judge(row, m, searched(m, text=_TEXT_OK, k=value)) for m in ("bm25", "sbert")]
    if row.kind == "method":
        return [_judge(row, value, searched(value, text=_TEXT_OK, k=10))]
    if row.kind in ("user", "recommender"):
        if service is None:
            return []
        models = service.models() if row.kind == "user" else [value]
        user = value if row.kind == "user" else "u000001"

        def recommend(model: str) -> Callable[[], list[str]]:
            return lambda: list(service.recommend(user, model, k=10).notes)

        return [_judge(row, m, recommend(m)) for m in models]
    if row.kind == "image":
        decoded: list = []

        def decode() -> list[str]:
            decoded.append(load_image(value))
            return list(decoded[0].notes)

        first = _judge(row, "decode", decode)
        if not decoded:
            return [first]
        methods = available_retrievers(catalog, "image")
        return [first] + [_judge(row, m, searched(m, image=decoded[0], k=10)) for m in methods]
    raise ValueError(f"unknown bad-input kind {row.kind!r}")


# -- faults ------------------------------------------------------------------------------------
@contextmanager
def _copy_of(root: Path) -> Iterator[Path]:
    """A throw-away copy of a catalog's artifacts (hard links where possible: instant).

    Faults must replace files (unlink, then write), never write into them: a hard-linked file is
    shared with the original.
    """
    with tempfile.TemporaryDirectory(prefix="pixelmatch-faults-") as tmp:
        dst = Path(tmp) / root.name

        def link(src: str, dest: str) -> None:
            try:
                os.link(src, dest)
            except OSError:
                shutil.copy2(src, dest)

        shutil.copytree(root, dst, copy_function=link, ignore=shutil.ignore_patterns(".build.lock"))
        yield dst


def _replace(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _step_folder(root: Path, step: str) -> Path:
    manifest = json.loads((root / MANIFEST).read_text())
    return root / manifest["steps"][step]["dir"]


def _record_size(folder: Path, rel: str) -> None:
    """Make a step's record agree with a replaced file (what a careful attacker would do)."""
    record = json.loads((folder / STEP_RECORD).read_text())
    record["files"][rel] = (folder / rel).stat().st_size
    _replace(folder / STEP_RECORD, json.dumps(record).encode())


class _Planted:
    """A pickle payload that creates a marker file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _refused_open(name: str, root: Path, needle: str) -> tuple[str, str]:

    try:
        open_catalog(name, root=root)
    except ArtifactError as exc:
        text = str(exc)
        fine = needle in text and "python -m engine build" in text
        return ("refuse" if fine else "refuse-unclear"), text
    return "serve", "opened a damaged catalog"


def _fault_manifest(name: str, root: Path, kind: str) -> tuple[str, str]:
    path = root / MANIFEST
    if kind == "truncated":
        _replace(path, path.read_bytes()[: path.stat().st_size // 2])
        return _refused_open(name, root, "unreadable")
    if kind == "foreign":
        manifest = json.loads(path.read_text())
        _replace(path, json.dumps({**manifest, "format_version": 99}).encode())
        return _refused_open(name, root, "format version 99")
    if kind == "stale":
        manifest = json.loads(path.read_text())
        manifest["steps"]["lexical"]["hash"] = "0" * 16
        _replace(path, json.dumps(manifest).encode())
        return _refused_open(name, root, "stale")
    path.unlink()
    return _refused_open(name, root, "No built artifacts")


def _fault_step_folder(name: str, root: Path) -> tuple[str, str]:
    shutil.rmtree(_step_folder(root, "sbert"))
    return _refused_open(name, root, "missing or partial")


def _fault_truncated_index(name: str, root: Path) -> tuple[str, str]:
    path = _step_folder(root, "sbert") / "sbert_hnsw.faiss"
    _replace(path, path.read_bytes()[: path.stat().st_size // 2])
    return _refused_open(name, root, "wrong size")


def _serve_rest(catalog, broken: str, probe: str) -> tuple[str, str]:
    """Search with the broken method (must refuse clearly), then with another (must answer)."""
    from engine.search import search

    try:
        search(catalog, broken, text=_TEXT_OK, k=5)
        return "answer", f"{broken} answered from a damaged index"
    except ArtifactError as exc:
        text = str(exc)
    if "python -m engine build" not in text:
        return "refuse-unclear", text
    if not len(search(catalog, probe, text=_TEXT_OK, k=5)):
        return "crash", f"{probe} stopped answering after {broken} failed"
    return "serve", text


def _fault_after_open(name: str, root: Path, kind: str) -> tuple[str, str]:

    catalog = open_catalog(name, root=root)
    if kind == "corrupt":
        path = _step_folder(root, "visual") / "clip_hnsw.faiss"
        _replace(path, os.urandom(path.stat().st_size))  # same size: passes the size check
        return _serve_rest(catalog, "clip", "bm25")
    path = _step_folder(root, "lexical") / "tfidf_idf.npy"
    path.unlink()
    return _serve_rest(catalog, "tfidf", "bm25")


def _fault_planted_pickle(name: str, root: Path) -> tuple[str, str]:

    folder = _step_folder(root, "lexical")
    marker = root.parent / "pickle-was-executed"
    path = folder / "tfidf_idf.npy"
    path.unlink()
    with open(path, "wb") as fh:
        np.save(fh, np.array([_Planted(marker)], dtype=object), allow_pickle=True)
    _record_size(folder, "tfidf_idf.npy")
    got, text = _serve_rest(open_catalog(name, root=root), "tfidf", "bm25")
    if marker.exists():
        return "crash", "the planted pickle was executed"
    return got, text


def _fault_killed_build(name: str, root: Path) -> tuple[str, str]:

    leftover = root / "steps" / ".tmp-world-killed"
    leftover.mkdir(parents=True)
    (leftover / "items.parquet").write_bytes(b"PAR1 half-written")
    catalog = open_catalog(name, root=root)
    from engine.search import search

    return ("serve", "previous build served") if len(
        search(catalog, "bm25", text=_TEXT_OK, k=5)
    ) else ("crash", "no results")


FAULTS: tuple[tuple[str, str, str, Callable[[str, Path], tuple[str, str]]], ...] = (
    ("manifest-truncated", "manifest.json cut in half", "refuse",
     lambda n, r: _fault_manifest(n, r, "truncated")),
    ("manifest-foreign-version", "manifest from another format version", "refuse",
     lambda n, r: _fault_manifest(n, r, "foreign")),
    ("manifest-stale-step", "a step built by other code", "refuse",
     lambda n, r: _fault_manifest(n, r, "stale")),
    ("manifest-missing", "manifest.json deleted", "refuse",
     lambda n, r: _fault_manifest(n, r, "missing")),
    ("step-folder-missing", "a step folder deleted", "refuse", _fault_step_folder),
    ("index-truncated", "FAISS index truncated", "refuse", _fault_truncated_index),
    ("index-corrupt-after-open", "FAISS index overwritten with noise after opening", "serve",
     lambda n, r: _fault_after_open(n, r, "corrupt")),
    ("index-deleted-after-open", "TF-IDF file deleted after opening", "serve",
     lambda n, r: _fault_after_open(n, r, "deleted")),
    ("planted-pickle", "a pickle planted in place of an array (sizes fixed up)", "serve",
     _fault_planted_pickle),
    ("killed-build-leftovers", "a killed build's half-written temp folder", "serve",
     _fault_killed_build),
)


def inject_faults(catalog) -> list[Outcome]:
    """Inject each fault into a fresh copy of ``catalog``'s artifacts; one outcome per fault."""
    out = []
    for fault_id, _, expected, inject in FAULTS:
        with _copy_of(catalog.store.root) as root:
            try:
                got, text = inject(catalog.name, root)
            except Exception as exc:  # noqa: BLE001 - a crash is what this counts
                got, text = "crash", f"{type(exc).__name__}: {exc}"
        out.append(Outcome(fault_id, "artifacts", expected, got, got == expected, _short(text)))
    return out


def run_robustness(catalog, *, faults: bool = True) -> dict[str, Any]:
    """Counts and outcomes of every bad input and (optionally) every injected fault."""
    from engine.recommend.service import RecommendationService

    start = time.perf_counter()
    built = catalog.built_steps  # an unavailable step (e.g. no events) has no artifacts
    service = RecommendationService.for_catalog(catalog) if "recommend" in built else None
    trials = [o for row in BAD_INPUTS for o in try_bad_input(catalog, row, service)]
    injected = inject_faults(catalog) if faults else []
    return {
        "catalog": catalog.name,
        "items": int(len(catalog.items)),
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "seconds": round(time.perf_counter() - start, 1),
        "bad_inputs": {
            "cases": len(BAD_INPUTS),
            "trials": len(trials),
            "crashes": sum(o.got == "crash" for o in trials),
            "unexpected": sum(not o.ok for o in trials),
            "outcomes": [asdict(o) for o in trials],
        },
        "faults": {
            "injected": len(injected),
            "survived": sum(o.ok for o in injected),
            "outcomes": [asdict(o) for o in injected],
        },
    }


def summary(report: dict[str, Any]) -> str:
    """One sentence for the benchmark headline."""
    b, f = report["bad_inputs"], report["faults"]
    text = (
        f"Robustness: {b['trials']} bad-input trials ({b['cases']} cases) with "
        f"{b['crashes']} crashes and {b['unexpected']} unexpected outcomes"
    )
    if f["injected"]:
        text += f"; {f['injected']} artifact faults injected, {f['survived']} survived"
    return text + "."


def compact(report: dict[str, Any]) -> dict[str, Any]:
    """The counts of a robustness report (for benchmark.json), with any failed case named."""
    b, f = report["bad_inputs"], report["faults"]
    kinds: dict[str, int] = {}
    for row in BAD_INPUTS:
        kinds[row.kind] = kinds.get(row.kind, 0) + 1
    return {
        "cases": b["cases"],
        "trials": b["trials"],
        "crashes": b["crashes"],
        "unexpected": b["unexpected"],
        "cases_by_kind": kinds,
        "faults_injected": f["injected"],
        "faults_survived": f["survived"],
        "failures": [o for o in b["outcomes"] + f["outcomes"] if not o["ok"]],
        "measured_at": report["measured_at"],
        "details": "reports/robustness.json",
    }


def write_robustness(report: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Write ``robustness.json`` (every outcome) into ``folder``; return :func:`compact`."""
    from engine.artifacts import atomic_write_json

    atomic_write_json(Path(folder) / "robustness.json", report)
    return compact(report)
