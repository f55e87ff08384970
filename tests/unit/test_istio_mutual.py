"""ISTIO_MUTUAL as istiod builds it and as the twin serves it: the workload certificate (SDS ``default``), the mesh's
root (``ROOTCA``), the peer's SPIFFE identity pinned, istiod's SNI and ALPN; each mesh's CA in the twin."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from meshbridge.envoy.compare import Difference, compare
from meshbridge.envoy.consistency import check_consistency
from meshbridge.envoy.pathsim import path_findings, trace_exports
from meshbridge.envoy.placement import WORKLOAD_FILES, Placement
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.errors import PkiError
from meshbridge.istio.config import MeshSettings
from meshbridge.istio.parse import build_config
from meshbridge.istio.visibility import Proxy, Workload
from meshbridge.istiod.adopt import adopt
from meshbridge.istiod.oracle import IstiodConfig
from meshbridge.local.meshca import mesh_ca, write_workload_certs
from meshbridge.local.plan import plan_topology
from meshbridge.pki.x509 import CertBundle, issue_ca, issue_leaf, issue_workload_cert, signed_by
from tests.builders import seed_bridge
from tests.istio_builders import Docs, doc_named, istio_mutual_egress, seed_path

MESH = """
apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: finance}
spec:
  selector: {app: ledger}
  ports: [{name: http, port: 8080}, {name: grpc-api, port: 9090}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ledger, namespace: finance}
spec:
  host: ledger.finance.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets:
  - name: v2
    labels: {version: v2}
---
apiVersion: v1
kind: Service
metadata: {name: internal-gateway, namespace: reporting}
spec:
  selector: {app: internal-gateway}
  ports: [{name: https, port: 443, targetPort: 8443}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: internal, namespace: reporting}
spec:
  selector: {app: internal-gateway}
  servers:
  - port: {number: 443, name: https-mesh, protocol: HTTPS}
    hosts: [reports.internal]
    tls: {mode: ISTIO_MUTUAL}
"""
SLEEP = Proxy("sidecar", "sleep", "default", {"app": "sleep"})
GATEWAY = Proxy("router", "internal-gateway", "reporting", {"app": "internal-gateway"}, service_account="gw-sa")
PODS = [
    Workload("ledger", "finance", {"app": "ledger", "version": "v2"}, "10.0.0.2", "ledger-sa"),
    Workload("internal-gateway", "reporting", {"app": "internal-gateway"}, "10.0.0.3", "gw-sa"),
]
LEDGER = "outbound|8080||ledger.finance.svc.cluster.local"


def _translate(
    tmp: Path, text: str = MESH, proxy: Proxy = SLEEP, certs: bool = True, settings: MeshSettings | None = None
) -> ProxyConfig:
    docs = [("test", d) for d in yaml.safe_load_all(text)]
    place = Placement("127.0.9.9", tmp / "xds", workload_certs=tmp / "workload" if certs else None)
    return translate(build_config(docs, settings), proxy, place, PODS)


def _context(pc: ProxyConfig, cluster: str) -> dict[str, Any]:
    (found,) = [c for c in pc.clusters if c["name"] == cluster]
    ctx: dict[str, Any] = found["transport_socket"]["typed_config"]
    return ctx


def _sans(ctx: dict[str, Any]) -> set[str]:
    default = ctx["common_tls_context"]["combined_validation_context"]["default_validation_context"]
    return {m["matcher"]["exact"] for m in default.get("match_typed_subject_alt_names", [])}


# -- the upstream: what istiod writes ----------------------------------------------------------------------


def test_a_cluster_shakes_hands_with_the_workload_certificate_and_pins_the_pods_identity(tmp_path: Path) -> None:
    ctx = _context(_translate(tmp_path), LEDGER)
    common = ctx["common_tls_context"]
    assert [s["name"] for s in common["tls_certificate_sds_secret_configs"]] == ["default"]
    assert common["combined_validation_context"]["validation_context_sds_secret_config"]["name"] == "ROOTCA"
    assert _sans(ctx) == {"spiffe://cluster.local/ns/finance/sa/ledger-sa"}  # the pods' ServiceAccount
    assert ctx["sni"] == "outbound_.8080_._.ledger.finance.svc.cluster.local"
    assert common["alpn_protocols"] == ["istio-peer-exchange", "istio"]


def test_a_subset_and_an_http2_port_change_the_sni_and_the_alpn(tmp_path: Path) -> None:
    pc = _translate(tmp_path)
    subset = _context(pc, "outbound|8080|v2|ledger.finance.svc.cluster.local")
    assert subset["sni"] == "outbound_.8080_.v2_.ledger.finance.svc.cluster.local"
    grpc = _context(pc, "outbound|9090||ledger.finance.svc.cluster.local")
    assert grpc["common_tls_context"]["alpn_protocols"] == ["istio-peer-exchange", "istio", "h2"]


def test_the_rules_own_sni_and_sans_win_over_istiods(tmp_path: Path) -> None:
    """The twin of the defaults: what the rule names is what goes on the wire (Istio's egress mTLS task)."""
    text = MESH.replace(
        "trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}",
        "trafficPolicy: {tls: {mode: ISTIO_MUTUAL, sni: ledger.example, subjectAltNames: [spiffe://other/ns/x/sa/y]}}",
    )
    ctx = _context(_translate(tmp_path, text), LEDGER)
    assert ctx["sni"] == "ledger.example"
    assert _sans(ctx) == {"spiffe://other/ns/x/sa/y"}


def test_the_identity_is_in_the_meshs_trust_domain_and_a_service_without_pods_pins_none(tmp_path: Path) -> None:
    pc = _translate(tmp_path, settings=MeshSettings(trust_domain="gke.example.com"))
    assert _sans(_context(pc, LEDGER)) == {"spiffe://gke.example.com/ns/finance/sa/ledger-sa"}
    lonely = MESH.replace("selector: {app: ledger}", "selector: {app: nobody}")
    ctx = _context(_translate(tmp_path, lonely), LEDGER)
    assert ctx["common_tls_context"]["combined_validation_context"]["default_validation_context"] == {}


def test_disable_sends_plain_text(tmp_path: Path) -> None:
    """Negative twin: without ISTIO_MUTUAL the same cluster has no TLS at all."""
    pc = _translate(tmp_path, MESH.replace("mode: ISTIO_MUTUAL}", "mode: DISABLE}", 1))
    (cluster,) = [c for c in pc.clusters if c["name"] == LEDGER]
    assert "transport_socket" not in cluster


# -- the secrets: what the twin serves ---------------------------------------------------------------------


def test_the_twin_serves_default_and_rootca_as_files_and_no_key_inline(tmp_path: Path) -> None:
    pc = _translate(tmp_path)
    chain, key, root = (str(tmp_path / "workload" / f) for f in WORKLOAD_FILES)
    assert pc.secrets["default"] is not None and pc.secrets["ROOTCA"] is not None
    assert pc.secrets["default"]["tls_certificate"] == {
        "certificate_chain": {"filename": chain},
        "private_key": {"filename": key},
    }
    assert pc.secrets["ROOTCA"]["validation_context"] == {"trusted_ca": {"filename": root}}
    shown = {s["name"]: s for s in pc.static_bootstrap()["static_resources"]["secrets"]}
    assert shown["default"]["tls_certificate"]["private_key"] == {"filename": key}  # where the key is, not the key
    assert not [i for i in check_consistency(pc) if "secret" in i.message]


def test_without_a_mesh_ca_the_two_names_are_not_served_and_the_check_says_so(tmp_path: Path) -> None:
    pc = _translate(tmp_path, certs=False)
    assert pc.secrets["default"] is None and pc.secrets["ROOTCA"] is None
    assert f"warning: cluster {LEDGER}: secret default is not served: requests get 503 UF" in map(
        str, check_consistency(pc)
    )


# -- the downstream: the gateway's ISTIO_MUTUAL server -------------------------------------------------------


def test_an_istio_mutual_server_requires_a_client_certificate_the_mesh_root_validates(tmp_path: Path) -> None:
    pc = _translate(tmp_path, proxy=GATEWAY)
    (chain,) = [c for lst in pc.listeners for c in lst["filter_chains"]]
    ctx = chain["transport_socket"]["typed_config"]
    common = ctx["common_tls_context"]
    assert ctx["require_client_certificate"] is True
    assert [s["name"] for s in common["tls_certificate_sds_secret_configs"]] == ["default"]
    assert common["combined_validation_context"]["validation_context_sds_secret_config"]["name"] == "ROOTCA"
    assert chain["filter_chain_match"] == {"server_names": ["reports.internal"]}
    assert not [w for w in pc.warnings if "ISTIO_MUTUAL" in str(w) or "istio-agent" in str(w)]


def test_a_simple_server_requires_no_client_certificate(tmp_path: Path) -> None:
    """Negative twin: only ISTIO_MUTUAL (and MUTUAL) ask the client for a certificate."""
    text = MESH.replace("tls: {mode: ISTIO_MUTUAL}\n", "tls: {mode: SIMPLE, credentialName: reports-cert}\n")
    pc = _translate(tmp_path, text, proxy=GATEWAY)
    (chain,) = [c for lst in pc.listeners for c in lst["filter_chains"]]
    assert chain["transport_socket"]["typed_config"]["require_client_certificate"] is False


# -- compare: FD05 is gone ---------------------------------------------------------------------------------


def test_plain_text_where_istiod_uses_the_workload_certificate_is_an_undocumented_difference() -> None:
    (d,) = compare({f"cluster {LEDGER} tls": "plaintext"}, {f"cluster {LEDGER} tls": "istio-mutual"})
    assert d == Difference(f"cluster {LEDGER} tls", "plaintext", "istio-mutual", "")


def test_the_same_istio_mutual_on_both_sides_is_no_difference() -> None:
    facts = {f"cluster {LEDGER} tls": "istio-mutual", f"cluster {LEDGER} tls sni": "outbound_.8080_._.ledger"}
    assert compare(facts, dict(facts)) == []


# -- adopt: istiod's configuration in the twin ---------------------------------------------------------------

AUTO_MTLS = {
    "name": LEDGER,
    "type": "EDS",
    "edsClusterConfig": {"serviceName": LEDGER, "edsConfig": {"ads": {}}},
    "transportSocketMatches": [
        {
            "name": "tlsMode-istio",
            "match": {"tlsMode": "istio"},
            "transportSocket": {
                "name": "envoy.transport_sockets.tls",
                "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "commonTlsContext": {
                        "tlsCertificateSdsSecretConfigs": [{"name": "default", "sdsConfig": {"ads": {}}}],
                        "combinedValidationContext": {
                            "defaultValidationContext": {},
                            "validationContextSdsSecretConfig": {"name": "ROOTCA", "sdsConfig": {"ads": {}}},
                        },
                    },
                },
            },
        },
        {"name": "tlsMode-disabled", "match": {}, "transportSocket": {"name": "envoy.transport_sockets.raw_buffer"}},
    ],
}


def _adopted(tmp: Path, certs: bool) -> ProxyConfig:
    ours = _translate(tmp, MESH.replace("mode: ISTIO_MUTUAL}", "mode: DISABLE}", 1), certs=certs)
    return adopt(IstiodConfig("mesh/sleep", [], [], [copy.deepcopy(AUTO_MTLS)], [], []), ours)


def test_adopt_keeps_istiods_auto_mtls_and_serves_its_secrets_from_the_twins_mesh_ca(tmp_path: Path) -> None:
    pc = _adopted(tmp_path, certs=True)
    (cluster,) = pc.clusters
    assert [m["name"] for m in cluster["transport_socket_matches"]] == ["tlsMode-istio", "tlsMode-disabled"]
    assert pc.secrets["default"] is not None and pc.secrets["ROOTCA"] is not None
    assert pc.warnings == []


def test_adopt_without_a_mesh_ca_says_which_secrets_nothing_serves(tmp_path: Path) -> None:
    pc = _adopted(tmp_path, certs=False)
    assert sorted(w.name for w in pc.warnings) == ["ROOTCA", "default"]
    assert all("the twin serves none by that name" in w.message for w in pc.warnings)


# -- the workload certificate: Istio's CA profile -------------------------------------------------------------


def test_a_workload_certificate_is_istios_profile() -> None:
    ca = issue_ca("mesh CA")
    cert = issue_workload_cert(ca, "spiffe://gke.example.com/ns/sleep/sa/sleep")
    assert cert.uris == ["spiffe://gke.example.com/ns/sleep/sa/sleep"] and cert.dns_names == []
    assert cert.ekus == ["serverAuth", "clientAuth"]  # a proxy is both ends of the mesh's mutual TLS
    assert cert.subject == "" and cert.key_type == "ECDSA_P256" and not cert.is_ca
    assert cert.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    assert signed_by(cert.cert, ca.cert)


def test_a_workload_certificate_needs_a_spiffe_id_and_a_ca() -> None:
    ca = issue_ca("mesh CA")
    with pytest.raises(PkiError, match=r"cannot issue a workload certificate for 'sleep': its identity must be a "):
        issue_workload_cert(ca, "sleep")
    leaf = issue_leaf(ca, "server", common_name="x", dns_names=["x.example"])
    with pytest.raises(PkiError, match=r"is not a CA .*issue workload certificates from a mesh CA"):
        issue_workload_cert(leaf, "spiffe://td/ns/a/sa/b")


# -- the twin's mesh CAs and workload certificates (files) ----------------------------------------------------

TRUST = {"eks": "eks.example.com", "gke": "gke.example.com"}


def test_each_proxy_gets_its_identity_from_its_own_meshs_ca(tmp_path: Path) -> None:
    plan = plan_topology(seed_bridge(), tmp_path, "127.0.9.0/24", privileged=False)
    identities = write_workload_certs(plan, TRUST)
    assert identities == {
        "eks/istio-ingressgateway": "spiffe://eks.example.com/ns/istio-ingress/sa/istio-ingressgateway-service-account",
        "gke/istio-egressgateway": "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account",
        "gke/sleep": "spiffe://gke.example.com/ns/sleep/sa/sleep",
    }
    cas = {m: CertBundle((plan.mesh_ca_dir(m) / "ca.crt").read_bytes()) for m in TRUST}
    for name, identity in identities.items():
        folder = plan.placements[name].workload_certs
        assert folder is not None
        chain, key, root = (folder / f for f in WORKLOAD_FILES)
        cert = CertBundle(chain.read_bytes())
        assert cert.uris == [identity]
        mesh = name.split("/")[0]
        other = "gke" if mesh == "eks" else "eks"
        assert signed_by(cert.cert, cas[mesh].cert) and not signed_by(cert.cert, cas[other].cert)
        assert root.read_bytes() == cas[mesh].cert_pem
        assert key.stat().st_mode & 0o777 == 0o600
    assert (plan.mesh_ca_dir("gke") / "ca.key").stat().st_mode & 0o777 == 0o600


def test_a_second_run_keeps_the_ca_and_the_certificates(tmp_path: Path) -> None:
    plan = plan_topology(seed_bridge(), tmp_path, "127.0.9.0/24", privileged=False)
    write_workload_certs(plan, TRUST)
    folder = plan.placements["gke/sleep"].workload_certs
    assert folder is not None
    before = {f: (folder / f).read_bytes() for f in WORKLOAD_FILES}
    write_workload_certs(plan, TRUST)
    assert {f: (folder / f).read_bytes() for f in WORKLOAD_FILES} == before


def test_a_certificate_from_another_meshs_ca_or_for_another_identity_is_issued_anew(tmp_path: Path) -> None:
    """Negative twin of keeping: what the mesh's CA did not sign, or signed for someone else, is replaced."""
    plan = plan_topology(seed_bridge(), tmp_path, "127.0.9.0/24", privileged=False)
    write_workload_certs(plan, TRUST)
    folder = plan.placements["gke/sleep"].workload_certs
    assert folder is not None
    foreign = issue_workload_cert(mesh_ca(plan.mesh_ca_dir("eks"), "eks"), "spiffe://gke.example.com/ns/sleep/sa/sleep")
    assert foreign.key_pem is not None
    (folder / "cert-chain.pem").write_bytes(foreign.cert_pem)
    (folder / "key.pem").write_bytes(foreign.key_pem)
    gke_ca = CertBundle((plan.mesh_ca_dir("gke") / "ca.crt").read_bytes())
    write_workload_certs(plan, TRUST)
    cert = CertBundle((folder / "cert-chain.pem").read_bytes())
    assert cert.cert_pem != foreign.cert_pem and signed_by(cert.cert, gke_ca.cert)
    write_workload_certs(plan, {**TRUST, "gke": "other.example.com"})
    renamed = CertBundle((folder / "cert-chain.pem").read_bytes())
    assert renamed.uris == ["spiffe://other.example.com/ns/sleep/sa/sleep"] and signed_by(renamed.cert, gke_ca.cert)


def test_an_expiring_mesh_ca_is_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    old = mesh_ca(folder, "gke", now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert mesh_ca(folder, "gke", now=dt.datetime(2020, 6, 1, tzinfo=dt.UTC)).cert_pem == old.cert_pem
    later = mesh_ca(folder, "gke", now=old.not_after - dt.timedelta(hours=1))
    assert later.cert_pem != old.cert_pem and (folder / "ca.crt").read_bytes() == later.cert_pem


# -- the path simulation (translate's and local up's notes, verify) ------------------------------------------


def test_the_path_simulation_carries_istio_mutual_from_the_sidecar_to_the_egress_gateway(tmp_path: Path) -> None:
    hops = trace_exports(seed_bridge(), seed_path(tmp_path, istio_mutual_egress))
    egress = hops[1].request
    assert (hops[1].proxy, egress.port, egress.tls, egress.sni, egress.client_cert) == (
        "gke/istio-egressgateway",
        8443,
        True,
        "lambda.external",
        True,
    )
    assert egress.alpn == ("istio-peer-exchange", "istio")
    assert [h.result.cluster for h in hops][1:] == [
        "outbound|80||lambda.external",
        "outbound|443||alb.internal.example.com",
    ]
    assert all(h.ok for h in hops)


def test_plain_text_to_an_istio_mutual_gateway_server_stops_at_the_gateway(tmp_path: Path) -> None:
    """Negative twin: the sidecar's subset without ISTIO_MUTUAL sends plain text, which no filter chain takes."""

    def plain_subset(docs: Docs) -> None:
        istio_mutual_egress(docs)
        doc_named(docs, "gke", "DestinationRule", "egressgateway-for-lambda")["spec"]["subsets"] = [{"name": "lambda"}]

    (stop,) = path_findings(seed_bridge(), seed_path(tmp_path, plain_subset))
    assert (stop.proxy, stop.result.response_flag) == ("gke/istio-egressgateway", "NR")
    assert "filter_chain_not_found" in str(stop)
