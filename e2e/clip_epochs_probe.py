"""Compact CLIP: fewer epochs, or bfloat16 training, against the variation between seeds.

``python -m e2e.clip_epochs_probe [--catalog demo] [--seeds 42,43,44] [--epochs 10,6,8]
[--compute fp32,bf16]``.

The compact CLIP is the longest build step (10 epochs, about 4 minutes on 2 cores). Whether it
can train for fewer epochs "at equal quality" depends on how much its quality varies between
random draws anyway. For every (seed, epochs) pair this probe trains the CLIP on a built
catalog's own world and caption vectors (the ``clip`` step, with only the seed and the epochs
changed), embeds the catalog (``visual``) and tunes the fusions (``fusion``), all on validation
queries, and records:

- ``clip_text``: validation NDCG@10 of CLIP text-to-image search alone (the fusion tuning's
  weight 0 for SBERT), and ``clip_image``: the same for image queries (colour weight 0);
- the best validation NDCG@10 of each tuned fusion (early/late, text/image), of the fusion MLP
  and of the attribute re-ranking;
- the training's steps, seconds, images per second and final loss, with the load average.

Test queries are never used. The catalog's own (seed, epochs) is read from its build instead of
being trained again (the same code and seed train the same model). Each pair's result is kept
under ``data/probes/clip_epochs/`` as it finishes, so an interrupted run resumes. The summary
compares each epoch count's mean over seeds with the most epochs' mean and its seed-to-seed
range. ``--compute`` adds the training's number format (:mod:`engine.compute`) as a second
axis: every (epochs, compute) group is compared with float32 at the most epochs. Quality does not
depend on the machine's load (work is counted in epochs); the seconds
do, and are only comparable between pairs run on an idle machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STEPS_RUN = ("clip", "visual", "fusion")


def _metrics(tuning: dict[str, Any], mlp: dict[str, Any]) -> dict[str, float]:
    """Validation NDCG@10 figures from the fusion step's tuning curves."""
    out = {"clip_text": tuning["early_text"]["0.0"], "clip_image": tuning["early_image"]["0.0"]}
    for name in ("early_text", "early_image", "late_text", "late_image", "attributes_early",
                 "attributes_late", "attributes_mlp"):
        out[f"best_{name}"] = max(tuning[name].values())
    out["mlp"] = mlp.get("val_ndcg@10")
    return {k: round(float(v), 4) for k, v in out.items() if v is not None}


def _clip_facts(info: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    keys = ("seed", "epochs", "compute", "steps", "seconds", "images_per_s", "final_loss",
            "load_average")
    return {**{k: info.get(k) for k in keys}, "step_seconds": seconds}


def from_build(catalog) -> dict[str, Any]:
    """The catalog's own CLIP, as its build recorded it (no training)."""
    tuning = json.loads((catalog.step_dir("fusion") / "fusion.json").read_text())
    steps = catalog.manifest["steps"]
    return {
        "source": "the catalog's build",
        "clip": _clip_facts(steps["clip"]["info"], steps["clip"]["seconds"]),
        "metrics": _metrics(tuning["tuning"], tuning["mlp"]),
    }


def train_pair(catalog, seed: int, epochs: float, log=print, compute: str = "fp32"
               ) -> dict[str, Any]:
    """Train (seed, epochs) in ``compute`` on the catalog's world and caption vectors, then
    embed and tune."""
    from engine.config import config_from_dict
    from engine.pipeline.step import STEPS, StepContext, step_threads

    cfg = config_from_dict(catalog.manifest["config"])
    cfgs = {"clip": dataclasses.replace(
        cfg, seed=seed,
        clip=dataclasses.replace(cfg.clip, epochs=float(epochs), compute=compute))}
    dirs = {name: catalog.step_dir(name) for name in ("world", "sbert", "query")}
    tmp = Path(tempfile.mkdtemp(prefix=f"clip-probe-s{seed}-e{epochs:g}-{compute}-"))
    seconds, infos = {}, {}
    try:
        for name in STEPS_RUN:
            step, c = STEPS.get(name), cfgs.get(name, cfg)
            out = tmp / name
            out.mkdir()
            ctx = StepContext(cfg=c, inputs={d: dirs[d] for d in step.deps},
                              progress=lambda it, *a, **k: it, log=lambda *a: None,
                              threads=step_threads(step, c))
            t0 = time.perf_counter()
            infos[name] = step.run(ctx, out)
            seconds[name] = round(time.perf_counter() - t0, 1)
            dirs[name] = out
            log(f"  seed {seed}, {epochs:g} epochs, {compute}: {name} in {seconds[name]:.0f} s")
        tuning = json.loads((dirs["fusion"] / "fusion.json").read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "source": "trained by this probe",
        "clip": _clip_facts(infos["clip"], seconds["clip"]),
        "step_seconds": seconds,
        "metrics": _metrics(tuning["tuning"], tuning["mlp"]),
    }


def group_key(epochs: float, compute: str = "fp32") -> str:
    """A summary group's name: the epoch count, with the number format unless it is fp32."""
    return f"{epochs:g}" if compute == "fp32" else f"{epochs:g} {compute}"


def summarise(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (epochs, compute) group: each metric's mean, min and max over seeds, and the
    difference of the mean from the reference's mean (``delta``: float32 at the most epochs,
    or the most epochs in any format when no float32 was run), beside the group's own range."""
    groups: dict[tuple[float, str], list[dict]] = {}
    for p in pairs:
        groups.setdefault((float(p["epochs"]), p.get("compute", "fp32")), []).append(p)
    top = max(e for e, _ in groups)
    formats = {c for e, c in groups if e == top}
    ref_key = (top, "fp32" if "fp32" in formats else min(formats))
    out: dict[str, Any] = {"reference_epochs": top, "reference_compute": ref_key[1],
                           "by_epochs": {}}
    ref = {m: [p["metrics"][m] for p in groups[ref_key]] for m in groups[ref_key][0]["metrics"]}
    for e, c in sorted(groups, key=lambda k: (k[1] != "fp32", k[1], k[0])):
        rows = groups[(e, c)]
        entry: dict[str, Any] = {"seeds": sorted(p["seed"] for p in rows), "metrics": {}}
        for m in ref:
            vals = [p["metrics"][m] for p in rows if m in p["metrics"]]
            mean = sum(vals) / len(vals)
            entry["metrics"][m] = {
                "mean": round(mean, 4), "min": min(vals), "max": max(vals),
                "delta": round(mean - sum(ref[m]) / len(ref[m]), 4),
            }
        secs = [p["clip"]["seconds"] for p in rows if p["clip"].get("seconds")]
        entry["clip_train_seconds"] = secs
        out["by_epochs"][group_key(e, c)] = entry
    return out


def _built(name: str):
    """The built catalog ``name``. Steps built by older code are accepted: the probe only reads
    the world, caption vectors and query lexicon they hold, and retrains everything after."""
    from engine.artifacts import ArtifactError
    from engine.catalog import Catalog
    from engine.pipeline.status import check

    status = check(name)
    needed = ("world", "sbert", "query", "clip", "fusion")
    if status.manifest is None or any(s not in status.manifest.get("steps", {}) for s in needed):
        raise ArtifactError(" ".join(status.problems) or f"catalog {name!r} is not built",
                            fix=status.fix)
    return Catalog.load(name, status.manifest)


def measure(catalog_name: str, seeds: list[int], epochs: list[float], work: Path,
            computes: tuple[str, ...] | None = None) -> dict:
    """Every (seed, epochs, compute) run (kept in ``work`` as it finishes), and the summary;
    ``computes`` defaults to the format the catalog's own CLIP trained in."""
    from engine.artifacts import atomic_write_json

    catalog = _built(catalog_name)
    cfg = catalog.manifest["config"]
    own_compute = catalog.manifest["steps"]["clip"]["info"].get("compute", "fp32")
    own = (int(cfg["seed"]), float(cfg["clip"]["epochs"]), own_compute)
    computes = computes or (own_compute,)
    key = "-".join(catalog.manifest["steps"][s]["hash"] for s in ("world", "sbert", "query"))
    work.mkdir(parents=True, exist_ok=True)
    pairs = []
    for c in computes:
        for e in epochs:
            for s in seeds:
                tag = "" if c == "fp32" else f"-{c}"  # fp32 parts keep their earlier names
                part = work / f"{catalog_name}-{key}-s{s}-e{e:g}{tag}.json"
                if part.is_file():
                    result = json.loads(part.read_text())
                else:
                    print(f"seed {s}, {e:g} epochs, {c}", flush=True)
                    result = (from_build(catalog) if (s, e, c) == own
                              else train_pair(catalog, s, e, compute=c))
                    result.update(seed=s, epochs=e, compute=c)
                    atomic_write_json(part, result)
                pairs.append(result)
    return {
        "catalog": catalog_name,
        "catalog_built_at": catalog.manifest.get("built_at"),
        "catalog_config": {"seed": own[0], "clip_epochs": own[1], "clip_compute": own[2]},
        "queries": "validation only (the fusion step's tuning); test queries are not used",
        "pairs": pairs,
        "summary": summarise(pairs),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: train every pair (resuming), then write the JSON report."""
    from e2e.probe_cli import run_probe

    def options(p) -> None:
        p.add_argument("--seeds", default="42,43,44", help="CLIP seeds (default 42,43,44)")
        p.add_argument("--epochs", default="10,6,8", help="epoch counts (default 10,6,8)")
        p.add_argument("--compute", default=None,
                       help="training number formats, of fp32 and bf16 (default: the one the "
                       "catalog's CLIP trained in)")

    return run_probe("e2e.clip_epochs_probe", __doc__, "clip_epochs.json", options, _measure,
                     argv)


def _measure(args) -> dict:
    """:func:`measure` with the command line's lists parsed."""
    from engine.compute import check_compute
    from engine.paths import data_dir

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    computes = tuple(check_compute(c.strip()) for c in (args.compute or "").split(",")
                     if c.strip()) or None
    counts = sorted({float(e) for e in args.epochs.split(",") if e.strip()})
    epochs = [counts[-1], *counts[:-1]]  # the reference (most epochs) first, then the fewest
    return measure(args.catalog, seeds, epochs, data_dir() / "probes" / "clip_epochs", computes)


if __name__ == "__main__":
    sys.exit(main())
