"""Built catalogs: which exist, and opening one for serving after verifying its artifacts."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from engine.artifacts import ArtifactError
from engine.catalog import Catalog
from engine.paths import artifacts_dir, data_dir
from engine.pipeline.live import LiveBuild, last_failure, live_build
from engine.pipeline.status import check

DEFAULT_CATALOG = "demo"
T = TypeVar("T")


def open_catalog(
    name: str = DEFAULT_CATALOG,
    *,
    root: Path | None = None,
    vector_store: str | None = None,
    milvus_uri: str | None = None,
    partial: bool = False,
    outdated: bool = False,
) -> Catalog:
    """Open a built catalog; :class:`ArtifactError` says what is wrong and how to fix it.

    ``vector_store`` (``faiss`` or ``milvus``; default ``PIXELMATCH_VECTOR_STORE``, else
    ``faiss``) is where its dense methods read their indexes from. ``milvus`` needs a build with
    ``--vector-store milvus``; ``milvus_uri`` overrides the server the build recorded.
    ``partial`` also opens a first build's partial catalog (the app, while the build runs): the
    steps not built yet are unavailable (``catalog.unavailable(step)`` says so); ``outdated``
    also opens a complete catalog built by other code (the app, while it is rebuilt).
    """
    status = check(name, root=root)
    if status.partial and not partial:
        raise ArtifactError(
            f"The '{name}' catalog is only partly built: its first build is running or "
            f"stopped ({', '.join(status.unbuilt)} not built yet).", fix=status.fix)
    if not (status.ok or status.partial or (outdated and status.outdated)):
        raise ArtifactError(" ".join(status.problems), fix=status.fix)
    catalog = Catalog.load(name, status.manifest, root=root)
    catalog.stale_steps = list(status.stale)
    store = vector_store_for(catalog, vector_store, milvus_uri)
    if store is not None:
        catalog.vector_store = store
    return catalog


def vector_store_for(catalog: Catalog, kind: str | None, uri: str | None):
    """The Milvus store config a catalog is opened with, or None for the FAISS files."""
    from engine.indexes.store import STORE_ENV, URI_ENV, VectorStoreConfig

    kind = (kind or os.environ.get(STORE_ENV, "") or "faiss").strip().lower()
    uri = uri or os.environ.get(URI_ENV, "").strip() or None
    if kind == "faiss" and uri is None:
        return None
    store = VectorStoreConfig(kind, uri)  # ValueError lists the valid stores
    from engine.components import milvus_build_command, milvus_collections

    if milvus_collections(catalog) is None:
        raise ArtifactError(
            f"The '{catalog.name}' catalog has no Milvus collections (it was built with the "
            "FAISS vector store only).",
            fix=milvus_build_command(catalog),
        )
    return store


def built_catalogs() -> list[str]:
    """Names of catalogs with a manifest under ``data/artifacts``."""
    root = data_dir() / "artifacts"
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/manifest.json"))


def building_catalogs() -> dict[str, LiveBuild]:
    """Catalogs being built right now (a live build process under ``data/artifacts``)."""
    return _per_catalog(live_build)


def catalog_build(name: str) -> LiveBuild | None:
    """The build of catalog ``name`` running right now, if any."""
    try:
        return live_build(artifacts_dir(name))
    except ValueError:  # not a catalog name
        return None


def failed_builds() -> dict[str, str]:
    """Catalogs whose last build did not finish (it failed, or its process died), and why."""
    return _per_catalog(last_failure)


def _per_catalog(read: Callable[[Path], T | None]) -> dict[str, T]:
    """``read`` of every catalog folder under ``data/artifacts``, where it found something."""
    root = data_dir() / "artifacts"
    if not root.is_dir():
        return {}
    found = {p.name: read(p) for p in sorted(root.iterdir()) if p.is_dir()}
    return {name: value for name, value in found.items() if value is not None}


def manifest_mtime(name: str) -> float:
    """When the catalog's manifest last changed (0 when it has none): the key of app caches."""
    try:
        path = artifacts_dir(name) / "manifest.json"
    except ValueError:
        return 0.0
    return path.stat().st_mtime if path.exists() else 0.0
