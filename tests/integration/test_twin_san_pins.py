"""SAN pins the other gateway's certificate lacks, on real Envoy: 'local up' predicts the stop (the exporter's
Gateway pinning a client SAN the importer's certificate lacks: 503 UC at the egress; the importer's DestinationRule
pinning a SAN the exporter's certificate lacks: 503 UF, CERTIFICATE_VERIFY_FAILED), and the egress gateway's access
log shows the flag predicted. Negative twin: pins the certificates carry, no stop, 200."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from meshbridge.envoy.handshake import CLIENT_SAN_REFUSED, SERVER_REFUSED
from meshbridge.local.curl import curl
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin, UpReport
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
URL = "http://lambda.external/hello-world"
INGRESS, EGRESS = "eks/istio-ingressgateway", "gke/istio-egressgateway"
OTHER = "spiffe://imp.example.org/ns/istio-egress/sa/other"


def _twin(tmp: Path, gateway_pins: list[str] | None, rule_pins: list[str] | None) -> tuple[LocalTwin, UpReport]:
    """The seed's twin, up, with the exporter Gateway server's ``tls.subjectAltNames`` set to ``gateway_pins`` and
    the importer DestinationRule's to ``rule_pins`` (``None``: as rendered)."""
    file, bridge = seed_folder(tmp)
    PkiStore(tmp / ".meshbridge").issue(bridge)
    rendered = render_bridge(
        bridge, None, addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports}
    )
    docs = {mesh: [dict(d) for d in rendered[mesh]] for mesh in ("eks", "gke")}
    for d in docs["eks"]:
        if d["kind"] == "Gateway" and gateway_pins is not None:
            d["spec"]["servers"][0]["tls"]["subjectAltNames"] = gateway_pins
    for d in docs["gke"]:
        if d["kind"] == "DestinationRule" and d["metadata"]["name"] == "dr-lambda-ext" and rule_pins is not None:
            d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["subjectAltNames"] = rule_pins
    manifests = {mesh: [tmp / f"{mesh}.yaml"] for mesh in docs}
    for mesh, ds in docs.items():
        manifests[mesh][0].write_text(yaml.safe_dump_all(ds))
    twin = LocalTwin(bridge, file, tmp / ".meshbridge")
    return twin, twin.up(manifests)


def _egress_flags(report: UpReport) -> list[tuple[str, str, str]]:
    """(status, response flags, response details) of each request in the egress gateway's access log, once
    Envoy flushed it."""
    log = report.plan.placements[EGRESS].access_log
    assert log is not None
    while True:  # Envoy flushes its access log within 0.2 s; pytest's own timeout bounds the wait
        found = re.findall(r'HTTP/[0-9.]+" (\d{3}) ([A-Z,-]+) (\S+)', log.read_text() if log.exists() else "")
        if found:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("gateway_pins", "rule_pins", "proxy", "error", "flag", "logged"),
    [
        ([OTHER], None, INGRESS, CLIENT_SAN_REFUSED, "UC", "upstream_reset_before_response_started"),
        (None, ["test.com"], EGRESS, SERVER_REFUSED, "UF", "CERTIFICATE_VERIFY_FAILED"),
        ([OTHER], ["test.com"], EGRESS, SERVER_REFUSED, "UF", "CERTIFICATE_VERIFY_FAILED"),  # the importer first
    ],
)
def test_a_san_pin_the_certificate_lacks_is_predicted_at_up_and_the_egress_logs_its_flag(
    tmp_path: Path,
    gateway_pins: list[str] | None,
    rule_pins: list[str] | None,
    proxy: str,
    error: str,
    flag: str,
    logged: str,
) -> None:
    twin, report = _twin(tmp_path, gateway_pins, rule_pins)
    try:
        (stop,) = report.stopped
        assert (stop.proxy, stop.result.error) == (proxy, error)
        assert f"answers 503 {flag}" in stop.result.detail
        got = curl(twin.app_view(), URL)
        assert (got.status, PAGE in got.body) == (503, False)
        flags = _egress_flags(report)
        assert flags and all(s == "503" and f.split(",")[-1] == flag for s, f, _ in flags), flags
        assert all(logged in why for _, _, why in flags), flags
    finally:
        twin.down()


def test_negative_twin_pins_the_certificates_carry_reach_the_lambda(tmp_path: Path) -> None:
    pinned = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
    twin, report = _twin(tmp_path, [OTHER, pinned], ["test.com", "lambda.external"])
    try:
        assert report.stopped == []
        got = curl(twin.app_view(), URL)
        assert (got.status, PAGE in got.body) == (200, True)
    finally:
        twin.down()
