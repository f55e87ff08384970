"""``local curl`` to a host the app's sidecar routes on another port only: the ports its routes serve it on."""

from __future__ import annotations

from typing import Any

from meshbridge.local.curl import routed_ports


def _sidecar(routes: dict[str, list[list[str]]]) -> dict[str, Any]:
    """A sidecar's ``/config_dump``: route configuration name (istiod's: the port) → each virtual host's domains."""
    configs = [
        {"route_config": {"name": name, "virtual_hosts": [{"name": d[0], "domains": d} for d in vhosts]}}
        for name, vhosts in routes.items()
    ]
    return {
        "configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": configs}]
    }


ORDERS = ["orders.example.internal", "orders.example.internal:8080"]
LAMBDA = ["lambda.external", "lambda.external:80"]


def test_a_host_imported_on_8080_is_routed_there_only() -> None:
    dump = _sidecar(
        {
            "80": [LAMBDA, ["*"]],
            "8080": [ORDERS, ["*"]],
            "9090": [["orders.example.internal", "orders.example.internal:9090"]],
        }
    )
    assert routed_ports(dump, "orders.example.internal") == [8080, 9090]
    assert routed_ports(dump, "ORDERS.example.internal") == [8080, 9090]  # a host name is not case-sensitive
    assert routed_ports(dump, "lambda.external") == [80]


def test_a_host_no_route_names_is_routed_nowhere_not_by_a_catch_all() -> None:
    dump = _sidecar({"80": [LAMBDA, ["*"]], "inbound|8080||": [ORDERS]})  # the allow_any '*'; not a port's name
    assert routed_ports(dump, "orders.example.internal") == []
    assert routed_ports(dump, "unknown.example.internal") == []
