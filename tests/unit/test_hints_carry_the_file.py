"""An error's command hints carry the ``-f FILE`` the user gave, so they run as printed from where the user is."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main, with_file
from tests.builders import SEED


def test_a_hint_gets_the_users_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "elsewhere" / "bridge.yaml"
    spec.parent.mkdir()
    spec.write_text(SEED.read_text())
    assert main(["render", "-f", str(spec), "-o", str(tmp_path / "out")]) == 2
    assert f"Fix: run 'meshbridge certs issue -f {spec}'" in capsys.readouterr().err


def test_without_f_hints_stay_as_they_are() -> None:
    message = "Fix: run 'meshbridge certs issue' (or render with --no-secrets)"
    assert with_file(message, ["render", "-o", "out"]) == message


def test_a_peer_hint_is_left_alone() -> None:
    message = "the importer runs 'meshbridge peer accept OFFER', the exporter 'meshbridge peer admit REPLY'"
    assert with_file(message, ["render", "-f", "mine/bridge.yaml"]) == message


def test_a_hint_that_names_a_file_or_pipes_is_left_alone() -> None:
    message = (
        "run 'meshbridge peer admit reply.yaml -f other.yaml' or 'meshbridge render --mesh gke | kubectl apply -f -'"
    )
    assert with_file(message, ["plan", "-f", "b.yaml"]) == message
    assert (
        with_file("'meshbridge certs issue'", ["plan", "--file", "a b.yaml"])
        == "'meshbridge certs issue -f \"a b.yaml\"'"
    )
