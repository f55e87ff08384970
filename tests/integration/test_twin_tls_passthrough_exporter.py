"""An exporter in the shape of istio.io's "ingress TLS passthrough" task (a Gateway server with tls mode
PASSTHROUGH, a VirtualService tls route on sniHosts) on real Envoy: the exporter's gateway passes the importer's
mutual TLS through to the backend, which in the twin cannot terminate it, so 'local up' predicts the stop at the
importer's egress gateway (503 UF) and the curl gets it, the egress access log showing the flag predicted. Negative
twins: the seed's MUTUAL exporter (no stop, 200), and a passthrough chain for another SNI (no chain selected: not a
passthrough stop)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.envoy.passthrough import PASSTHROUGH
from meshbridge.istiod.oracle import OracleUnavailable, ensure_oracle
from meshbridge.local.curl import curl
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin, Translator, UpReport
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge
from meshbridge.verify.local import verify_local
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
URL = "http://lambda.external/hello-world"
EGRESS = "gke/istio-egressgateway"


def _passthrough_docs(sni: str) -> list[dict[str, Any]]:
    """istio.io's task, its host the exported one: an HTTPS server in PASSTHROUGH for ``sni``, routed to the ALB."""
    gateway = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "mygateway", "namespace": "istio-ingress"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "tls": {"mode": "PASSTHROUGH"},
                    "hosts": [sni],
                }
            ],
        },
    }
    route = {"destination": {"host": "alb.internal.example.com", "port": {"number": 443}}}
    service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "nginx", "namespace": "istio-ingress"},
        "spec": {
            "hosts": [sni],
            "gateways": ["mygateway"],
            "tls": [{"match": [{"port": 443, "sniHosts": [sni]}], "route": [route]}],
        },
    }
    return [gateway, service]


def _twin(tmp: Path, sni: str | None) -> tuple[LocalTwin, dict[str, list[Path]]]:
    """The seed's twin; with ``sni``, eks's Gateway, VirtualService and AuthorizationPolicy replaced by istio.io's
    passthrough task for that host."""
    file, bridge = seed_folder(tmp)
    PkiStore(tmp / ".meshbridge").issue(bridge)
    twin = LocalTwin(bridge, file, tmp / ".meshbridge")
    if sni is None:
        return twin, {}
    rendered = render_bridge(
        bridge, None, addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports}
    )
    kept = [dict(d) for d in rendered["eks"] if d["kind"] not in ("Gateway", "VirtualService", "AuthorizationPolicy")]
    eks = tmp / "eks.yaml"
    eks.write_text(yaml.safe_dump_all([*kept, *_passthrough_docs(sni)]))
    return twin, {"eks": [eks]}


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


@pytest.mark.parametrize("translator", ["meshbridge", pytest.param("istiod", marks=pytest.mark.oracle)])
def test_a_passthrough_exporter_is_predicted_at_the_egress_gateway_and_the_curl_gets_it(
    tmp_path: Path, translator: Translator
) -> None:
    if translator == "istiod":
        try:
            ensure_oracle()
        except OracleUnavailable as e:
            pytest.skip(str(e))
    twin, manifests = _twin(tmp_path, "lambda.external")
    report = twin.up(manifests, translator=translator)
    try:
        (stop,) = report.stopped
        r = stop.result
        assert (stop.proxy, r.error, r.status, r.response_flag) == (EGRESS, PASSTHROUGH, 503, "UF")
        assert "eks/istio-ingressgateway passes the TLS through unterminated" in r.detail, r.detail
        assert "tcp_proxy to outbound|443||alb.internal.example.com" in r.detail
        assert "the twin's backends cannot play one" in r.detail and "tls: {mode: MUTUAL" in r.detail
        got = curl(twin.app_view(), URL)
        assert (got.status, PAGE in got.body) == (503, False)
        flags = _egress_flags(report)
        assert flags and all(s == "503" and f.split(",")[-1] == "UF" for s, f, _ in flags), flags
        named = ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER")  # the ALB's TLS, or its plain HTTP
        assert all(any(n in why and n in r.detail for n in named) for _, _, why in flags), flags
        accepted = next(c for c in verify_local(twin) if c.check == "ExporterAcceptsImporterCert")
        assert accepted.status != "True" and f"the running configuration predicts why: {EGRESS}: " in accepted.message
    finally:
        twin.down()


def test_negative_twin_the_seeds_mutual_exporter_reaches_the_lambda(tmp_path: Path) -> None:
    twin, manifests = _twin(tmp_path, None)
    report = twin.up(manifests)
    try:
        assert report.stopped == []
        got = curl(twin.app_view(), URL)
        assert (got.status, PAGE in got.body) == (200, True)
    finally:
        twin.down()


def test_negative_twin_a_passthrough_chain_for_another_sni_is_no_passthrough_stop(tmp_path: Path) -> None:
    twin, manifests = _twin(tmp_path, "nginx.example.com")
    report = twin.up(manifests)
    try:
        errors = [(h.proxy, h.result.error) for h in report.stopped]
        assert errors == [("eks/istio-ingressgateway", "NoFilterChain")], errors
    finally:
        twin.down()
