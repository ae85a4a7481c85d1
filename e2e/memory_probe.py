"""Resident memory of the engine with every method loaded: ``python -m e2e.memory_probe``.

Opens a built catalog in this process, as the app's server does, then runs one query through
every search method it has (text, image and text+image where the method takes them) and one
recommendation from every recommender, recording the process's resident set size (VmRSS) after
each. The last figure is what a server holding every method costs, before any Streamlit or
browser overhead. Writes ``reports/memory.json`` (or ``--out``) with the date, commit and load,
and which heavy libraries the process imported (serving needs neither torch nor transformers).
``--runtime torch`` measures the PyTorch query encoders instead of ONNX Runtime.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HEAVY = ("torch", "torchvision", "transformers", "sentence_transformers", "open_clip")
SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "samples" / "navy-dotted-backpack.jpg"


def rss_mb() -> float:
    """This process's resident set size now (Linux ``/proc/self/status``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")  # pragma: no cover - not Linux


def probe(catalog_name: str) -> dict[str, Any]:
    """Load every method of ``catalog_name`` one after the other; RSS after each step."""
    from engine.imageio import load_image
    from engine.recommend.service import RecommendationService
    from engine.retrieval.registry import available_retrievers
    from engine.runtime import set_serving_threads
    from engine.search import search
    from engine.serving.catalogs import open_catalog

    set_serving_threads(1)
    steps: list[dict[str, Any]] = [{"after": "python + imports", "rss_mb": rss_mb()}]
    catalog = open_catalog(catalog_name)
    _ = catalog.items
    steps.append({"after": "catalog opened", "rss_mb": rss_mb()})
    image = load_image(SAMPLE)
    text_methods = available_retrievers(catalog, "text")
    image_methods = available_retrievers(catalog, "image")
    for method in dict.fromkeys(text_methods + image_methods):
        t0 = time.perf_counter()
        if method in text_methods:
            search(catalog, method, text="red striped backpack", k=10)
        if method in image_methods:
            search(catalog, method, image=image, k=10)
        steps.append({"after": f"search {method}", "rss_mb": rss_mb(),
                      "seconds": round(time.perf_counter() - t0, 2)})
    recommenders: list[str] = []
    if "recommend" in catalog.built_steps:
        service = RecommendationService.for_catalog(catalog)
        user = str(catalog.table("interactions")["user_id"].iloc[0])
        recommenders = service.models()
        for model in recommenders:
            service.recommend(user, model, k=10)
            steps.append({"after": f"recommend {model}", "rss_mb": rss_mb()})
    return {
        "heavy_imports": sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY)),
        "catalog": {"name": catalog.name, "items": len(catalog.items),
                    "built_at": catalog.manifest.get("built_at")},
        "methods": {"text": text_methods, "image": image_methods, "recommend": recommenders},
        "steps": steps,
        "rss_mb": steps[-1]["rss_mb"],
        "peak_rss_mb": max(s["rss_mb"] for s in steps),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m e2e.memory_probe", description=__doc__)
    ap.add_argument("--catalog", default="demo", help="built catalog (default demo)")
    ap.add_argument("--out", default="reports/memory.json", help="report path")
    ap.add_argument("--runtime", choices=("onnx", "torch"),
                    help="query encoders' runtime (default: PIXELMATCH_QUERY_RUNTIME, else onnx)")
    args = ap.parse_args(argv)
    if args.runtime:  # a command-line run: this process only
        os.environ["PIXELMATCH_QUERY_RUNTIME"] = args.runtime
    from engine.encoders.onnx_text import query_runtime

    args.runtime = query_runtime()

    from engine.artifacts import ArtifactError, atomic_write_json
    from engine.benchmark.gitinfo import git_commit

    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        result = probe(args.catalog)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = {
        "command": f"python -m e2e.memory_probe --catalog {args.catalog}"
                   + (f" --runtime {args.runtime}" if args.runtime != "onnx" else ""),
        "query_runtime": args.runtime,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": git_commit(),
        "machine": {"load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        **result,
    }
    atomic_write_json(Path(args.out), report)
    print(f"{args.catalog}: RSS {result['rss_mb']:,.0f} MB with every method loaded "
          f"(peak {result['peak_rss_mb']:,.0f} MB; {args.runtime} query encoders; heavy imports: "
          f"{', '.join(result['heavy_imports']) or 'none'}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
