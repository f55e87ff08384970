"""Command hints that run as printed: each quoted ``'meshbridge …'`` hint in what a command says (on stdout or
stderr) carries the ``-f FILE`` the user gave (pure, but for the invocation :func:`invoked` records)."""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
from collections.abc import Iterator, Sequence

_HINT = re.compile(r"'(meshbridge [^'|]*)'")
_invocation: list[list[str]] = []


@contextlib.contextmanager
def invoked(argv: Sequence[str] | None) -> Iterator[None]:
    """Within it, :func:`with_file` without ``argv`` reads ``argv`` (``None``: the process's own arguments), the
    command line of the CLI run in progress (tests run several in one process)."""
    _invocation.append(list(sys.argv[1:] if argv is None else argv))
    try:
        yield
    finally:
        _invocation.pop()


def with_file(message: str, argv: Sequence[str] | None = None) -> str:
    """``message`` with each quoted command hint (``'meshbridge certs issue'``) carrying the ``-f FILE`` the user
    gave, so it runs as printed from where the user stands; hints that name a file already, pipe, or are a
    ``peer`` command (which the other owner may run, in their folder) stay as they are, as does every hint when
    no ``-f`` was given. ``argv``: the command line (default: the one :func:`invoked` records, else the
    process's)."""
    args = list(argv) if argv is not None else (_invocation[-1] if _invocation else sys.argv[1:])
    given = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-f", "--file")), None)
    if given is None:
        return message

    def add(m: re.Match[str]) -> str:
        hint = m.group(1)
        if re.search(r"(^| )(-f|--file|--state-dir)( |$)", hint) or hint.startswith("meshbridge peer "):
            return m.group(0)  # a peer command may be the other owner's, in their own folder
        path = given if shlex.quote(given) == given else f'"{given}"'  # the hint is single-quoted already
        return f"'{hint} -f {path}'"

    return _HINT.sub(add, message)


def is_json_document(text: str) -> bool:
    """Whether ``text`` is a ``--json`` document (its hints stay as the product wrote them: a script reads them,
    and a quoted path would break the JSON string)."""
    return text.lstrip()[:1] in ("{", "[")
