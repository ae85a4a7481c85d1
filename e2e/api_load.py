"""Load figure of the HTTP API: requests/s and latency at 1, 8 and 32 concurrent clients.

``python -m e2e.api_load [--catalog demo] [--clients 1 8 32] [--duration 20]`` starts its own
``python -m engine serve`` on a free loopback port against one built catalog (the data folder of
``--data`` or ``PIXELMATCH_DATA``), waits for ``/health``, and then, for each client count in
turn, runs that many threads for ``--duration`` seconds, each with its own httpx client sending
requests back to back: text searches (the catalog's test queries, ``POST /search/text``) and, with
probability ``--image-share``, image searches (the catalog's test query images, uploaded to
``POST /search/image``). One unmeasured warm-up request of each kind comes first.

Writes ``reports/api_load.json`` (or ``--out``) atomically: per client count, requests/s, p50 /
p95 / p99 latency (overall and per kind), the error count and the status codes, with the machine's
load average before and after, the commit and the time. Exit status 1 when any request failed.
The clients run on the same machine as the server and compete with it for the CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from e2e.server import REPO, free_port
from engine.evaluation.metrics import latency_percentiles

KINDS = ("text", "image")
MAX_LISTED = 10  # error samples kept per client count


class ApiServer:
    """``python -m engine serve`` on a free loopback port; only this process is ever stopped."""

    def __init__(self, catalog: str, data_dir: Path | None = None, log_path: Path | None = None):
        self.catalog = catalog
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> str:
        """Start the server and wait until ``/health`` answers 200; returns the base URL."""
        self.port = free_port()
        env = dict(os.environ)
        if self.data_dir is not None:
            env["PIXELMATCH_DATA"] = str(self.data_dir)
        cmd = [sys.executable, "-m", "engine", "serve", "--catalog", self.catalog,
               "--port", str(self.port), "--quiet"]
        out = self.log_path.open("w") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out,
                                         stderr=subprocess.STDOUT)
        finally:
            if self.log_path:
                out.close()  # the child holds its own descriptor
        self._wait_healthy(timeout)
        return self.url

    def _wait_healthy(self, timeout: float) -> None:
        import httpx

        assert self.proc is not None
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.proc.returncode}: "
                                   + self.log_text()[-2000:])
            try:
                resp = httpx.get(f"{self.url}/health", timeout=5)
                if resp.status_code == 200:
                    return
                last = resp.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"{self.url}/health did not answer 200 within {timeout:.0f} s: {last}")

    def stop(self) -> None:
        """Stop the server this object started (SIGTERM, then SIGKILL after 20 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Sample:
    """One request: its kind, latency, HTTP status (0 when it never got one) and error text."""

    kind: str
    ms: float
    status: int
    error: str = ""


def percentiles(values: list[float]) -> dict[str, float | int]:
    """n, p50, p95, p99, mean and max of a list of milliseconds (``latency_percentiles``, to
    0.1 ms); ``{"n": 0}`` when there are none."""
    if not values:
        return {"n": 0}
    out = {k: v if k == "n" else round(v, 1) for k, v in latency_percentiles(values).items()}
    return {**out, "max": round(float(max(values)), 1)}


def summarise(samples: list[Sample], clients: int, elapsed: float) -> dict[str, Any]:
    """One client count's figures: throughput, latency (overall and per kind), errors."""
    failed = [s for s in samples if s.status != 200]
    ok = [s.ms for s in samples if s.status == 200]
    return {
        "clients": clients,
        "elapsed_s": round(elapsed, 2),
        "requests": len(samples),
        "requests_per_s": round(len(ok) / elapsed, 2) if elapsed > 0 else 0.0,
        "latency_ms": percentiles(ok),
        "by_kind": {k: percentiles([s.ms for s in samples if s.kind == k and s.status == 200])
                    for k in KINDS},
        "mix": dict(Counter(s.kind for s in samples)),
        "errors": len(failed),
        "status_codes": {str(k): v for k, v in sorted(Counter(s.status for s in samples).items())},
        "error_samples": [f"{s.kind}: {s.status} {s.error}"[:300] for s in failed[:MAX_LISTED]],
    }


@dataclass
class Workload:
    """What the clients send: text queries, image files, the methods and the image share."""

    queries: list[str]
    images: list[bytes]
    text_method: str
    image_method: str
    image_share: float

    def request(self, client, rng: random.Random) -> Sample:
        kind = "image" if self.images and rng.random() < self.image_share else "text"
        t0 = time.perf_counter()
        try:
            if kind == "text":
                resp = client.post("/search/text", json={
                    "query": rng.choice(self.queries), "method": self.text_method, "top_k": 10})
            else:
                resp = client.post("/search/image", files={"image": ("q.jpg", rng.choice(
                    self.images), "image/jpeg")}, data={"method": self.image_method})
            status, error = resp.status_code, "" if resp.status_code == 200 else resp.text
        except Exception as exc:  # a refused or dropped connection counts as an error
            status, error = 0, f"{type(exc).__name__}: {exc}"
        return Sample(kind, (time.perf_counter() - t0) * 1000.0, status, error)


def drive(base: str, workload: Workload, clients: int, duration: float,
          seed: int = 0) -> dict[str, Any]:
    """``clients`` threads sending requests back to back for ``duration`` seconds."""
    import httpx

    samples: list[Sample] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client_loop(i: int) -> None:
        rng, mine = random.Random(seed * 1000 + i), []
        with httpx.Client(base_url=base, timeout=300) as client:
            start.wait()
            while time.monotonic() < deadline[0]:
                mine.append(workload.request(client, rng))
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True)
               for i in range(clients)]
    for t in threads:
        t.start()
    load_before = os.getloadavg()
    deadline[0] = time.monotonic() + duration
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    level = summarise(samples, clients, time.monotonic() - t0)
    level["load_average_before"] = [round(x, 2) for x in load_before]
    level["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return level


def workload_for(catalog_name: str, text_method: str | None, image_method: str | None,
                 image_share: float) -> tuple[Workload, dict[str, Any]]:
    """The catalog's test queries and test query images (read here, in the client process)."""
    from engine.api.service import default_method
    from engine.serving.catalogs import open_catalog

    catalog = open_catalog(catalog_name)
    q = catalog.table("queries")
    queries = q.loc[q["split"] == "test", "query"].tolist() or q["query"].tolist()
    iq = catalog.table("image_queries")
    paths = iq.loc[iq["split"] == "test", "image_path"].tolist() or iq["image_path"].tolist()
    images = [(catalog.world_dir / p).read_bytes() for p in paths]
    text_method = text_method or default_method(catalog, "text")
    image_method = image_method or default_method(catalog, "image")
    info = {"name": catalog.name, "items": len(catalog.items),
            "built_at": catalog.manifest.get("built_at"), "test_queries": len(queries),
            "test_query_images": len(images)}
    return Workload(queries, images, text_method, image_method, image_share), info


def git_commit() -> str:
    from e2e.load_test import git_commit as commit

    return commit()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, warm it up, drive each client count, and return the report."""
    import httpx

    if args.data:
        os.environ["PIXELMATCH_DATA"] = str(Path(args.data).resolve())
    workload, catalog_info = workload_for(args.catalog, args.text_method, args.image_method,
                                          args.image_share)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    levels = []
    with ApiServer(args.catalog, log_path=args.log) as server:
        with httpx.Client(base_url=server.url, timeout=300) as client:  # warm-up, not measured
            warm = [workload.request(client, random.Random(k)) for k in (1, 7, 8, 9)]
        for clients in args.clients:
            print(f"{clients} client(s) for {args.duration:g} s ...", file=sys.stderr)
            levels.append(drive(server.url, workload, clients, args.duration))
            lat = levels[-1]["latency_ms"]
            print(f"  {levels[-1]['requests_per_s']} req/s, p50 {lat.get('p50')} ms, "
                  f"p95 {lat.get('p95')} ms, {levels[-1]['errors']} error(s)", file=sys.stderr)
    return {
        "measured_at": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": git_commit(),
        "command": "python -m e2e.api_load " + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "cores": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "note": "server (1 uvicorn worker, single-threaded queries) and client threads on "
                    "one machine, loopback only",
        },
        "catalog": catalog_info,
        "duration_s": args.duration,
        "mix": {"text_method": workload.text_method, "image_method": workload.image_method,
                "image_share": workload.image_share, "top_k": 10},
        "warmup_errors": sum(s.status != 200 for s in warm),
        "levels": levels,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: run the load figure, write the report, exit 1 when a request failed."""
    from engine.artifacts import atomic_write_json
    from engine.paths import reports_dir

    ap = argparse.ArgumentParser(prog="python -m e2e.api_load",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--catalog", default="demo", help="built catalog to serve (default demo)")
    ap.add_argument("--data", help="data folder holding it (default PIXELMATCH_DATA or data/)")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32],
                    help="concurrent clients, one run each (default 1 8 32)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per run (default 20)")
    ap.add_argument("--image-share", type=float, default=0.3,
                    help="share of image searches (default 0.3)")
    ap.add_argument("--text-method", help="default: the API's default text method")
    ap.add_argument("--image-method", help="default: the API's default image method")
    ap.add_argument("--out", type=Path, help="report path (default reports/api_load.json)")
    ap.add_argument("--log", type=Path, help="write the server's log here")
    args = ap.parse_args(argv)
    if not all(1 <= c <= 256 for c in args.clients) or not 1 <= args.duration <= 600:
        ap.error("--clients must be 1..256 and --duration 1..600 seconds")
    if not 0.0 <= args.image_share <= 1.0:
        ap.error("--image-share must be from 0 to 1")
    report = run(args)
    out = args.out or reports_dir() / "api_load.json"
    atomic_write_json(out, report)
    print(f"wrote {out}")
    failed = sum(level["errors"] for level in report["levels"]) + report["warmup_errors"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
