"""PixelMatch engine: catalog, encoders, indexes, retrievers, evaluation and the build CLI.

This package never imports streamlit; the app in ``app.py``/``pages/`` is a thin client of it.
"""

from engine import runtime as _runtime  # noqa: F401  (sets offline/thread env before other imports)

__version__ = "0.1.0"
