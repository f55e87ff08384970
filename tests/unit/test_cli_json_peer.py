"""``peer offer|accept|admit --json``: what each wrote and trusted, as one JSON document on stdout; a refused file
is the error document (``{"error": {"message", "exit_code": 2}}``) and nothing is trusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.pki import PkiStore
from meshbridge.pki.signing import fingerprint
from tests.peer_support import Owners, two_owners


@pytest.fixture
def owners(tmp_path: Path) -> Owners:
    return two_owners(tmp_path)


def _json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    assert main(list(argv)) == code
    return json.loads(capsys.readouterr().out)


def _ca(owners: Owners, side: Path, mesh: str) -> str:
    return fingerprint(PkiStore(owners.state(side)).require_ca(mesh))


def test_offer_accept_admit_json_name_the_files_and_the_fingerprints(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    offered = _json(capsys, "peer", "offer", "-f", str(owners.exporter), "-o", str(owners.offer), "--json")
    eks, gke = _ca(owners, owners.exporter, "eks"), _ca(owners, owners.importer, "gke")
    expires = yaml.safe_load(owners.offer.read_text())["spec"]["expires"]
    assert offered == {"offer": str(owners.offer), "mesh": "eks", "to": "gke", "expires": expires, "fingerprint": eks}
    accept = ["peer", "accept", str(owners.offer), "--fingerprint", eks, "-f", str(owners.importer)]
    accepted = _json(capsys, *accept, "-o", str(owners.reply), "--json")
    assert accepted["reply"] == str(owners.reply) and accepted["mesh"] == "gke" and accepted["fingerprint"] == gke
    trusted = accepted["trusted"]
    assert trusted["mesh"] == "eks" and trusted["fingerprint"] == eks and trusted["subject"].startswith("CN=")
    assert trusted["file"] == str(owners.state(owners.importer) / "pki" / "eks" / "ca.crt")
    admit = ["peer", "admit", str(owners.reply), "--fingerprint", gke, "-f", str(owners.exporter), "--json"]
    admitted = _json(capsys, *admit)["admitted"]
    assert admitted["mesh"] == "gke" and admitted["fingerprint"] == gke
    assert admitted["identity"] == "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
    assert admitted["file"] == str(owners.state(owners.exporter) / "pki" / "gke" / "ca.crt")


def test_without_json_the_offer_is_told_in_lines(owners: Owners, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["peer", "offer", "-f", str(owners.exporter), "-o", str(owners.offer)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("offer from eks to gke written to") and "fingerprint of eks's CA: sha256:" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_a_refused_offer_is_an_error_document_and_nothing_is_trusted(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["peer", "offer", "-f", str(owners.exporter), "-o", str(owners.offer)]) == 0
    gke = _ca(owners, owners.importer, "gke")  # not the exporter's CA: the offer is not signed by it
    capsys.readouterr()
    accept = ["peer", "accept", str(owners.offer), "--fingerprint", gke, "-f", str(owners.importer), "--json"]
    doc = _json(capsys, *accept, "-o", str(owners.reply), code=2)
    assert list(doc) == ["error"] and doc["error"]["exit_code"] == 2
    assert f"not the {gke} you were told" in doc["error"]["message"]
    assert not (owners.state(owners.importer) / "pki" / "eks").exists() and not owners.reply.exists()
    admit = ["peer", "admit", str(owners.root / "missing.yaml"), "--fingerprint", gke, "-f", str(owners.exporter)]
    doc = _json(capsys, *admit, "--json", code=2)
    assert "missing.yaml: cannot be read" in doc["error"]["message"]
