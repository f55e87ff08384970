"""Child processes that never outlive their parent, and stopping them by identity, not by pid alone.

* Every child starts in its own session (Ctrl-C in the terminal does not reach it) and, on Linux, with
  ``PR_SET_PDEATHSIG`` = SIGTERM: if the supervisor dies, even by SIGKILL, its children are told to stop.
* A recorded process is identified by (pid, start time from ``/proc/<pid>/stat``), so ``local down`` never
  signals an unrelated process that reused a pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] = open(log, "ab")  # noqa: SIM115 - the child keeps the descriptor
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    finally:
        out.close()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


@dataclass(frozen=True)
class ProcessId:
    """A process identified by pid and start time."""

    pid: int
    started: int | None

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        """Identify the running process ``pid``."""
        return cls(pid, start_time(pid))

    def alive(self) -> bool:
        """True when this very process still runs (not a zombie, not a reused pid)."""
        now = start_time(self.pid)
        if now is None or (self.started is not None and now != self.started):
            return False
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            return state != "Z"
        return False

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the process's group (its session), if it is still this process."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)


def stop(ids: Sequence[ProcessId], grace: float = 5.0) -> list[ProcessId]:
    """SIGTERM each process group, wait up to ``grace`` seconds, SIGKILL what is left.

    Returns:
        The processes that had to be killed.
    """
    for p in ids:
        p.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.alive() for p in ids):
        time.sleep(0.05)
    killed = [p for p in ids if p.alive()]
    for p in killed:
        p.signal_group(signal.SIGKILL)
    return killed
