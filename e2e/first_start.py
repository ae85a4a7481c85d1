"""A newcomer's first start, measured: ``make run`` on an empty data folder, followed in Chromium.

It records when the page first answers, when the build panel gives way to the app, when each
step's methods are published (the partial manifests of a first build), how long a first text
search takes to show results on the partial catalog, and when the build is complete; then it
stops ``make run`` (Ctrl+C) and reads the build's own step times from its manifest.

    python -m e2e.first_start [--preset demo] [--port 8650] [--max-seconds 900]

writes ``reports/first_start.json`` (another preset: ``reports/first_start-<preset>.json``, or
``--out``). Measure on
an idle machine: the report says the load average before and after, and refuses a busy machine
unless ``--force``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
POLL_MS = 1000


def page_state(body: str) -> str:
    """What the page shows: the build ``panel``, the ``app`` (a search page), or ``other``."""
    if "Building the catalog" in body:
        return "panel"
    if "Find products by describing" in body:
        return "app"
    return "other"


def published_steps(manifest: Path) -> tuple[bool, list[str]] | None:
    """(partial?, the steps) of the catalog's manifest, or None before the first one."""
    try:
        data = json.loads(manifest.read_text())
        return bool(data.get("partial")), sorted(data["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def server_rss_mb(port: int) -> float | None:
    """Resident memory of the Streamlit server listening on ``port`` (from /proc), or None."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd:
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError):
            continue
    return None


async def follow(url: str, manifest: Path, max_seconds: float, query: str) -> dict[str, Any]:
    """Drive Chromium through the first start; the timeline in seconds from the first request."""
    from playwright.async_api import async_playwright

    from e2e.browser import launch_options

    events: list[dict[str, Any]] = []
    out: dict[str, Any] = {"events": events, "complete": False}
    async with async_playwright() as p:
        browser = await p.chromium.launch(**launch_options())
        page = await browser.new_page(viewport={"width": 1300, "height": 850})
        t0 = time.monotonic()
        while True:  # make run answers once the server is up
            try:
                await page.goto(url, timeout=5000)
                break
            except Exception:  # not listening yet
                if time.monotonic() - t0 > 120:
                    raise RuntimeError(f"{url} never answered") from None
                await asyncio.sleep(0.5)
        out["page_answered_s"] = round(time.monotonic() - t0, 1)
        last = None
        while time.monotonic() - t0 < max_seconds:
            await page.wait_for_timeout(POLL_MS)
            state, steps = page_state(await page.inner_text("body")), published_steps(manifest)
            now = round(time.monotonic() - t0, 1)
            if (state, steps) != last:
                events.append({"s": now, "page": state,
                               "partial": None if steps is None else steps[0],
                               "steps": None if steps is None else steps[1]})
                last = (state, steps)
            if state == "app" and "first_search" not in out:
                t = time.monotonic()
                await page.get_by_label("Query").fill(query)
                await page.keyboard.press("Enter")
                shown = page.get_by_text("results for").first
                await shown.wait_for(timeout=60_000)
                out["first_search"] = {"at_s": now, "seconds": round(time.monotonic() - t, 2),
                                       "query": query, "shown": await shown.inner_text(),
                                       "steps": None if steps is None else steps[1]}
            if steps is not None and not steps[0] and state == "app":
                out["complete"], out["complete_s"] = True, now
                break
        await browser.close()
    return out


def measure(preset: str, port: int, max_seconds: float) -> dict[str, Any]:
    """Run ``make run`` on an empty data folder and follow it; stop it; the report's body."""
    data = Path(tempfile.mkdtemp(prefix="pixelmatch-first-start-"))
    env = {**os.environ, "PIXELMATCH_DATA": str(data)}
    proc = subprocess.Popen(["make", "--no-print-directory", "run", f"PRESET={preset}",
                             f"PORT={port}"], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = data / "artifacts" / preset / "manifest.json"
    try:
        body = asyncio.run(follow(f"http://127.0.0.1:{port}/", manifest, max_seconds,
                                  "red backpack"))
        body["server_rss_mb_at_end"] = server_rss_mb(port)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C: stops the app and any build it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    final = json.loads(manifest.read_text()) if manifest.is_file() else {}
    shutil.rmtree(data, ignore_errors=True)  # a demo catalog is over a gigabyte
    body.update(
        preset=preset, data_folder="an empty temporary folder (PIXELMATCH_DATA)",
        build_seconds=final.get("build_seconds"), build_partial=final.get("partial"),
        step_seconds={k: v.get("seconds") for k, v in final.get("steps", {}).items()},
    )
    return body


def main(argv: list[str] | None = None) -> int:
    """Command line: measure one first start and write the JSON report."""
    import argparse

    from engine.benchmark.int8 import write_probe
    from engine.paths import reports_dir

    p = argparse.ArgumentParser(prog="python -m e2e.first_start",
                                description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="demo", help="the catalog make run builds (default demo)")
    p.add_argument("--port", type=int, default=8650, help="the app's port (default 8650)")
    p.add_argument("--max-seconds", type=float, default=900.0,
                   help="give up following after this long (default 900)")
    p.add_argument("--out", default=None, help="JSON file (default reports/first_start.json; "
                   "another preset: reports/first_start-PRESET.json)")
    p.add_argument("--force", action="store_true", help="measure even on a busy machine")
    args = p.parse_args(argv)
    default = "first_start.json" if args.preset == "demo" else f"first_start-{args.preset}.json"
    out = Path(args.out) if args.out else reports_dir() / default
    command = " ".join(["python -m e2e.first_start", *(sys.argv[1:] if argv is None else argv)])
    write_probe(command, out, lambda: measure(args.preset, args.port, args.max_seconds),
                force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
