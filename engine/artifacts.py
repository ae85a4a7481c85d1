"""Artifact store: versioned step folders, atomic writes and a manifest that says what is current.

Layout of one catalog's artifacts (``data/artifacts/<name>/``)::

    manifest.json                 # written last, atomically: the only pointer to current outputs
    steps/<step>-<hash>/          # one folder per step and config hash, renamed into place whole
    steps/<step>-<hash>/step.json # the step's record (timings, counts, file sizes)
    .build.lock                   # held by a running build

A step writes into a temporary folder which is renamed to ``steps/<step>-<hash>`` only when the
step has finished, so a step folder either exists complete or not at all. ``manifest.json`` is
replaced (temp file + rename) only when every step has finished, so an interrupted build leaves the
previous artifacts usable. A successful build removes the folders that neither its manifest nor
the one it replaced points to.
A first build (no manifest, or the partial one an interrupted first build left) also publishes a
manifest marked ``partial`` after each finished step, naming only the finished steps: the app
serves what they make possible while the rest builds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STEP_RECORD = "step.json"


class ArtifactError(RuntimeError):
    """Artifacts are missing, partial, corrupt, stale or from another version."""

    def __init__(self, message: str, *, fix: str | None = None):
        super().__init__(message if fix is None else f"{message} Fix: {fix}")
        self.reason = message
        self.fix = fix


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as pretty, key-sorted JSON."""
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
    )


def _folder_files(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != STEP_RECORD
    }


@dataclass
class StepRecord:
    """What one finished step produced."""

    name: str
    hash: str
    dir: str
    seconds: float
    finished_at: str
    info: dict[str, Any] = field(default_factory=dict)
    n_files: int = 0
    bytes: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepRecord:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class ArtifactStore:
    """The artifacts of one catalog, under ``root`` (``data/artifacts/<name>``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.steps_dir = self.root / "steps"

    # -- reading ---------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def default_fix(self, manifest: Any = None) -> str:
        """The one command that rebuilds this catalog (from the manifest when it says)."""
        from engine.config import list_presets

        if isinstance(manifest, dict) and isinstance(manifest.get("rebuild_command"), str):
            return manifest["rebuild_command"]
        name = self.root.name
        preset = manifest.get("preset") if isinstance(manifest, dict) else None
        if preset is None and name in list_presets():
            return f"python -m engine build --preset {name}"
        return f"python -m engine build --preset {preset or 'PRESET'} --name {name}"

    def read_manifest(self) -> dict[str, Any]:
        """The current manifest; :class:`ArtifactError` when missing, unreadable or foreign."""
        name = self.root.name
        fix = self.default_fix()
        if not self.manifest_path.is_file():
            raise ArtifactError(f"No built artifacts for '{name}' ({self.root}).", fix=fix)
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(
                f"The manifest of '{name}' is unreadable ({exc}).", fix=fix
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
            fix = self.default_fix(manifest)
            found = manifest.get("format_version") if isinstance(manifest, dict) else None
            raise ArtifactError(
                f"The artifacts of '{name}' have format version {found}, this code reads "
                f"{FORMAT_VERSION}.",
                fix=fix,
            )
        return manifest

    def step_dir(self, step: str, manifest: dict[str, Any] | None = None) -> Path:
        """The folder of a finished step, verified complete against its recorded file sizes."""
        manifest = manifest or self.read_manifest()
        fix = self.default_fix(manifest)
        rec = manifest.get("steps", {}).get(step)
        if rec is None:
            raise ArtifactError(
                f"Step '{step}' is not in the manifest of '{self.root.name}'.", fix=fix
            )
        folder = self.root / rec["dir"]
        record_path = folder / STEP_RECORD
        if not record_path.is_file():
            raise ArtifactError(f"Step folder {folder} is missing or partial.", fix=fix)
        expected = json.loads(record_path.read_text()).get("files", {})
        for rel, size in expected.items():
            path = folder / rel
            if not path.is_file() or path.stat().st_size != size:
                raise ArtifactError(f"Artifact {path} is missing or has the wrong size.", fix=fix)
        return folder

    def finished_step(self, step: str, step_hash: str) -> StepRecord | None:
        """The record of an already finished step with this hash (a re-run skips it), else None."""
        folder = self.steps_dir / f"{step}-{step_hash}"
        try:
            record = json.loads((folder / STEP_RECORD).read_text())
            for rel, size in record.get("files", {}).items():
                if (folder / rel).stat().st_size != size:
                    return None  # truncated or replaced: rebuild it
            return StepRecord.from_dict(record)
        except (OSError, ValueError, TypeError):
            return None

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the build lock; a second concurrent build fails fast with a clear message."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".build.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise ArtifactError(f"Another build of '{self.root.name}' is running.") from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def write_step(self, step: str, step_hash: str, info: dict[str, Any]) -> Iterator[Path]:
        """Yield a temporary folder for the step's outputs; publish it whole when the block ends.

        The caller may add entries to ``info`` inside the block (counts, timings); they are saved
        in the step's record. On any exception the temporary folder is removed.
        """
        self.steps_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.steps_dir, prefix=f".tmp-{step}-"))
        start = time.perf_counter()
        try:
            yield tmp
            files = _folder_files(tmp)
            record = StepRecord(
                name=step,
                hash=step_hash,
                dir=f"steps/{step}-{step_hash}",
                seconds=round(time.perf_counter() - start, 3),
                finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                info=info,
                n_files=len(files),
                bytes=sum(files.values()),
            )
            (tmp / STEP_RECORD).write_text(
                json.dumps({**record.__dict__, "files": files}, indent=2, default=str)
            )
            final = self.root / record.dir
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            from engine.errors import as_os_error

            disk = as_os_error(exc, str(self.steps_dir))
            if disk is not None and disk is not exc:  # a library's own type for a full disk
                raise disk from exc
            raise

    def publish_partial(self, manifest: dict[str, Any]) -> None:
        """Atomically make a first build's ``manifest`` of the steps finished so far current
        (``"partial": true``), so the app can serve them while the others build; nothing is
        removed (the running steps' folders are still temporary)."""
        atomic_write_json(self.manifest_path,
                          {**manifest, "partial": True, "format_version": FORMAT_VERSION})

    def commit(self, manifest: dict[str, Any]) -> None:
        """Atomically make ``manifest`` current, then remove the folders neither it nor the
        manifest it replaces points to (an app still serving the replaced version may load
        from its folders until it notices the new one; they go with the next build)."""
        manifest = {**manifest, "format_version": FORMAT_VERSION}
        try:
            replaced = self.read_manifest().get("steps", {})
        except ArtifactError:
            replaced = {}
        atomic_write_json(self.manifest_path, manifest)
        keep = {Path(rec["dir"]).name for rec in [*manifest.get("steps", {}).values(),
                                                  *replaced.values()]
                if isinstance(rec, dict) and "dir" in rec}
        for folder in self.steps_dir.iterdir() if self.steps_dir.exists() else []:
            if folder.is_dir() and folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
