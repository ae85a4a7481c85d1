"""Concurrent users: N simultaneous browser sessions against one app server, for a fixed time.

``python -m e2e.load_test [--catalog demo] [--sessions 8] [--duration 60]`` (``make load``)
starts its own Streamlit server on a free loopback port against one built catalog, opens one
Chromium with N browser contexts (one Streamlit session each, one asyncio task each) and has every
session repeat three actions until the time is up:

- ``text_search``: type the session's own query on Text search and press Enter; latency until
  the "results for “query”" line and the first result image are visible;
- ``image_search``: upload the session's own copy of a sample image through the file input on
  Image search; latency until "N similar products" and a result image are visible;
- ``recommend``: on For you, type the session's own user id and a search, pressing Enter after
  each; latency until "Personalized for <user>" is visible (below it the page has rendered that
  user's history and recommendations from 2–3 models: two script runs).

After every action the page is checked for errors (exception elements, "Traceback", a lost
connection) and for leakage: it must show this session's query / image / user and never another
session's. The server runs with ``PIXELMATCH_DIAG_FILE`` set, so each cache factory of
``pages/shared.py`` logs its builds; a cache built twice for the same arguments is a failure.
One unmeasured warm-up pass (one session, each action once) loads the models first.

Writes ``reports/load.json`` (or ``--out``) with when/where it was measured, and re-renders
``benchmark.md`` next to it when ``benchmark.json`` is there. Exit status 1 when any error,
leak or repeated cache build was seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from e2e import cpu
from e2e.browser import EXCEPTION, launch_options, problems, unavailable_reason
from e2e.server import REPO, AppServer
from engine.evaluation.stats import bootstrap_ci
from engine.serving import open_catalog

KINDS = ("text_search", "image_search", "recommend")
SAMPLES = REPO / "assets" / "samples"
ACTION_TIMEOUT_MS = 120_000
MAX_LISTED = 25  # errors / leaks listed in the report (all are counted)


@dataclass
class Plan:
    """What one session searches for: its own query, user and image file (never shared)."""

    index: int
    query: str
    user: str
    image: Path


@dataclass
class Tally:
    """Everything the sessions observed."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: list[dict[str, Any]] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    sessions_held: int = 0
    elapsed: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)  # wall clock (time.time) of the measured run
    cpu_s: dict[str, float] | None = None  # CPU seconds in that window: server, browser, driver


# -- set-up ---------------------------------------------------------------------------------------
def isolated_data_dir(data: Path, catalog: str, into: Path) -> Path:
    """A data folder that holds only ``catalog`` (a symlink), so every session serves it, and
    the machine's exported query models (``data/models``: without them the server would export
    MiniLM again, with PyTorch, during the run)."""
    src = (data / "artifacts" / catalog).resolve()
    if not (src / "manifest.json").exists():
        raise SystemExit(f"catalog '{catalog}' is not built under {data}: make build")
    (into / "artifacts").mkdir(parents=True)
    (into / "artifacts" / catalog).symlink_to(src, target_is_directory=True)
    if (data / "models").is_dir():
        (into / "models").symlink_to((data / "models").resolve(), target_is_directory=True)
    return into


def plans(catalog_name: str, n: int, scratch: Path) -> tuple[list[Plan], dict[str, Any]]:
    """A distinct query, user and image file per session, and a description of the catalog."""
    from engine.serving.personas import personas

    catalog = open_catalog(catalog_name)
    logged = catalog.table("queries")["query"].tolist()  # the catalog's own queries
    queries = list(dict.fromkeys(" ".join(q.split()) for q in logged))
    users_t, inter = catalog.table("users"), catalog.table("interactions")
    # The page's default user is a persona: leave the personas to the page.
    skip = set(personas(catalog.table("user_truth"), inter).values())
    counts = inter[inter["split"] == "train"]["user_id"].value_counts()
    users = [str(u) for u in counts.index if str(u) not in skip][:n]
    samples = sorted(SAMPLES.glob("*.jpg"))
    if len(users) < n or len(queries) < n or not samples:
        raise SystemExit(
            f"the catalog has {len(users)} users with history and {len(queries)} distinct "
            f"queries; {n} of each are needed"
        )
    out = []
    for i in range(n):
        image = scratch / f"s{i:02d}-{samples[i % len(samples)].name}"
        shutil.copyfile(samples[i % len(samples)], image)
        out.append(Plan(i, queries[i], users[i], image))
    info = {
        "name": catalog.name,
        "items": int(len(catalog.items)),
        "users": int(len(users_t)),
        "built_at": catalog.manifest.get("built_at"),
        "preset": catalog.manifest.get("preset"),
    }
    return out, info


# -- one session ----------------------------------------------------------------------------------
# Any image in the page's main area: an st.image, or an HTML result card's (pages/card_html.py).
# Both kinds, so that a probe's baseline checkout with st.image cards is timed the same way.
MAIN_IMAGE = "[data-testid='stMain'] img"


async def goto_page(page, base: str, slug: str, heading: str) -> None:
    """Switch page through the sidebar (same Streamlit session) and wait for its title."""
    href = f"{base}/{slug}"
    await page.locator(f"[data-testid='stSidebarNavLink'][href='{href}']").click()
    await page.wait_for_url(href)
    await page.get_by_role("heading", name=heading, exact=True).wait_for()


async def text_search(page, base: str, plan: Plan) -> float:
    """Type the query, press Enter; seconds until its results are visible."""
    await goto_page(page, base, "", "Text search")
    await page.get_by_text("Type a query above to search the catalog.").wait_for()
    box = page.get_by_label("Query")
    await box.fill(plan.query)
    t0 = time.perf_counter()
    await box.press("Enter")
    # "12 results for “q” with bm25", or "No results for “q”." (a query that matches nothing,
    # e.g. a typo the catalog's words do not reach, is an answer on screen too)
    q = re.escape(plan.query)
    await page.get_by_text(re.compile(f"results for “{q}”( with|\\.)")).first.wait_for()
    if not await page.get_by_text(re.compile(f"No results for “{q}”")).count():
        await page.locator(MAIN_IMAGE).first.wait_for()
    return time.perf_counter() - t0


async def image_search(page, base: str, plan: Plan) -> float:
    """Upload the image through the file input; seconds until similar products are visible."""
    await goto_page(page, base, "image_search", "Image search")
    await page.get_by_text("Choose a query image on the left.").wait_for()
    t0 = time.perf_counter()
    await page.locator("input[type=file]").set_input_files(str(plan.image))
    await page.get_by_text(re.compile(r"\d+ similar products with")).wait_for()
    await page.locator(MAIN_IMAGE).nth(1).wait_for()  # the query image, then the first result
    return time.perf_counter() - t0


async def recommend(page, base: str, plan: Plan) -> float:
    """Enter the user id and a search on For you; seconds until they show for this user."""
    await goto_page(page, base, "for_you", "For you")
    await page.get_by_role("heading", name="Recommended").wait_for()
    user, search = page.get_by_label("User id"), page.get_by_label("Search", exact=True)
    t0 = time.perf_counter()
    await user.fill(plan.user)
    await user.press("Enter")
    await search.fill(plan.query)
    await search.press("Enter")
    # both rankings, or "No results for “q” with BM25." (a typo the lexical search cannot
    # reach is an answer on screen too)
    q, u = re.escape(plan.query.strip()), re.escape(plan.user)
    answer = re.compile(f"Personalized for {u}|No results for “{q}” with")
    await page.get_by_text(answer).first.wait_for()
    return time.perf_counter() - t0


ACTIONS = {"text_search": text_search, "image_search": image_search, "recommend": recommend}


async def leaks(page, kind: str, plan: Plan, others: list[Plan]) -> list[str]:
    """What this page shows of another session, or misses of its own."""
    body = await page.inner_text("body")
    found = []
    for o in others:
        if f"results for “{o.query}”" in body:
            found.append(f"shows session {o.index}'s query results")
        if o.user in body:
            found.append(f"shows session {o.index}'s user {o.user}")
        if o.image.name in body:
            found.append(f"shows session {o.index}'s image {o.image.name}")
    if kind == "text_search" and await page.get_by_label("Query").input_value() != plan.query:
        found.append("the query box lost this session's query")
    if kind == "image_search":
        chip = await page.get_by_test_id("stFileChipName").first.get_attribute("title")
        if chip != plan.image.name:
            found.append(f"the uploader shows {chip!r}, not {plan.image.name!r}")
    if kind == "recommend" and await page.get_by_label("User id").input_value() != plan.user:
        found.append("the user box lost this session's user")
    return found


async def open_session(browser, base: str):
    """A new browser context (its own Streamlit session) showing the app's first page."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(base, wait_until="domcontentloaded")
    await page.get_by_role("heading", name="Text search", exact=True).wait_for()
    return page


async def session(page, base: str, plan: Plan, others: list[Plan], deadline: float, tally: Tally):
    """One user: repeat the three actions (starting at a different one) until the deadline."""
    n = plan.index
    while time.monotonic() < deadline:
        kind = KINDS[n % len(KINDS)]
        n += 1
        try:
            seconds = await ACTIONS[kind](page, base, plan)
        except Exception as exc:  # a timeout or a vanished element: an error, keep going
            tally.errors.append(
                {"session": plan.index, "action": kind, "error": str(exc).splitlines()[0]}
            )
            continue
        seen = problems(await page.inner_text("body"), await page.locator(EXCEPTION).count())
        tally.errors += [{"session": plan.index, "action": kind, "error": p} for p in seen]
        tally.leaks += [
            {"session": plan.index, "action": kind, "leak": x}
            for x in await leaks(page, kind, plan, others)
        ]
        if not seen:
            tally.latencies[kind].append(seconds * 1000.0)
    tally.sessions_held += 1


async def drive(
    base: str, all_plans: list[Plan], duration: float, warmup: bool, server_pid: int | None = None
) -> Tally:
    """One Chromium, one context per session, all running at once for ``duration`` seconds.

    The clock starts once every session has opened the app; an action begun before the
    deadline is finished and counted. The CPU the server, Chromium and this driver spend in
    that window is recorded apart (:mod:`e2e.cpu`).
    """
    from playwright.async_api import async_playwright

    tally = Tally()
    async with async_playwright() as p:
        browser = await p.chromium.launch(**launch_options())
        try:
            if warmup:  # load every model once, unmeasured
                await warm(browser, base, all_plans[0])
            pages = await asyncio.gather(*(open_session(browser, base) for _ in all_plans))
            cpu0, wall0, t0 = cpu.snapshot(server_pid), time.time(), time.monotonic()
            others = {p.index: [o for o in all_plans if o is not p] for p in all_plans}
            await asyncio.gather(
                *(
                    session(page, base, p, others[p.index], t0 + duration, tally)
                    for page, p in zip(pages, all_plans)
                )
            )
            tally.elapsed = time.monotonic() - t0
            tally.window = (wall0, time.time())
            tally.cpu_s = cpu.spent(cpu0, cpu.snapshot(server_pid))
        finally:
            await browser.close()
    return tally


async def warm(browser, base: str, plan: Plan) -> None:
    """Run each action once in a throw-away session (model loading is not what we measure)."""
    context = await browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS * 2)
    page = await context.new_page()
    try:
        await page.goto(base, wait_until="domcontentloaded")
        await page.get_by_role("heading", name="Text search", exact=True).wait_for()
        for kind in KINDS:
            await ACTIONS[kind](page, base, plan)
    finally:
        await context.close()


# -- report ---------------------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict[str, Any]:
    """n, p50, p95, max and mean of a list of milliseconds, with a bootstrap 95 % interval of
    the mean over the actions (``engine.evaluation.stats``; the actions of one run share the
    machine, so the interval is a guide to the run's spread, not to another run's result)."""
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    ci = bootstrap_ci(a)
    return {
        "n": int(a.size),
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "max": round(float(a.max()), 1),
        "mean": round(float(a.mean()), 1),
        "mean_ci": [round(ci.low, 1), round(ci.high, 1)],
    }


def cache_builds(diag: Path) -> dict[str, Any]:
    """How many times each (cache, arguments) was built, from the diagnostic file."""
    lines = diag.read_text().splitlines() if diag.exists() else []
    counts = Counter()
    pids = set()
    for line in lines:
        rec = json.loads(line)
        if "key" not in rec:  # a page run (see page_runs)
            continue
        counts[f"{rec['key']}({', '.join(rec['args'])})"] += 1
        pids.add(rec["pid"])
    return {
        "builds": dict(sorted(counts.items())),
        "built_more_than_once": sorted(k for k, v in counts.items() if v > 1),
        "server_pids": sorted(pids),
    }


def page_runs(diag: Path, window: tuple[float, float]) -> dict[str, Any]:
    """The server's script runs that ended inside ``window``, per page: how many, how they
    ended, and their wall and CPU milliseconds (the script's own thread)."""
    lines = diag.read_text().splitlines() if diag.exists() else []
    runs: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        rec = json.loads(line)
        if "run" in rec and window[0] <= rec["t"] <= window[1]:
            runs.setdefault(rec["run"], []).append(rec)
    return {
        page: {
            "runs": len(recs),
            "ended": dict(Counter(r["end"] for r in recs)),
            "wall_ms": percentiles([r["wall_s"] * 1000 for r in recs]),
            "cpu_ms": percentiles([r["cpu_s"] * 1000 for r in recs]),
            "cpu_s_total": round(sum(r["cpu_s"] for r in recs), 2),
        }
        for page, recs in sorted(runs.items())
    }


def server_work(tally: Tally, runs: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds of the server, Chromium and the driver in the measured window, per completed
    action too, beside the server's script runs per page."""
    done = sum(len(v) for v in tally.latencies.values())
    cpu_s = tally.cpu_s or {}
    return {
        "cpu_s": cpu_s,
        "cpu_s_per_action": {k: round(v / done, 2) for k, v in cpu_s.items()} if done else {},
        "script_cpu_s": round(sum(p["cpu_s_total"] for p in runs.values()), 2),
        "page_runs": runs,
        "note": "CPU from /proc over the measured window (server: the Streamlit process; "
        "browser: Chromium's processes; driver: this script and Playwright). Page runs: each "
        "script run's wall and thread CPU time, recorded by app.py (PIXELMATCH_DIAG_FILE).",
    }


def git_commit() -> str:
    """The short commit the app ran from, with ``+dirty`` when tracked files were modified."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, drive the sessions, and return the report."""
    data = Path(args.data or os.environ.get("PIXELMATCH_DATA", REPO / "data")).resolve()
    scratch = Path(tempfile.mkdtemp(prefix="pixelmatch-load-"))
    try:
        served = isolated_data_dir(data, args.catalog, scratch / "data")
        os.environ["PIXELMATCH_DATA"] = str(served)
        all_plans, catalog_info = plans(args.catalog, args.sessions, scratch)
        diag = scratch / "cache-builds.jsonl"
        load_before = os.getloadavg()
        started = datetime.now(UTC)
        server = AppServer(served, scratch / "streamlit.log", {"PIXELMATCH_DIAG_FILE": str(diag)})
        base = server.start()
        try:
            tally = asyncio.run(
                drive(base, all_plans, args.duration, not args.no_warmup, server.pid)
            )
            memory = server.memory_mb()  # the app server alone, after every session's actions
        finally:
            server.stop()
        log = server.log_text()
        builds, runs = cache_builds(diag), page_runs(diag, tally.window)
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "measured_at": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": git_commit(),
        "command": "python -m e2e.load_test " + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "cores": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "note": "server, Chromium and every session on one machine, loopback only",
        },
        "catalog": catalog_info,
        "sessions": args.sessions,
        "sessions_held": tally.sessions_held,
        "duration_s": args.duration,
        "elapsed_s": round(tally.elapsed, 1),
        "warmup": not args.no_warmup,
        "actions": {k: len(v) for k, v in tally.latencies.items()},
        "latency_ms": {k: percentiles(v) for k, v in tally.latencies.items()},
        "n_errors": len(tally.errors),
        "errors": tally.errors[:MAX_LISTED],
        "n_leaks": len(tally.leaks),
        "leaks": tally.leaks[:MAX_LISTED],
        "server_log_tracebacks": log.count("Traceback"),
        "cache_builds": builds,
        "server_memory": memory,
        "server_work": server_work(tally, runs),
    }


def failures(report: dict[str, Any]) -> list[str]:
    """Why the run failed (empty when it passed)."""
    out = []
    if report["n_errors"]:
        out.append(f"{report['n_errors']} error(s)")
    if report["n_leaks"]:
        out.append(f"{report['n_leaks']} cross-session leak(s)")
    if report["cache_builds"]["built_more_than_once"]:
        out.append(
            "caches built more than once: "
            + ", ".join(report["cache_builds"]["built_more_than_once"])
        )
    if report["server_log_tracebacks"]:
        out.append(f"{report['server_log_tracebacks']} traceback(s) in the server log")
    if report["sessions_held"] < report["sessions"]:
        out.append(f"only {report['sessions_held']} of {report['sessions']} sessions held")
    if not all(report["actions"].values()):
        out.append("an action kind never completed")
    return out


def write(report: dict[str, Any], out: Path) -> None:
    """Write the report; re-render ``benchmark.md`` beside it when ``benchmark.json`` exists."""
    from engine.artifacts import atomic_write_json
    from engine.benchmark.report import load_report, write_reports

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, report)
    bench = load_report(out.parent)
    if bench is not None and out.name == "load.json":
        write_reports(bench, out.parent)  # benchmark.md with every section found beside it


def main(argv: list[str] | None = None) -> int:
    """Command line: run the load test, write the report, exit 1 on any failure."""
    from engine.paths import reports_dir

    ap = argparse.ArgumentParser(
        prog="python -m e2e.load_test", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--catalog", default="demo", help="built catalog to serve (default demo)")
    ap.add_argument("--data", help="data folder holding it (default PIXELMATCH_DATA or data/)")
    ap.add_argument("--sessions", type=int, default=8, help="simultaneous sessions (8 to 32)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (5 to 600)")
    ap.add_argument(
        "--out",
        type=Path,
        help="report path (default reports/load.json; another catalog: "
        "reports/catalogs/NAME/load.json, beside its benchmark)",
    )
    ap.add_argument("--no-warmup", action="store_true", help="measure model loading too")
    args = ap.parse_args(argv)
    if not 8 <= args.sessions <= 32 or not 5 <= args.duration <= 600:
        ap.error("--sessions must be 8..32 and --duration 5..600 seconds")
    reason = unavailable_reason()
    if reason:
        print(f"load test impossible: {reason}", file=sys.stderr)
        return 2
    own = reports_dir() if args.catalog == "demo" else reports_dir() / "catalogs" / args.catalog
    out = args.out or own / "load.json"
    report = run(args)
    write(report, out)
    lat = ", ".join(
        f"{k} n={v['n']} p50 {v.get('p50', '-')} ms p95 {v.get('p95', '-')} ms"
        for k, v in report["latency_ms"].items()
    )
    mem = report.get("server_memory") or {}
    print(
        f"{report['sessions_held']}/{report['sessions']} sessions, {report['elapsed_s']} s: {lat}"
        + (f"; app server RSS {mem['rss_mb']:,.0f} MB (peak {mem['peak_rss_mb']:,.0f} MB)"
           if mem else "")
    )
    bad = failures(report)
    print(f"wrote {out}" + (": FAILED: " + "; ".join(bad) if bad else ": no errors, no leaks"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
