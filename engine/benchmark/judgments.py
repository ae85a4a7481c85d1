"""The benchmark with human judgments as ground truth: ``python -m engine bench --judgments FILE``.

The queries are the judged query texts of one catalog; every built text method searches each of
them, and its top k is scored against the qrels built from the file (reviewers combined by the
lower median, :mod:`engine.judgments.qrels`), with judged coverage and unjudged counts
(:mod:`engine.judgments.metrics`). Queries that are also catalog queries are scored against the
generated grades too, side by side. Judged items the catalog does not have are left out of the
qrels (they could never be retrieved) and counted.

The output is ``reports/benchmark_judgments.{json,md}`` (``reports/catalogs/<name>/`` for a
catalog other than the demo, as ``bench`` does), labelled as measured against human judgments;
the main benchmark report and the README are never touched.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.artifacts import atomic_write_bytes, atomic_write_json
from engine.catalog import Catalog
from engine.judgments.agreement import mean_agreement, pairwise_agreement
from engine.judgments.csvio import LISTED_BAD_ROWS, read_csv
from engine.judgments.metrics import generated_metrics, judged_metrics
from engine.judgments.qrels import AGGREGATION, build_qrels, latest
from engine.judgments.store import Judgment
from engine.progress import ProgressFn, no_progress
from engine.schema import RELEVANT_GRADE
from engine.serving import open_catalog
from engine.serving.review import catalog_qrels_by_text, run_queries

K = 10
JSON_NAME = "benchmark_judgments.json"
MD_NAME = "benchmark_judgments.md"
TITLE = "Benchmark against human relevance judgments"


def _finite(value: Any) -> Any:
    """NaN (undefined kappa) as None, so the JSON stays standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def judgment_benchmark(
    catalog: Catalog,
    judgments: Sequence[Judgment],
    *,
    source: str,
    bad_rows: Sequence[str] = (),
    k: int = K,
    limit: int | None = None,
    methods: Sequence[str] | None = None,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Evaluate the catalog's text methods against ``judgments`` (see module); a JSON-ready dict."""
    from engine.benchmark.gitinfo import git_commit as _git_commit
    from engine.retrieval.registry import available_retrievers

    t0 = time.perf_counter()
    mine = latest(j for j in judgments if j.catalog == catalog.name)
    if not mine:
        found = sorted({j.catalog for j in judgments})
        raise ValueError(
            f"{source} has no judgments for the '{catalog.name}' catalog "
            f"(catalogs in the file: {', '.join(found) or 'none'}); pick one with --catalog"
        )
    known = set(catalog.row_of)
    unknown = sorted({j.item_id for j in mine if j.item_id not in known})
    qrels_all = build_qrels([j for j in mine if j.item_id in known])
    queries = sorted(qrels_all)[:limit] if limit else sorted(qrels_all)
    qrels = {q: qrels_all[q] for q in queries}
    generated_all = catalog_qrels_by_text(catalog)
    generated = {q: generated_all[q] for q in queries if generated_all.get(q)}
    methods = list(methods or available_retrievers(catalog, "text"))
    agreement = pairwise_agreement(mine)
    report: dict[str, Any] = {
        "title": TITLE,
        "ground_truth": "human judgments",
        "judgments_file": source,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": _git_commit(),
        "catalog": {
            "name": catalog.name,
            "preset": catalog.manifest.get("preset"),
            "items": len(catalog.items),
            "built_at": catalog.manifest.get("built_at"),
        },
        "k": k,
        "relevant_grade": RELEVANT_GRADE,
        "aggregation": AGGREGATION,
        "judgments": {
            "used": sum(1 for j in mine if j.item_id in known),
            "reviewers": sorted({j.reviewer for j in mine}),
            "queries": len(queries),
            "queries_with_generated_grades": len(generated),
            "other_catalogs": sum(1 for j in judgments if j.catalog != catalog.name),
            "unknown_items": len(unknown),
            "unknown_item_examples": unknown[:LISTED_BAD_ROWS],
            "bad_rows": len(bad_rows),
            "bad_row_examples": list(bad_rows[:LISTED_BAD_ROWS]),
        },
        "agreement": {"pairs": agreement, "mean": mean_agreement(agreement)},
        "methods": {},
    }
    for method in methods:
        run, refused = run_queries(catalog, method, queries, k, progress)
        report["methods"][method] = {
            "human": judged_metrics(run, qrels, k),
            "generated": generated_metrics(run, generated, k),
            "refused": refused,
        }
    report["bench_seconds"] = round(time.perf_counter() - t0, 1)
    return _finite(report)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        return f"{v:.3f}" if isinstance(v, float) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown, headed as measured against human judgments."""
    k, j, c = report["k"], report["judgments"], report["catalog"]
    ag, mean = report["agreement"], report["agreement"]["mean"]
    out = [
        f"# {report['title']}",
        "",
        f"Ground truth: **human judgments** from `{report['judgments_file']}` — {j['used']} "
        f"judgment(s) by {len(j['reviewers'])} reviewer(s) on {j['queries']} query(ies), "
        f"combined per result by the {report['aggregation']}. Not the generated grades of "
        f"`reports/benchmark.json`.",
        "",
        f"Measured {report['measured_at']} at commit `{report['commit']}`, catalog "
        f"`{c['name']}` ({c['items']:,} products), text methods, k={k}, relevant = grade ≥ "
        f"{report['relevant_grade']}. Unjudged results count as not relevant; `coverage` is the "
        f"share of the top {k} that was judged. Written by `python -m engine bench --judgments`.",
        "",
        "## Metrics from human judgments",
        "",
        _table(
            ["method", f"ndcg@{k}", f"precision@{k}", f"recall@{k}", "mrr", "coverage",
             "unjudged", "refused"],
            [
                [m, r["human"][f"ndcg@{k}"], r["human"][f"precision@{k}"],
                 r["human"][f"recall@{k}"], r["human"]["mrr"], r["human"]["coverage"],
                 r["human"]["unjudged"], len(r["refused"])]
                for m, r in report["methods"].items()
            ],
        ),
        "",
    ]  # fmt: skip
    if j["queries_with_generated_grades"]:
        out += [
            f"## Same queries, generated grades ({j['queries_with_generated_grades']} "
            "catalog queries)",
            "",
            _table(
                ["method", f"human ndcg@{k}", f"generated ndcg@{k}", "human mrr",
                 "generated mrr"],
                [
                    [m, r["human"][f"ndcg@{k}"], r["generated"][f"ndcg@{k}"],
                     r["human"]["mrr"], r["generated"]["mrr"]]
                    for m, r in report["methods"].items()
                    if r["generated"]
                ],
            ),
            "",
            "The human column is averaged over all judged queries, the generated one over "
            "those that are also catalog queries.",
            "",
        ]  # fmt: skip
    out += ["## Reviewer agreement", ""]
    if ag["pairs"]:
        out += [
            _table(
                ["reviewers", "both rated", "kappa", "quadratic kappa"],
                [
                    [f"{p['reviewer_a']} / {p['reviewer_b']}", p["both_rated"], p["kappa"],
                     p["kappa_quadratic"]]
                    for p in ag["pairs"]
                ],
            ),
            "",
            f"Mean pairwise kappa: {_fmt(mean['kappa'])}, quadratic "
            f"{_fmt(mean['kappa_quadratic'])}.",
        ]  # fmt: skip
    else:
        out.append("One reviewer: no agreement to measure.")
    skipped = [
        f"{j['bad_rows']} bad row(s) in the file"
        + (f" (first: {'; '.join(j['bad_row_examples'])})" if j["bad_rows"] else ""),
        f"{j['other_catalogs']} judgment(s) of other catalogs",
        f"{j['unknown_items']} judged item id(s) not in this catalog",
    ]
    out += ["", "## Left out", "", *[f"- {s}" for s in skipped], ""]
    return "\n".join(out)


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def write_judgment_reports(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``benchmark_judgments.json`` and ``.md`` into ``folder`` (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / JSON_NAME, folder / MD_NAME
    atomic_write_json(json_path, report)
    atomic_write_bytes(md_path, markdown(report).encode())
    return json_path, md_path


def run_from_cli(
    args: argparse.Namespace, progress: ProgressFn, log: Callable[[str], None]
) -> int:
    """``bench --judgments FILE``: read the file, pick the catalog, evaluate, write the reports."""
    from engine.config import DEFAULT_PRESET
    from engine.paths import reports_dir

    read = read_csv(args.judgments)
    if read.bad:
        log(f"{args.judgments}: {read.summary()}")
    if not read.judgments:
        raise ValueError(f"{args.judgments} has no valid judgments ({read.summary()})")
    names = sorted({j.catalog for j in read.judgments})
    name = args.catalog or (names[0] if len(names) == 1 else args.preset)
    catalog = open_catalog(name)
    report = judgment_benchmark(
        catalog,
        read.judgments,
        source=str(args.judgments),
        bad_rows=[str(b) for b in read.bad],
        limit=args.limit,
        progress=progress,
    )
    folder = Path(args.out) if args.out else reports_dir()
    if args.out is None and catalog.name != DEFAULT_PRESET:  # as bench does for other catalogs
        folder = reports_dir() / "catalogs" / catalog.name
    json_path, md_path = write_judgment_reports(report, folder)
    k = report["k"]
    print(f"{TITLE} ({report['judgments']['queries']} queries, catalog '{catalog.name}'):")
    for method, r in report["methods"].items():
        h = r["human"]
        print(
            f"  {method:12s} ndcg@{k} {h[f'ndcg@{k}']:.3f}  precision@{k} "
            f"{h[f'precision@{k}']:.3f}  mrr {h['mrr']:.3f}  coverage {h['coverage']:.2f} "
            f"({h['unjudged']} unjudged)"
        )
    print(f"wrote {json_path} and {md_path}")
    return 0
