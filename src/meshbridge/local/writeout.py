"""``local curl -w FORMAT``: curl's ``--write-out``, from what :mod:`meshbridge.local.curl` measured (pure).

The format is curl's: ``%{variable}`` and ``%header{name}`` are replaced, ``%%`` is a ``%``, and ``\\n``,
``\\r``, ``\\t`` and ``\\\\`` are the characters they name; ``%{stderr}`` and ``%{stdout}`` switch where the
rest goes, ``%{onerror}`` prints the rest only when the transfer failed. An unknown variable prints nothing
and a warning, as curl 8 does. Times are seconds with six decimals, as curl prints them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshbridge.local.curl import CurlResult, redirect_url

_TOKEN = re.compile(r"%%|%\{([A-Za-z_]+)\}|%header\{([^}]*)\}|\\[nrt\\]")
_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\\\": "\\"}


@dataclass(frozen=True)
class Transfer:
    """What one ``local curl`` did: its responses (redirects first, the last one last; none when it failed
    before an answer), the URL it was given, and its exit code and error message (``0``, ``""`` on success)."""

    results: Sequence[CurlResult]
    url: str
    exitcode: int = 0
    errormsg: str = ""


def _seconds(value: float) -> str:
    return f"{value:.6f}"


def _variables(t: Transfer) -> dict[str, Callable[[], str]]:
    last = t.results[-1] if t.results else None
    redirects = list(t.results[:-1])

    def of(pick: Callable[[CurlResult], object], missing: str = "") -> Callable[[], str]:
        return lambda: str(pick(last)) if last is not None else missing

    return {
        "http_code": lambda: f"{last.status:03d}" if last else "000",
        "response_code": lambda: f"{last.status:03d}" if last else "000",
        "http_version": of(lambda r: r.http_version.removeprefix("HTTP/"), "0"),
        "method": of(lambda r: r.method),
        "content_type": of(lambda r: r.header("content-type") or ""),
        "url": lambda: t.url,
        "url_effective": of(lambda r: r.url, t.url),
        "redirect_url": of(redirect_url),
        "num_redirects": lambda: str(len(redirects)),
        "scheme": lambda: "http",
        "remote_ip": of(lambda r: r.remote[0] if r.remote else ""),
        "remote_port": of(lambda r: r.remote[1] if r.remote else ""),
        "size_download": lambda: str(sum(len(r.body) for r in t.results)),
        "size_header": lambda: str(sum(r.size_header for r in t.results)),
        "size_upload": lambda: str(sum(r.size_upload for r in t.results)),
        "time_namelookup": of(lambda r: _seconds(sum(x.time_total for x in redirects) + r.time_namelookup), "0.000000"),
        "time_starttransfer": of(
            lambda r: _seconds(sum(x.time_total for x in redirects) + r.time_starttransfer), "0.000000"
        ),
        "time_redirect": lambda: _seconds(sum(x.time_total for x in redirects)),
        "time_total": lambda: _seconds(sum(x.time_total for x in t.results)),
        "exitcode": lambda: str(t.exitcode),
        "errormsg": lambda: t.errormsg,
    }


# %{json}'s types are curl's (tool_writeout.c): its "long" and "offset" variables are JSON numbers, its times are
# numbers of seconds, and a string curl has no value for (no Content-Type, no redirect, no error) is null.
_NUMBERS = frozenset(
    {"http_code", "response_code", "num_redirects", "remote_port", "size_download", "size_header", "size_upload"}
    | {"exitcode"}
)
_NULL_WHEN_EMPTY = frozenset({"content_type", "redirect_url", "errormsg"})


def _json_value(name: str, text: str) -> str | int | float | None:
    """One ``%{json}`` member: ``text`` (what ``%{name}`` prints) as the JSON type curl gives ``name``."""
    if name in _NUMBERS:
        return int(text) if text else None
    if name.startswith("time_"):
        return float(text)
    return None if name in _NULL_WHEN_EMPTY and not text else text


VARIABLES = tuple(sorted([*_variables(Transfer((), "")), "json", "stdout", "stderr", "onerror"]))
"""Every ``%{variable}`` known (``%header{name}`` too)."""


def write_out(fmt: str, transfer: Transfer) -> tuple[list[tuple[str, str]], list[str]]:
    """Expand ``fmt`` for ``transfer``.

    Returns:
        The text in pieces with where each goes (``("stdout", text)`` or ``("stderr", text)``), and one
        warning per unknown variable (``unknown --write-out variable: 'name'``).
    """
    variables = _variables(transfer)
    pieces: list[tuple[str, str]] = []
    warnings: list[str] = []
    stream = "stdout"
    at = 0
    for m in _TOKEN.finditer(fmt):
        pieces.append((stream, fmt[at : m.start()]))
        at = m.end()
        token, name, header = m.group(0), m.group(1), m.group(2)
        if token == "%%":
            pieces.append((stream, "%"))
        elif token in _ESCAPES:
            pieces.append((stream, _ESCAPES[token]))
        elif header is not None:
            last = transfer.results[-1] if transfer.results else None
            pieces.append((stream, (last.header(header) or "") if last else ""))
        elif name in ("stdout", "stderr"):
            stream = name
        elif name == "onerror":
            if not transfer.exitcode:
                return _joined(pieces), warnings
        elif name == "json":
            document = {k: _json_value(k, v()) for k, v in variables.items()}
            pieces.append((stream, json.dumps(document, separators=(",", ":"))))
        elif name in variables:
            pieces.append((stream, variables[name]()))
        else:
            warnings.append(f"unknown --write-out variable: '{name}'")
    pieces.append((stream, fmt[at:]))
    return _joined(pieces), warnings


def _joined(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for stream, text in pieces:
        if not text:
            continue
        if out and out[-1][0] == stream:
            out[-1] = (stream, out[-1][1] + text)
        else:
            out.append((stream, text))
    return out
