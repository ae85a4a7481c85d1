"""The app's Streamlit server on a free loopback port, started and stopped by whoever owns it.

Only the process started here is ever stopped (``terminate`` on its own ``Popen``, then ``kill``
if it does not exit): never a search by name.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppServer:
    """``streamlit run app.py`` on 127.0.0.1 with its own data folder and log file.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None,
                 app_dir: Path = REPO):
        self.data_dir = Path(data_dir)
        self.app_dir = Path(app_dir)  # another checkout's app (a probe's baseline); default: this
        self.log_path = Path(log_path)
        self.extra_env = dict(env or {})
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The app's base URL (valid once started)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> str:
        """Start the server and wait until its health endpoint answers; returns the base URL."""
        self.port = free_port()
        env = {**os.environ, "PIXELMATCH_DATA": str(self.data_dir), **self.extra_env}
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py"]
        cmd += ["--server.address", "127.0.0.1", "--server.port", str(self.port)]
        cmd += ["--server.headless", "true", "--server.fileWatcherType", "none"]
        cmd += ["--browser.gatherUsageStats", "false"]
        self.proc = subprocess.Popen(cmd, cwd=self.app_dir, env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()  # the child holds its own descriptor
        self._wait_healthy(timeout)
        return self.url

    def _wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited early with status {self.proc.returncode}:\n"
                    + self.log_text()[-2000:]
                )
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"{self.url} did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        """Terminate the server this object started (kill it if it does not exit in 20 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def memory_mb(self) -> dict[str, float] | None:
        """The server process's resident memory now and at its peak (``VmRSS``/``VmHWM`` from
        ``/proc``, MB); None when it is not running or not on Linux."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            lines = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        except OSError:
            return None
        fields = {k: v for k, _, v in (line.partition(":") for line in lines)}
        try:
            return {name: round(int(fields[key].split()[0]) / 1024, 1)
                    for name, key in (("rss_mb", "VmRSS"), ("peak_rss_mb", "VmHWM"))}
        except (KeyError, ValueError, IndexError):
            return None

    def log_text(self) -> str:
        """Everything the server has printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
