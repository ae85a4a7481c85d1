"""What Streamlit's post-run ``gc.collect(2)`` costs in a process holding the app's models.

Run from the repository root on a built demo catalog (with ``PYTHONPATH=. HF_HUB_OFFLINE=1
OMP_NUM_THREADS=1``): ``.venv/bin/python reports/profiles/gc_after_run.py``.
It opens For you, image search and text search in Streamlit's AppTest (loading their models and
caches into this process, as the app server does), then times three full collections. Its output
is kept beside it in ``gc_after_run.txt``.
"""

import datetime as dt
import gc
import subprocess
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

at = AppTest.from_file("../../app.py", default_timeout=120)
at.run()
for page in ("pages/for_you.py", "pages/image_search.py", "pages/text_search.py"):
    at.switch_page(page).run()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC} at {commit.stdout.strip()}, "
      f"load average {Path('/proc/loadavg').read_text().split()[0]}")
print("objects tracked by the collector:", len(gc.get_objects()))
for _ in range(3):
    t = time.perf_counter()
    gc.collect(2)
    print(f"gc.collect(2): {(time.perf_counter() - t) * 1000:.1f} ms")
