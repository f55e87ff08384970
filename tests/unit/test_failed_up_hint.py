"""A stopped twin's hints repeat the last 'local up' the user ran: after one that failed (an Istio doc's Gateway
Istio's validation refuses), 'local curl' and 'local status' name its --manifests, not those of the twin started
before it. Negative twins: without a failed start they name the last twin's, and a start that fails in a state
folder where none ever ran records nothing (no Envoy started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main
from tests.unit.test_local_cli import _dead_pid, _fake_state

REFUSED = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: x.y, namespace: default}\nspec: {}\n"


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_after_a_failed_up_curl_and_status_repeat_its_manifests(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_state(
        workdir / ".meshbridge", supervisor_pid=_dead_pid(), running=False, manifests={"eks": [workdir / "old.yaml"]}
    )
    (workdir / "new.yaml").write_text(REFUSED)
    assert main(["local", "up", "--manifests", "eks=new.yaml"]) == 2
    assert "invalid gateway name" in _err(capsys)
    assert main(["local", "curl", "http://lambda.external/hello-world"]) == 7
    err = _err(capsys)
    assert "the last 'local up' failed. Fix what it said, then: meshbridge local up --manifests eks=new.yaml" in err
    assert "old.yaml" not in err
    assert main(["local", "status"]) == 1
    assert "--manifests eks=new.yaml" in _err(capsys)


def test_negative_twin_without_a_failed_up_the_last_twins_manifests(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_state(
        workdir / ".meshbridge", supervisor_pid=_dead_pid(), running=False, manifests={"eks": [workdir / "old.yaml"]}
    )
    assert main(["local", "curl", "http://lambda.external/hello-world"]) == 7
    err = _err(capsys)
    assert "(it was stopped). Fix: meshbridge local up --manifests eks=old.yaml" in err and "failed" not in err


def test_negative_twin_a_failed_first_up_records_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "new.yaml").write_text(REFUSED)
    assert main(["local", "up", "--manifests", "eks=new.yaml"]) == 2
    assert not (workdir / ".meshbridge" / "local" / "failed-up.json").exists()
    assert main(["local", "curl", "http://lambda.external/hello-world"]) == 2
    assert "was never started" in _err(capsys)
