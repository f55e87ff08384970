"""ServiceEntry resolution DYNAMIC_DNS (Istio's dynamic forward proxy) is read, said to be not modelled, and left
out of every proxy's registry; the oracle's differences it causes are FD09's and no others'."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from meshbridge.envoy.compare import DOCUMENTED, Difference, compare, facts
from meshbridge.errors import IstioConfigError
from meshbridge.istio.parse import build_config, load_documents
from meshbridge.istio.visibility import services

CASE = Path(__file__).resolve().parents[1] / "oracle" / "cases" / "serviceentry-dynamic-dns.yaml"


def _docs() -> list[tuple[str, dict[str, Any]]]:
    return load_documents([CASE])


def test_a_dynamic_dns_entry_is_read_with_a_warning_naming_the_limitation_and_left_out() -> None:
    cfg = build_config(_docs())
    (warning,) = cfg.warnings
    assert (warning.kind, warning.name, warning.field) == ("ServiceEntry", "partner-regions", "spec.resolution")
    assert warning.message.startswith("resolution DYNAMIC_DNS is not modelled: istiod gives *.regions.partner.example")
    assert "docs/fidelity.md FD09" in warning.message
    assert [s.hostname for s in services(cfg)] == ["billing.partner.example"]  # the DNS entry stays


def test_negative_twin_the_same_entry_with_resolution_dns_is_modelled_without_a_warning() -> None:
    docs = _docs()
    docs[0][1]["spec"]["resolution"] = "DNS"
    cfg = build_config(docs)
    assert cfg.warnings == []
    assert {s.hostname for s in services(cfg)} == {"*.regions.partner.example", "billing.partner.example"}


DFP_CLUSTER = {
    "name": "outbound|80||*.regions.partner.example",
    "cluster_type": {"name": "envoy.clusters.dynamic_forward_proxy", "typed_config": {}},
    "lb_policy": "CLUSTER_PROVIDED",
}


def _fd09(d: Difference, istiod_clusters: list[dict[str, Any]]) -> str:
    istiod = facts([], [], istiod_clusters, [], [])
    (found,) = [x for x in compare({}, istiod, DOCUMENTED, "sidecar") if x.path == d.path]
    return found.documented


def test_istiods_dynamic_forward_proxy_cluster_is_fd09_not_fd07() -> None:
    istiod = facts([], [], [DFP_CLUSTER], [], [])
    assert istiod["cluster outbound|80||*.regions.partner.example type"] == "DYNAMIC_FORWARD_PROXY"
    assert _fd09(Difference("cluster outbound|80||*.regions.partner.example", None, "present"), [DFP_CLUSTER]) == (
        "FD09"
    )


def test_negative_twin_an_original_dst_cluster_only_istiod_has_stays_fd07() -> None:
    original = {"name": "outbound|443||*.cloud.example", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED"}
    assert _fd09(Difference("cluster outbound|443||*.cloud.example", None, "present"), [original]) == "FD07"


def test_the_dfp_http_filter_is_fd09_only_when_it_is_the_whole_difference() -> None:
    fd09 = next(e for e in DOCUMENTED if e.id == "FD09")
    path = "listener 0.0.0.0_80 chain[transport=raw_buffer] hcm http_filters"
    istiod = {**facts([], [], [DFP_CLUSTER], [], []), path: ["fault", "envoy.filters.http.dynamic_forward_proxy", "r"]}
    assert fd09.covers(Difference(path, ["fault", "r"], istiod[path]), "sidecar", {path: ["fault", "r"]}, istiod)
    other = {path: ["fault", "envoy.filters.http.rbac", "r"]}
    assert not fd09.covers(Difference(path, other[path], istiod[path]), "sidecar", other, istiod)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"hosts": ["api.partner.example"]}, "spec.hosts: host must be wildcarded for resolution mode DYNAMIC_DNS"),
        ({"addresses": ["240.0.0.9"]}, "spec.addresses: addresses cannot be set for resolution type DYNAMIC_DNS"),
        ({"ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}]}, "only HTTP, TLS, GRPC, and HTTP2"),
    ],
)
def test_what_istios_validation_refuses_for_dynamic_dns_is_refused_in_its_words(
    change: dict[str, Any], said: str
) -> None:
    docs = _docs()
    docs[0][1]["spec"].update(change)
    with pytest.raises(IstioConfigError, match=re.escape(said)):
        build_config(docs)
