"""Ingested catalogs on disk: ``data/sources/<name>/`` with tables, images and ``source.json``.

A source folder is written under a temporary name and renamed into place only when complete, so
a failed or interrupted ingest never replaces a good one. ``source.json`` holds the content
fingerprint that builds record (see :class:`engine.config.SourceConfig`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from engine.artifacts import ArtifactError
from engine.paths import artifacts_dir, data_dir
from engine.schema import TABLES  # the tables every build step reads

SOURCE_FILE = "source.json"
REPORT_FILE = "validation.json"


def sources_dir() -> Path:
    """Where ingested catalogs live (``data/sources``)."""
    return data_dir() / "sources"


def source_dir(name: str) -> Path:
    """The folder of the ingested catalog ``name`` (validated like an artifact name)."""
    artifacts_dir(name)  # same naming rules
    return sources_dir() / name


def fingerprint(folder: Path) -> str:
    """A content hash over every table and image of a source folder."""
    h = hashlib.sha256()
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.name not in (SOURCE_FILE, REPORT_FILE)
    )
    for p in files:
        h.update(str(p.relative_to(folder)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Write every table of ``TABLES`` as parquet."""
    for name in TABLES:
        tables[name].to_parquet(folder / f"{name}.parquet", index=False)


def commit_source(tmp: Path, name: str, record: dict[str, Any], report: dict[str, Any]) -> Path:
    """Write ``source.json`` and the report into ``tmp`` and rename it into place."""
    record = {**record, "name": name, "fingerprint": fingerprint(tmp)}
    (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str))
    (tmp / SOURCE_FILE).write_text(json.dumps(record, indent=2, default=str))
    final = source_dir(name)
    old = final.with_name(f".{name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_source(name: str) -> dict[str, Any]:
    """``source.json`` of an ingested catalog; ArtifactError (with the fix) when absent."""
    path = source_dir(name) / SOURCE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        known = (
            sorted(p.name for p in sources_dir().glob("*") if (p / SOURCE_FILE).is_file())
            if sources_dir().is_dir()
            else []
        )
        raise ArtifactError(
            f"No ingested catalog named '{name}'"
            + (f" (ingested: {', '.join(known)})." if known else " (none ingested yet)."),
            fix="python -m engine ingest --catalog FILE --images DIR --name " + name,
        ) from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(
            f"The ingested catalog '{name}' is damaged ({exc}).",
            fix=f"ingest it again with python -m engine ingest ... --name {name}",
        ) from exc


def import_source(name: str, expected: str, out: Path) -> dict[str, Any]:
    """Copy an ingested catalog into a build's ``world`` folder (images hard-linked if possible).

    Refuses a source whose fingerprint is not ``expected`` (it was re-ingested meanwhile).
    """
    record = read_source(name)
    if record.get("fingerprint") != expected:
        raise ArtifactError(
            f"The catalog '{name}' was ingested again after this build was planned.",
            fix=f"python -m engine build --catalog {name}",
        )
    src = source_dir(name)
    for table in TABLES:
        shutil.copy2(src / f"{table}.parquet", out / f"{table}.parquet")
    for path in sorted(p for d in ("images", "query_images") for p in (src / d).rglob("*.jpg")):
        dst = out / path.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dst)
        except OSError:
            shutil.copy2(path, dst)
    return {
        "source": name,
        "fingerprint": expected,
        "counts": record.get("counts", {}),
        "ingested_at": record.get("ingested_at"),
    }
