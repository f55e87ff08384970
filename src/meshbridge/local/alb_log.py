"""The ALB's own log in the local twin, read back as ``meshbridge lambda serve`` shows it.

The twin runs each ALB as ``python -m meshbridge.alb.server``, whose stdout (one JSON object per line: a
``ready`` event, then an ``invocation`` per request, :meth:`meshbridge.alb.server.InvocationLog.to_dict`) and
stderr go to the component's log. :func:`readable` turns those lines into what ``lambda serve`` prints
(:meth:`~meshbridge.alb.server.InvocationLog.lines`: the request's line, then what the function printed, a
traceback's lines each on its own); :class:`AlbLogs` finds the entries a request made, so that ``local curl
-v`` can say why the ALB answered 502.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshbridge.alb.server import InvocationLog

POLL_S = 0.02
"""How often :meth:`AlbLogs.invocations` looks again (the ALB flushes its lines within 20 ms)."""


def entry_of(line: str) -> dict[str, Any] | None:
    """The JSON object of one log line, or ``None`` for a line that is not one (stderr, a partial line)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def readable(line: str, output: bool = True) -> list[str]:
    """One line of an ALB's log as a person reads it: an invocation as ``lambda serve`` prints it (with what
    the function printed, unless ``output`` is false), the ready event as the addresses it listens on, any
    other line as it is."""
    record = entry_of(line)
    if record is None:
        return [line]
    if record.get("event") == "ready":
        return [f"ready: listening on {', '.join(map(str, record.get('urls', [])))}"]
    entry = InvocationLog.from_dict(record) if record.get("event") == "invocation" else None
    return entry.lines(output) if entry is not None else [line]


@dataclass(frozen=True)
class AlbLogs:
    """Where each ALB's log ended when a request was sent: ``{component: (log, size)}``."""

    ends: dict[str, tuple[Path, int]]

    @classmethod
    def mark(cls, logs: dict[str, Path]) -> AlbLogs:
        """Record the end of each log (``{component: path}``; a log that does not exist yet ends at 0)."""
        return cls({name: (path, _size(path)) for name, path in logs.items()})

    def invocations(self, method: str, target: str, wait: float = 0.5) -> list[tuple[str, InvocationLog]]:
        """The entries written since :meth:`mark` for a request ``method target`` (path and query), with their
        component, waiting up to ``wait`` seconds for one to appear. When none matches (a route rewrote the
        path) but exactly one request reached an ALB meanwhile, that one. Empty when no request reached an ALB
        (a proxy answered itself)."""
        deadline = time.monotonic() + wait
        while True:
            found = self._since()
            matching = [(n, e) for n, e in found if e.method == method and e.target == target]
            if matching:
                return matching
            if time.monotonic() >= deadline:
                return found if len(found) == 1 else []
            time.sleep(POLL_S)

    def _since(self) -> list[tuple[str, InvocationLog]]:
        found = []
        for name, (path, start) in self.ends.items():
            try:
                with path.open("rb") as fh:
                    fh.seek(start)
                    text = fh.read().decode("utf-8", "replace")
            except OSError:
                continue
            for line in text.splitlines():
                record = entry_of(line)
                entry = InvocationLog.from_dict(record) if record and record.get("event") == "invocation" else None
                if entry is not None:
                    found.append((name, entry))
        return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
