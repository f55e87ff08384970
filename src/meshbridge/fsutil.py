"""Small file-system helpers shared by the PKI store, render output and the local twin's state."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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


WRITTEN_RECORD = ".meshbridge-written"
"""The file, in each folder meshbridge writes output into, that lists the files it wrote there (one name a line)."""


@dataclass(frozen=True)
class Pruned:
    """What :func:`prune_written` did: the files meshbridge had written that it removed, and the files it left
    alone because meshbridge did not write them (the user's own)."""

    removed: list[Path]
    left: list[Path]


def prune_written(
    folder: Path, pattern: str, written: list[Path], ours: Callable[[Path], bool] = lambda _: False
) -> Pruned:
    """Remove the files of ``folder`` matching ``pattern`` that an earlier run wrote and this one did not
    (``written``), then record ``written`` in :data:`WRITTEN_RECORD`.

    Only meshbridge's own files go: those the record lists, or for a folder written before the record existed,
    those ``ours`` recognises (their documents carry meshbridge's labels). A file the user put there with a
    matching name stays, and is returned in ``left``.
    """
    record = folder / WRITTEN_RECORD
    try:
        recorded = set(record.read_text().splitlines())
    except FileNotFoundError:
        recorded = set()
    removed: list[Path] = []
    left: list[Path] = []
    for path in sorted(set(folder.glob(pattern)) - set(written)):
        (removed if path.name in recorded or ours(path) else left).append(path)
    for path in removed:
        path.unlink()
    write_atomic(record, "".join(f"{p.name}\n" for p in written))
    return Pruned(removed, left)
