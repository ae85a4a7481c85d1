"""One-line messages for operating-system errors (a full disk, a read-only data folder, ...).

The CLI prints them instead of a traceback; a build that fails this way has published nothing
(see :mod:`engine.artifacts`), and the message says so.
"""

from __future__ import annotations

import errno
import os
import re

_HINTS = {
    errno.ENOSPC: "free some disk space (or set PIXELMATCH_DATA to a bigger disk) and re-run",
    errno.EDQUOT: "free some of your disk quota and re-run",
    errno.EROFS: "the data folder is read-only: set PIXELMATCH_DATA to a writable folder",
    errno.EACCES: "check the folder's permissions, or set PIXELMATCH_DATA to a writable folder",
    errno.EPERM: "check the folder's permissions, or set PIXELMATCH_DATA to a writable folder",
}


def os_error_message(exc: OSError, *, building: bool = False) -> str:
    """``exc`` as one line: what failed, on which file, what to do, and what was kept."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = getattr(exc, "filename", None)
    text = f"{what} ({where})" if where else what
    hint = _HINTS.get(exc.errno or 0)
    if hint:
        text += f"; {hint}"
    if building:
        text += ". Nothing was half-written: the previous artifacts are still in place."
    return text


_RECOGNISED = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def as_os_error(exc: BaseException, where: str | None = None) -> OSError | None:
    """``exc`` as an OSError when it is one, or when a library reported a disk error in its own
    exception type (FAISS raises RuntimeError "... (No space left on device)"), or a short write
    without an error code (numpy's "N requested and M written": the disk filled up); else None."""
    if not isinstance(exc, Exception):
        return None
    text = str(exc)
    if isinstance(exc, OSError) and not (exc.errno is None and _SHORT_WRITE.search(text)):
        return exc
    for code in _RECOGNISED:
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code), where)
    if _SHORT_WRITE.search(text):  # numpy's short write: the disk filled up under it
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), where)
    return None
