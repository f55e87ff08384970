"""Render with ``ingressGateway.api: gateway-api``: the exporter's routing in the Kubernetes Gateway API (a Gateway of
class ``istio`` with frontend client-certificate validation, an HTTPRoute and a BackendTLSPolicy per export), the
Istio version it needs, and the ports of the Service Istio deploys. What istiod builds from these documents is
judged in tests/oracle/test_gateway_api.py."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.errors import RenderError, SpecError
from meshbridge.kube.apply import owned_types
from meshbridge.render import render_bridge
from meshbridge.render.gatewayapi import served_credential
from meshbridge.render.manifests import Document
from meshbridge.render.owned import owned_kinds
from meshbridge.render.rbac import render_rbac
from tests.builders import bridge_from, seed_dict, two_exports_three_meshes
from tests.unit.test_render_rbac import granted

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _gateway_api(d: dict[str, Any], version: str = "1.31.0") -> dict[str, Any]:
    eks = d["spec"]["meshes"]["eks"]
    eks["ingressGateway"]["api"] = "gateway-api"
    eks.setdefault("istio", {})["version"] = version
    return d


def _eks(d: dict[str, Any], **kw: Any) -> list[Document]:
    return list(render_bridge(bridge_from(d), None, **kw)["eks"])


def _kinds(docs: list[Document]) -> list[tuple[str, str]]:
    return [(d["apiVersion"], d["kind"]) for d in docs]


def test_the_exporter_gets_a_gateway_with_client_certificate_validation_against_the_importers_ca() -> None:
    docs = _eks(_gateway_api(seed_dict()))
    (gw,) = [d for d in docs if d["kind"] == "Gateway"]
    assert gw["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gw["metadata"]["name"] == "eastwestgateway"
    assert gw["metadata"]["annotations"] == {
        "gateway.istio.io/name-override": "istio-ingressgateway",  # the Deployment and Service Istio creates
        "gateway.istio.io/service-account": "istio-ingressgateway-service-account",  # the identity stays
    }
    spec = gw["spec"]
    assert spec["gatewayClassName"] == "istio"
    assert spec["infrastructure"]["labels"] == {
        "app": "istio-ingressgateway",
        "istio": "ingressgateway",
        "istio.io/rev": "1-17",
    }
    (listener,) = spec["listeners"]
    assert listener["name"] == "https-lambda"
    assert listener["hostname"] == "lambda.external"
    assert (listener["port"], listener["protocol"]) == (443, "HTTPS")
    assert listener["tls"]["mode"] == "Terminate"
    assert listener["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "mtls-credential"}]
    assert spec["tls"]["frontend"]["default"]["validation"] == {
        "caCertificateRefs": [{"group": "", "kind": "Secret", "name": "mtls-credential"}]  # its cacert
    }


def test_istio_api_is_the_default_and_renders_no_gateway_api_kind() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["istio"]["version"] = "1.31.0"
    docs = _eks(d)
    assert ("networking.istio.io/v1", "Gateway") in _kinds(docs)
    assert not [k for k in _kinds(docs) if k[0].startswith("gateway.networking.k8s.io")]


def test_routing_is_an_httproute_and_a_backend_tls_policy_in_place_of_the_virtual_service_and_rule() -> None:
    docs = _eks(_gateway_api(seed_dict()))
    kinds = {k for _, k in _kinds(docs)}
    assert not kinds & {"VirtualService", "DestinationRule"}
    assert {"ServiceEntry", "AuthorizationPolicy", "EnvoyFilter", "HTTPRoute", "BackendTLSPolicy"} <= kinds
    (route,) = [d for d in docs if d["kind"] == "HTTPRoute"]
    assert route["spec"]["parentRefs"] == [{"name": "eastwestgateway", "sectionName": "https-lambda"}]
    assert route["spec"]["hostnames"] == ["lambda.external"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"group": "networking.istio.io", "kind": "Hostname", "name": "alb.internal.example.com", "port": 443}
    ]
    (policy,) = [d for d in docs if d["kind"] == "BackendTLSPolicy"]
    assert policy["spec"]["targetRefs"] == [
        {"group": "networking.istio.io", "kind": "ServiceEntry", "name": "se-lambda-backend"}
    ]
    assert policy["spec"]["validation"] == {
        "hostname": "alb.internal.example.com",
        "wellKnownCACertificates": "System",
        "subjectAltNames": [{"type": "Hostname", "hostname": "alb.internal.example.com"}],
    }


def test_the_importer_keeps_its_mutual_tls_destination_rule() -> None:
    d = _gateway_api(seed_dict())
    gke = list(render_bridge(bridge_from(d), None)["gke"])
    assert gke == list(render_bridge(bridge_from(seed_dict()), None)["gke"])
    (mtls,) = [x for x in gke if x["kind"] == "DestinationRule" and x["metadata"]["name"] == "dr-lambda-ext"]
    assert mtls["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["mode"] == "MUTUAL"


def test_a_backend_ca_file_is_a_config_map_the_policy_references() -> None:
    d = _gateway_api(seed_dict())
    d["spec"]["exports"][0]["backend"]["tls"]["caFile"] = "alb-ca.pem"
    docs = _eks(d, backend_cas={"lambda": CA_PEM})
    (cm,) = [x for x in docs if x["kind"] == "ConfigMap"]
    assert cm["metadata"]["name"] == "lambda-backend-ca"
    assert cm["data"] == {"ca.crt": CA_PEM.decode()}  # Istio 1.31 reads a ConfigMap's ca.crt, not a Secret
    (policy,) = [x for x in docs if x["kind"] == "BackendTLSPolicy"]
    validation = policy["spec"]["validation"]
    assert validation["caCertificateRefs"] == [{"group": "", "kind": "ConfigMap", "name": "lambda-backend-ca"}]
    assert "wellKnownCACertificates" not in validation
    assert not [x for x in docs if x["kind"] == "Secret"]  # the Istio form's CA Secret is not rendered


def test_a_plain_http_backend_gets_no_backend_tls_policy() -> None:
    docs = _eks(_gateway_api(two_exports_three_meshes()))
    listeners = next(x for x in docs if x["kind"] == "Gateway")["spec"]["listeners"]
    assert [(x["name"], x["hostname"]) for x in listeners] == [
        ("https-lambda", "lambda.external"),
        ("https-orders", "orders.external"),
    ]
    assert sorted(x["metadata"]["name"] for x in docs if x["kind"] == "HTTPRoute") == ["lambda", "orders"]
    (policy,) = [x for x in docs if x["kind"] == "BackendTLSPolicy"]  # orders' backend is plain HTTP
    assert policy["metadata"]["name"] == "lambda-backend"


def test_gateway_api_needs_istio_1_28() -> None:
    with pytest.raises(SpecError) as e:
        bridge_from(_gateway_api(seed_dict(), version="1.27.3"))
    msg = str(e.value)
    assert "spec.meshes.eks" in msg
    assert "gateway-api needs Istio 1.28 or later" in msg
    assert "'1.27.3'" in msg
    assert "remove ingressGateway.api" in msg
    bridge_from(_gateway_api(seed_dict(), version="1.28.0"))  # its twin: 1.28 is enough


def test_the_service_istio_deploys_maps_each_port_to_itself() -> None:
    ig = bridge_from(_gateway_api(seed_dict())).spec.meshes["eks"].ingress_gateway
    assert ig is not None
    assert [(p.port, p.target_port) for p in ig.ports] == [(15021, 15021), (80, 80), (443, 443)]
    d = _gateway_api(seed_dict())
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = [{"name": "https", "port": 443, "targetPort": 8443}]
    with pytest.raises(SpecError) as e:
        bridge_from(d)
    assert "maps 443 to targetPort 8443" in str(e.value)
    assert "set targetPort: 443" in str(e.value)


def test_plan_prune_delete_status_and_render_rbac_know_the_gateway_api_kinds() -> None:
    bridge = bridge_from(_gateway_api(seed_dict()))
    kinds = {f"{t.group}/{t.plural}" for t in owned_types(bridge, "eks")}
    exporter = {
        "gateway.networking.k8s.io/gateways",
        "gateway.networking.k8s.io/httproutes",
        "gateway.networking.k8s.io/backendtlspolicies",
        "/configmaps",
    }
    assert exporter <= kinds
    rules = granted(list(render_rbac(bridge)["eks"]), "istio-ingress")
    assert {r for r, verbs in rules.items() if verbs >= {"get", "list", "create", "patch", "delete"}} == kinds
    # its twin: the Istio form owns none of them (their CRDs need not be installed)
    istio = {f"{t.group}/{t.plural}" for t in owned_types(bridge_from(seed_dict()), "eks")}
    assert not istio & exporter
    rendered = {(d["apiVersion"].rpartition("/")[0], d["kind"]) for d in _eks(_gateway_api(seed_dict()))}
    owned = {(k.group, k.kind) for k in owned_kinds(bridge.spec.meshes["eks"])}
    assert rendered - {("", "Namespace")} <= owned  # every kind rendered is pruned and deleted


def test_the_credential_a_gateway_api_listener_holds_is_istiods_kubernetes_gateway_name() -> None:
    bridge = bridge_from(_gateway_api(seed_dict()))
    assert served_credential(bridge, "eks", "ingress") == "kubernetes-gateway://istio-ingress/mtls-credential"
    assert served_credential(bridge, "gke", "egress") == "mtls-credential"  # the importer's DestinationRule's
    assert served_credential(bridge_from(seed_dict()), "eks", "ingress") == "mtls-credential"  # the Istio form


def test_what_the_gateway_api_cannot_carry_is_refused_with_the_fix() -> None:
    d = _gateway_api(seed_dict())
    d["spec"]["tls"]["minProtocolVersion"] = "TLSV1_3"
    with pytest.raises(RenderError) as e:
        render_bridge(bridge_from(d), None)
    assert "cannot carry spec.tls.minProtocolVersion TLSV1_3" in str(e.value)
    assert "Fix: set minProtocolVersion: TLSV1_2, or keep ingressGateway.api: istio" in str(e.value)
    d = _gateway_api(seed_dict())
    d["spec"]["exports"][0]["backend"]["host"] = "10.0.3.7"
    with pytest.raises(RenderError) as e:
        render_bridge(bridge_from(d), None)
    assert "reaches its backend 10.0.3.7 by IP" in str(e.value)
    assert "spec.exports[0].backend.tls.sni" in str(e.value)
    # its twins: with the name on the backend's certificate, and the Istio form with TLS 1.3, render
    d["spec"]["exports"][0]["backend"]["tls"]["sni"] = "alb.internal.example.com"
    (policy,) = [x for x in render_bridge(bridge_from(d), None)["eks"] if x["kind"] == "BackendTLSPolicy"]
    assert policy["spec"]["validation"]["hostname"] == "alb.internal.example.com"
    istio = seed_dict()
    istio["spec"]["tls"]["minProtocolVersion"] = "TLSV1_3"
    render_bridge(bridge_from(istio), None)
