"""Tests for ``python -m engine`` (engine.cli.main) against the session's tiny catalog."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.search import search

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(tiny_catalog, capsys):
    """Run ``python -m engine ARGS`` in-process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors
            code = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return run


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
        encoding="utf-8",
    )
    return path


def test_search_json_output(cli, tiny_catalog):
    code, out, err = cli(
        "search", "--catalog", "tiny", "--method", "bm25", "--query", "leather boots", "--json"
    )
    assert code == 0 and err == ""
    payload = json.loads(out)
    assert payload["query"] == "leather boots" and payload["method"] == "bm25"
    assert len(payload["item_ids"]) == len(payload["scores"]) == 10
    assert set(payload["timings_ms"]) == {"understand", "load", "score", "rank"}
    assert payload["interpretation"]["label"]
    expected = search(tiny_catalog, "bm25", text="leather boots", k=10)
    assert payload["item_ids"] == [tiny_catalog.item_ids[r] for r in expected.rows]
    assert payload["scores"] == sorted(payload["scores"], reverse=True)


@pytest.mark.parametrize("method", ["tfidf", "sbert"])
def test_search_json_other_methods_and_top_k(cli, method):
    code, out, _ = cli(
        "search",
        "--catalog",
        "tiny",
        "--method",
        method,
        "--query",
        "red mug",
        "--json",
        "--top-k",
        "3",
    )
    assert code == 0
    payload = json.loads(out)
    assert len(payload["item_ids"]) == 3 and payload["method"] == method


def test_search_text_output_lists_ranked_titles(cli, tiny_catalog):
    code, out, _ = cli("search", "--catalog", "tiny", "--query", "wool hat", "--top-k", "5")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("bm25: 5 result(s) for 'wool hat'") and "ms" in lines[0]
    assert lines[1].strip() == "understood as: hat · wool"  # query understanding, shown
    ranked = [line for line in lines[2:] if not line.strip().startswith("note:")]
    assert len(ranked) == 5 and ranked[0].lstrip().startswith("1. p")
    first_id = ranked[0].split()[1]
    assert tiny_catalog.items.set_index("item_id").loc[first_id, "title"] in ranked[0]


def test_search_with_no_match_prints_a_note(cli):
    code, out, _ = cli("search", "--catalog", "tiny", "--query", "zzqx blorp")
    assert code == 0
    assert "0 result(s)" in out and "note: No product text contains" in out


def test_batch_search_writes_results_and_errors_per_line(cli, tmp_path, tiny_catalog):
    queries = write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {"query_id": "a", "query": "leather boots"},
            {"query_id": "b", "query": ""},
            "",  # blank lines are skipped
            {"query_id": "c", "query": "x" * 5000},
            {"query": "striped mug", "extra": [1, 2]},
            {"query_id": "e", "query": "zzqx"},
        ],
    )
    out_path = tmp_path / "out" / "results.jsonl"
    code, out, err = cli(
        "search",
        "--catalog",
        "tiny",
        "--method",
        "tfidf",
        "--queries",
        str(queries),
        "--out",
        str(out_path),
        "--top-k",
        "4",
    )
    assert code == 0 and out == ""
    assert "5 queries searched with tfidf; 2 refused" in err
    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [r["query_id"] for r in rows] == ["a", "b", "c", "5", "e"]
    by_id = {r["query_id"]: r for r in rows}
    for qid in ("a", "5"):
        r = by_id[qid]
        assert "error" not in r and len(r["item_ids"]) == len(r["scores"]) == 4
        assert set(r["timings_ms"]) == {"understand", "load", "score", "rank"}
        expected = search(tiny_catalog, "tfidf", text=r["query"], k=4)
        assert r["item_ids"] == [tiny_catalog.item_ids[i] for i in expected.rows]
    assert by_id["5"]["extra"] == [1, 2]  # other fields pass through
    assert "Type something" in by_id["b"]["error"] and "item_ids" not in by_id["b"]
    assert "5,000 characters" in by_id["c"]["error"]
    assert by_id["e"]["item_ids"] == [] and by_id["e"]["notes"]


def test_batch_search_to_stdout(cli, tmp_path):
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": "wool hat"}, {"query": "red mug"}])
    code, out, _ = cli("search", "--catalog", "tiny", "--queries", str(queries), "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["query_id"] for r in rows] == ["1", "2"]
    assert all(len(r["item_ids"]) == 10 for r in rows)


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"query": "boots"', "q.jsonl:2: not valid JSON"),
        ("just some text", "q.jsonl:2: not valid JSON"),
        ('["boots"]', "q.jsonl:2: each line needs an object with a 'query' field"),
        ('{"text": "boots"}', "q.jsonl:2: each line needs an object with a 'query' field"),
    ],
)
def test_malformed_jsonl_exits_2_with_a_clear_message(cli, tmp_path, bad_line, message):
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": "ok"}, bad_line, {"query": "ok"}])
    out_path = tmp_path / "results.jsonl"
    code, out, err = cli(
        "search", "--catalog", "tiny", "--queries", str(queries), "--out", str(out_path)
    )
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert not out_path.exists()  # nothing half-written


def test_missing_queries_file_exits_2(cli, tmp_path):
    code, _, err = cli("search", "--catalog", "tiny", "--queries", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "No such file" in err


def test_unknown_method_exits_2_with_the_choices(cli):
    code, out, err = cli("search", "--catalog", "tiny", "--method", "bm26", "--query", "boots")
    assert code == 2 and out == ""
    assert "bm26" in err
    for name in ("bm25", "tfidf", "sbert"):
        assert name in err


@pytest.mark.parametrize("k", ["0", "-1", "abc", "100000"])
def test_bad_top_k_exits_2(cli, k):
    code, _, err = cli("search", "--catalog", "tiny", "--query", "boots", "--top-k", k)
    assert code == 2 and "Top-k" in err


def test_query_and_queries_together_or_neither_exit_2(cli, tmp_path):
    q = write_jsonl(tmp_path / "q.jsonl", [{"query": "boots"}])
    code, _, err = cli("search", "--catalog", "tiny", "--query", "x", "--queries", str(q))
    assert code == 2 and "either --query" in err
    code, _, err = cli("search", "--catalog", "tiny")
    assert code == 2 and "either --query" in err


def test_empty_and_huge_single_queries_exit_2(cli):
    code, _, err = cli("search", "--catalog", "tiny", "--query", "  ")
    assert code == 2 and "Type something" in err
    code, _, err = cli("search", "--catalog", "tiny", "--query", "y" * 10_000)
    assert code == 2 and "10,000 characters" in err


def test_search_on_a_missing_catalog_exits_2_with_the_build_command(cli):
    code, _, err = cli("search", "--catalog", "nope", "--query", "boots")
    assert code == 2
    assert "No built artifacts for 'nope'" in err and "python -m engine build" in err


def test_status_of_a_missing_catalog(cli):
    code, out, err = cli("status", "--catalog", "nope")
    assert code == 1
    assert "'nope' cannot be served" in out
    assert "Rebuild with: python -m engine build --preset PRESET --name nope" in out


def test_status_of_the_tiny_catalog(cli):
    code, out, _ = cli("status", "--catalog", "tiny")
    assert code == 0 and "'tiny' is built and up to date" in out


def test_methods_lists_the_core_methods(cli):
    code, out, _ = cli("methods")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"bm25", "tfidf", "sbert"} <= set(names)


def test_argparse_errors_exit_2_without_traceback(cli):
    code, _, err = cli("build", "--preset", "galaxy")
    assert code == 2 and "invalid choice" in err and "tiny" in err
    code, _, err = cli("frobnicate")
    assert code == 2


def test_module_entry_point_runs_without_traceback(tiny_catalog, data_dir):
    """``python -m engine`` as a real process (the fixture's PIXELMATCH_DATA is inherited)."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "status", "--catalog", "nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "python -m engine build --preset PRESET --name nope" in proc.stdout
    assert "Traceback" not in proc.stderr
