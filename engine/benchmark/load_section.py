"""The "Concurrent users" section of benchmark.md, rendered from ``reports/load.json``.

``reports/load.json`` is written by the load test (``make load``: ``python -m e2e.load_test``);
this module only reads it, so the section exists exactly when a measurement does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_load(folder: Path) -> dict[str, Any] | None:
    """The load-test report in ``folder``, or None when there is none."""
    path = folder / "load.json"
    return json.loads(path.read_text()) if path.exists() else None


def _command(load: dict[str, Any]) -> str:
    """The command that wrote the report, as recorded in it (``make load`` runs
    ``python -m e2e.load_test`` without ``--out``; a direct run may name another file)."""
    return " ".join(str(load.get("command") or "python -m e2e.load_test").split())


def load_md(load: dict[str, Any]) -> list[str]:
    """Markdown lines: provenance, per-action latency table, errors / leaks / cache builds."""
    m, c = load["machine"], load["catalog"]
    before = " ".join(f"{x:.2f}" for x in m["load_average_before"])
    after = " ".join(f"{x:.2f}" for x in m["load_average_after"])
    lines = [
        "## Concurrent users",
        "",
        f"Measured {load['measured_at']} at commit `{load['commit']}` on {m['platform']} "
        f"({m['cores']} cores; load average {before} before, {after} after; {m['note']}), "
        f"catalog `{c['name']}` ({c['items']:,} products): {load['sessions']} simultaneous "
        f"browser sessions (one Chromium, one context each) for {load['duration_s']:g} s"
        f"{' after a warm-up' if load.get('warmup') else ''}. Written by `{_command(load)}`"
        f"{'' if '--out' in _command(load) else ' to `reports/load.json` (its default)'}.",
        "",
        "Latency is what a user waits in the browser, from the action to its results on screen "
        "(Streamlit rerun, search and rendering included), with every session active at once; "
        "the per-method figures above are single-threaded engine latencies on an idle app.",
        "",
        "| action | completed | p50 ms | p95 ms | max ms | mean ms [95 % interval] |",
        "|---|---|---|---|---|---|",
    ]
    for kind, p in load["latency_ms"].items():
        cells = [f"{p[q]:.0f}" for q in ("p50", "p95", "max")] if p.get("n") else ["–"] * 3
        lo_hi = p.get("mean_ci")
        cells.append(f"{p['mean']:.0f} [{lo_hi[0]:.0f}, {lo_hi[1]:.0f}]" if lo_hi else "–")
        lines.append(f"| {kind} | {p.get('n', 0)} | " + " | ".join(cells) + " |")
    lines += ["", "The interval is a bootstrap over the run's completed actions. They shared "
              "the machine, so it shows the run's spread; another run on this shared machine "
              "can differ by more (compare runs side by side)."]
    builds = load["cache_builds"]
    twice = ", ".join(builds["built_more_than_once"]) or "none"
    lines += [
        "",
        f"Sessions held to the end: {load['sessions_held']} of {load['sessions']}. "
        f"Errors: {load['n_errors']}. Cross-session leaks: {load['n_leaks']}. "
        f"Cache entries built: {len(builds['builds'])}, built more than once: {twice}. "
        f"Tracebacks in the server log: {load['server_log_tracebacks']}.",
        "",
    ]
    lines[-1:-1] = work_md(load.get("server_work"))
    mem = load.get("server_memory")
    if mem:
        lines[-1:-1] = ["", f"App server's resident memory after the run: {mem['rss_mb']:,.0f} MB "
                        f"(peak {mem['peak_rss_mb']:,.0f} MB)."]
    return lines


def work_md(work: dict[str, Any] | None) -> list[str]:
    """Where the CPU went: server, browser and driver, and the server's script runs per page."""
    if not work or not work.get("cpu_s"):
        return []
    cpu, per = work["cpu_s"], work.get("cpu_s_per_action", {})
    each = "; ".join(f"{k} {v:.1f} s ({per.get(k, 0):.2f} s per action)" for k, v in cpu.items())
    lines = [
        "",
        f"CPU in the measured window: {each}. Of the server's, the page scripts themselves "
        f"ran {work['script_cpu_s']:.1f} s on their own threads; the rest ran on the server's "
        "other threads (Streamlit's web server: websocket messages, uploads, its message "
        "cache), not broken down further.",
        "",
        "| page (server script runs) | runs | ended | wall p50 ms | wall p95 ms | CPU p50 ms "
        "| CPU p95 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for page, r in work.get("page_runs", {}).items():
        ended = ", ".join(f"{k} {v}" for k, v in sorted(r["ended"].items()))
        w, c = r["wall_ms"], r["cpu_ms"]
        lines.append(f"| {page} | {r['runs']} | {ended} | {w['p50']:.0f} | {w['p95']:.0f} "
                     f"| {c['p50']:.0f} | {c['p95']:.0f} |")
    return lines


def load_headline(load: dict[str, Any]) -> str:
    """One line for the README: sessions held, problems, and p50 / p95 per action."""
    parts = [
        f"{kind.replace('_', ' ')} p50 {p['p50'] / 1000:.1f} s / p95 {p['p95'] / 1000:.1f} s"
        for kind, p in load["latency_ms"].items()
        if p.get("n")
    ]
    twice = len(load["cache_builds"]["built_more_than_once"])
    per = (load.get("server_work") or {}).get("cpu_s_per_action") or {}
    cpu = (f" CPU per completed action: server {per['server']:.2f} s, Chromium "
           f"{per['browser']:.2f} s." if {"server", "browser"} <= set(per) else "")
    return (
        f"Concurrent users ({load['measured_at']}, `{_command(load)}`): {load['sessions_held']} of "
        f"{load['sessions']} browser sessions held for {load['duration_s']:g} s with "
        f"{load['n_errors']} errors, {load['n_leaks']} cross-session leaks and {twice} caches "
        f"built twice; action to results on screen: {'; '.join(parts)} (all sessions sharing "
        f"{load['machine']['cores']} cores with the server and Chromium).{cpu}"
    )
