"""Bring your own catalog: validate a catalog (and its events) and store it for ``build``.

``python -m engine ingest --catalog products.csv --images DIR [--interactions events.csv]
--name NAME`` runs :func:`ingest_catalog`; ``python -m engine build --catalog NAME`` then builds
every index and model over it exactly as over the synthetic world. The validation report comes
first and is stored with the catalog (``data/sources/<name>/validation.json``); see
:mod:`engine.ingest.tables` for what happens to each kind of problem.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.ingest.derive import world_tables
from engine.ingest.images import import_images
from engine.ingest.report import IngestError, ValidationReport
from engine.ingest.source import commit_source, read_source, source_dir, sources_dir, write_tables
from engine.ingest.tables import (
    read_table,
    split_keywords,
    validate_catalog,
    validate_interactions,
)

__all__ = [
    "IngestError",
    "IngestResult",
    "ValidationReport",
    "ingest_catalog",
    "ingest_frames",
    "read_source",
    "source_dir",
]
ProgressFn = Callable[[Iterable, int, str], Iterable]


@dataclass
class IngestResult:
    """Where the ingested catalog went, its counts and the validation report."""

    name: str
    folder: Path
    report: ValidationReport
    record: dict[str, Any]


def _no_progress(it: Iterable, total: int, desc: str) -> Iterable:
    return it


def ingest_frames(
    name: str,
    catalog: pd.DataFrame,
    images: Path,
    *,
    interactions: pd.DataFrame | None = None,
    keywords: pd.DataFrame | None = None,
    report: ValidationReport | None = None,
    inputs: dict[str, str] | None = None,
    processes: int = 2,
    progress: ProgressFn | None = None,
) -> IngestResult:
    """Validate raw catalog/event frames, store images and tables as ``data/sources/<name>``.

    ``keywords`` (item_id, keyword, confidence, source) replaces the catalog's ``keywords``
    column when given (the Unsplash loader passes its AI-service confidences).
    """
    source_dir(name)  # validates the name before any work
    report = report or ValidationReport()
    items = validate_catalog(catalog, report)
    sources_dir().mkdir(parents=True, exist_ok=True)
    tmp = sources_dir() / f".{name}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        kept = import_images(
            items, Path(images), tmp, report, processes=processes, progress=progress or _no_progress
        )
        if kept.empty:
            report.refuse(
                "no_items_left", "catalog", "no usable products are left after the problems above"
            )
            raise IngestError("No usable products are left; see the report.", report)
        inter = None
        if interactions is not None:
            dropped = set(items["item_id"]) - set(kept["item_id"])
            inter = validate_interactions(
                interactions, set(kept["item_id"]), report, skipped_items=dropped
            )
        if keywords is None:
            keywords = split_keywords(kept)
        else:
            keywords = keywords[keywords["item_id"].isin(set(kept["item_id"]))]
        tables, split = world_tables(kept, inter, keywords.reset_index(drop=True), tmp)
        write_tables(tmp, tables)
        report.counts["products ingested"] = len(kept)
        record = {
            "ingested_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "inputs": inputs or {},
            "counts": {k: len(v) for k, v in tables.items()},
            "split": split,
            "ingest_seconds": round(time.perf_counter() - t0, 2),
            "problems": {p.code: report.count(p.code) for p in report.problems},
        }
        folder = commit_source(tmp, name, record, report.to_dict())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return IngestResult(name, folder, report, read_source(name))


def ingest_catalog(
    name: str,
    catalog: Path,
    images: Path,
    interactions: Path | None = None,
    *,
    processes: int = 2,
    progress: ProgressFn | None = None,
) -> IngestResult:
    """Read the files and run :func:`ingest_frames` (IngestError with the report on refusal)."""
    report = ValidationReport()
    items = read_table(Path(catalog), "catalog")
    events = read_table(Path(interactions), "interactions") if interactions else None
    inputs = {"catalog": str(catalog), "images": str(images)}
    if interactions:
        inputs["interactions"] = str(interactions)
    return ingest_frames(
        name,
        items,
        Path(images),
        interactions=events,
        report=report,
        inputs=inputs,
        processes=processes,
        progress=progress,
    )
