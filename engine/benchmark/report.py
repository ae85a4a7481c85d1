"""Write a benchmark report as JSON and Markdown, and copy its tables into the README.

The README's results section sits between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` and
is regenerated from ``reports/benchmark.json`` only, with where and when it was measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.artifacts import atomic_write_bytes, atomic_write_json
from engine.benchmark.load_section import load_headline, load_md, read_load
from engine.benchmark.tables import best_of, methods_table, recommend_table, slices_table

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _md(df) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append(
            "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
        )
    return "\n".join(lines)


def _provenance(r: dict[str, Any]) -> str:
    c = r["catalog"]
    return (
        f"Measured {r['measured_at']} at commit `{r['commit']}` on {r['machine']['platform']} "
        f"({r['machine']['note']}), catalog `{c['name']}` ({c['items']:,} products, preset "
        f"`{c['preset']}`), {r['split']} split, k={r['k']}, relevant = grade ≥ "
        f"{r['relevant_grade']}. Written by `make bench` to `reports/benchmark.json`."
    )


def headline(r: dict[str, Any]) -> list[str]:
    """Sentences comparing methods, computed from the report (never typed by hand)."""
    out = []
    text = r["text"]["methods"]
    if "clip" in text and "bm25" in text:
        vis = "visual=True"
        c, b = text["clip"]["slices"].get(vis, {}), text["bm25"]["slices"].get(vis, {})
        if c and b:
            ratio = c["ndcg@10"] / b["ndcg@10"] if b["ndcg@10"] else float("inf")
            out.append(
                f"On queries naming a colour or pattern, CLIP text→image NDCG@10 is "
                f"{c['ndcg@10']:.3f} vs {b['ndcg@10']:.3f} for BM25 ({ratio:.1f}x)."
            )
    m, v = best_of(r["text"])
    out.append(f"Best text method by NDCG@10: `{m}` ({v:.3f}).")
    if r["image"]["methods"]:
        m, v = best_of(r["image"])
        out.append(f"Best image-query method by NDCG@10: `{m}` ({v:.3f}).")
        clip = r["image"]["methods"].get("clip")
        if clip and "encode" in clip["latency_ms"]:
            e = clip["latency_ms"]["encode"]
            out.append(
                f"CLIP image-query encode latency: p50 {e['p50']:.1f} ms, "
                f"p95 {e['p95']:.1f} ms (one thread)."
            )
    rec = r.get("recommend")
    if rec:
        table = recommend_table(rec)
        k = rec["evaluation"]["k"]
        hyb = table[table["model"] == "hybrid"]
        if len(hyb):
            cold = ", ".join(
                f"{m} {v:.3f}" for m, v in zip(table["model"], table[f"cold-start recall@{k}"])
            )
            out.append(f"Cold-start recall@{k} (NEW items): {cold}.")
            metrics = [
                f"recall@{k}",
                f"ndcg@{k}",
                f"map@{k}",
                f"cold-start recall@{k}",
                f"short-history recall@{k}",
            ]
            lost = [m for m in metrics if hyb[m].iat[0] + 1e-9 < table[m].max()]
            out.append(
                "The hybrid recommender wins or ties on every quality metric."
                if not lost
                else f"The hybrid recommender is beaten on: {', '.join(lost)}."
            )
    info = r["build"].get("clip", {}).get("info", {})
    if info.get("trained"):
        out.append(
            f"Compact CLIP training: {info.get('seconds', 0):.0f} s, "
            f"{info.get('images_per_s', 0):.0f} images/s, "
            f"{info.get('epochs', 0):.1f} epochs."
        )
    if r.get("robustness"):
        out.append(_robustness_line(r["robustness"]))
    return out


def _robustness_line(rb: dict[str, Any]) -> str:
    return (
        f"Bad inputs: {rb['trials']} tried ({rb['cases']} cases) with {rb['crashes']} crashes; "
        f"artifact faults: {rb['faults_injected']} injected, {rb['faults_survived']} survived."
    )


def _robustness_md(rb: dict[str, Any]) -> list[str]:
    """The robustness section of benchmark.md (details in reports/robustness.json)."""
    kinds = ", ".join(f"{k} {n}" for k, n in rb["cases_by_kind"].items())
    parts = [
        "## Robustness",
        "",
        _robustness_line(rb) + f" Cases by kind: {kinds}. Table: `docs/bad-input.md`; every "
        f"outcome: `{rb['details']}`.",
        "",
    ]
    if rb["failures"]:
        parts += ["| case | target | expected | got | message |", "|---|---|---|---|---|"]
        parts += [
            f"| {o['case']} | {o['target']} | {o['expected']} | {o['got']} | "
            f"{o['message'].replace('|', '/')} |"
            for o in rb["failures"]
        ] + [""]
    else:
        parts += ["Every case had the expected outcome.", ""]
    return parts


def tagger_md(tagger: dict[str, Any]) -> list[str]:
    """The world's image-tagger section: accuracy and calibration per field (build info)."""
    head = ("| field | held-out accuracy | top-2 | ECE | catalog accuracy | top-2 | ECE |"
            " mean confidence |")
    lines = ["## Image tagger (the keywords)", "",
             f"Trained on {tagger['images']['train']:,} rendered photos (never a catalog image), "
             f"{tagger['training']['epochs']} epochs; held-out: {tagger['images']['test']:,} "
             "photos; catalog: every product image against its true attributes. ECE: 10 bins.",
             "", head, "|---|---|---|---|---|---|---|---|"]
    for field, h in tagger["heldout"].items():
        c = tagger["catalog"][field]
        lines.append(
            f"| {field} | {h['accuracy']:.3f} | {h['top2_accuracy']:.3f} | {h['ece']:.3f} | "
            f"{c['accuracy']:.3f} | {c['top2_accuracy']:.3f} | {c['ece']:.3f} | "
            f"{c['mean_confidence']:.3f} |"
        )
    return [*lines, ""]


def to_markdown(r: dict[str, Any], load: dict[str, Any] | None = None) -> str:
    """benchmark.md; with ``load`` (reports/load.json) a concurrent-users section too."""
    parts = ["# Benchmark", "", _provenance(r), ""]
    parts += [f"- {s}" for s in headline(r)] + [""]
    for section, title in (("text", "Text queries"), ("image", "Image queries")):
        sec = r[section]
        if not sec["methods"]:
            continue
        parts += [
            f"## {title} ({sec['n_queries']} queries)",
            "",
            _md(methods_table(sec)),
            "",
            "NDCG@10 by slice (slice sizes: "
            + ", ".join(f"{k} {v}" for k, v in sec["slice_sizes"].items())
            + "):",
            "",
            _md(slices_table(sec)),
            "",
        ]
    if load:
        parts += load_md(load)
    if r.get("recommend"):
        rec = r["recommend"]
        parts += [
            "## Recommendations",
            "",
            f"Measured by {rec['measured_by']}.",
            "",
            _md(recommend_table(rec)),
            "",
        ]
        ps = rec.get("personalized_search")
        if ps:
            parts += [
                "Personalized search on held-out sessions (user, query, converted item):",
                "",
                "```",
                json.dumps(ps, indent=2),
                "```",
                "",
            ]
    tagger = r.get("build", {}).get("world", {}).get("info", {}).get("tagger")
    if tagger:
        parts += tagger_md(tagger)
    if r.get("robustness"):
        parts += _robustness_md(r["robustness"])
    parts += ["## Build", "", "| step | seconds |", "|---|---|"]
    parts += [f"| {s} | {v['seconds']:.1f} |" for s, v in r["build"].items()]
    return "\n".join(parts) + "\n"


def readme_section(r: dict[str, Any], load: dict[str, Any] | None = None) -> str:
    extra = [load_headline(load)] if load else []
    lines = [START, "", _provenance(r), ""] + [f"- {s}" for s in [*headline(r), *extra]] + [""]
    lines += ["Text queries:", "", _md(methods_table(r["text"])), ""]
    if r["image"]["methods"]:
        lines += ["Image queries:", "", _md(methods_table(r["image"])), ""]
    if r.get("recommend"):
        lines += [
            "Recommendations (chronological test split):",
            "",
            _md(recommend_table(r["recommend"])),
            "",
        ]
    lines += ["Per-slice tables, build timings and index recall: `reports/benchmark.md`.", "", END]
    return "\n".join(lines)


def write_reports(r: dict[str, Any], folder: Path, readme: Path | None = None) -> None:
    """Write ``benchmark.json``/``benchmark.md`` atomically; refresh the README section."""
    atomic_write_json(folder / "benchmark.json", r)
    atomic_write_bytes(folder / "benchmark.md", to_markdown(r, read_load(folder)).encode())
    if readme is not None and readme.exists():
        text = readme.read_text()
        start = text.find(START)
        end = text.find(END, start + len(START)) if start >= 0 else -1
        if start >= 0 and end >= 0:  # both markers, in order; otherwise leave the file alone
            text = text[:start] + readme_section(r, read_load(folder)) + text[end + len(END) :]
            atomic_write_bytes(readme, text.encode())


def load_report(folder: Path) -> dict[str, Any] | None:
    path = folder / "benchmark.json"
    return json.loads(path.read_text()) if path.exists() else None
