"""An exporter whose load balancer is given as an IP address (``ingressGateway.address: 192.0.2.10``): the checks
that dial the exporter's gateway themselves (verify's, and certs rotate's between steps) reach the twin's gateway
that plays that address, as the egress gateway's endpoint does, never a host of the real network."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.spec import load_bridge
from meshbridge.verify.local import EXPORTER_CHECKS, verify_local
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
LB_IP = "192.0.2.10"  # TEST-NET-1: nothing answers there, so a check dialled to it could not pass


def test_checks_dial_the_twins_gateway_for_a_load_balancer_ip(tmp_path: Path) -> None:
    file, _ = seed_folder(tmp_path)
    text = file.read_text()
    assert "address: ingress.eks.example.com" in text
    file.write_text(text.replace("address: ingress.eks.example.com", f"address: {LB_IP}"))
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up()
        found = {c.check: c for c in verify_local(twin)}
        assert all(found[check].status == "True" for check in EXPORTER_CHECKS), [
            (c, found[c].status, found[c].message[:160]) for c in EXPORTER_CHECKS
        ]
        # the refusals were counted by the twin's gateway itself: the checks reached it, not the real network
        assert found["ExporterRefusesForeignCA"].reason != "ClientSideFailure"
        assert twin.app_view().endpoint_addresses == {
            LB_IP: twin.plan()["proxies"]["eks/istio-ingressgateway"]["address"]
        }
    finally:
        twin.down()


def test_negative_twin_a_load_balancer_name_has_no_address_to_take(tmp_path: Path) -> None:
    file, bridge = seed_folder(tmp_path)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up()
        assert twin.app_view().endpoint_addresses == {}  # the name resolves through the twin's DNS instead
        found = {c.check: c for c in verify_local(twin)}
        assert found["ExporterAcceptsImporterCert"].status == "True"
    finally:
        twin.down()
