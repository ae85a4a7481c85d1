"""Whether a benchmark report measured the build that is being served."""

from __future__ import annotations

from typing import Any

from engine.catalog import Catalog


def stale_steps(report: dict[str, Any], catalog: Catalog) -> list[str]:
    """The build steps whose artifacts differ between the report's build and ``catalog``'s
    (empty when the report measured this very build, or another catalog entirely)."""
    if report.get("catalog", {}).get("name") != catalog.name:
        return []
    measured = report.get("catalog", {}).get("step_hashes")
    if measured is None:  # an older report: compare the build steps' recorded hashes
        measured = {s: v.get("hash") for s, v in report.get("build", {}).items()}
    served = {s: r.get("hash") for s, r in catalog.manifest.get("steps", {}).items()}
    return sorted(s for s in set(measured) | set(served) if measured.get(s) != served.get(s))
