"""Write a benchmark report as JSON and Markdown, and copy its tables into the README.

The README's results section sits between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` and
is regenerated from ``reports/benchmark.json`` only, with where and when it was measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.artifacts import atomic_write_bytes, atomic_write_json
from engine.benchmark.ann import ann_md
from engine.benchmark.int8_section import int8_md, read_int8
from engine.benchmark.load_section import load_headline, load_md, read_load
from engine.benchmark.query_runtime import query_runtime_md
from engine.benchmark.stores_section import read_stores, stores_md
from engine.benchmark.tables import (
    best_of,
    methods_table,
    recommend_table,
    slices_table,
    with_interval,
    wording_table,
)

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _md(df) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "–" if v != v else f"{v:.3f}"  # NaN: not measured for this row
    return "–" if v is None else str(v)


def _machine_load(m: dict[str, Any]) -> str:
    """'load average 0.52 before, 1.01 after' plus the idle wait, when the report has them."""
    before, after = m.get("load_average_before"), m.get("load_average_after")
    if not before or not after:
        return ""
    idle = m.get("idle_wait") or {}
    wait = ""
    if idle.get("settled") is not None:
        waited = idle["waited_s"]
        wait = (
            f"; the bench first waited {waited:g} s for the machine to settle"
            if idle["settled"]
            else f"; NOT IDLE: still above {idle['threshold']:g} after {waited:g} s"
        )
    return f"; 1-min load average {before[0]:.2f} before, {after[0]:.2f} after{wait}"


def _provenance(r: dict[str, Any]) -> str:
    c = r["catalog"]
    m = r["machine"]
    return (
        f"Measured {r['measured_at']} at commit `{r['commit']}` on {m['platform']} "
        f"({m['note']}{_machine_load(m)}), catalog `{c['name']}` ({c['items']:,} products, preset "
        f"`{c['preset']}`), {r['split']} split, k={r['k']}, relevant = grade ≥ "
        f"{r['relevant_grade']}. Written by `make bench` to `reports/benchmark.json`."
    )


def _slice_best(r: dict[str, Any]) -> list[str]:
    """One sentence per headline slice: the best method with its interval, and whether it is
    significantly ahead of the runner-up (paired over the same queries)."""
    out = []
    text = r["text"]
    sizes = text.get("slice_sizes", {})
    names = {
        "all": "All text queries",
        "wording=catalog": "Queries in the catalog's own words",
        "wording=paraphrase": "Paraphrases (held-out synonyms)",
        "wording=wild": "Wild wording (words no catalog text, caption or shipped lexicon uses)",
        "visual=True": "Queries naming a colour or pattern",
    }
    for c in r.get("comparisons", {}).get("text", []):
        best = text["methods"][c["best"]]
        iv = best["overall"]["ndcg@10"] if c["slice"] == "all" else best["slices"][c["slice"]][
            "ndcg@10"
        ]
        n = len(text["query_ids"]) if c["slice"] == "all" else sizes.get(c["slice"], 0)
        verdict = (
            f"significantly ahead of `{c['runner_up']}` (paired difference "
            f"{c['difference']['mean']:+.3f} [{c['difference']['low']:+.3f}, "
            f"{c['difference']['high']:+.3f}], p = {c['p_value']:.3g})"
            if c["significant"]
            else f"not significantly ahead of `{c['runner_up']}` (p = {c['p_value']:.2f})"
        )
        out.append(
            f"{names.get(c['slice'], c['slice'])} ({n} queries): best NDCG@10 `{c['best']}` "
            f"{with_interval(iv)}, {verdict}."
        )
    return out


def headline(r: dict[str, Any]) -> list[str]:
    """Sentences comparing methods, computed from the report (never typed by hand)."""
    if r.get("format", 1) < 2:  # an older report: means only
        m, v = best_of(r["text"])
        out = [f"Best text method by NDCG@10: `{m}` ({v:.3f}); no intervals in this report."]
        return out + ([_robustness_line(r["robustness"])] if r.get("robustness") else [])
    out = _slice_best(r)
    text = r["text"]["methods"]
    silent = {m: v["title_silent"]["hit@10"] for m, v in text.items() if v.get("title_silent")}
    if silent:
        m = max(silent, key=lambda x: silent[x]["mean"])
        bm25 = f"; BM25 {with_interval(silent['bm25'])}" if "bm25" in silent else ""
        out.append(
            f"Title-silent hit@10 (relevant items whose title and description do not name the "
            f"asked colour or pattern, found in the top 10): best `{m}` "
            f"{with_interval(silent[m])}{bm25}."
        )
    wild = r.get("comparisons", {}).get("best_on_wild")
    if wild:
        out.append(
            f"The overall best, `{wild['overall_best']}`, ranks {wild['rank_on_wild']} on wild "
            f"wording" + (
                " (within the interval of the best there)." if wild["within_interval"] and
                wild["overall_best"] != wild["wild_best"] else "." if wild["rank_on_wild"] == 1
                else f"; `{wild['wild_best']}` is significantly better there."
            )
        )
    gains = [
        u for u in r.get("comparisons", {}).get("understanding", [])
        if u["slice"] == "wording=wild" and u["a"] == wild.get("overall_best")
    ] if wild else []
    for u in gains:
        d = u["difference"]
        out.append(
            f"Query understanding changes `{u['a']}`'s NDCG@10 on wild wording by "
            f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] "
            f"({'significant' if u['significant'] else 'not significant'})."
        )
    if r["image"]["methods"]:
        for c in r.get("comparisons", {}).get("image", []):
            best = r["image"]["methods"][c["best"]]["overall"]["ndcg@10"]
            out.append(
                f"Image queries: best `{c['best']}` {with_interval(best)}"
                + (f", significantly ahead of `{c['runner_up']}`." if c["significant"] else
                   f", not significantly ahead of `{c['runner_up']}`.")
            )
    rec = r.get("recommend")
    if rec:
        out += _recommend_headline(rec)
    info = r["build"].get("clip", {}).get("info", {})
    if info.get("trained"):
        flag = " (STOPPED BY THE TIME CAP: fewer epochs than asked)" if info.get("capped") else ""
        out.append(
            f"Compact CLIP training: {info.get('epochs', 0):.1f} of "
            f"{info.get('epochs_requested', info.get('epochs', 0)):g} epochs{flag}, "
            f"{info.get('images_per_s', 0):.0f} images/s, load average "
            f"{(info.get('load_average') or ['?'])[0]} (NEW items left out: "
            f"{info.get('excluded_new_items', '?')})."
        )
    for key, label in (("query_runtime", "SBERT query encoding"),
                       ("image_runtime", "CLIP image query encoding")):
        qr = r.get(key)
        if not qr or "onnx" not in qr:
            continue
        k, onnx, torch = qr["k"], qr["onnx"], qr["torch"]
        out.append(
            f"{label}, one thread: ONNX Runtime p95 {onnx['encode_ms']['p95']:.1f}"
            f" ms vs PyTorch {torch['encode_ms']['p95']:.1f} ms "
            f"({qr['encode_p95_speedup']:.2f}× faster), NDCG@{k} {onnx[f'ndcg@{k}']:.4f} vs "
            f"{torch[f'ndcg@{k}']:.4f}, identical top-{k} on "
            f"{qr[f'top{k}_identical']:.1%} of {qr['n_queries']} queries."
        )
    if r.get("robustness"):
        out.append(_robustness_line(r["robustness"]))
    return out


def _recommend_headline(rec: dict[str, Any]) -> list[str]:
    table = recommend_table(rec)
    table = table[~table["model"].str.startswith("(")]  # the models, not the ceilings
    k = rec["evaluation"]["k"]
    out = []
    cold = ", ".join(
        f"{m} {v:.3f}" for m, v in zip(table["model"], table[f"cold-start recall@{k}"])
    )
    out.append(f"Cold-start recall@{k} (NEW items): {cold}.")
    ceil = rec["evaluation"].get("ceilings")
    if ceil:
        best = table.loc[table[f"recall@{k}"].idxmax()]
        out.append(
            f"Recommendation recall@{k}: random {ceil['random'][f'recall@{k}']:.3f}, best model "
            f"`{best['model']}` {best[f'recall@{k}']:.3f}, oracle that knows the world's true "
            f"tastes {ceil['oracle'][f'recall@{k}']:.3f}."
        )
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


def tagger_rows(tagger: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per tagged field: held-out and catalog accuracy, top-2 accuracy and ECE."""
    rows = []
    for field, h in tagger["heldout"].items():
        c = tagger["catalog"][field]
        rows.append(
            {
                "field": field,
                "held-out accuracy": round(h["accuracy"], 3),
                "held-out ECE": round(h["ece"], 3),
                "catalog accuracy": round(c["accuracy"], 3),
                "catalog top-2": round(c["top2_accuracy"], 3),
                "catalog ECE": round(c["ece"], 3),
                "mean confidence": round(c["mean_confidence"], 3),
            }
        )
    return rows


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


def to_markdown(
    r: dict[str, Any],
    load: dict[str, Any] | None = None,
    int8: dict[str, Any] | None = None,
    stores: dict[str, Any] | None = None,
) -> str:
    """benchmark.md; with ``load`` (reports/load.json) a concurrent-users section too, and with
    ``int8`` (the report's own ``int8`` key, else reports/int8.json) the SBERT int8 section."""
    parts = ["# Benchmark", "", _provenance(r), ""]
    parts += [f"- {s}" for s in headline(r)] + [""]
    for section, title in (("text", "Text queries"), ("image", "Image queries")):
        sec = r[section]
        if not sec["methods"]:
            continue
        parts += [
            f"## {title} ({sec['n_queries']} queries)",
            "",
            "Means over queries with 95 % bootstrap intervals.",
            "",
            _md(methods_table(sec, intervals=True)),
            "",
            "NDCG@10 by slice (distinct queries per slice: "
            + ", ".join(f"{k} {v}" for k, v in sec["slice_sizes"].items())
            + "):",
            "",
            _md(slices_table(sec, intervals=True)),
            "",
        ]
        if section == "text" and any(
            "literal" in m or "title_silent" in m for m in sec["methods"].values()
        ):
            parts += [
                "Wording: NDCG@10 with query understanding and without it (literal), and the "
                "title-silent hit@10 (relevant items whose title and description do not name "
                "the asked colour or pattern, found in the top 10, over min(10, their number)):",
                "",
                _md(wording_table(sec)),
                "",
            ]
        new = {m: v["new_items"] for m, v in sec["methods"].items() if v.get("new_items")}
        if new:
            parts += [
                "NEW items (launched after the cutoff): their share of the relevant results each "
                "method found in its top 10, against their share of all relevant items:",
                "",
                "| method | NEW share of found | NEW share of relevant |",
                "|---|---|---|",
                *[
                    f"| {m} | {v['share_of_found']:.3f} | {v['share_of_relevant']:.3f} |"
                    for m, v in new.items()
                ],
                "",
            ]
    int8 = r.get("int8") or int8
    if int8:
        parts += int8_md(int8)
    if r.get("query_runtime"):
        parts += query_runtime_md(r["query_runtime"])
    if r.get("image_runtime"):
        parts += query_runtime_md(r["image_runtime"], what="image")
    if stores:
        parts += stores_md(stores)
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
    parts += ann_md(r, _md)
    parts += ["## Build", "", "| step | seconds |", "|---|---|"]
    parts += [f"| {s} | {v['seconds']:.1f} |" for s, v in r["build"].items()]
    return "\n".join(parts) + "\n"


def readme_section(r: dict[str, Any], load: dict[str, Any] | None = None) -> str:
    extra = [load_headline(load)] if load else []
    lines = [START, "", _provenance(r), ""] + [f"- {s}" for s in [*headline(r), *extra]] + [""]
    intervals = r.get("format", 1) >= 2
    lines += [
        "Text queries (means with 95 % bootstrap intervals over queries):",
        "",
        _md(methods_table(r["text"], ("ndcg@10", "recall@10", "mrr"), intervals=intervals)),
        "",
    ]
    if intervals:
        lines += [
            "By wording (NDCG@10, with and without query understanding) and the title-silent "
            "hit@10:",
            "",
            _md(wording_table(r["text"])),
            "",
        ]
    if r["image"]["methods"]:
        lines += [
            "Image queries:",
            "",
            _md(methods_table(r["image"], ("ndcg@10", "recall@10", "mrr"), intervals=intervals)),
            "",
        ]
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
    md = to_markdown(r, read_load(folder), read_int8(folder), read_stores(folder))
    atomic_write_bytes(folder / "benchmark.md", md.encode())
    if readme is not None and readme.exists():
        text = readme.read_text()
        start = text.find(START)
        end = text.find(END, start + len(START)) if start >= 0 else -1
        if start >= 0 and end >= 0:  # both markers, in order; otherwise leave the file alone
            text = text[:start] + readme_section(r, read_load(folder)) + text[end + len(END) :]
            atomic_write_bytes(readme, text.encode())


def load_report(folder: Path) -> dict[str, Any] | None:
    """``benchmark.json``, its methods in the registry's order (the file's keys are sorted, so a
    re-rendered benchmark.md lists them as the benchmark run did)."""
    path = folder / "benchmark.json"
    if not path.exists():
        return None
    from engine.retrieval.registry import list_retrievers

    r = json.loads(path.read_text())
    order = {m: i for i, m in enumerate(list_retrievers())}
    for section in ("text", "image"):
        methods = r.get(section, {}).get("methods")
        if isinstance(methods, dict):
            r[section]["methods"] = dict(
                sorted(methods.items(), key=lambda kv: order.get(kv[0], len(order)))
            )
    return r
