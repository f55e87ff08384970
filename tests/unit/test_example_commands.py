"""The command lines the examples' comments and the README show parse as the CLI reads them: a newcomer copies
them as they stand (``local curl`` takes the bridge file as ``--bridge``: its ``-f`` is curl's ``--fail``)."""

from __future__ import annotations

import re
import shlex

import pytest

from meshbridge.cli.main import _click_command, accepts
from meshbridge.hints import invoked, with_options
from tests.builders import ROOT


def _refusal(line: str) -> str | None:
    """Why the CLI refuses ``line`` (``meshbridge WORDS ...``, up to a pipe) before running it, or ``None``."""
    args = shlex.split(line.split(" | ")[0], comments=True)[1:]
    command = _click_command()
    while args and args[0] in getattr(command, "commands", {}):
        command = command.commands[args.pop(0)]
    if hasattr(command, "commands"):
        return "a group, not a command"
    try:
        ctx = command.make_context("meshbridge", args, resilient_parsing=False)
    except Exception as e:  # click's usage errors (typer's own copy of click), with their message
        return str(e.format_message()) if hasattr(e, "format_message") else repr(e)
    return f"unexpected extra arguments: {ctx.args}" if ctx.args else None  # 'local curl' refuses them itself


def _example_lines() -> list[tuple[str, str]]:
    """The ``meshbridge`` command lines of the examples' comments, a line ending in ``\\`` joined to the next."""
    found: list[tuple[str, str]] = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        going = False
        for n, text in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r"#\s+(meshbridge .*)", text)
            if going:
                found[-1] = (found[-1][0], found[-1][1].removesuffix("\\") + text.lstrip("# "))
            elif m:
                found.append((f"{path.relative_to(ROOT)}:{n}", m.group(1)))
            going = found[-1][1].endswith("\\") if found and (going or m) else False
    return found


def _readme_curl_lines() -> list[tuple[str, str]]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [
        (f"README.md:{n}", text)
        for n, text in enumerate(lines, 1)
        if text.startswith("meshbridge local curl ") and not text.endswith("\\")
    ]


@pytest.mark.parametrize(("where", "line"), _example_lines() + _readme_curl_lines())
def test_a_shown_command_line_parses(where: str, line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the examples' paths are relative to the repository
    assert _refusal(line) is None, f"{where}: {line}"


def test_local_curl_with_f_and_a_file_is_refused_as_the_cli_refuses_it() -> None:
    """The negative twin: the helloworld comment as it was (-f is --fail, so the file is a second URL)."""
    old = "meshbridge local curl -f examples/helloworld/bridge.yaml http://hw.sleep.svc.cluster.local:5000/hello"
    assert "unexpected extra argument" in (_refusal(old) or "")
    assert len(_example_lines()) >= 4  # the negative twin of the parametrized test: it reads the comments


def test_a_local_curl_hint_carries_the_file_as_bridge() -> None:
    with invoked(["verify", "-f", "b.yaml"], accepts):
        assert with_options("'meshbridge local curl URL'") == "'meshbridge local curl URL --bridge b.yaml'"
        assert with_options("'meshbridge certs issue'") == "'meshbridge certs issue -f b.yaml'"  # the twin
        assert (
            with_options("'meshbridge local curl --bridge x.yaml URL'") == "'meshbridge local curl --bridge x.yaml URL'"
        )


def test_hints_after_local_curl_carry_its_bridge_not_its_fail_flag() -> None:
    with invoked(["local", "curl", "-f", "http://lambda.external/x"], accepts):
        assert with_options("'meshbridge local up'") == "'meshbridge local up'"  # -f is --fail: no file given
    with invoked(["local", "curl", "--bridge", "b.yaml", "http://lambda.external/x"], accepts):  # the twin
        assert with_options("'meshbridge local up'") == "'meshbridge local up -f b.yaml'"
