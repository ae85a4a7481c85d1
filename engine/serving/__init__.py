"""Serving: what the app, the CLI and the HTTP API share above the methods.

Opening a catalog for serving (verified against the current code), the catalogs that are built,
and the engine side of every page (comparisons, explanations, filters, personalised search,
report tables), so that pages hold widgets and layout only.
"""

from engine.serving.catalogs import (
    building_catalogs,
    built_catalogs,
    catalog_build,
    failed_builds,
    manifest_mtime,
    open_catalog,
)

__all__ = [
    "building_catalogs", "built_catalogs", "catalog_build", "failed_builds", "manifest_mtime",
    "open_catalog",
]
