"""One browser session's cost per action, for this code and optionally a baseline, side by side.

``python -m e2e.page_cpu_probe --catalog demo [--baseline REF] [--rounds 6]`` starts the app
server of this checkout and, with ``--baseline``, a second one from a git worktree of ``REF``
(same data folder). One Chromium opens one session on each. Every round runs the load test's
actions (``e2e/load_test.py``: text search, image search, For you) once per variant, the
variants taking turns (ABBA order, so neither always goes first), and records per action:

- the latency from input to results on screen (the load test's own measure);
- Chromium's main-thread time from the DevTools ``Performance`` metrics (task, script, layout,
  style recalculation);
- CPU seconds of the variant's server and of Chromium's processes, from ``/proc``
  (``e2e/cpu.py``), over the action and one settling second after it.

With a baseline, each metric gets the ratio of means with a 95 % bootstrap interval over the
paired rounds. Written atomically to ``reports/page_cpu.json`` (or ``--out``) with when, where
and on which commits it was measured; refuses to measure on a busy machine (``--force``
measures anyway, flagged busy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from e2e import cpu
from e2e.browser import launch_options, unavailable_reason
from e2e.load_test import ACTIONS, KINDS, plans
from e2e.server import REPO, AppServer
from engine.evaluation.stats import CONFIDENCE, N_RESAMPLES, SEED

METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
SETTLE_S = 1.0  # after an action, so late rendering is counted with it


def _worktree(ref: str, into: Path) -> str:
    """A detached worktree of ``ref`` at ``into``; returns its short commit."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(into), ref],
                   check=True, capture_output=True, text=True)
    out = subprocess.run(["git", "-C", str(into), "rev-parse", "--short", "HEAD"], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def _is_commit(ref: str) -> bool:
    """Whether ``ref`` names a commit of this repository."""
    if ref.startswith("-"):  # an option, not a ref
        return False
    got = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet",
                          f"{ref}^{{commit}}"], capture_output=True, text=True)
    return got.returncode == 0


def _drop_worktree(path: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                   capture_output=True, text=True)


def ratio_interval(new: list[float], old: list[float], *, seed: int = SEED,
                   n_boot: int = N_RESAMPLES) -> dict[str, float]:
    """Ratio of means ``new/old`` over paired rounds, with a bootstrap interval at the
    evaluation's confidence (``engine.evaluation.stats``: its seed, resamples and level)."""
    a, b = np.asarray(new, float), np.asarray(old, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = a[idx].mean(1) / np.maximum(b[idx].mean(1), 1e-12)
    tail = 100 * (1 - CONFIDENCE) / 2
    lo, hi = np.percentile(boots, [tail, 100 - tail])
    return {"ratio": round(float(a.mean() / max(b.mean(), 1e-12)), 3),
            "low": round(float(lo), 3), "high": round(float(hi), 3)}


def summarize(rows: list[dict[str, float]]) -> dict[str, Any]:
    """Mean, median and the per-round values of every measured field."""
    keys = rows[0].keys() if rows else ()
    return {k: {"mean": round(float(np.mean([r[k] for r in rows])), 4),
                "median": round(float(np.median([r[k] for r in rows])), 4),
                "values": [round(r[k], 4) for r in rows]} for k in keys}


async def _measure_action(page, cdp, base: str, kind: str, plan, server_pid: int) -> dict:
    async def perf() -> dict[str, float]:
        got = await cdp.send("Performance.getMetrics")
        return {m["name"]: m["value"] for m in got["metrics"]}

    before, cpu_before = await perf(), cpu.snapshot(server_pid)
    latency = await ACTIONS[kind](page, base, plan)
    await asyncio.sleep(SETTLE_S)
    after, cpu_after = await perf(), cpu.snapshot(server_pid)
    spent = cpu.spent(cpu_before, cpu_after) or {}
    row = {"latency_s": latency}
    row.update({f"{m}_s": after[m] - before[m] for m in METRICS})
    row["server_cpu_s"] = float(spent.get("server") or 0.0)
    row["browser_cpu_s"] = float(spent.get("browser") or 0.0)
    return row


async def run_probe(data: Path, catalog: str, rounds: int, kinds: tuple[str, ...],
                    variants: dict[str, Path], scratch: Path) -> dict[str, Any]:
    """Measure ``rounds`` of every action on every variant (name -> app folder); the servers'
    logs and the sessions' image copies go to ``scratch``."""
    from playwright.async_api import async_playwright

    scratch.mkdir(parents=True, exist_ok=True)
    ps, _ = plans(catalog, 3, scratch)
    servers = {name: AppServer(data, scratch / f"{name}.log", app_dir=folder)
               for name, folder in variants.items()}
    rows: dict[str, dict[str, list[dict]]] = {n: {k: [] for k in kinds} for n in variants}
    try:
        bases = {name: s.start() for name, s in servers.items()}
        async with async_playwright() as p:
            browser = await p.chromium.launch(**launch_options())
            pages = {}
            for name, base in bases.items():
                ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
                ctx.set_default_timeout(120_000)
                page = await ctx.new_page()
                cdp = await ctx.new_cdp_session(page)
                await cdp.send("Performance.enable")
                await page.goto(base, wait_until="domcontentloaded")
                await page.get_by_role("heading", name="Text search", exact=True).wait_for()
                for kind in kinds:  # warm-up: models, caches, the browser's own
                    await ACTIONS[kind](page, base, ps[0])
                pages[name] = (page, cdp)
            order = list(variants)
            for r in range(rounds):
                turn = order if r % 4 in (0, 3) else order[::-1]  # ABBA
                for name in turn:
                    page, cdp = pages[name]
                    for kind in kinds:
                        rows[name][kind].append(await _measure_action(
                            page, cdp, bases[name], kind, ps[1 + r % 2], servers[name].pid))
            await browser.close()
        tracebacks = {name: s.log_text().count("Traceback") for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()
    out: dict[str, Any] = {"rounds": rounds, "settle_s": SETTLE_S, "server_tracebacks": tracebacks,
                           "variants": {n: {k: summarize(v) for k, v in per.items()}
                                        for n, per in rows.items()}}
    if "baseline" in rows:
        out["ratio_vs_baseline"] = {
            kind: {field: ratio_interval([r[field] for r in rows["current"][kind]],
                                         [r[field] for r in rows["baseline"][kind]])
                   for field in rows["current"][kind][0]}
            for kind in kinds}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catalog", default="demo")
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: the app's)")
    ap.add_argument("--baseline", default=None, help="a git ref to measure side by side")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--actions", default=",".join(KINDS))
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "page_cpu.json")
    ap.add_argument("--force", action="store_true", help="measure on a busy machine (flagged)")
    args = ap.parse_args(argv)
    kinds = tuple(k.strip() for k in args.actions.split(",") if k.strip())
    if unknown := [k for k in kinds if k not in ACTIONS]:
        ap.error(f"unknown action(s) {unknown}; valid: {', '.join(KINDS)}")
    if args.baseline and not _is_commit(args.baseline):
        print(f"--baseline {args.baseline!r} is not a commit of this repository "
              "(a hash, branch or tag, e.g. HEAD~1)")
        return 2
    if reason := unavailable_reason():
        print(f"cannot run the browser probe: {reason}")
        return 2
    from engine.benchmark.int8 import write_probe
    from engine.paths import data_dir

    data = (args.data or data_dir()).resolve()
    os.environ["PIXELMATCH_DATA"] = str(data)  # the plans open the same catalog the servers do
    command = "python -m e2e.page_cpu_probe " + " ".join(argv if argv is not None else [])
    with tempfile.TemporaryDirectory(prefix="page-cpu-") as scratch:
        tmp = Path(scratch)
        variants = {"current": REPO}
        baseline_commit = None
        if args.baseline:
            baseline_commit = _worktree(args.baseline, tmp / "app")
            variants["baseline"] = tmp / "app"
        try:
            def measure() -> dict[str, Any]:
                got = asyncio.run(run_probe(data, args.catalog, args.rounds, kinds, variants,
                                            tmp / "run"))
                got.update(catalog=args.catalog, baseline=args.baseline,
                           baseline_commit=baseline_commit)
                return got

            write_probe(command.strip(), args.out, measure, force=args.force)
        finally:
            if args.baseline:
                _drop_worktree(tmp / "app")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
