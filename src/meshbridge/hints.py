"""Command hints that run as printed: each quoted ``'meshbridge …'`` hint in what a command says (on stdout or
stderr) carries the options the user gave that say *which* bridge and clusters (``-f FILE``, ``--state-dir``,
``--kubeconfig``, ``--context``, ``--clusters``), where the hinted command takes them (pure, but for the
invocation :func:`invoked` records)."""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

Accepts = Callable[[Sequence[str], str], bool]
"""``accepts(command words, option)``: whether ``meshbridge <words>`` takes ``option`` (the CLI answers it from
its own commands)."""

_HINT = re.compile(r"'(meshbridge [^'|]*)'")
_PLACEHOLDER = "--context MESH=CONTEXT ..."
_VALUED = ("--file", "--state-dir", "--kubeconfig", "--context")


@dataclass(frozen=True)
class _Invocation:
    args: list[str]
    accepts: Accepts | None


_invocation: list[_Invocation] = []


@contextlib.contextmanager
def invoked(argv: Sequence[str] | None, accepts: Accepts | None = None) -> Iterator[None]:
    """Within it, :func:`with_options` without ``argv`` reads ``argv`` (``None``: the process's own arguments), the
    command line of the CLI run in progress (tests run several in one process), and asks ``accepts`` which options
    a hinted command takes (without it, only ``-f`` is carried, to every hint)."""
    _invocation.append(_Invocation(list(sys.argv[1:] if argv is None else argv), accepts))
    try:
        yield
    finally:
        _invocation.pop()


def _given(args: Sequence[str]) -> dict[str, list[str]]:
    """The carried options in ``args``, by long name (``-f`` is ``--file``, but in 'local curl', where it is curl's
    ``--fail`` and the file is ``--bridge``/``-F``; ``--clusters`` has the value ``""``)."""
    found: dict[str, list[str]] = {}
    files = ("--bridge", "-F") if list(args[:2]) == ["local", "curl"] else ("-f",)
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        name = "--file" if name in files else name
        if name == "--clusters" and not eq:
            found.setdefault(name, []).append("")
        elif name in _VALUED and eq:
            found.setdefault(name, []).append(value)
        elif name in _VALUED and i + 1 < len(args):
            found.setdefault(name, []).append(args[i + 1])
    return found


def _quoted(value: str) -> str:
    return value if shlex.quote(value) == value else f'"{value}"'  # the hint is single-quoted already


def _names(hint: str, option: str) -> bool:
    short = "|-f|--bridge|-F" if option == "--file" else ""
    # any white space: a table may have wrapped the hint before the CLI prints it (and carries the options again)
    return re.search(rf"(^|\s)({option}{short})(\s|=|$)", hint) is not None


def _carried(hint: str, given: dict[str, list[str]], accepts: Accepts | None) -> str:
    """``hint`` with what of ``given`` it takes and lacks."""
    words: list[str] = []
    for word in hint.split()[1:3]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    takes = accepts or (lambda _words, option: option == "--file")
    if "--file" in given and not _names(hint, "--file") and not _names(hint, "--state-dir") and takes(words, "--file"):
        short = "--bridge" if takes(words, "--bridge") else "-f"  # 'local curl': its -f is curl's --fail
        hint += f" {short} {_quoted(given['--file'][-1])}"
    if "--state-dir" in given and not _names(hint, "--state-dir") and takes(words, "--state-dir"):
        hint += f" --state-dir {_quoted(given['--state-dir'][-1])}"
    contexts = " ".join(f"--context {_quoted(c)}" for c in given.get("--context", []))
    if contexts and _PLACEHOLDER in hint:
        hint = hint.replace(_PLACEHOLDER, contexts)
    elif contexts and not _names(hint, "--context") and words[:1] != ["lint"] and takes(words, "--context"):
        hint += f" {contexts}"  # not lint's: its --context reads the live mesh instead of the rendered one
    elif "--clusters" in given and not _names(hint, "--context") and takes(words, "--clusters"):
        hint += " --clusters"
    on_clusters = _names(hint, "--context") or _names(hint, "--clusters")
    if on_clusters and "--kubeconfig" in given and not _names(hint, "--kubeconfig") and takes(words, "--kubeconfig"):
        hint += f" --kubeconfig {_quoted(given['--kubeconfig'][-1])}"
    return hint


def with_options(message: str, argv: Sequence[str] | None = None) -> str:
    """``message`` with each quoted command hint (``'meshbridge apply --no-wait'``) carrying the bridge and
    cluster options the user gave, so it runs as printed from where the user stands: ``-f`` (unless the hint
    names a file or a state folder), ``--state-dir``, ``--kubeconfig``, the ``--context`` values (in place of a
    ``--context MESH=CONTEXT ...`` placeholder) or ``--clusters``; each only where the hinted command takes it.
    Hints that pipe, or are a ``peer`` command (which the other owner may run, in their folder), stay as they
    are. ``argv``: the command line (default: the one :func:`invoked` records, else the process's)."""
    current = _invocation[-1] if _invocation else None
    args = list(argv) if argv is not None else (current.args if current else sys.argv[1:])
    given = _given(args)
    if not given:
        return message
    accepts = current.accepts if current is not None else None

    def add(m: re.Match[str]) -> str:
        hint = m.group(1)
        if hint.startswith("meshbridge peer "):
            return m.group(0)  # a peer command may be the other owner's, in their own folder
        return f"'{_carried(hint, given, accepts)}'"

    return _HINT.sub(add, message)


def is_json_document(text: str) -> bool:
    """Whether ``text`` is a ``--json`` document (its hints stay as the product wrote them: a script reads them,
    and a quoted path would break the JSON string)."""
    return text.lstrip()[:1] in ("{", "[")
