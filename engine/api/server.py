"""``python -m engine serve``: the API on uvicorn, one process, one worker.

One worker because the catalog's indexes and models are loaded once per process and shared by
every request (a second worker would load them all again); requests run in the worker's thread
pool, each query single-threaded (``engine.runtime.QUERY_THREADS``), as in the app. The served
catalog is opened and its default methods are loaded before the server accepts connections, so
``/health`` answering means the first query will not pay for loading.
"""

from __future__ import annotations

import logging
import sys

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, catalog: str = "demo", *,
          warm: bool = True, access_log: bool = True) -> int:
    """Run the API until interrupted; returns the exit status (0, or 2 when it cannot start)."""
    import uvicorn

    from engine.api import create_app
    from engine.paths import artifacts_dir

    if not 0 < port < 65536:
        raise ValueError(f"--port must be from 1 to 65535 (got {port})")
    artifacts_dir(catalog)  # refuses an invalid catalog name in one line
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    api_log = logging.getLogger("engine.api")
    api_log.addHandler(handler)
    api_log.setLevel(logging.INFO)
    api_log.propagate = False  # one line per message, whatever else configured logging
    app = create_app(catalog, warm=warm)
    _log(f"PixelMatch API for the '{catalog}' catalog on http://{host}:{port} "
         f"(docs: http://{host}:{port}/docs; Ctrl+C stops it)")
    config = uvicorn.Config(app, host=host, port=port, workers=1, access_log=access_log,
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 2  # uvicorn logged why (e.g. the port is already in use)
