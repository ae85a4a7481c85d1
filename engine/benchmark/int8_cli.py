"""``python -m engine bench-int8``: SBERT int8 vs fp32 on a built catalog -> ``reports/int8.json``.

Measures nothing on a busy machine (1-min load average above ``MAX_LOAD``): the previous result
stays. Re-renders benchmark.md beside the file so its "SBERT int8 vs fp32" section is current.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from engine.benchmark.int8 import MAX_LOAD, PRECISIONS, K
from engine.benchmark.int8_section import FILE, compare_on_catalog
from engine.progress import ProgressFn


def run_from_cli(
    args: argparse.Namespace, progress: ProgressFn, log: Callable[[str], None]
) -> int:
    """``python -m engine bench-int8``: measure unless the machine is busy, write int8.json and
    re-render benchmark.md beside it (the README is left alone)."""
    from engine.artifacts import atomic_write_json
    from engine.benchmark.int8 import provenance  # looked up now: tests replace it
    from engine.benchmark.report import load_report, write_reports
    from engine.config import DEFAULT_PRESET
    from engine.paths import reports_dir
    from engine.runtime import load_average
    from engine.serving import open_catalog

    catalog = open_catalog(args.catalog or args.preset)
    own = args.out is None and catalog.name != DEFAULT_PRESET
    folder = (
        Path(args.out) if args.out else reports_dir() / "catalogs" / catalog.name if own
        else reports_dir()
    )
    meta = provenance()
    if meta["machine_busy"] and not args.force:
        log(
            f"error: 1-min load average {meta['load_average_before'][0]:.2f} > {MAX_LOAD}; "
            f"not measuring ({folder / FILE} left as it was; --force to measure anyway)"
        )
        return 1
    section = {**meta, **compare_on_catalog(catalog, limit=args.limit, progress=progress)}
    section["load_average_after"] = load_average()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / FILE, section)
    bench = load_report(folder)
    if bench is not None and "int8" not in bench:
        write_reports(bench, folder)  # re-render benchmark.md with the new section
    for p in PRECISIONS:
        r = section[p]
        print(f"{p}: NDCG@{K} {r[f'ndcg@{K}']:.4f}, encode+search p95 "
              f"{r['encode_search_ms']['p95']:.1f} ms")
    print(f"re-encoded {section['reencoded']} items in {section['reencode_seconds']:.0f} s; "
          f"wrote {folder / FILE}")
    return 0
