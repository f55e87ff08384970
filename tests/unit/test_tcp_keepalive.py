"""A DestinationRule's ``connectionPool.tcp.tcpKeepalive`` as istiod builds it (``applyTCPKeepalive``): the
cluster's ``upstream_connection_options.tcp_keepalive`` with each field the rule sets, durations in whole seconds;
none without it. The oracle case ``dr-connection-pool`` holds the same against istiod itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.istio_builders import Docs, doc_named, seed_path

CLUSTER = "outbound|80||lambda.external"


def _egress_cluster(tmp: Path, tcp: dict[str, Any] | None) -> dict[str, Any]:
    def edit(docs: Docs) -> None:
        (port,) = doc_named(docs, "gke", "DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"][
            "portLevelSettings"
        ]
        port["connectionPool"] = {"http": {"h2UpgradePolicy": "UPGRADE"}} | ({"tcp": tcp} if tcp is not None else {})

    (found,) = [c for c in seed_path(tmp, edit)["gke/istio-egressgateway"].clusters if c["name"] == CLUSTER]
    return found


def test_a_rules_tcp_keepalive_becomes_the_clusters_socket_option(tmp_path: Path) -> None:
    cluster = _egress_cluster(tmp_path, {"tcpKeepalive": {"time": "180s", "interval": "30s", "probes": 3}})
    expected = {"keepalive_probes": 3, "keepalive_time": 180, "keepalive_interval": 30}
    assert cluster["upstream_connection_options"] == {"tcp_keepalive": expected}


def test_only_the_fields_the_rule_sets_in_whole_seconds(tmp_path: Path) -> None:
    cluster = _egress_cluster(tmp_path, {"tcpKeepalive": {"time": "90500ms"}})
    assert cluster["upstream_connection_options"] == {"tcp_keepalive": {"keepalive_time": 90}}
    empty = _egress_cluster(tmp_path, {"tcpKeepalive": {}})  # SO_KEEPALIVE with the OS's timers
    assert empty["upstream_connection_options"] == {"tcp_keepalive": {}}


def test_no_keepalive_without_one_in_the_rule(tmp_path: Path) -> None:
    assert "upstream_connection_options" not in _egress_cluster(tmp_path, {"maxConnections": 10})
    assert "upstream_connection_options" not in _egress_cluster(tmp_path, None)
