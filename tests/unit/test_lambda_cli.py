"""``meshbridge lambda serve``: what it refuses before serving (in-process, no process is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed" / "handler.py"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps help and errors to the terminal width; a wide one keeps option names whole."""
    monkeypatch.setenv("COLUMNS", "240")


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lambda", "serve", "--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--handler",
        "--listen",
        "--https",
        "--cert",
        "--key",
        "--host-name",
        "--multi-value-headers",
        "--concurrency",
        "--timeout",
        "--memory",
    ):
        assert option in text


def test_missing_handler_file_is_exit_2_naming_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lambda", "serve", "--handler", "no/such/handler.py:lambda_handler"]) == 2
    assert "no/such/handler.py does not exist" in capsys.readouterr().err


def test_handler_without_function_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lambda", "serve", "--handler", str(SEED)]) == 2
    assert "FILE.py:FUNCTION" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cert", "c.pem"], "give both --cert and --key"),
        (["--cert", "c.pem", "--key", "k.pem"], "add --https"),
        (["--listen", "127.0.0.1:http"], "is not HOST:PORT"),
        (["--memory", "64"], "greater than or equal to 128"),
        (["--concurrency", "-1"], "greater than or equal to 0"),
        (["--timeout", "901"], "less than or equal to 900"),
    ],
)
def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["lambda", "serve", "--handler", f"{SEED}:lambda_handler", *args]) == 2
    assert message in capsys.readouterr().err
