"""The robustness figures: run_robustness's counts, and how `bench` writes and reports them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine.benchmark.harness as benchmark
import engine.benchmark.robustness as robustness
from engine.bad_inputs import BAD_INPUTS
from engine.benchmark.report import headline, to_markdown
from engine.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tiny_catalog) -> dict:
    return robustness.run_robustness(tiny_catalog, faults=False)


def test_every_bad_input_is_tried_without_a_crash(report, tiny_catalog):
    b = report["bad_inputs"]
    assert b["cases"] == len(BAD_INPUTS)
    assert {o["case"] for o in b["outcomes"]} == {r.case for r in BAD_INPUTS}
    assert b["trials"] == len(b["outcomes"]) > 3 * len(BAD_INPUTS)
    assert b["crashes"] == 0 and b["unexpected"] == 0, [o for o in b["outcomes"] if not o["ok"]]
    assert report["faults"] == {"injected": 0, "survived": 0, "outcomes": []}
    assert report["catalog"] == "tiny" and report["items"] == len(tiny_catalog.items)


def test_compact_counts_and_names_failures(report):
    broken = json.loads(json.dumps(report))
    broken["bad_inputs"]["outcomes"][0].update(got="crash", ok=False)
    c = robustness.compact(broken)
    assert c["trials"] == report["bad_inputs"]["trials"]
    assert sum(c["cases_by_kind"].values()) == len(BAD_INPUTS)
    assert [f["case"] for f in c["failures"]] == [broken["bad_inputs"]["outcomes"][0]["case"]]
    assert robustness.compact(report)["failures"] == []


def test_summary_sentence(report):
    text = robustness.summary(report)
    assert text.startswith(f"Robustness: {report['bad_inputs']['trials']} bad-input trials")
    assert "0 crashes" in text


def test_benchmark_markdown_and_headline_show_the_figures(report):
    bench = json.loads((REPO / "reports" / "benchmark.json").read_text())
    bench.pop("robustness", None)  # a report from before the robustness runner existed
    assert "## Robustness" not in to_markdown(bench)  # older reports render as before
    faults = {"injected": 10, "survived": 10, "outcomes": []}
    bench["robustness"] = robustness.compact({**report, "faults": faults})
    md = to_markdown(bench)
    trials = report["bad_inputs"]["trials"]
    line = (f"Bad inputs: {trials} tried ({len(BAD_INPUTS)} cases) with 0 crashes; "
            "artifact faults: 10 injected, 10 survived.")
    assert "## Robustness" in md and line in md
    assert line in headline(bench)
    assert "Every case had the expected outcome." in md
    bench["robustness"]["failures"] = [
        {"case": "image-bomb", "target": "decode", "expected": "refuse", "got": "crash",
         "ok": False, "message": "MemoryError | boom"}
    ]
    assert "| image-bomb | decode | refuse | crash | MemoryError / boom |" in to_markdown(bench)


def test_bench_writes_robustness_json_and_the_section(tiny_catalog, tmp_path, monkeypatch, capsys):
    bench = json.loads((REPO / "reports" / "benchmark.json").read_text())
    real = robustness.run_robustness
    monkeypatch.setattr(benchmark, "run_benchmark", lambda catalog, **kw: dict(bench))
    monkeypatch.setattr(robustness, "run_robustness", lambda c: real(c, faults=False))
    assert main(["bench", "--catalog", "tiny", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    written = json.loads((tmp_path / "robustness.json").read_text())
    assert written["bad_inputs"]["crashes"] == 0 and written["catalog"] == "tiny"
    saved = json.loads((tmp_path / "benchmark.json").read_text())["robustness"]
    assert saved["trials"] == written["bad_inputs"]["trials"]
    assert "## Robustness" in (tmp_path / "benchmark.md").read_text()
    assert f"Bad inputs: {saved['trials']} tried" in out
