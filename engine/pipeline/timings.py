"""How long each build step took: the previous build's times and the end-of-build table.

The table is logged after every build, terminal or not::

    step        status        seconds   share
    world       built           212.4    38 %
    sbert       built            98.1    18 %
    lexical     up-to-date        0.0     –
    ...
    total                       561.0   100 %
"""

from __future__ import annotations

from typing import Any

from engine.artifacts import ArtifactStore


def previous_records(store: ArtifactStore) -> dict[str, dict[str, Any]]:
    """Each step's record in the current manifest (empty when there is none or it is unreadable)."""
    try:
        return dict(store.read_manifest().get("steps", {}))
    except Exception:  # no build yet, or an unreadable one: no estimates, never an error
        return {}


def previous_seconds(store: ArtifactStore) -> dict[str, float]:
    """Each step's wall time as last built, from the current manifest (empty when none)."""
    steps = previous_records(store)
    return {s: float(r["seconds"]) for s, r in steps.items() if "seconds" in r}


def _status(rec: dict[str, Any]) -> str:
    if rec.get("skipped"):
        return "up-to-date"
    if rec.get("info", {}).get("unavailable"):
        return "unavailable"
    return "built"


def step_table(manifest: dict[str, Any]) -> list[str]:
    """Lines of a per-step time table (this run's wall time of every step built) and the total.

    When steps ran side by side their times add up to more than the build's wall time: the
    shares are then of the steps' summed time, and a last line gives the wall time.
    """
    steps = manifest.get("steps", {})
    wall = float(manifest.get("build_seconds", 0.0))
    built = {n: float(r.get("seconds", 0.0)) for n, r in steps.items() if _status(r) == "built"}
    summed = sum(built.values())
    overlapped = summed > wall * 1.01
    total = summed if overlapped else wall
    width = max([len("total"), *map(len, steps)])
    lines = [f"{'step':<{width}}  {'status':<11}  {'seconds':>8}  {'share':>5}"]
    for name, rec in steps.items():
        status = _status(rec)
        seconds = 0.0 if status == "up-to-date" else float(rec.get("seconds", 0.0))
        share = f"{100 * seconds / total:.0f} %" if total > 0 and status == "built" else "–"
        lines.append(f"{name:<{width}}  {status:<11}  {seconds:>8.1f}  {share:>5}")
    lines.append(f"{'total':<{width}}  {'':<11}  {total:>8.1f}  {'100 %':>5}")
    if overlapped:
        jobs = manifest.get("machine", {}).get("jobs", 2)
        lines.append(f"{'wall':<{width}}  {'':<11}  {wall:>8.1f}  {'':>5}  "
                     f"(steps side by side on {jobs} cores)")
    return lines
