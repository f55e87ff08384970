"""Private keys must not outlive the test run in the system's temporary directory.

The run gets a temporary folder of its own (``meshbridge-tests-*``): ``tempfile`` and every process the tests
start (``TMPDIR``) put their files there, so what is found in it at the end is this run's, whatever else runs
on the machine. pytest's own ``tmp_path`` folders stay where pytest keeps them (its retention policy, set to
``failed`` in ``pyproject.toml``, removes them after a run that passed). ``tests/conftest.py`` fails the run
when :func:`leftover_keys` finds a key in the run's folder, then removes the folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

KEY_MARK = b"PRIVATE KEY-----"
"""What a PEM private key holds (``-----BEGIN PRIVATE KEY-----``, ``EC PRIVATE KEY``, ``RSA PRIVATE KEY``)."""


def leftover_keys(root: Path, ignore: Iterable[Path] = ()) -> list[Path]:
    """The files under ``root`` that are private keys: named ``*.key`` (the PKI store's), or holding a PEM key.

    Args:
        root: the folder to search (symbolic links are not followed).
        ignore: folders left out, with what they hold.

    Returns:
        Their paths, sorted; ``[]`` when ``root`` does not exist.
    """
    skipped = {Path(p).resolve() for p in ignore}
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if (here / d).resolve() not in skipped]
        found += [here / f for f in files if f.endswith(".key") or _holds_key(here / f)]
    return sorted(found)


def _holds_key(path: Path) -> bool:
    try:
        if not stat.S_ISREG(path.lstat().st_mode):  # a socket or a FIFO is not read
            return False
        with path.open("rb") as f:
            return KEY_MARK in f.read(1 << 16)
    except OSError:
        return False


class RunTemp:
    """The run's own temporary folder, made the default of ``tempfile`` and of child processes (``TMPDIR``)."""

    def __init__(self) -> None:
        system = Path(tempfile.gettempdir())
        self.system = system
        self._saved = {name: os.environ.get(name) for name in ("TMPDIR", "PYTEST_DEBUG_TEMPROOT")}
        self._tempdir = tempfile.tempdir
        os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", str(system))  # pytest's tmp_path stays where it was
        self.root = Path(tempfile.mkdtemp(prefix="meshbridge-tests-", dir=system))
        tempfile.tempdir = str(self.root)
        os.environ["TMPDIR"] = str(self.root)

    def close(self) -> None:
        """Remove the folder with all it holds, and give ``tempfile`` and ``TMPDIR`` back their defaults."""
        tempfile.tempdir = self._tempdir
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.root, ignore_errors=True)
