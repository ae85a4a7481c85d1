"""The recommender-evaluation probe: batched and one-at-a-time evaluations agree on the tiny
catalog, and a busy machine is refused unless forced."""

from __future__ import annotations

import json

from e2e import recommend_eval_probe as probe


def test_batched_and_one_at_a_time_evaluations_agree(tiny_catalog, tmp_path):
    out = tmp_path / "recommend_eval.json"
    assert probe.main(["--catalog", "tiny", "--rounds", "1", "--out", str(out), "--force"]) == 0
    report = json.loads(out.read_text())
    got = report["probe"]
    assert got["metrics_identical"] is True
    assert got["test_users"] > 0 and "hybrid" in got["models"]
    assert len(got["seconds_batched"]) == len(got["seconds_one_at_a_time"]) == 1
    assert report["commit"] and report["load_average_before"]


def test_a_busy_machine_is_not_measured(tmp_path, monkeypatch, capsys):
    from engine.benchmark import int8

    monkeypatch.setattr(int8, "provenance", lambda: {"machine_busy": True,
                                                     "load_average_before": [9.0, 9.0, 9.0]})
    monkeypatch.setattr(probe, "compare", lambda *a: (_ for _ in ()).throw(AssertionError))
    out = tmp_path / "r.json"
    assert probe.main(["--out", str(out)]) == 0
    assert "probe" not in json.loads(out.read_text())
    assert "not measuring" in capsys.readouterr().err
