"""The concurrent-users load test: its verdicts (fast) and a short real run (slow, browser).

The real run starts ``python -m e2e.load_test`` against the tiny catalog: 8 browser sessions
for 20 s; it must see every action kind complete, no error, no cross-session leak and every
cache built once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.load_test import Tally, cache_builds, failures, page_runs, server_work
from e2e.server import REPO


def _report(**over) -> dict:
    base = {
        "n_errors": 0,
        "n_leaks": 0,
        "cache_builds": {"builds": {"a()": 1}, "built_more_than_once": []},
        "server_log_tracebacks": 0,
        "sessions": 8,
        "sessions_held": 8,
        "actions": {"text_search": 3, "image_search": 3, "recommend": 2},
    }
    return {**base, **over}


def test_a_clean_run_passes():
    assert failures(_report()) == []


@pytest.mark.parametrize(
    "over, expected",
    [
        ({"n_errors": 2}, "2 error(s)"),
        ({"n_leaks": 1}, "1 cross-session leak(s)"),
        ({"server_log_tracebacks": 1}, "1 traceback(s) in the server log"),
        ({"sessions_held": 7}, "only 7 of 8 sessions held"),
        ({"actions": {"text_search": 3, "image_search": 0, "recommend": 1}}, "never completed"),
        (
            {"cache_builds": {"builds": {"a()": 2}, "built_more_than_once": ["a()"]}},
            "built more than once: a()",
        ),
    ],
)
def test_each_kind_of_failure_fails_the_run(over, expected):
    assert any(expected in f for f in failures(_report(**over)))


def test_cache_builds_counts_repeats(tmp_path: Path):
    diag = tmp_path / "diag.jsonl"
    lines = [
        {"key": "warm_retriever", "args": ["tiny", "1.0", "bm25"], "pid": 7, "t": 0},
        {"key": "warm_retriever", "args": ["tiny", "1.0", "clip"], "pid": 7, "t": 1},
        {"key": "warm_retriever", "args": ["tiny", "1.0", "bm25"], "pid": 7, "t": 2},
    ]
    diag.write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = cache_builds(diag)
    assert got["built_more_than_once"] == ["warm_retriever(tiny, 1.0, bm25)"]
    assert got["builds"]["warm_retriever(tiny, 1.0, clip)"] == 1
    assert got["server_pids"] == [7]


def test_the_cache_diagnostic_is_off_by_default(tmp_path: Path, monkeypatch):
    from pages.cache_diag import note_build, timed_page_run

    path = tmp_path / "diag.jsonl"
    monkeypatch.delenv("PIXELMATCH_DIAG_FILE", raising=False)
    note_build("x", 1)
    with timed_page_run(object()):  # not even asked its title
        pass
    assert not path.exists()
    monkeypatch.setenv("PIXELMATCH_DIAG_FILE", str(path))
    note_build("x", 1)
    assert json.loads(path.read_text())["key"] == "x"


def test_page_runs_are_timed_and_summarized_per_page(tmp_path: Path, monkeypatch):
    import time

    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    from pages.cache_diag import note_build, timed_page_run

    diag = tmp_path / "diag.jsonl"
    monkeypatch.setenv("PIXELMATCH_DIAG_FILE", str(diag))
    start = time.time()
    with timed_page_run("Text search"):
        sum(i * i for i in range(200_000))  # some CPU on this thread
    with pytest.raises(StopException), timed_page_run("Text search"):
        raise StopException()
    with pytest.raises(ValueError), timed_page_run("For you"):
        raise ValueError("a page bug")
    class Untitled:  # an st.Page outside a running app (a process re-importing app.py)
        @property
        def title(self):
            raise AttributeError("'Page' object has no attribute '_title'")

    with timed_page_run(Untitled()):
        pass
    note_build("warm_retriever", "tiny")  # a cache build in the same file is not a page run
    runs = page_runs(diag, (start, time.time()))
    assert set(runs) == {"Text search", "For you", "?"}
    ts = runs["Text search"]
    assert ts["runs"] == 2 and ts["ended"] == {"done": 1, "stopped": 1}
    assert ts["cpu_ms"]["max"] > 0 and ts["wall_ms"]["max"] >= ts["cpu_ms"]["max"] * 0.5
    assert runs["For you"]["ended"] == {"ValueError": 1}
    assert page_runs(diag, (0.0, start - 1)) == {}  # outside the measured window
    assert cache_builds(diag)["builds"] == {"warm_retriever(tiny)": 1}

    tally = Tally(cpu_s={"server": 6.0, "browser": 9.0, "driver": 1.0})
    tally.latencies["text_search"] += [1.0, 2.0]
    tally.latencies["recommend"].append(3.0)
    work = server_work(tally, runs)
    assert work["cpu_s_per_action"] == {"server": 2.0, "browser": 3.0, "driver": 0.33}
    assert work["script_cpu_s"] == round(sum(r["cpu_s_total"] for r in runs.values()), 2)


def test_a_fragment_timer_counts_its_own_reruns_only(tmp_path: Path, monkeypatch):
    """For you's personalized search is a fragment timed with the same timer: inside a full
    run of the page it records nothing (the page's run counts it), alone it records itself."""
    import time

    from pages.cache_diag import timed_page_run

    diag = tmp_path / "diag.jsonl"
    monkeypatch.setenv("PIXELMATCH_DIAG_FILE", str(diag))
    start = time.time()
    # a full run of the page, with the fragment's own call inside it
    with timed_page_run("For you"), timed_page_run("For you · personalized search"):
        pass
    with timed_page_run("For you · personalized search"):  # a fragment rerun
        pass
    with timed_page_run("Text search"):  # the flag does not outlive its run
        pass
    runs = page_runs(diag, (start, time.time()))
    assert {name: r["runs"] for name, r in runs.items()} == {
        "For you": 1, "For you · personalized search": 1, "Text search": 1}


def test_cpu_is_counted_per_process_group():
    from e2e import cpu

    if cpu.snapshot(None) is None:
        pytest.skip("no /proc here")
    burn = (
        "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
        "print('burnt', flush=True)\ntime.sleep(30)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    before = cpu.snapshot(server.pid)
    worker = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "burnt"
        after = cpu.snapshot(server.pid)  # the worker (a child of this driver) still alive
    finally:
        for proc in (server, worker):
            proc.kill()
            proc.wait()
    assert server.pid in before["server"] and server.pid not in before["driver"]
    assert worker.pid in after["driver"]
    used = cpu.spent(before, after)
    assert used["server"] < 0.2  # it slept
    assert used["driver"] >= 0.35  # the worker's burn, counted from zero
    assert used["browser"] == 0.0  # no Chromium under this process
    assert cpu.spent(before, None) is None


@pytest.mark.slow
@pytest.mark.browser
def test_eight_sessions_at_once_on_the_tiny_catalog(tiny_catalog, data_dir, tmp_path):
    from e2e.browser import unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "load.json"
    cmd = [sys.executable, "-m", "e2e.load_test", "--data", str(data_dir), "--catalog", "tiny"]
    cmd += ["--sessions", "8", "--duration", "20", "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.exists(), done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["sessions_held"] == 8, report
    assert report["n_errors"] == 0, report["errors"]
    assert report["n_leaks"] == 0, report["leaks"]
    assert report["cache_builds"]["built_more_than_once"] == [], report["cache_builds"]
    assert report["cache_builds"]["builds"], "the diagnostic recorded no cache build"
    work = report["server_work"]
    assert work["page_runs"], "the server recorded no page run"
    assert work["cpu_s"]["server"] > 0 and work["cpu_s"]["browser"] > 0, work["cpu_s"]
    assert all(n > 0 for n in report["actions"].values()), report["actions"]
    assert report["catalog"]["name"] == "tiny"
    mem = report["server_memory"]  # the app server's own RSS, read before it stopped
    assert 0 < mem["rss_mb"] <= mem["peak_rss_mb"], mem
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_served_data_folder_has_the_catalog_and_the_exported_query_models(tmp_path: Path):
    from e2e.load_test import isolated_data_dir

    data = tmp_path / "data"
    (data / "artifacts" / "demo").mkdir(parents=True)
    (data / "artifacts" / "demo" / "manifest.json").write_text("{}")
    (data / "artifacts" / "other").mkdir()
    (data / "models").mkdir()
    (data / "models" / "all-MiniLM-L6-v2-abc.onnx").write_bytes(b"onnx")
    served = isolated_data_dir(data, "demo", tmp_path / "served")
    assert sorted(p.name for p in (served / "artifacts").iterdir()) == ["demo"]
    # without the export the server would run PyTorch to export MiniLM again, mid-run
    assert (served / "models" / "all-MiniLM-L6-v2-abc.onnx").read_bytes() == b"onnx"


def test_the_concurrent_users_section_shows_where_the_cpu_went():
    from engine.benchmark.load_section import load_headline, load_md

    report = _report(
        measured_at="2026-12-03 12:00:00 UTC", commit="abc1234", command="python -m e2e.load_test",
        machine={"platform": "Linux", "cores": 2, "load_average_before": [0.1, 0.2, 0.3],
                 "load_average_after": [2.0, 1.0, 0.5], "note": "one machine"},
        catalog={"name": "demo", "items": 20000}, duration_s=60, warmup=True,
        latency_ms={"text_search": {"n": 3, "p50": 900.0, "p95": 1500.0, "max": 1600.0}},
        server_memory={"rss_mb": 760.0, "peak_rss_mb": 799.0},
    )
    older = "\n".join(load_md(report))  # a report written before the CPU was recorded
    assert "Written by `python -m e2e.load_test` to `reports/load.json` (its default)." in older
    assert load_headline(report).startswith(
        "Concurrent users (2026-12-03 12:00:00 UTC, `python -m e2e.load_test`): ")
    assert "| text_search | 3 | 900 | 1500 | 1600 | – |" in older and "CPU in" not in older
    stats = {"n": 4, "p50": 120.0, "p95": 300.0, "max": 310.0, "mean": 150.0}
    report["server_work"] = {
        "cpu_s": {"server": 30.0, "browser": 60.0, "driver": 3.0},
        "cpu_s_per_action": {"server": 1.0, "browser": 2.0, "driver": 0.1},
        "script_cpu_s": 12.5,
        "page_runs": {"For you": {"runs": 4, "ended": {"done": 3, "interrupted": 1},
                                  "wall_ms": stats, "cpu_ms": stats, "cpu_s_total": 0.6}},
    }
    report["latency_ms"]["text_search"].update(mean=1000.0, mean_ci=[850.0, 1240.0])
    md = "\n".join(load_md(report))
    assert "| text_search | 3 | 900 | 1500 | 1600 | 1000 [850, 1240] |" in md
    assert "server 30.0 s (1.00 s per action); browser 60.0 s (2.00 s per action)" in md
    assert "page scripts themselves ran 12.5 s" in md
    assert "| For you | 4 | done 3, interrupted 1 | 120 | 300 | 120 | 300 |" in md
    assert md.index("CPU in") < md.index("resident memory")
    report["cache_builds"]["built_more_than_once"] = []
    headline = load_headline(report)
    assert headline.endswith("CPU per completed action: server 1.00 s, Chromium 2.00 s.")
    del report["server_work"]
    assert load_headline(report).endswith("with the server and Chromium).")
    # a direct run that names its file: the provenance is that command, not `make load`
    report["command"] = "python -m e2e.load_test --sessions 16 --out reports/load-16.json"
    assert "Written by `python -m e2e.load_test --sessions 16 --out reports/load-16.json`." in (
        "\n".join(load_md(report)))
    assert "`python -m e2e.load_test --sessions 16 --out reports/load-16.json`)" in (
        load_headline(report))


def test_latency_summary_has_a_bootstrap_interval_of_the_mean():
    import numpy as np

    from e2e.load_test import percentiles

    assert percentiles([]) == {"n": 0}
    values = list(np.random.default_rng(0).gamma(2.0, 500.0, size=60))
    p = percentiles(values)
    low, high = p["mean_ci"]
    assert low < p["mean"] < high and p["p50"] <= p["p95"] <= p["max"]
    assert p == percentiles(values)  # seeded: the same interval every time
    wider = percentiles(values[:10])["mean_ci"]
    assert wider[1] - wider[0] > high - low  # fewer actions, a wider interval
    assert percentiles([700.0, 700.0])["mean_ci"] == [700.0, 700.0]
