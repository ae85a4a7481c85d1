"""The demo vs seed-scale table is drawn from the two benchmark reports and the build log."""

from __future__ import annotations

import json
from pathlib import Path

from engine.benchmark.scale import END, START, scale_md, write_scale


def _report(items: int, commit: str, build: dict[str, float], p95: dict[str, float],
            hnsw_bytes: int) -> dict:
    return {
        "measured_at": "2026-12-02 14:00:00 UTC",
        "commit": commit,
        "catalog": {"items": items},
        "build": {s: {"seconds": v, "peak_rss_mb": 500.0 * (i + 1) if items > 50_000 else None}
                  for i, (s, v) in enumerate(build.items())},
        "build_run": {"peak_rss_mb": 999.0},
        "indexes": [
            {"index": "sbert", "kind": "hnsw", "bytes": hnsw_bytes, "served": True},
            {"index": "sbert", "kind": "ivf", "bytes": 1, "served": False},
        ],
        "text": {"methods": {m: {"latency_ms": {"total": {"p95": v}}} for m, v in p95.items()}},
        "image": {"methods": {}},
    }


def _write(folder: Path, report: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "benchmark.json").write_text(json.dumps(report))


def test_scale_table_from_the_reports(tmp_path: Path) -> None:
    assert scale_md(tmp_path) is None  # nothing measured yet: no table
    _write(tmp_path, _report(20_000, "aaa", {"world": 100, "sbert": 200}, {"sbert": 10.0,
                                                                          "bm25": 4.0}, 36_000_000))
    assert scale_md(tmp_path) is None  # the seed-scale report is still missing
    _write(tmp_path / "catalogs" / "seed-scale",
           _report(100_000, "aaa+dirty", {"world": 500, "sbert": 1000},
                   {"sbert": 12.0, "bm25": 8.0}, 180_000_000))
    (tmp_path / "build-seed-scale.log").write_text(
        "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5\n"
        "\tMaximum resident set size (kbytes): 4194304\n"
    )
    md = scale_md(tmp_path)
    assert "| world | 100 | 500 | 5.00x |" in md
    assert "| **sum of steps** | **300** | **1500** | 5.00x |" in md
    assert "| build wall time (`make build`) | – | 3,724 | – |" in md  # 1 h 2 min 3.5 s
    assert "| peak RSS of the build, MB | 999 | 4,096 | 4.10x |" in md  # log beats manifest
    assert "| sbert | 36.0 | 180.0 | 5.00x |" in md  # served indexes only
    assert "| sbert (text) | 10.0 | 12.0 | 1.20x |" in md  # within 1.3x: no mark
    assert "| bm25 (text) | 4.0 | 8.0 | 2.00x ✗ |" in md
    assert "commit aaa)" in md and "commit aaa+dirty)" in md
    # per-step memory where the build recorded it (the seed-scale one here), not invented
    assert "seed-scale build after each step (cumulative), MB: world 500 · sbert 1,000." in md
    assert "demo build after each step" not in md

    # a stopped-and-resumed build: its partial run's log can hold the peak, never the wall time
    (tmp_path / "build-seed-scale-part1.log").write_text(
        "\tElapsed (wall clock) time (h:mm:ss or m:ss): 9:00:00\n"
        "\tMaximum resident set size (kbytes): 5242880\n"
    )
    md = scale_md(tmp_path)
    assert "| peak RSS of the build, MB | 999 | 5,120 | 5.13x |" in md
    assert "| build wall time (`make build`) | – | 3,724 | – |" in md
    assert "`reports/build-seed-scale.log`, `reports/build-seed-scale-part1.log`" in md

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\nrest\n")
    assert write_scale(tmp_path, readme) == tmp_path / "scale.md"
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith(f"{END}\nrest\n")
    assert "| world | 100 | 500 | 5.00x |" in text


def test_a_reloaded_report_lists_methods_in_the_registry_order(tmp_path: Path) -> None:
    from engine.artifacts import atomic_write_json
    from engine.benchmark.report import load_report

    methods = {m: {} for m in ("hybrid", "bm25", "sbert", "clip")}
    atomic_write_json(tmp_path / "benchmark.json", {"text": {"methods": methods},
                                                    "image": {"methods": {}}})
    # the file's keys are sorted; the reloaded report follows the registry (lexical first)
    assert list(load_report(tmp_path)["text"]["methods"]) == ["bm25", "sbert", "clip", "hybrid"]


def test_reports_from_different_commits_are_not_set_side_by_side(tmp_path: Path) -> None:
    from engine.benchmark.scale import scale_blocker

    _write(tmp_path, _report(20_000, "aaa", {"world": 100}, {"bm25": 4.0}, 1))
    _write(tmp_path / "catalogs" / "seed-scale",
           _report(100_000, "bbb", {"world": 500}, {"bm25": 8.0}, 5))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\n")
    assert scale_md(tmp_path) is None and write_scale(tmp_path, readme) is None
    assert "old" in readme.read_text() and not (tmp_path / "scale.md").exists()
    assert "commit aaa and seed-scale at bbb" in scale_blocker(tmp_path)
