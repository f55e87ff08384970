"""Texts about imported certificates and peer offers that must say what applies: a short imported leaf's fix is a
longer validity from its issuer and a renewed import (spec.tls.leafValidityDays applies only to what meshbridge
issues), and 'peer offer' without a peer mesh says 'your own meshes'."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.pki.checks import check_validity
from meshbridge.pki.store import PkiStore
from meshbridge.pki.x509 import issue_ca, issue_leaf

GKE_CLIENT = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
IMPORT = "'meshbridge certs import --mesh gke --slot client --cert RENEWED.pem --key RENEWED.key'"


def test_a_short_imported_leaf_asks_its_issuer_for_longer_and_a_renewed_import() -> None:
    leaf = issue_leaf(issue_ca("gke CA"), "client", common_name="gw", uris=[GKE_CLIENT], days=1)
    (f,) = check_validity("client.pem", leaf, leaf.not_before, mesh="gke", imported="client")
    assert f.severity == "info"
    assert f.fix.startswith(
        "have its issuer sign one valid for more than 30 days (spec.tls.leafValidityDays applies only to the "
        f"certificates meshbridge issues, not to imported ones), or accept it and rotate it within its validity "
        f"({IMPORT})"
    )
    # the negative twin: a leaf meshbridge issued is fixed by the spec's validity and its rotation
    (issued,) = check_validity("gke/client", leaf, leaf.not_before, mesh="gke")
    assert issued.fix.startswith("raise spec.tls.leafValidityDays above 30")
    assert "'meshbridge certs rotate --leaf --mesh gke'" in issued.fix


def test_certs_import_and_check_say_it_of_the_imported_leaf_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert main(["certs", "issue"]) == 0
    store = PkiStore(tmp_path / ".meshbridge")
    ca = store.load("gke", "ca")
    assert ca is not None
    crt, key = issue_leaf(ca, "client", common_name="gw", uris=[GKE_CLIENT], days=1).write_to(tmp_path / "byo", "c")
    capsys.readouterr()
    assert main(["certs", "import", "--mesh", "gke", "--slot", "client", "--cert", str(crt), "--key", str(key)]) == 0
    said = " ".join(" ".join(capsys.readouterr()).split())
    assert "have its issuer sign one valid for more than 30 days" in said and "leafValidityDays above" not in said
    assert main(["certs", "check", "--wide"]) == 0
    rows = capsys.readouterr().out.splitlines()
    (gke,) = [r for r in rows if "gke/client" in r]
    assert "meshbridge certs import --mesh gke --slot client" in gke and "raise spec.tls" not in gke
    assert not [r for r in rows if "eks/server" in r]  # the twin: the issued 90-day leaf has nothing to say


def test_peer_offer_without_a_peer_mesh_says_your_own_meshes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["peer", "offer"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "no export of the bridge goes from your own meshes to a 'peer: true' mesh" in said
    assert main(["peer", "offer", "--mesh", "eks"]) == 2  # the twin: a named mesh is named
    assert "goes from your own mesh 'eks' to a 'peer: true' mesh" in " ".join(capsys.readouterr().err.split())
