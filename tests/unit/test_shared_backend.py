"""Exports of one mesh on one backend host (one internal ALB in front of several Lambdas): the exporter gets one
backend ServiceEntry and DestinationRule, named after the first export, shared by the others' VirtualServices, as
istiod keeps one cluster per host and port; exports on one host that disagree on its port or TLS are a spec error.
Manifests that declare one host twice translate as istiod's sidecar scope merges them (corpus case
serviceentry-two-for-one-host judges it against istiod)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from meshbridge.errors import SpecError
from meshbridge.istio.parse import build_config
from meshbridge.istio.visibility import Proxy, services, visible_services
from meshbridge.local.plan import plan_topology
from meshbridge.render import render_bridge
from meshbridge.render.manifests import Document
from tests.builders import bridge_from, seed_dict, two_exports_three_meshes

ALB = "alb.internal.example.com"


def _two_on_one_alb(**backend: Any) -> dict[str, Any]:
    """The seed with a second export, orders → orders.external, on the seed's ALB (``backend`` overrides)."""
    d = seed_dict()
    orders = copy.deepcopy(d["spec"]["exports"][0])
    orders.update({"name": "orders", "host": "orders.external"})
    orders["backend"].update(backend)
    d["spec"]["exports"].append(orders)
    return d


def _eks(d: dict[str, Any]) -> list[Document]:
    return list(render_bridge(bridge_from(d), None)["eks"])


def _names(docs: list[Document], kind: str) -> list[str]:
    return [d["metadata"]["name"] for d in docs if d["kind"] == kind]


def test_two_exports_on_one_backend_share_one_service_entry_and_destination_rule() -> None:
    docs = _eks(_two_on_one_alb())
    assert _names(docs, "ServiceEntry") == ["se-lambda-backend"]
    assert _names(docs, "DestinationRule") == ["dr-lambda-backend"]
    routes = {
        d["metadata"]["name"]: d["spec"]["http"][0]["route"][0]["destination"]
        for d in docs
        if d["kind"] == "VirtualService"
    }
    assert routes == {
        "vs-lambda": {"host": ALB, "port": {"number": 443}},
        "vs-orders": {"host": ALB, "port": {"number": 443}},
    }


def test_negative_twin_exports_on_two_backends_get_one_service_entry_each() -> None:
    docs = _eks(two_exports_three_meshes())
    assert _names(docs, "ServiceEntry") == ["se-lambda-backend", "se-orders-backend"]
    assert _names(docs, "DestinationRule") == ["dr-lambda-backend"]  # orders' backend is plain HTTP


@pytest.mark.parametrize(
    ("backend", "shown"),
    [
        ({"port": 8443}, "(port 443, tls {'mode': 'SIMPLE'} vs port 8443, tls {'mode': 'SIMPLE'})"),
        ({"tls": {"mode": "SIMPLE", "sni": "orders.example.com"}}, "{'mode': 'SIMPLE', 'sni': 'orders.example.com'})"),
    ],
)
def test_exports_on_one_backend_that_disagree_are_a_spec_error_naming_both(backend: dict[str, Any], shown: str) -> None:
    with pytest.raises(SpecError) as exc:
        bridge_from(_two_on_one_alb(**backend))
    text = str(exc.value)
    assert "spec.exports[1].backend" in text and shown in text, text
    assert f"exports 'lambda' and 'orders' of mesh 'eks' both reach backend '{ALB}'" in text
    assert "give 'orders' the same backend.port and backend.tls as 'lambda'" in text


def test_gateway_api_exporter_gets_one_backend_tls_policy_per_backend() -> None:
    d = _two_on_one_alb()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["api"] = "gateway-api"
    d["spec"]["meshes"]["eks"]["istio"]["version"] = "1.31.0"
    docs = _eks(d)
    (policy,) = [p for p in docs if p["kind"] == "BackendTLSPolicy"]
    assert policy["spec"]["targetRefs"][0]["name"] == "se-lambda-backend"
    assert _names(docs, "HTTPRoute") == ["lambda", "orders"]


def test_negative_twin_gateway_api_exporters_on_two_tls_backends_get_a_policy_each() -> None:
    d = _two_on_one_alb(host="orders.internal.example.com")
    d["spec"]["meshes"]["eks"]["ingressGateway"]["api"] = "gateway-api"
    d["spec"]["meshes"]["eks"]["istio"]["version"] = "1.31.0"
    docs = _eks(d)
    assert [p["spec"]["targetRefs"][0]["name"] for p in docs if p["kind"] == "BackendTLSPolicy"] == [
        "se-lambda-backend",
        "se-orders-backend",
    ]


def _entry(name: str, ns: str, ports: list[int], resolution: str = "DNS") -> tuple[str, dict[str, Any]]:
    spec = {
        "hosts": [ALB],
        "ports": [{"name": f"http-{p}", "number": p, "protocol": "HTTP"} for p in ports],
        "resolution": resolution,
    }
    md = {"name": name, "namespace": ns}
    return ("t", {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": md, "spec": spec})


def _seen(*entries: tuple[str, dict[str, Any]]) -> list[Any]:
    cfg = build_config(list(entries))
    return visible_services(cfg, Proxy("sidecar", "sleep", "default", {"app": "sleep"}), services(cfg))


def test_two_service_entries_for_one_host_in_one_namespace_are_one_service_with_both_ports_and_endpoints() -> None:
    (svc,) = _seen(_entry("alb-lambda", "payments", [443]), _entry("alb-orders", "payments", [443, 8080]))
    assert [p.number for p in svc.ports] == [443, 8080]
    assert [(e.address, e.port) for e in svc.endpoints(svc.port(443))] == [(ALB, 443), (ALB, 443)]
    assert [(e.address, e.port) for e in svc.endpoints(svc.port(8080))] == [(ALB, 8080)]  # the second's port only


@pytest.mark.parametrize(
    "second",
    [_entry("alb-orders", "payments", [443, 8080], resolution="STATIC"), _entry("alb-orders", "other", [443, 8080])],
    ids=["another-resolution", "another-namespace"],
)
def test_negative_twin_a_service_entry_istiod_cannot_merge_adds_no_port(second: tuple[str, dict[str, Any]]) -> None:
    (svc,) = _seen(_entry("alb-lambda", "payments", [443]), second)
    assert [p.number for p in svc.ports] == [443] and svc.source == "ServiceEntry payments/alb-lambda"


def test_the_twin_runs_one_alb_for_exports_on_one_backend_host(tmp_path: Path) -> None:
    plan = plan_topology(bridge_from(_two_on_one_alb()), tmp_path, "127.0.9.0/24", privileged=False)
    (alb,) = plan.albs
    assert (alb.name, alb.host) == ("eks/alb-lambda", ALB) and plan.dns_zones["eks"][ALB] == alb.address


def test_negative_twin_exports_on_two_backend_hosts_get_an_alb_each(tmp_path: Path) -> None:
    d = _two_on_one_alb(host="orders.internal.example.com")
    plan = plan_topology(bridge_from(d), tmp_path, "127.0.9.0/24", privileged=False)
    assert [(a.name, a.host) for a in plan.albs] == [
        ("eks/alb-lambda", ALB),
        ("eks/alb-orders", "orders.internal.example.com"),
    ]
