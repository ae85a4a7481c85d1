"""Benchmarks & latency: charts from reports/benchmark.json, live latency, a quick benchmark."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.benchmark.report import headline, tagger_rows
from engine.benchmark.tables import (
    ann_points,
    ann_tuned_table,
    index_tuning_table,
    interval_frame,
    latency_table,
    live_vs_benchmark,
    methods_table,
    recommend_table,
    slices_table,
    wording_table,
)
from engine.paths import reports_dir
from engine.serving.reports import stale_steps
from pages.shared import benchmark_job, benchmark_report, current_catalog, esc, latency_monitor

METRICS = ["ndcg@10", "mrr", "recall@10", "precision@10", "map@10"]

catalog = current_catalog()
st.title("Benchmarks & latency", anchor=False)

path = reports_dir() / "benchmark.json"
report = benchmark_report(str(path), path.stat().st_mtime) if path.exists() else None


def _provenance(r: dict) -> str:
    c = r["catalog"]
    return (
        f"Measured {esc(r['measured_at'])} · commit `{esc(r['commit'])}` · catalog "
        f"**{esc(c['name'])}** ({c['items']:,} products) · {esc(r['split'])} split · "
        f"{esc(r['machine']['note'])}. Source: `reports/benchmark.json` (`make bench`)."
    )


def _quality(r: dict) -> None:
    metric = st.selectbox("Metric", METRICS, key="bench_metric")
    for section, title in (("text", "Text queries"), ("image", "Image queries")):
        sec = r[section]
        if not sec["methods"]:
            continue
        df = interval_frame(sec, metric).sort_values("mean", ascending=False)
        fig = px.bar(
            df,
            x="method",
            y="mean",
            error_y=df["high"] - df["mean"],
            error_y_minus=df["mean"] - df["low"],
            text_auto=".3f",
            labels={"mean": metric},
            title=f"{title}: {metric} with 95 % intervals ({sec['n_queries']} queries)",
        )
        fig.update_layout(height=340, margin={"t": 40, "b": 10})
        st.plotly_chart(fig, key=f"q_{section}")
        sliced = next(iter(sec["methods"].values()))["slices"]
        by = metric if all(metric in v for v in sliced.values()) else "ndcg@10"
        sl = slices_table(sec, by).set_index("method")
        heat = px.imshow(
            sl,
            text_auto=".2f",
            aspect="auto",
            color_continuous_scale="Purples",
            title=f"{title}: {by} by slice",
        )
        heat.update_layout(height=120 + 28 * len(sl), margin={"t": 40, "b": 10})
        st.plotly_chart(heat, key=f"s_{section}")


def _latency(r: dict) -> None:
    df = latency_table(r)
    total = df[df["stage"] == "total"].melt(
        id_vars=["queries", "method"],
        value_vars=["p50", "p95", "p99"],
        var_name="percentile",
        value_name="ms",
    )
    fig = px.bar(
        total,
        x="method",
        y="ms",
        color="percentile",
        barmode="group",
        facet_row="queries",
        title="Query latency (total), single thread",
    )
    fig.update_layout(height=560)
    st.plotly_chart(fig, key="lat_total")
    stages = df[(df["stage"] != "total") & ~df["stage"].str.contains(r"\.")]
    fig = px.bar(
        stages,
        x="method",
        y="p50",
        color="stage",
        facet_row="queries",
        title="Median latency by stage",
    )
    fig.update_layout(height=560)
    st.plotly_chart(fig, key="lat_stage")


def _ann(r: dict) -> None:
    if r.get("indexes"):
        st.caption(
            "efSearch / nprobe chosen by the build: the smallest reaching the recall@10 target "
            "against exact search."
        )
        st.dataframe(index_tuning_table(r["indexes"]), hide_index=True)
    for space, sweep in r.get("ann", {}).items():
        fig = px.line(
            ann_points(sweep),
            x="ms/query",
            y="recall@10",
            color="index",
            text="setting",
            hover_data=["MB"],
            markers=True,
            title=f"{space}: recall vs latency",
        )
        fig.update_traces(textposition="top center")
        fig.update_layout(height=380)
        st.plotly_chart(fig, key=f"ann_{space}")
        if sweep.get("tuned"):
            st.dataframe(ann_tuned_table(sweep), hide_index=True)


def _reranker(r: dict) -> None:
    info = r["build"].get("ranker", {}).get("info", {})
    if not info.get("importances"):
        st.info("This catalog has no Hybrid re-ranker.")
        return
    imp = pd.DataFrame(list(info["importances"].items()), columns=["feature", "gain"])
    fig = px.bar(
        imp.sort_values("gain"),
        x="gain",
        y="feature",
        orientation="h",
        title=f"LambdaMART feature importance (gain; {info['best_iteration']} trees, "
        f"validation NDCG@10 {info['val_ndcg@10']:.3f})",
    )
    fig.update_layout(height=140 + 22 * len(imp))
    st.plotly_chart(fig, key="imp")


def _wording(r: dict) -> None:
    sec = r["text"]
    if r.get("format", 1) < 2:
        st.info("This report predates the wording slices. Run `make bench` again.")
        return
    st.caption(
        "NDCG@10 by how the query is worded, with query understanding and without it "
        "(literal), and the title-silent hit@10: relevant items whose title and description "
        "do not name the asked colour or pattern, found in the top 10. 95 % intervals."
    )
    st.dataframe(wording_table(sec), hide_index=True)
    for c in r.get("comparisons", {}).get("text", []):
        st.markdown(f"- **{esc(c['slice'])}**: {esc(c['sentence'])}")


def _world(r: dict) -> None:
    world = r["build"].get("world", {}).get("info", {})
    tagger = world.get("tagger")
    if tagger:
        st.markdown("**Image tagger** (the keywords): accuracy and calibration per field")
        st.dataframe(pd.DataFrame(tagger_rows(tagger)), hide_index=True)
    clip = r["build"].get("clip", {}).get("info", {})
    if clip.get("trained"):
        cols = st.columns(4)
        cols[0].metric("CLIP epochs", f"{clip.get('epochs', 0):.1f}",
                       help=f"asked: {clip.get('epochs_requested', '?')}")
        cols[1].metric("images / s", f"{clip.get('images_per_s', 0):.0f}")
        cols[2].metric("stopped by the time cap", "yes" if clip.get("capped") else "no")
        cols[3].metric("NEW items left out", f"{clip.get('excluded_new_items', '–')}")
    if not tagger and not clip:
        st.info("This report has no tagger or CLIP training record.")


def _recommend(r: dict) -> None:
    rec = r.get("recommend")
    if not rec:
        st.info("This report has no recommender evaluation (the catalog has no recommenders).")
        return
    st.caption(f"Measured by {esc(rec['measured_by'])}.")
    table = recommend_table(rec)
    k = rec["evaluation"]["k"]
    long = table.melt(
        id_vars="model",
        value_vars=[
            f"recall@{k}",
            f"ndcg@{k}",
            f"cold-start recall@{k}",
            f"short-history recall@{k}",
        ],
    )
    fig = px.bar(
        long,
        x="model",
        y="value",
        color="variable",
        barmode="group",
        title="Recommendation quality (ALS cannot score NEW items: its cold-start is 0)",
    )
    fig.update_layout(height=380)
    st.plotly_chart(fig, key="rec_quality")
    st.dataframe(table, hide_index=True)
    if rec["evaluation"].get("ceilings"):
        st.caption(
            "(random ranking): unseen items at random; (oracle: true tastes): the synthetic "
            "world's own taste model, which no recommender sees: what a perfect model of the "
            "tastes could reach on these noisy held-out engagements."
        )


@st.fragment(run_every=2)
def _live(r: dict | None) -> None:
    monitor = latency_monitor()
    rows = monitor.summary()
    st.caption(f"{monitor.queries:,} queries run in this app process so far (all users).")
    if not rows:
        st.info("Run some searches on the search pages; their latencies appear here.")
        return
    st.dataframe(live_vs_benchmark(rows, r), hide_index=True)


@st.fragment(run_every=1)
def _quick() -> None:
    job = benchmark_job()
    clicked = st.button(
        "Run a quick benchmark (25 queries per set)", disabled=job.running, key="quick_run"
    )
    if clicked and not job.start(catalog, limit=25):
        st.warning("A quick benchmark is already running.")
    if job.running:
        st.progress(job.done / max(1, job.total), text=f"{job.stage}: {job.done}/{job.total}")
    if job.error:
        st.error(f"The quick benchmark failed: {esc(job.error)}")
    if job.result:
        st.caption(
            f"Quick benchmark of {esc(job.result['catalog']['name'])}, "
            f"{esc(job.result['measured_at'])} (not written to reports/)."
        )
        for section in ("text", "image"):
            if job.result[section]["methods"]:
                st.dataframe(methods_table(job.result[section]), hide_index=True)


if report is None:
    st.info("No benchmark report yet. Run `make bench` to write `reports/benchmark.json`.")
else:
    st.caption(_provenance(report))
    stale = stale_steps(report, catalog)
    if stale:
        st.warning(
            "This report was measured on another build than the one being served (steps that "
            f"differ: {esc(', '.join(stale))}); its figures may not match what you see. "
            "Run `make bench` to measure this build."
        )
    for line in headline(report):
        st.markdown(f"- {line}")
tabs = st.tabs(
    [
        "Quality",
        "Wording",
        "Tagger & CLIP",
        "Latency",
        "ANN trade-off",
        "Re-ranker",
        "Recommendations",
        "Live latency",
        "Quick benchmark",
    ]
)
if report is not None:
    with tabs[0]:
        _quality(report)
    with tabs[1]:
        _wording(report)
    with tabs[2]:
        _world(report)
    with tabs[3]:
        _latency(report)
    with tabs[4]:
        _ann(report)
    with tabs[5]:
        _reranker(report)
    with tabs[6]:
        _recommend(report)
with tabs[7]:
    _live(report)
with tabs[8]:
    _quick()
