"""The single-session cost probe: its statistics (fast) and a short real run against a baseline
worktree (browser)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.page_cpu_probe import ratio_interval, summarize

REPO = Path(__file__).resolve().parents[1]


def test_ratio_of_means_with_a_bootstrap_interval():
    new, old = [1.0, 1.2, 0.8, 1.0], [2.0, 2.2, 1.8, 2.0]
    got = ratio_interval(new, old)
    assert got["ratio"] == 0.5
    assert got["low"] <= 0.5 <= got["high"] and got["high"] < 1.0  # clearly cheaper
    # rounds are resampled in pairs: noise that goes both ways straddles 1
    same = ratio_interval([1.0, 2.0, 3.0, 2.0], [2.0, 1.0, 2.0, 3.0])
    assert same["ratio"] == 1.0 and same["low"] < 1.0 < same["high"]
    assert ratio_interval(new, old) == got  # seeded


def test_summaries_keep_every_round():
    rows = [{"latency_s": 1.0, "browser_cpu_s": 0.5}, {"latency_s": 3.0, "browser_cpu_s": 0.7}]
    got = summarize(rows)
    assert got["latency_s"] == {"mean": 2.0, "median": 2.0, "values": [1.0, 3.0]}
    assert got["browser_cpu_s"]["values"] == [0.5, 0.7]


def test_an_unknown_action_lists_the_valid_ones(capsys):
    from e2e.page_cpu_probe import main

    with pytest.raises(SystemExit):
        main(["--actions", "text_search,dance"])
    assert "valid: text_search, image_search, recommend" in capsys.readouterr().err


@pytest.mark.browser
def test_a_short_run_against_a_baseline_worktree(tiny_catalog, data_dir, tmp_path):
    from e2e.browser import unavailable_reason

    if reason := unavailable_reason():
        pytest.skip(reason)
    out = tmp_path / "page_cpu.json"
    cmd = [sys.executable, "-m", "e2e.page_cpu_probe", "--data", str(data_dir), "--catalog",
           "tiny", "--baseline", "HEAD", "--rounds", "2", "--actions", "text_search,recommend",
           "--force", "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and out.exists(), done.stdout + done.stderr
    report = json.loads(out.read_text())
    probe = report["probe"]
    assert probe["server_tracebacks"] == {"current": 0, "baseline": 0}
    for variant in ("current", "baseline"):
        fy = probe["variants"][variant]["recommend"]
        assert len(fy["latency_s"]["values"]) == 2 and fy["latency_s"]["mean"] > 0
        assert fy["browser_cpu_s"]["mean"] > 0 and fy["TaskDuration_s"]["mean"] > 0
    assert set(probe["ratio_vs_baseline"]) == {"text_search", "recommend"}
    worktrees = subprocess.run(["git", "-C", str(REPO), "worktree", "list"],
                               capture_output=True, text=True).stdout
    assert "page-cpu-base-" not in worktrees  # the baseline checkout is removed


def test_a_baseline_that_is_not_a_commit_is_one_clear_line(capsys):
    from e2e.page_cpu_probe import main

    assert main(["--baseline", "no-such-ref-anywhere"]) == 2
    out = capsys.readouterr().out
    assert "is not a commit of this repository" in out and "Traceback" not in out
