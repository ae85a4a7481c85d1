"""PixelMatch engine: catalog, encoders, indexes, retrievers, evaluation and the build CLI.

This package never imports streamlit; the app in ``app.py``/``pages/`` is a thin client of it.
"""

from engine import runtime as _runtime  # noqa: F401  (sets offline/thread env before other imports)

__version__ = "0.1.0"

# torch.from_numpy on a read-only array (np.load's vectors, pandas' columns) warns although the
# tensor is only read (compact CLIP's text side); one line on stderr per process, every CLI run.
# The source line is left as is: editing encoders/compact_clip.py would change the clip step's
# hash and retrain every built catalog's CLIP.
import warnings as _warnings  # noqa: E402

_warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
