"""ISTIO_MUTUAL in the twin, on real Envoy: the app's sidecar reaches its egress gateway over the mesh's own mutual
TLS, in the shape of Istio's egress mTLS-origination task (a Gateway server with ``tls.mode: ISTIO_MUTUAL``, a
DestinationRule subset sending ISTIO_MUTUAL with ``sni``), and the gateway originates the bridge's mutual TLS
to the exporter as before. Its negative twin: a gateway whose workload certificate comes from another mesh's CA
is refused by the sidecar's handshake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from meshbridge.istiod.oracle import OracleUnavailable, ensure_oracle
from meshbridge.local.curl import curl
from meshbridge.local.meshca import mesh_ca
from meshbridge.local.plan import LocalPlan, lb_address, plan_topology
from meshbridge.local.twin import LocalTwin, Translator
from meshbridge.pki.x509 import CertBundle, issue_workload_cert
from meshbridge.render import render_bridge
from tests.integration.twin_support import seed_folder
from tests.istio_builders import istio_mutual_egress

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
EGRESS = "gke/istio-egressgateway"
TO_EGRESS = "outbound|443|lambda|istio-egressgateway.istio-egress.svc.cluster.local"
IDENTITY = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
"""The egress gateway's identity: the spec's trust domain, namespace and (chart default) ServiceAccount."""


def _up(
    tmp: Path, before_start: Callable[[LocalTwin], None] = lambda _: None, translator: Translator = "meshbridge"
) -> LocalTwin:
    file, bridge = seed_folder(tmp)
    rendered = render_bridge(
        bridge, None, addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports}
    )
    docs = {"gke": list(rendered["gke"])}
    istio_mutual_egress(docs)
    gke = tmp / "gke.yaml"
    gke.write_text(yaml.safe_dump_all(docs["gke"]))
    twin = LocalTwin(bridge, file, tmp / ".meshbridge")
    twin.up(
        {"gke": [gke]},
        checkpoint=lambda phase: before_start(twin) if phase == "supervisor" else None,
        translator=translator,
    )
    return twin


def _plan(twin: LocalTwin) -> tuple[LocalPlan, Path]:
    """The running twin's plan (where each mesh's CA is) and the egress gateway's workload certificate folder."""
    recorded = twin.plan()
    plan = plan_topology(twin.bridge, twin.state_dir, recorded["subnet"], recorded["privileged"])
    folder = plan.placements[EGRESS].workload_certs
    assert folder is not None
    return plan, folder


def _to_egress(stats: dict[str, int], counter: str) -> int:
    """The sidecar's TLS ``counter`` toward the egress gateway (istiod's clusters count under ``<name>;``)."""
    return sum(stats.get(f"cluster.{TO_EGRESS}{tail}.ssl.{counter}", 0) for tail in ("", ";"))


@pytest.mark.parametrize("translator", ["meshbridge", pytest.param("istiod", marks=pytest.mark.oracle)])
def test_the_app_reaches_the_lambda_through_an_istio_mutual_egress_gateway(
    tmp_path: Path, translator: Translator
) -> None:
    """On meshbridge's translation and on istiod's own (``--translator istiod``: istiod's SNI and its SAN pin on
    the gateway's ServiceAccount, with the twin's workload certificates)."""
    if translator == "istiod":
        try:
            ensure_oracle()
        except OracleUnavailable as e:
            pytest.skip(str(e))
    twin = _up(tmp_path, translator=translator)
    try:
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 200 and PAGE in r.body
        _, folder = _plan(twin)
        assert CertBundle((folder / "cert-chain.pem").read_bytes()).uris == [IDENTITY]
        sidecar, egress = twin.stats("gke/sleep"), twin.stats(EGRESS)
        assert _to_egress(sidecar, "handshake") >= 1  # the sidecar shook hands with its certificate
        handshakes = [v for k, v in egress.items() if k.startswith("listener.") and k.endswith("_8443.ssl.handshake")]
        assert sum(handshakes) >= 1
        assert sum(v for k, v in egress.items() if k.endswith("ssl.no_certificate")) == 0  # and it showed one
    finally:
        twin.down()


@pytest.mark.parametrize(
    ("issuer", "identity", "stat"),
    [
        # signed by eks's mesh CA: the sidecar trusts only gke's root (ROOTCA)
        ("eks", IDENTITY, "fail_verify_error"),
        # signed by gke's own CA, but for another workload: the sidecar pins the gateway's SPIFFE identity
        ("gke", "spiffe://gke.example.com/ns/istio-egress/sa/impostor", "fail_verify_san"),
    ],
    ids=["another-meshs-ca", "another-identity"],
)
def test_a_gateway_whose_workload_certificate_is_not_its_meshs_own_is_refused(
    tmp_path: Path, issuer: str, identity: str, stat: str
) -> None:
    """The egress gateway presents a workload certificate its mesh did not give it: the sidecar refuses the
    handshake and answers 503; nothing reaches the Lambda."""

    def replace_certificate(twin: LocalTwin) -> None:
        plan, folder = _plan(twin)
        forged = issue_workload_cert(mesh_ca(plan.mesh_ca_dir(issuer), issuer), identity)
        assert forged.key_pem is not None
        (folder / "cert-chain.pem").write_bytes(forged.cert_pem)
        (folder / "key.pem").write_bytes(forged.key_pem)

    twin = _up(tmp_path, replace_certificate)
    try:
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 503 and PAGE not in r.body
        assert b"remote connection failure" in r.body
        sidecar = twin.stats("gke/sleep")
        assert _to_egress(sidecar, stat) >= 1
        assert _to_egress(sidecar, "handshake") == 0
    finally:
        twin.down()
