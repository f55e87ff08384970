"""Small file-system helpers shared by the PKI store, render output and the local twin's state."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically with permission bits ``mode``.

    The bytes go to a temporary file in the same folder, created with ``mode`` from the start (a private
    key is never readable by others, not even briefly), are fsynced, then renamed over ``path``; a reader
    sees the old file or the new one, never a mix. Parent folders are created (0700 when new).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
