"""``python -m engine``: build artifacts, search from scripts, check a catalog, serve the API.

Every user-facing problem (bad input, missing or stale artifacts, a full disk) ends in one clear
line on stderr and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.artifacts import ArtifactError, atomic_write_bytes
from engine.compute import COMPUTES
from engine.config import DEFAULT_PRESET, SBERT_PRECISIONS, list_presets, load_preset
from engine.index_kinds import INDEX_KINDS
from engine.serving import open_catalog


def _progress(it: Iterable, total: int, desc: str, **kw: Any) -> Iterable:
    """A bar with ETA on a terminal; throttled lines with rate and time left in a log or CI."""
    from engine.progress import progress_for

    return progress_for(sys.stderr)(it, total, desc, **kw)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    from engine.pipeline import run_build
    from engine.pipeline.run import default_jobs

    source, name = None, args.name
    if args.catalog:
        from engine.config import SourceConfig
        from engine.ingest import read_source

        if args.items is not None:
            raise ValueError("--items applies to the synthetic world, not to --catalog")
        record = read_source(args.catalog)
        source = SourceConfig(args.catalog, record["fingerprint"])
        name = name or args.catalog
    preset = args.preset or ("catalog" if source else DEFAULT_PRESET)
    index = {"kind": args.index_kind} if args.index_kind else {}
    if args.recall_target is not None:
        index["recall_target"] = args.recall_target
    cfg = load_preset(
        preset,
        seed=args.seed,
        n_items=args.items,
        clip_model=args.clip,
        index=index,
        sbert_precision=args.sbert_precision,
        compute=args.compute,
        source=source,
        vector_store=_store_section(args) or _previous_store(name or preset),
    )
    with _terminate_as_interrupt():
        manifest = run_build(cfg, name=name, progress=None if args.quiet else _progress,
                             log=_log, jobs=args.jobs or default_jobs())
        _report_build(manifest)
        _prepare_query_encoder(manifest["config"]["text"])
    return 0


def _report_build(manifest: dict[str, Any]) -> None:
    """One line: what the build did, or that everything was up to date."""
    built = [s for s, r in manifest["steps"].items() if not r.get("skipped")]
    if built:
        _log(f"artifacts of '{manifest['name']}' are ready ({len(built)} step(s) built, "
             f"{len(manifest['steps']) - len(built)} up to date) in "
             f"{manifest['build_seconds']:.1f} s")
    else:  # the manifest keeps the figures of the build that made the artifacts
        _log(f"artifacts of '{manifest['name']}' are up to date ({len(manifest['steps'])} "
             f"steps, built {manifest.get('built_at', '?')} in "
             f"{manifest['build_seconds']:.1f} s)")


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a build the way Ctrl+C does (its step processes stopped, nothing half
    written): ``make run`` stops its background build so when the app is stopped."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (a test calling the CLI): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _prepare_query_encoder(text_cfg: dict) -> None:
    """Export the query-time MiniLM to ONNX now (once per machine, ~10 s), not on the first
    query; a failure only means queries use PyTorch."""
    from engine.encoders.onnx_text import query_runtime, query_text_encoder

    t0 = time.perf_counter()
    enc = query_text_encoder(text_cfg["sbert_model"],
                             precision=text_cfg.get("sbert_precision", "fp32"))
    if query_runtime() == "onnx":
        used = getattr(enc, "runtime", "torch")
        _log(f"query encoder: {used} ({time.perf_counter() - t0:.1f} s)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _store_section(args: argparse.Namespace) -> dict[str, str]:
    """The build's ``vector_store`` overrides from ``--vector-store`` / ``--milvus-uri``."""
    out = {"kind": args.vector_store} if args.vector_store else {}
    if args.milvus_uri:
        out.update(kind=args.vector_store or "milvus", uri=args.milvus_uri)
    return out


def _previous_store(name: str) -> dict[str, str]:
    """The vector store the catalog was last built with: a catalog built with ``--vector-store
    milvus`` keeps its collections on a plain rebuild (``make run``) until built with
    ``--vector-store faiss``."""
    from engine.artifacts import ArtifactStore
    from engine.paths import artifacts_dir

    try:
        manifest = ArtifactStore(artifacts_dir(name)).read_manifest()
    except (ArtifactError, ValueError, OSError):
        return {}
    return dict(manifest.get("config", {}).get("vector_store") or {})


def _add_store_args(p: argparse.ArgumentParser, build: bool = False) -> None:
    """``--vector-store`` and ``--milvus-uri`` (build: where to write; search: where to read)."""
    p.add_argument(
        "--vector-store",
        dest="vector_store",
        default=None,
        choices=("faiss", "milvus"),
        help="also write the dense indexes to Milvus (default: the preset's, else FAISS only)"
        if build
        else "read the dense indexes from FAISS files (default) or the catalog's Milvus "
        "collections (env PIXELMATCH_VECTOR_STORE)",
    )
    p.add_argument(
        "--milvus-uri",
        dest="milvus_uri",
        default=None,
        help="a Milvus server or cluster, e.g. http://milvus:19530 (default: Milvus Lite files "
        "in the catalog's folder; token from PIXELMATCH_MILVUS_TOKEN)",
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    from engine.ingest import IngestError, ingest_catalog
    from engine.ingest.unsplash import ingest_unsplash

    progress = None if args.quiet else _progress
    try:
        if args.unsplash:
            result = ingest_unsplash(args.name, Path(args.unsplash), Path(args.images),
                                     limit=args.limit, progress=progress)
        else:
            if not args.catalog:
                raise IngestError("give --catalog FILE (or --unsplash DIR)")
            interactions = Path(args.interactions) if args.interactions else None
            result = ingest_catalog(args.name, Path(args.catalog), Path(args.images),
                                    interactions, progress=progress)
    except IngestError as exc:
        if exc.report is not None:
            print(exc.report.to_text())
        _log(f"error: {exc} Nothing was written.")
        return 2
    print(result.report.to_text())
    counts = result.record["counts"]
    print(
        f"Ingested '{args.name}': {counts['items']:,} products, {counts['interactions']:,} "
        f"events, {counts['queries']:,} judged queries -> {result.folder}"
    )
    print(f"Next: python -m engine build --catalog {args.name}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from engine.pipeline import check

    status = check(args.catalog)
    if status.ok:
        print(f"'{args.catalog}' is built and up to date ({status.manifest['built_at']}).")
        _report_status(args.catalog)
        return 0
    if status.partial:
        print(f"'{args.catalog}' is partly built (a first build, running or stopped): "
              f"{', '.join(status.unbuilt)} not built yet; the app serves the other steps' "
              "methods.")
        print(f"Finish with: {status.fix}")
        return 1
    print(f"'{args.catalog}' cannot be served: {' '.join(status.problems)}")
    print(f"Rebuild with: {status.fix}")
    return 1


def _report_status(name: str) -> None:
    """Say whether the catalog's benchmark report measured the build that is being served."""
    from engine.benchmark.report import load_report
    from engine.paths import reports_dir
    from engine.serving.reports import stale_steps

    folder = reports_dir() if name == DEFAULT_PRESET else reports_dir() / "catalogs" / name
    report = load_report(folder)
    if report is None:
        print(f"No benchmark report for '{name}' yet (python -m engine bench --catalog {name}).")
        return
    stale = stale_steps(report, open_catalog(name))
    where = folder / "benchmark.json"
    if stale:
        print(f"{where} measured another build (steps that differ: {', '.join(stale)}).")
    else:
        print(f"{where} measured this build ({report.get('measured_at')}).")


def _read_batch(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or "query" not in obj:
            raise ValueError(f"{path}:{n}: each line needs an object with a 'query' field")
        obj.setdefault("query_id", str(n))
        rows.append(obj)
    return rows


def cmd_search(args: argparse.Namespace) -> int:
    from engine.search import QueryError, check_top_k, get_retriever, search

    check_top_k(args.top_k)
    image = None
    if args.image is not None:  # a bad image is refused in one line (ImageInputError)
        from engine.imageio import load_image

        image, args.query = load_image(Path(args.image)), args.query or ""
    if (args.query is None) == (args.queries is None):
        raise QueryError("Give either --query TEXT or --queries FILE.jsonl.")
    catalog = open_catalog(
        args.catalog, vector_store=args.vector_store, milvus_uri=args.milvus_uri
    )
    get_retriever(catalog, args.method)
    if args.query is not None:
        result = search(
            catalog,
            args.method,
            text=args.query,
            image=image,
            k=args.top_k,
            understand=not args.literal,
        )
        if args.json:
            print(json.dumps({"query": args.query, **result.to_dict(catalog.item_ids)}))
            return 0
        timings = ", ".join(f"{k} {v:.1f} ms" for k, v in result.timings_ms.items())
        print(f"{args.method}: {len(result)} result(s) for {args.query!r} ({timings})")
        if result.interpretation is not None and result.interpretation.label():
            print(f"  understood as: {result.interpretation.label()}")
        for note in result.notes:
            print(f"  note: {note}")
        for rank, (row, score) in enumerate(zip(result.rows, result.scores), 1):
            item = catalog.items.iloc[row]
            print(
                f"{rank:3d}. {item['item_id']}  {score:8.4f}  {item['title']}  "
                f"({item['category']}, ${item['price']:.2f})"
            )
        return 0
    rows = _read_batch(Path(args.queries))
    lines, n_err = [], 0
    for obj in rows:
        try:
            result = search(
                catalog,
                args.method,
                text=str(obj["query"]),
                k=args.top_k,
                understand=not args.literal,
            )
            obj.update(result.to_dict(catalog.item_ids))
        except QueryError as exc:
            obj["error"] = str(exc)
            n_err += 1
        lines.append(json.dumps(obj))
    payload = "\n".join(lines) + "\n"
    if args.out:
        atomic_write_bytes(Path(args.out), payload.encode())
    else:
        sys.stdout.write(payload)
    _log(f"{len(rows)} queries searched with {args.method}; {n_err} refused")
    return 0


def cmd_interpret(args: argparse.Namespace) -> int:
    from engine.components import query_understanding
    from engine.query import describe
    from engine.search import QueryError, clean_query_text

    text = clean_query_text(args.query)
    if not text:
        raise QueryError("Type something to interpret.")
    catalog = open_catalog(args.catalog)
    qu = query_understanding(catalog)
    if qu is None:
        raise QueryError(
            f"The '{catalog.name}' catalog was built without query understanding; rebuild it: "
            f"{catalog.manifest.get('rebuild_command', 'python -m engine build')}"
        )
    interp = qu.interpret(text)
    if args.json:
        print(json.dumps({"query": text, **interp.to_dict()}))
    else:
        print(describe(interp))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "judgments", None):  # human judgments as ground truth
        from engine.benchmark.judgments import run_from_cli

        return run_from_cli(args, progress=_progress, log=_log)
    from engine.benchmark.harness import run_benchmark
    from engine.benchmark.report import headline, write_reports
    from engine.paths import REPO_ROOT, reports_dir

    catalog = open_catalog(args.catalog or args.preset)
    report = run_benchmark(catalog, limit=args.limit, progress=_progress, settle=True)
    # The demo's report is the one the README quotes; any other catalog gets its own folder.
    own = args.out is None and catalog.name != DEFAULT_PRESET
    folder = (
        Path(args.out) if args.out else reports_dir() / "catalogs" / catalog.name if own
        else reports_dir()
    )
    folder.mkdir(parents=True, exist_ok=True)
    from engine.benchmark.robustness import run_robustness, write_robustness

    _log("robustness: bad inputs and injected artifact faults")
    report["robustness"] = write_robustness(run_robustness(catalog), folder)
    write_reports(report, folder, readme=None if args.out or own else REPO_ROOT / "README.md")
    for line in headline(report):
        print(line)
    print(f"wrote {folder / 'benchmark.json'} and {folder / 'benchmark.md'}")
    if args.out is None:
        cmd_bench_scale(args)  # the demo vs seed-scale table, once both reports exist
    return 0


def cmd_bench_scale(args: argparse.Namespace) -> int:
    from engine.benchmark.scale import scale_blocker, write_scale
    from engine.paths import REPO_ROOT, reports_dir

    out = write_scale(reports_dir(), REPO_ROOT / "README.md")
    if out is None:
        why = scale_blocker(reports_dir())
        _log(f"the scale table was not redrawn: {why}" if why else
             "no scale table yet: it needs reports/benchmark.json (make bench) and "
             "reports/catalogs/seed-scale/benchmark.json (make bench PRESET=seed-scale)")
        return 1
    print(f"wrote {out} and the README's scale section")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from engine.recommend.service import RecommendationService
    from engine.search import check_top_k

    k = check_top_k(args.top_k)
    if (args.user is None) == (args.users is None):
        raise ValueError("Give either --user ID or --users FILE (one user id per line).")
    catalog = open_catalog(args.catalog)
    if "recommend" not in catalog.built_steps:
        raise ValueError(
            f"the '{catalog.name}' catalog has no recommenders: {catalog.unavailable('recommend')}"
        )
    service = RecommendationService.for_catalog(catalog)
    service.model(args.method)  # unknown model names list the valid choices
    users = (
        [args.user]
        if args.user is not None
        else [u.strip() for u in Path(args.users).read_text().splitlines() if u.strip()]
    )
    lines = []
    for user in users:
        recs = service.recommend(user, args.method, k=k)
        obj = {
            "user_id": user,
            "method": args.method,
            "item_ids": [str(i) for i in recs.item_ids],
            "scores": [round(float(s), 6) for s in recs.scores],
            "latency_ms": round(recs.latency_ms, 3),
            "notes": recs.notes,
        }
        lines.append(json.dumps(obj))
        if args.user is not None and not args.json:
            for note in recs.notes:
                print(f"note: {note}")
            by_id = catalog.items.set_index("item_id")
            for rank, (item, score) in enumerate(zip(recs.item_ids, recs.scores), 1):
                row = by_id.loc[item]
                new = " NEW" if row["is_new"] else ""
                print(f"{rank:3d}. {item}  {score:8.4f}  {row['title']}{new}")
            return 0
    payload = "\n".join(lines) + "\n"
    if args.out:
        atomic_write_bytes(Path(args.out), payload.encode())
        _log(f"{len(users)} users written to {args.out}")
    else:
        sys.stdout.write(payload)
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from engine.paths import REPO_ROOT
    from engine.world.samples import write_samples

    for path in write_samples(REPO_ROOT / "assets" / "samples"):
        print(path)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from engine.retrieval.registry import list_retrievers, retriever_class

    for name in list_retrievers():
        cls = retriever_class(name)
        print(f"{name:12s} [{'+'.join(sorted(cls.modalities))}] {cls.description}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from engine.api.server import serve
    from engine.indexes.store import STORE_ENV, URI_ENV

    # The API opens catalogs with engine.serving.open_catalog, which reads these.
    if args.vector_store:
        os.environ[STORE_ENV] = args.vector_store
    if args.milvus_uri:
        os.environ[URI_ENV] = args.milvus_uri
    return serve(args.host, args.port, args.catalog, access_log=not args.quiet)


def cmd_bench_int8(args: argparse.Namespace) -> int:
    from engine.benchmark.int8_cli import run_from_cli

    return run_from_cli(args, progress=_progress, log=_log)


def cmd_bench_stores(args: argparse.Namespace) -> int:
    from engine.benchmark.stores import run_from_cli

    return run_from_cli(args, progress=_progress, log=_log)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build or update a catalog's artifacts")
    b.add_argument(
        "--preset", default=None, choices=list_presets(),
        help=f"settings preset (default {DEFAULT_PRESET}; 'catalog' with --catalog)",
    )
    b.add_argument(
        "--catalog", default=None, help="build an ingested catalog (python -m engine ingest)"
    )
    b.add_argument("--items", type=int, default=None, help="number of products (scales users too)")
    b.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    b.add_argument(
        "--name", default=None, help="artifact folder name (default: the preset or --catalog)"
    )
    b.add_argument(
        "--clip",
        default=None,
        help="CLIP model: compact (default), MODEL/PRETRAINED (e.g. "
        "ViT-B-32/laion2b_s34b_b79k) or MODEL@/path/to/checkpoint",
    )
    b.add_argument(
        "--index-kind",
        default=None,
        choices=INDEX_KINDS,
        help="the vector index the dense methods serve from (default: the preset's, else hnsw; "
        "hnsw-sq8: 8-bit compressed HNSW)",
    )
    b.add_argument(
        "--recall-target",
        type=float,
        default=None,
        help="recall@10 vs exact search each index's efSearch/nprobe is tuned to (default 0.98)",
    )
    b.add_argument(
        "--sbert-precision",
        dest="sbert_precision",
        default=None,
        choices=SBERT_PRECISIONS,
        help="Sentence-BERT precision for items and queries (default: the preset's, else fp32)",
    )
    b.add_argument(
        "--compute",
        default=None,
        choices=COMPUTES,
        help="number format of the item encoding and the CLIP training: auto (bfloat16 where "
        "the CPU has it natively, else fp32; the default), fp32 or bf16",
    )
    _add_store_args(b, build=True)
    b.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        help="cores to keep busy: independent steps run side by side while their threads fit "
        "(default: 2 on a machine with 2 or more cores; 1 runs the steps one after another)",
    )
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_build)

    ing = sub.add_parser(
        "ingest", help="validate and store your own catalog (or Unsplash Lite) for build"
    )
    ing.add_argument("--catalog", default=None, help="products file (.csv, .tsv, .parquet)")
    ing.add_argument("--unsplash", default=None, help="folder with Unsplash Lite's *.tsv* files")
    ing.add_argument("--images", required=True, help="folder holding the image files")
    ing.add_argument("--interactions", default=None, help="events file (.csv, .tsv, .parquet)")
    ing.add_argument("--name", required=True, help="catalog name (data/sources/NAME)")
    ing.add_argument("--limit", type=int, default=None, help="Unsplash: at most N photos")
    ing.add_argument("--quiet", action="store_true", help="no progress bars")
    ing.set_defaults(func=cmd_ingest)

    s = sub.add_parser("search", help="search a built catalog")
    s.add_argument("--catalog", default=DEFAULT_PRESET)
    s.add_argument("--method", default="bm25")
    s.add_argument("--query", default=None)
    s.add_argument("--image", default=None, help="query image file (alone or with --query)")
    s.add_argument("--queries", default=None, help="JSONL file of {query_id, query} objects")
    s.add_argument("--out", default=None, help="JSONL output for --queries (default stdout)")
    s.add_argument("--top-k", dest="top_k", default=10)
    s.add_argument("--json", action="store_true")
    _add_store_args(s)
    s.add_argument(
        "--literal", action="store_true", help="search the typed words as they are (no rewriting)"
    )
    s.set_defaults(func=cmd_search)

    st = sub.add_parser("status", help="is a catalog built and up to date?")
    st.add_argument("--catalog", default=DEFAULT_PRESET)
    st.set_defaults(func=cmd_status)

    bn = sub.add_parser("bench", help="benchmark every method; write reports/benchmark.*")
    bn.add_argument("--preset", default=DEFAULT_PRESET, choices=list_presets())
    bn.add_argument("--catalog", default=None, help="built catalog name (default: the preset)")
    bn.add_argument("--limit", type=int, default=None, help="at most this many queries per set")
    bn.add_argument("--out", default=None, help="report folder (default reports/, and README)")
    bn.add_argument(
        "--judgments",
        default=None,
        help="CSV of human judgments to use as ground truth instead "
        "(writes benchmark_judgments.{json,md}; the main report and README are left alone)",
    )
    bn.set_defaults(func=cmd_bench)

    b8 = sub.add_parser(
        "bench-int8", help="SBERT int8 vs fp32 on a built catalog; write reports/int8.json"
    )
    b8.add_argument("--preset", default=DEFAULT_PRESET, choices=list_presets())
    b8.add_argument("--catalog", default=None, help="built catalog name (default: the preset)")
    b8.add_argument("--limit", type=int, default=None, help="at most this many test queries")
    b8.add_argument("--out", default=None, help="report folder (default reports/)")
    b8.add_argument("--force", action="store_true", help="measure even on a busy machine")
    b8.set_defaults(func=cmd_bench_int8)

    sc = sub.add_parser("bench-scale", help="the demo vs seed-scale table (reports/scale.md)")
    sc.set_defaults(func=cmd_bench_scale)

    bs = sub.add_parser(
        "bench-stores", help="FAISS vs Milvus on a catalog built with --vector-store milvus"
    )
    bs.add_argument("--catalog", default=DEFAULT_PRESET)
    bs.add_argument("--milvus-uri", dest="milvus_uri", default=None, help="Milvus server URI")
    bs.add_argument("--limit", type=int, default=None, help="at most this many test queries")
    bs.add_argument("--out", default=None, help="report folder (default reports/)")
    bs.add_argument("--settle", action="store_true", help="first wait (<= 240 s) for idle")
    bs.add_argument("--force", action="store_true", help="write even on a busy machine")
    bs.set_defaults(func=cmd_bench_stores)

    r = sub.add_parser("recommend", help="recommend products for a user")
    r.add_argument("--catalog", default=DEFAULT_PRESET)
    r.add_argument("--method", default="hybrid")
    r.add_argument("--user", default=None)
    r.add_argument("--users", default=None, help="file with one user id per line")
    r.add_argument("--out", default=None, help="JSONL output for --users (default stdout)")
    r.add_argument("--top-k", dest="top_k", default=10)
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_recommend)

    sm = sub.add_parser("samples", help="re-render the sample query images in assets/samples")
    sm.set_defaults(func=cmd_samples)

    it = sub.add_parser("interpret", help="what a query is understood as (query understanding)")
    it.add_argument("--query", required=True)
    it.add_argument("--catalog", default=DEFAULT_PRESET)
    it.add_argument("--json", action="store_true")
    it.set_defaults(func=cmd_interpret)

    m = sub.add_parser("methods", help="list the search methods")
    m.set_defaults(func=cmd_methods)

    sv = sub.add_parser("serve", help="serve the HTTP API (FastAPI on uvicorn; docs at /docs)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--catalog", default=DEFAULT_PRESET, help="built catalog to serve")
    sv.add_argument("--quiet", action="store_true", help="no access log")
    _add_store_args(sv)
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    from engine.search import QueryError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (QueryError, ArtifactError, ValueError) as exc:
        _log(f"error: {exc}")
        return 2
    except OSError as exc:  # a full disk, a read-only data folder, a missing file
        from engine.errors import os_error_message

        _log(f"error: {os_error_message(exc, building=args.command == 'build')}")
        return 2
    except KeyboardInterrupt:
        _log("interrupted; the previous artifacts are still in place.")
        return 130
    except Exception as exc:  # a bug: still one line (PIXELMATCH_DEBUG=1 shows the traceback)
        if os.environ.get("PIXELMATCH_DEBUG"):
            raise
        _log(f"error: unexpected {type(exc).__name__}: {exc} (PIXELMATCH_DEBUG=1 for details)")
        return 1
