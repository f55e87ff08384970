"""``certs push`` and ``certs revoke`` beside the running local twin, as a new user runs them from the bridge's
folder: their tables fit 100 columns, each check is printed once, and the line after a push says what changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture
def seed_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The seed's files in the working folder, its twin running ('meshbridge init && meshbridge local up')."""
    for name in SEED_FILES:
        (tmp_path / name).write_text(seed_text(name))
    monkeypatch.chdir(tmp_path)
    assert main(["local", "up"]) == 0
    try:
        yield tmp_path
    finally:
        main(["local", "down"])


def _said(capsys: pytest.CaptureFixture[str], args: list[str], code: int = 0) -> list[str]:
    capsys.readouterr()
    assert main(args) == code
    return capsys.readouterr().out.splitlines()


def test_push_and_revoke_fit_100_columns_and_say_what_changed(
    seed_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _said(capsys, ["certs", "push"])
    table = lines[1:]
    assert all(len(line) <= 100 for line in table), table
    assert sum(line.startswith("GatewaysServeCurrentCerts") for line in table) == 1
    # the twin serves the store already (local up just wrote it): the push says nothing changed, not "0 proxies"
    assert lines[0] == "pushed: local twin (nothing changed: every proxy already had what the store holds)"
    assert "reloaded" not in "\n".join(lines)  # nothing was: the check says only what it checked

    lines = _said(capsys, ["certs", "revoke", "--mesh", "gke", "--current", "client"])
    table = lines[: lines.index("    CRL: .meshbridge/pki/gke/ca.crl") + 1]  # under its row, relative to here
    assert all(len(line) <= 100 for line in table), table
    assert table[0].split() == ["MESH", "SERIAL", "HOLDER", "CA", "ACTION"]
    assert "pushed to: local twin (eks/istio-ingressgateway reloaded new secrets without restart and drained" in (
        "\n".join(lines)
    )

    # the negative twin: the same revocation again changes no proxy, and says so
    lines = _said(capsys, ["certs", "revoke", "--mesh", "gke", "--current", "client"])
    assert "already revoked" in lines[1]
    assert "pushed to: local twin (nothing changed: every proxy already had what the store holds)" in lines


def test_json_keeps_every_field_the_tables_shorten(seed_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["certs", "revoke", "--mesh", "gke", "--current", "client", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cas"] == [{"ca": "ca", "action": "revoked", "crl": str(seed_folder / ".meshbridge/pki/gke/ca.crl")}]
    assert len(doc["serial"]) > 30 and doc["holder"] == "client"
    assert doc["pushed"][0].startswith("local twin (eks/istio-ingressgateway reloaded new secrets")
    assert main(["certs", "push", "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert [c["check"] for c in pushed["conditions"]] == ["GatewaysServeCurrentCerts"]
    assert pushed["conditions"][0]["message"].startswith("every gateway serves the store's current certificates")
