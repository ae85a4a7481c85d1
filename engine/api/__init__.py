"""The HTTP API: the engine for other systems, beside the CLI (``python -m engine serve``).

FastAPI on uvicorn, in-process: the same catalog, caches, input checks and messages as the CLI.
Every error is JSON, ``{"error": {"code": ..., "message": ...}}``, with a 4xx status for bad input
(never a 500); uploads are parsed in memory and never written to disk. This package never imports
streamlit or ``pages/``.
"""

from engine.api.app import create_app

__all__ = ["create_app"]
