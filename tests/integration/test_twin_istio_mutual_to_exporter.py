"""An importer whose DestinationRule keeps the bridge's MUTUAL tls at the top level but says ISTIO_MUTUAL in the
port-level entry for the app's port, on real Envoy: 'local up' predicts the stop at the importer's egress gateway
(503 UF, the mesh's workload certificate and root instead of the bridge's), and the curl gets it, the egress access
log showing the flag predicted. Negative twin: the same entry with MUTUAL and the credentialName, no stop, 200."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from meshbridge.envoy.handshake import MESH_IDENTITY
from meshbridge.istiod.oracle import OracleUnavailable, ensure_oracle
from meshbridge.local.curl import curl
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin, Translator, UpReport
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
URL = "http://lambda.external/hello-world"
EGRESS = "gke/istio-egressgateway"
MUTUAL = {"mode": "MUTUAL", "credentialName": "mtls-credential", "sni": "lambda.external"}


def _twin(tmp: Path, port_tls: dict[str, str]) -> tuple[LocalTwin, dict[str, list[Path]]]:
    """The seed's twin with gke's DestinationRule for lambda.external holding the bridge's MUTUAL tls at the top
    level and ``port_tls`` in its port-level entry for port 80."""
    file, bridge = seed_folder(tmp)
    PkiStore(tmp / ".meshbridge").issue(bridge)
    rendered = render_bridge(
        bridge, None, addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports}
    )
    docs = [dict(d) for d in rendered["gke"]]
    (rule,) = [d for d in docs if d["kind"] == "DestinationRule" and d["metadata"]["name"] == "dr-lambda-ext"]
    policy = rule["spec"]["trafficPolicy"]
    policy["tls"], policy["portLevelSettings"][0]["tls"] = policy["portLevelSettings"][0]["tls"], port_tls
    gke = tmp / "gke.yaml"
    gke.write_text(yaml.safe_dump_all(docs))
    return LocalTwin(bridge, file, tmp / ".meshbridge"), {"gke": [gke]}


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
    ("sni", "predicted", "logged"),
    [
        (False, "selects no filter chain of eks/istio-ingressgateway", "Connection_reset_by_peer"),
        (True, "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate", "unable_to_get_local_issuer"),
    ],
)
@pytest.mark.parametrize("translator", ["meshbridge", pytest.param("istiod", marks=pytest.mark.oracle)])
def test_port_level_istio_mutual_is_predicted_at_the_egress_gateway_and_the_curl_gets_it(
    tmp_path: Path, sni: bool, predicted: str, logged: str, translator: Translator
) -> None:
    """Without sni, istiod's outbound_.80_._.lambda.external selects no chain of the exporter, which resets the
    handshake; with the exported host as sni, the egress gateway refuses the server certificate (its mesh's root).
    On meshbridge's translation and on istiod's own."""
    if translator == "istiod":
        try:
            ensure_oracle()
        except OracleUnavailable as e:
            pytest.skip(str(e))
    tls = {"mode": "ISTIO_MUTUAL", **({"sni": "lambda.external"} if sni else {})}
    twin, manifests = _twin(tmp_path, tls)
    report = twin.up(manifests, translator=translator)
    try:
        (stop,) = [h for h in report.stopped if h.proxy == EGRESS]
        r = stop.result
        assert (r.error, r.status, r.response_flag) == (MESH_IDENTITY, 503, "UF")
        assert "presents its own mesh's workload certificate (SDS default" in r.detail and predicted in r.detail
        got = curl(twin.app_view(), URL)
        assert (got.status, PAGE in got.body) == (503, False)
        flags = _egress_flags(report)
        assert flags and all(s == "503" and f.split(",")[-1] == r.response_flag for s, f, _ in flags), flags
        assert all(logged in why for _, _, why in flags), flags
    finally:
        twin.down()


def test_negative_twin_mutual_with_its_credential_in_the_port_level_entry_reaches_the_lambda(tmp_path: Path) -> None:
    twin, manifests = _twin(tmp_path, MUTUAL)
    report = twin.up(manifests)
    try:
        assert report.stopped == []
        got = curl(twin.app_view(), URL)
        assert (got.status, PAGE in got.body) == (200, True)
    finally:
        twin.down()
