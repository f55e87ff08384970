"""Istio's validation of a Gateway (``ValidateGateway`` in istio pkg/config/validation): meshbridge renders no
Gateway it refuses, and refuses a hand-written one in Istio's words (lint and translate), as the webhook would."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.errors import IstioConfigError
from meshbridge.istio.parse import build_config
from meshbridge.render import render_bridge
from tests.builders import ARTICLE, bridge_from, seed_bridge, two_exports_three_meshes

DUPLICATE = "port names in servers must be unique: duplicate name https"


def two_gateway_ports() -> dict[str, Any]:
    """Two exports of eks, lambda on the gateway's 443 and orders on 9443."""
    d = two_exports_three_meshes()
    d["spec"]["exports"][1]["gatewayPort"] = 9443
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = [
        {"name": "status-port", "port": 15021, "targetPort": 15021},
        {"name": "https", "port": 443, "targetPort": 8443},
        {"name": "https-orders", "port": 9443, "targetPort": 9443},
    ]
    return d


def _server_names(docs: list[dict[str, Any]]) -> list[tuple[str, int]]:
    (gw,) = [d for d in docs if d["kind"] == "Gateway"]
    return [(s["port"]["name"], s["port"]["number"]) for s in gw["spec"]["servers"]]


def test_exports_on_two_gateway_ports_render_servers_of_their_own_names_istio_validates() -> None:
    docs = list(render_bridge(bridge_from(two_gateway_ports()), None)["eks"])
    assert _server_names(docs) == [("https-lambda", 443), ("https-orders", 9443)]
    build_config([("eks.yaml", d) for d in docs])  # Istio's validation takes it


def test_negative_twin_the_only_export_keeps_the_seeds_name() -> None:
    docs = list(render_bridge(seed_bridge(), None)["eks"])
    assert _server_names(docs) == [("https", 443)]


def _gateway(*servers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "partner-gateway", "namespace": "istio-ingress"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": list(servers)},
    }


def _server(name: str, number: int, **extra: Any) -> dict[str, Any]:
    tls = {"mode": "MUTUAL", "credentialName": "mtls-credential"}
    return {"hosts": ["api.partner.example"], "port": {"name": name, "number": number, "protocol": "HTTPS"}} | {
        "tls": tls,
        **extra,
    }


def test_two_servers_with_one_port_name_are_refused_in_istios_words() -> None:
    with pytest.raises(IstioConfigError) as caught:
        build_config([("mine.yaml", _gateway(_server("https", 443), _server("https", 9443)))])
    said = str(caught.value)
    assert said.startswith("mine.yaml: Gateway istio-ingress/partner-gateway: spec.servers[1].port.name: " + DUPLICATE)
    assert "(spec.servers[0] on port 443 and spec.servers[1] on port 9443)" in said
    assert said.endswith("Fix: a name of its own for each server, e.g. https-9443")


def test_negative_twin_servers_with_names_of_their_own_are_taken() -> None:
    cfg = build_config([("mine.yaml", _gateway(_server("https", 443), _server("https-9443", 9443)))])
    assert [s.port.name for s in cfg.gateways[0].spec.servers] == ["https", "https-9443"]


@pytest.mark.parametrize(
    ("server", "said"),
    [
        (_server("", 443), "spec.servers[0].port.name: port name must be set"),
        (_server("https", 443, hosts=[]), "spec.servers[0].hosts: server config must contain at least one host"),
        (_server("https", 443, tls=None), "spec.servers[0].tls: server must have TLS settings for HTTPS/TLS"),
        (
            _server("https", 443) | {"port": {"name": "https", "number": 443, "protocol": "HTTPS", "targetPort": 8443}},
            "spec.servers[0].port.targetPort: targetPort has no impact on Gateways",
        ),
    ],
)
def test_what_else_istios_gateway_validation_refuses_is_refused(server: dict[str, Any], said: str) -> None:
    server = {k: v for k, v in server.items() if v is not None}
    with pytest.raises(IstioConfigError, match=re.escape(said)):
        build_config([("mine.yaml", _gateway(server))])


def test_a_plain_http_server_needs_no_tls() -> None:
    """The negative twin of the TLS rule: an HTTP server without tls is valid."""
    plain = {"hosts": ["*"], "port": {"name": "http", "number": 80, "protocol": "HTTP"}}
    assert build_config([("mine.yaml", _gateway(plain))]).gateways


@pytest.fixture
def article(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The article's spec and its exporter manifest, with a second server named https on 9443 beside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    assert main(["init"]) == 0
    docs = list(yaml.safe_load_all((ARTICLE / "eks.yaml").read_text()))
    (gw,) = [d for d in docs if d and d["kind"] == "Gateway"]
    (first,) = gw["spec"]["servers"]
    assert first["port"]["name"] == "https"
    second = copy.deepcopy(first)
    second["port"]["number"] = 9443
    gw["spec"]["servers"].append(second)
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump_all([d for d in docs if d]))
    second["port"]["name"] = "https-9443"
    (tmp_path / "unique.yaml").write_text(yaml.safe_dump_all([d for d in docs if d]))
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [["lint", "--mesh", "eks={}"], ["translate", "--proxy", "eks/istio-ingressgateway", "--manifests", "eks={}"]],
)
def test_lint_and_translate_refuse_a_gateway_with_duplicate_port_names(
    article: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main([c.format("dup.yaml") for c in command]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "Gateway istio-ingress/eastwestgateway: spec.servers[1].port.name: " + DUPLICATE in said
    assert main([c.format("unique.yaml") for c in command]) in (0, 1)  # the negative twin: judged, not refused
    assert DUPLICATE not in " ".join(capsys.readouterr().err.split())


def test_a_gateway_name_with_dots_is_refused_and_one_without_is_taken() -> None:
    dotted = _gateway(_server("https", 443))
    dotted["metadata"]["name"] = "partner.gateway"
    with pytest.raises(IstioConfigError, match=re.escape("metadata.name: invalid gateway name: 'partner.gateway'")):
        build_config([("mine.yaml", dotted)])
    dotted["metadata"]["name"] = "partner-gateway"  # the negative twin: the fix the message gives
    assert build_config([("mine.yaml", dotted)]).gateways
