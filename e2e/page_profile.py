"""Server-side cost of a page run: script wall time and CPU seconds per action, per page.

Runs the For you, text search and image search pages with Streamlit's AppTest against a built
catalog (``PIXELMATCH_DATA``): a first run (cold caches), then ``--repeats`` actions (another
user, another query, another sample image). ``time.process_time()`` counts this process's CPU
(every thread), so it is the server's cost of a rerun, whatever else loads the machine.

    OMP_NUM_THREADS=1 PIXELMATCH_DATA=/work/main/data python -m e2e.page_profile --catalog demo

Writes ``reports/page_profile.json``; ``--profile`` adds cProfile's top functions per page.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from streamlit.runtime.scriptrunner import ScriptRunner
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SAMPLES = sorted(p.name for p in (ROOT / "assets" / "samples").glob("*.jpg"))
QUERIES = (
    "navy polka dot backpack",
    "crimson knapsack with spots",
    "striped tee under $30",
    "leather boots not black",
    "new arrivals ceramic mug",
    "red sneakers",
)


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "pages", "engine", "app.py"],
                           cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


_PROFILER: list[cProfile.Profile] = []  # the profiler the script thread enables, if any


def _profiled_run_script(original: Callable) -> Callable:
    """Wrap ``ScriptRunner._run_script`` (it runs in the script thread) with the profiler."""

    def run(self, *args, **kwargs):
        if not _PROFILER:
            return original(self, *args, **kwargs)
        _PROFILER[0].enable()
        try:
            return original(self, *args, **kwargs)
        finally:
            _PROFILER[0].disable()

    return run


ScriptRunner._run_script = _profiled_run_script(ScriptRunner._run_script)


def _timed(at: AppTest, prof: cProfile.Profile | None) -> dict:
    """Run the script once; its wall and CPU seconds (and fail loudly on an exception)."""
    w0, c0 = time.perf_counter(), time.process_time()
    _PROFILER[:] = [prof] if prof is not None else []
    at.run()
    _PROFILER.clear()
    out = {"wall_s": round(time.perf_counter() - w0, 3),
           "cpu_s": round(time.process_time() - c0, 3)}
    if at.exception:
        raise RuntimeError([e.value for e in at.exception])
    return out


def _open(catalog: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["catalog_name"] = catalog
    at.run()
    at.switch_page(page)
    return at


def _for_you(at: AppTest, i: int) -> None:
    """Like the load test's action: another user's page, with a personalised search."""
    if i == 0:  # first run: the default persona and a search (loads the text encoder)
        at.session_state["fy_query"] = QUERIES[0]
        return
    at.text_input(key="fy_user").set_value(_USERS[(i - 1) % len(_USERS)])
    at.text_input(key="fy_query").set_value(QUERIES[i % len(QUERIES)])


def _text(at: AppTest, i: int) -> None:
    at.text_input(key="text_query").set_value(QUERIES[i % len(QUERIES)])
    at.button(key="FormSubmitter:text-search-Search").click()


def _image(at: AppTest, i: int) -> None:
    """Like the load test's action: upload a sample image."""
    name = SAMPLES[i % len(SAMPLES)]
    data = (ROOT / "assets" / "samples" / name).read_bytes()
    at.file_uploader(key="img_upload").set_value((name, data, "image/jpeg"))


PAGES: dict[str, tuple[str, Callable[[AppTest, int], None]]] = {
    "for_you": ("pages/for_you.py", _for_you),
    "text_search": ("pages/text_search.py", _text),
    "image_search": ("pages/image_search.py", _image),
}


_USERS: list[str] = []  # users with a history who are not personas (filled by main)


def _users(catalog: str, n: int) -> list[str]:
    """``n`` users with a training history, the most active first (not the personas)."""
    from engine.serving import open_catalog
    from engine.serving.personas import personas

    cat = open_catalog(catalog)
    inter = cat.table("interactions")
    skip = set(personas(cat.table("user_truth"), inter).values())
    counts = inter[inter["split"] == "train"]["user_id"].value_counts()
    return [str(u) for u in counts.index[: n + len(skip)] if u not in skip][:n]


def profile_page(catalog: str, name: str, repeats: int, profile: bool) -> dict:
    """First run and ``repeats`` actions of one page; per-action wall/CPU, top functions."""
    page, act = PAGES[name]
    if name == "for_you" and not _USERS:
        _USERS.extend(_users(catalog, repeats))
    prof = cProfile.Profile() if profile else None
    at = _open(catalog, page)
    if name != "for_you":
        at.run()  # the page's empty state (text needs a query, image a source)
    act(at, 0)
    first = _timed(at, None)
    actions = []
    for i in range(1, repeats + 1):
        act(at, i)
        actions.append(_timed(at, prof))
    out = {
        "first_run": first,
        "actions": actions,
        "mean_action_cpu_s": round(sum(a["cpu_s"] for a in actions) / len(actions), 3),
        "mean_action_wall_s": round(sum(a["wall_s"] for a in actions) / len(actions), 3),
        "elements": {"images": len(at.get("imgs")), "buttons": len(at.button),
                     "markdown": len(at.markdown), "captions": len(at.caption)},
    }
    if prof is not None:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(35)
        out["profile_top"] = buf.getvalue().splitlines()[:80]
    return out


def main(argv: list[str] | None = None) -> int:
    """Profile the pages and write the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", default="demo")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pages", default="for_you,text_search,image_search")
    ap.add_argument("--profile", action="store_true", help="add cProfile's top functions")
    ap.add_argument("--out", default=str(ROOT / "reports" / "page_profile.json"))
    args = ap.parse_args(argv)
    report = {
        "commit": _commit(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "catalog": args.catalog,
        "repeats": args.repeats,
        "load_before": os.getloadavg(),
        "pages": {},
    }
    for name in args.pages.split(","):
        report["pages"][name] = profile_page(args.catalog, name, args.repeats, args.profile)
        p = report["pages"][name]
        print(f"{name:14s} first {p['first_run']['cpu_s']:6.2f} cpu-s / "
              f"{p['first_run']['wall_s']:6.2f} s · action mean {p['mean_action_cpu_s']:6.3f} "
              f"cpu-s / {p['mean_action_wall_s']:6.3f} s · {p['elements']}", flush=True)
    report["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
