"""``spec.tls.pinSubjectAltNames``: when it is false, nothing rendered pins a SAN, and neither ``certs import``,
``certs check``, ``certs issue`` nor ``lint`` demands of a leaf the SANs its peer would have pinned; each case
with its twin, the pins on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography import x509

from meshbridge.cli.main import main
from meshbridge.lint import from_bridge, lint
from meshbridge.pki import PkiStore, issue_leaf
from meshbridge.render import render_bridge
from meshbridge.spec import Bridge
from tests.builders import bridge_from, issued_store, seed_dict
from tests.pki_builders import SPIFFE, files, importing, own_ca, said, server

# -- 3. spec.tls.pinSubjectAltNames ---------------------------------------------------------------------------


def unpinned(issued_workdir: Path, pin: bool) -> Bridge:
    spec = issued_workdir / "bridge.yaml"
    data = yaml.safe_load(spec.read_text())
    data["spec"].setdefault("tls", {})["pinSubjectAltNames"] = pin
    spec.write_text(yaml.safe_dump(data))
    return bridge_from(data)


def test_without_pins_import_and_check_take_a_leaf_without_the_peers_san(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = server(own_ca(issued_workdir, "eks"), sans=[x509.DNSName("other.external")]).bundle()
    args = importing("eks", "server", files(issued_workdir, "other", other))
    unpinned(issued_workdir, pin=True)
    assert main(args) == 2
    assert (
        "lacks the SAN(s) its peer pins: DNS:lambda.external (it has DNS:other.external); the peer refuses it (SAN "
        "mismatch). Fix: reissue it with those SANs ('meshbridge certs issue' replaces a leaf of its own whose SANs "
        "no longer match the spec; import one of yours with them); or stop pinning (spec.tls.pinSubjectAltNames: "
        "false), and peers accept any certificate of the CA" in said(capsys.readouterr().out)
    )
    unpinned(issued_workdir, pin=False)
    assert main(args) == 0
    assert main(["certs", "check"]) == 0
    assert main(["certs", "issue"]) == 0  # kept: nothing demands its SANs
    assert PkiStore(issued_workdir / ".meshbridge").path("eks", "server").read_bytes() == other.cert_pem
    capsys.readouterr()
    unpinned(issued_workdir, pin=True)  # pins back on: the same leaf fails the check
    assert main(["certs", "check"]) == 1
    assert "lacks the SAN(s) its peer pins: DNS:lambda.external" in said(capsys.readouterr().out)


def test_without_pins_the_client_leaf_needs_no_spiffe_id(tmp_path: Path) -> None:
    data = seed_dict()
    data["spec"].setdefault("tls", {})["pinSubjectAltNames"] = False
    bridge = bridge_from(data)
    store = issued_store(tmp_path, bridge)
    ca = store.load("gke", "ca")
    assert ca is not None
    someone = issue_leaf(ca, "client", common_name="x", uris=["spiffe://gke.example.com/ns/other/sa/other"])
    assert [f for f in store.import_(bridge, "gke", "client", someone, name="x.pem")[1] if f.severity == "error"] == []
    pinned = bridge_from(seed_dict())
    (error,) = [f for f in store.check(pinned) if f.severity == "error"]
    assert error.rule == "san-missing" and f"URI:{SPIFFE}" in error.problem


def test_without_pins_nothing_rendered_pins_and_lint_demands_no_san(tmp_path: Path) -> None:
    for pin in (False, True):
        data = seed_dict()
        data["spec"].setdefault("tls", {})["pinSubjectAltNames"] = pin
        bridge = bridge_from(data)
        store = issued_store(tmp_path / str(pin), bridge)
        sets = render_bridge(bridge, store.credentials(bridge))
        gateway = sets["eks"].find("Gateway", "eastwestgateway")["spec"]["servers"][0]["tls"]
        rule = sets["gke"].find("DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"]["portLevelSettings"][0]
        assert ("subjectAltNames" in gateway, "subjectAltNames" in rule["tls"]) == (pin, pin)
        ca = store.load("eks", "ca")
        assert ca is not None
        store.save("eks", "server", issue_leaf(ca, "server", common_name="o", dns_names=["other.external"]))
        codes = {f.code for f in lint(from_bridge(bridge, store.credentials(bridge))).findings}
        assert ("MB310" in codes) == pin
