"""Shell completion: typer's --install-completion and --show-completion, and completions of real commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from meshbridge.cli.main import main


def complete(words: str) -> list[str]:
    """What bash completion offers for ``words`` (the last word being completed), as the shell asks for it."""
    parts = words.split(" ")
    env = {
        **os.environ,
        "_MESHBRIDGE_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(parts) - 1),
    }
    code = "from meshbridge.cli.main import run; run()"
    # the timeout only guards against a hang: a loaded machine may take a while to import the CLI
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_completion_can_be_installed_and_shown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "--install-completion" in text and "--show-completion" in text
    assert main(["--show-completion", "bash"]) == 0
    assert "_meshbridge_completion" in capsys.readouterr().out


def test_commands_and_options_complete() -> None:
    assert complete("meshbridge lo") == ["local"]
    assert complete("meshbridge local cu") == ["curl"]
    assert "--include" in complete("meshbridge local curl --inc")
    assert "--max-time" in complete("meshbridge local curl --max-t")
    assert complete("meshbridge nosuchcommand") == []  # negative twin: nothing to offer
