"""Built catalogs: which exist, and opening one for serving after verifying its artifacts."""

from __future__ import annotations

from pathlib import Path

from engine.artifacts import ArtifactError
from engine.catalog import Catalog
from engine.paths import artifacts_dir, data_dir
from engine.pipeline.status import check

DEFAULT_CATALOG = "demo"


def open_catalog(name: str = DEFAULT_CATALOG, *, root: Path | None = None) -> Catalog:
    """Open a built catalog; :class:`ArtifactError` says what is wrong and how to fix it."""
    status = check(name, root=root)
    if not status.ok:
        raise ArtifactError(" ".join(status.problems), fix=status.fix)
    return Catalog.load(name, status.manifest, root=root)


def built_catalogs() -> list[str]:
    """Names of catalogs with a manifest under ``data/artifacts``."""
    root = data_dir() / "artifacts"
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/manifest.json"))


def manifest_mtime(name: str) -> float:
    """When the catalog's manifest last changed (0 when it has none): the key of app caches."""
    try:
        path = artifacts_dir(name) / "manifest.json"
    except ValueError:
        return 0.0
    return path.stat().st_mtime if path.exists() else 0.0
