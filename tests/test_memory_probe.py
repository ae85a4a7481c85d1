"""e2e.memory_probe: every method of a built catalog loaded in one process, RSS after each."""

from __future__ import annotations

import json


def test_the_memory_probe_loads_every_method_and_writes_its_report(tiny_catalog, tmp_path):
    from e2e.memory_probe import main, probe
    from engine.retrieval.registry import available_retrievers

    result = probe("tiny")
    searched = [s["after"].removeprefix("search ") for s in result["steps"]
                if s["after"].startswith("search ")]
    assert set(searched) == set(available_retrievers(tiny_catalog))
    assert result["methods"]["recommend"], "the tiny catalog has recommenders"
    assert all(s["rss_mb"] > 0 for s in result["steps"])
    assert result["peak_rss_mb"] >= result["rss_mb"] > result["steps"][0]["rss_mb"] * 0.5

    out = tmp_path / "memory.json"
    assert main(["--catalog", "tiny", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["catalog"]["name"] == "tiny" and report["commit"]
    assert report["query_runtime"] == "onnx" and isinstance(report["heavy_imports"], list)
    assert len(report["machine"]["load_average_before"]) == 3


def test_the_memory_probe_refuses_a_catalog_that_is_not_built(tiny_catalog, tmp_path, capsys):
    from e2e.memory_probe import main

    assert main(["--catalog", "nope", "--out", str(tmp_path / "m.json")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "m.json").exists()
