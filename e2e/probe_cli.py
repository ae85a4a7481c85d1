"""The command line every catalog probe shares: ``--catalog``, its own options, ``--out`` and
``--force``, then :func:`engine.benchmark.int8.write_probe` (provenance, the busy-machine check,
an atomic JSON report)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_probe(module: str, doc: str, report: str,
              add_options: Callable[[argparse.ArgumentParser], None],
              measure: Callable[[argparse.Namespace], Any],
              argv: list[str] | None = None) -> int:
    """Parse ``argv`` for ``python -m <module>``, then write ``measure(args)`` to ``--out``
    (default ``reports/<report>``); returns the exit code."""
    from engine.benchmark.int8 import write_probe
    from engine.paths import reports_dir

    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    p.add_argument("--catalog", default="demo", help="built catalog (default demo)")
    add_options(p)
    p.add_argument("--out", default=None, help=f"JSON file (default reports/{report})")
    p.add_argument("--force", action="store_true", help="measure even on a busy machine")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else reports_dir() / report
    command = " ".join([f"python -m {module}", *(sys.argv[1:] if argv is None else argv)])
    write_probe(command, out, lambda: measure(args), force=args.force)
    return 0
