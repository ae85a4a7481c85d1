"""The panel every page shows while its catalog is being built (``make run`` on a first start),
and the sidebar note while a catalog that is already built is rebuilt.

The build runs beside the app and writes its state (``engine.pipeline.live``); this panel reads
it every two seconds and, when the build has ended, reruns the page, which then opens the
catalog (or says why it cannot).
"""

from __future__ import annotations

import time
from datetime import timedelta

import streamlit as st

from engine.paths import REPO_ROOT, data_dir
from engine.pipeline.live import LiveBuild
from engine.progress_lines import format_duration
from engine.serving import (
    building_catalogs,
    built_catalogs,
    catalog_build,
    failed_builds,
    manifest_mtime,
)

REFRESH = timedelta(seconds=2)
_BADGES = {
    "built": ":green[:material/check_circle:]",
    "skipped": ":green[:material/check_circle:]",
    "running": ":blue[:material/progress_activity:]",
    "pending": ":gray[:material/schedule:]",
    "failed": ":red[:material/error:]",
    "stopped": ":orange[:material/stop_circle:]",
}


def step_rows(build: LiveBuild, now: float) -> list[str]:
    """One markdown line per step: its badge, name and what it is doing or took."""
    rows = []
    for name, step in build.steps.items():
        status = step.get("status", "pending")
        badge = _BADGES.get(status, _BADGES["pending"])
        if status == "running":
            spent = now - (step.get("started_at") or now)
            what = step.get("activity") or "starting"
            detail = f"{what} · {format_duration(spent)} so far"
        elif status == "built":
            detail = f"done in {format_duration(step.get('seconds') or 0)}"
        elif status == "skipped":
            detail = "up to date"
        elif status in ("failed", "stopped"):
            detail = f"{status} (see the build log)"
        else:
            last = step.get("last_seconds")
            detail = "waiting" + (f" (took {format_duration(last)} last time)" if last else "")
        rows.append(f"{badge} **{name}** · {detail}")
    return rows


def show_build(name: str, mtime: float) -> None:
    """The build of ``name`` with its steps, refreshed until it ends or publishes the first
    steps it can serve (a manifest newer than ``mtime``); then the page reruns."""
    st.title("Building the catalog")
    st.write(
        f"The **{name}** catalog is being built on this machine (the first start of "
        "`make run` does this once; later starts take seconds). This page follows the build "
        "and opens the app as soon as its first methods are ready."
    )
    _progress(name, mtime)


@st.fragment(run_every=REFRESH)
def _progress(name: str, mtime: float) -> None:
    build = catalog_build(name)
    if build is None or manifest_mtime(name) != mtime:
        st.rerun()  # ended, or published steps: the whole page runs again and opens them
    now = time.time()
    total = max(1, len(build.steps))
    eta = build.eta_seconds(now)
    left = f" · about {format_duration(eta)} left" if eta is not None else ""
    st.progress(build.done / total,
                text=f"{build.done} of {total} steps · {format_duration(now - build.started_at)} "
                     f"so far{left}")
    st.markdown("  \n".join(step_rows(build, now)))
    st.caption(f"Build log: `{log_path(name)}` (when `make run` started it). Stopping "
               "`make run` stops the build it started; the next `make run` carries on from the "
               "last finished step.")


@st.fragment(run_every=REFRESH)
def rebuild_notice(name: str, mtime: float, partial: bool) -> None:
    """A short note (in the sidebar) while the catalog the page serves is built: a rebuild
    leaves the built version answering; a first build serves its finished steps' methods. The
    page reruns onto the new manifest when the build publishes one (``mtime`` changes)."""
    build = catalog_build(name)
    if build is None or manifest_mtime(name) != mtime:
        st.rerun()  # the whole page runs again and opens the new manifest
    eta = build.eta_seconds(time.time())
    left = f", about {format_duration(eta)} left" if eta is not None else ""
    steps = f"{build.done} of {max(1, len(build.steps))} steps{left}"
    st.info(f"**{name}** is being built ({steps}). The methods of the steps built so far work "
            "now; the others appear as their steps finish." if partial else
            f"A rebuild of **{name}** is running ({steps}). This version answers until it is "
            "done.", icon=":material/sync:")


def build_failures(name: str | None = None) -> None:
    """Say why the last build (of ``name``, or of any catalog) did not finish, with its log."""
    for catalog, why in failed_builds().items():
        if name is None or catalog == name:
            st.warning(f"The last build of '{catalog}' did not finish: {why}. Its log, when "
                       f"`make run` started it: `{log_path(catalog)}`.")


def log_path(name: str) -> str:
    """Where ``make run`` writes the build log of ``name`` (relative to the repository)."""
    log = data_dir() / f"build-{name}.log"
    return str(log.relative_to(REPO_ROOT) if log.is_relative_to(REPO_ROOT) else log)


@st.fragment(run_every=REFRESH)
def watch_for_build(name: str | None = None, mtime: float | None = None) -> None:
    """Rerun the page as soon as a build of ``name`` starts (``make run`` starts the app and
    the build together, and the app may answer first) or, given the ``mtime`` the page read,
    when its manifest changes; with no name, when any build starts or a catalog appears."""
    if name is None:
        if building_catalogs() or built_catalogs():
            st.rerun()
    elif catalog_build(name) is not None or (mtime is not None and
                                             manifest_mtime(name) != mtime):
        st.rerun()
