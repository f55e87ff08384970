"""EnvoyFilter: the edge limits meshbridge renders, and any EnvoyFilter parsed, selected and patched as istiod would.

Every behaviour has its negative twin: the limits off render nothing; a patch of another namespace, another
context or another port changes nothing; an unsupported patch is a warning naming the object and the patch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.envoy.envoyfilter import proto_merge
from meshbridge.envoy.proxyconfig import format_proxy_config
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.errors import SpecError
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import build_config
from meshbridge.kube.apply import owned_types
from meshbridge.kube.resources import ResourceRef
from meshbridge.render import render_bridge
from meshbridge.spec.models import EdgeLimits
from meshbridge.world import mesh_config
from tests.builders import bridge_from, seed_bridge, seed_dict
from tests.istio_builders import proxy_config, rendered_config

INGRESS = "eks/istio-ingressgateway"
HCM = "envoy.filters.network.http_connection_manager"
LIMIT = "envoy.filters.network.connection_limit"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
LIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"


def chains(pc: ProxyConfig, port: int = 8443) -> list[dict[str, Any]]:
    (lst,) = [x for x in pc.listeners if x["name"] == f"0.0.0.0_{port}"]
    return list(lst["filter_chains"])


def filter_names(pc: ProxyConfig, port: int = 8443) -> list[list[str]]:
    return [[f["name"] for f in c["filters"]] for c in chains(pc, port)]


def hcm(chain: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(f["typed_config"] for f in chain["filters"] if f["name"] == HCM)
    return found


def with_limits(**limits: Any) -> dict[str, Any]:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["limits"] = limits
    return d


def with_docs(docs: list[dict[str, Any]], mesh: str = "eks") -> ConfigSet:
    """The seed's rendered manifests of ``mesh`` plus ``docs`` (a user's own YAML, as --manifests adds it)."""
    b = seed_bridge()
    rendered = [("rendered", d) for d in render_bridge(b, None)[mesh]]
    return mesh_config(b, mesh, rendered + [("user.yaml#0", d) for d in docs])


def envoy_filter(
    patches: list[dict[str, Any]],
    *,
    name: str = "user",
    namespace: str = "istio-ingress",
    labels: dict[str, str] | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"configPatches": patches}
    if labels is not None:
        spec["workloadSelector"] = {"labels": labels}
    if priority is not None:
        spec["priority"] = priority
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def insert(
    op: str, name: str, *, context: str = "GATEWAY", port: int = 8443, before: str | None = HCM
) -> dict[str, Any]:
    listener: dict[str, Any] = {"portNumber": port}
    if before is not None:
        listener["filterChain"] = {"filter": {"name": before}}
    return {
        "applyTo": "NETWORK_FILTER",
        "match": {"context": context, "listener": listener},
        "patch": {"operation": op, "value": {"name": name, "typed_config": {"@type": LIMIT_TYPE, "stat_prefix": name}}},
    }


# -- the spec ---------------------------------------------------------------------------------------------


def test_limits_are_on_by_default_with_the_documented_figures() -> None:
    lim = seed_bridge().spec.meshes["eks"].ingress_gateway.limits  # type: ignore[union-attr]
    assert lim == EdgeLimits()
    assert (lim.enabled, lim.max_connections, lim.idle_timeout, lim.request_headers_timeout) == (True, 10000, 3600, 10)
    assert lim.max_request_headers_kb == 60


@pytest.mark.parametrize(
    "limits", [{"maxConnections": 0}, {"idleTimeout": 0}, {"requestHeadersTimeout": -1}, {"maxRequestHeadersKb": 8193}]
)
def test_limits_out_of_range_are_refused(limits: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match=f"ingressGateway.limits.{next(iter(limits))}"):
        bridge_from(with_limits(**limits))


# -- render ---------------------------------------------------------------------------------------------


def test_the_exporter_gets_one_envoy_filter_on_its_https_listener_port() -> None:
    sets = render_bridge(bridge_from(with_limits(maxConnections=50, idleTimeout=2.5, requestHeadersTimeout=1)), None)
    ef = sets["eks"].find("EnvoyFilter", "istio-ingressgateway-edge-limits", "istio-ingress")
    assert ef["apiVersion"] == "networking.istio.io/v1alpha3"
    assert ef["metadata"]["labels"]["meshbridge.io/bridge"] == "lambda-aws-to-gcp"  # ownership: prune finds it
    assert ef["spec"]["workloadSelector"]["labels"] == {
        "app": "istio-ingressgateway",
        "istio": "ingressgateway",
        "istio.io/rev": "1-17",
    }
    merge, limit = ef["spec"]["configPatches"]
    for p in (merge, limit):
        assert p["applyTo"] == "NETWORK_FILTER" and p["match"]["context"] == "GATEWAY"
        assert p["match"]["listener"] == {"portNumber": 8443, "filterChain": {"filter": {"name": HCM}}}
    assert merge["patch"]["operation"] == "MERGE"
    assert merge["patch"]["value"]["typed_config"] == {
        "@type": HCM_TYPE,
        "common_http_protocol_options": {"idle_timeout": "2.5s"},
        "request_headers_timeout": "1s",
        "max_request_headers_kb": 60,
    }
    assert limit["patch"] == {
        "operation": "INSERT_BEFORE",
        "value": {
            "name": LIMIT,
            "typed_config": {"@type": LIMIT_TYPE, "stat_prefix": "exporter_edge", "max_connections": 50},
        },
    }
    # negative twin: the importer's mesh gets none
    assert not [d for d in sets["gke"] if d["kind"] == "EnvoyFilter"]


def test_limits_off_render_no_envoy_filter() -> None:
    sets = render_bridge(bridge_from(with_limits(enabled=False)), None)
    assert not [d for d in sets["eks"] if d["kind"] == "EnvoyFilter"]


def test_each_exported_port_gets_its_patches() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = [
        {"name": "https", "port": 443, "targetPort": 8443},
        {"name": "https-alt", "port": 9443, "targetPort": 9443},
    ]
    second = yaml.safe_load(yaml.safe_dump(d["spec"]["exports"][0]))
    second.update({"name": "orders", "host": "orders.external", "gatewayPort": 9443})
    d["spec"]["exports"].append(second)
    del d["spec"]["aws"]
    ef = render_bridge(bridge_from(d), None)["eks"].find("EnvoyFilter", "istio-ingressgateway-edge-limits")
    assert [p["match"]["listener"]["portNumber"] for p in ef["spec"]["configPatches"]] == [8443, 8443, 9443, 9443]


def test_the_envoy_filter_is_applied_last_and_pruned_like_the_others() -> None:
    kinds = [d["kind"] for d in render_bridge(seed_bridge(), None)["eks"]]
    assert kinds[-1] == "EnvoyFilter"
    ref = ResourceRef("networking.istio.io/v1alpha3", "EnvoyFilter", "istio-ingress", "x")
    assert ref.path == "/apis/networking.istio.io/v1alpha3/namespaces/istio-ingress/envoyfilters/x"
    b = seed_bridge()
    assert "EnvoyFilter" in [t.kind for t in owned_types(b, "eks")]
    assert "EnvoyFilter" not in [t.kind for t in owned_types(b, "gke")]  # no ingress gateway there


# -- translation of the rendered limits ------------------------------------------------------------------------


def test_the_exporter_gateway_gets_the_limits_istiod_would_push(tmp_path: Path) -> None:
    cfg = rendered_config("eks")
    assert cfg.warnings == [] and len(cfg.envoy_filters) == 1
    pc = proxy_config(cfg, INGRESS, tmp_path)
    assert filter_names(pc) == [[LIMIT, HCM]]
    (chain,) = chains(pc)
    assert chain["filters"][0]["typed_config"] == {
        "@type": LIMIT_TYPE,
        "stat_prefix": "exporter_edge",
        "max_connections": 10000,
    }
    h = hcm(chain)
    assert h["common_http_protocol_options"] == {"idle_timeout": "3600s"}
    assert (h["request_headers_timeout"], h["max_request_headers_kb"]) == ("10s", 60)
    assert h["rds"]["route_config_name"].startswith("https.443.") and h["stream_idle_timeout"] == "0s"  # istiod's own
    assert pc.warnings == [] and set(pc.patch_hits.values()) == {1}


def test_the_importer_proxies_are_untouched(tmp_path: Path) -> None:
    for name in ("gke/istio-egressgateway", "gke/sleep"):
        pc = proxy_config(rendered_config("gke"), name, tmp_path)
        assert all(LIMIT not in str(lst) for lst in pc.listeners) and pc.patch_hits == {}


def test_limits_off_leave_istiods_listener(tmp_path: Path) -> None:
    b = bridge_from(with_limits(enabled=False))
    pc = proxy_config(rendered_config("eks", b), INGRESS, tmp_path, b)
    assert filter_names(pc) == [[HCM]]
    assert "request_headers_timeout" not in hcm(chains(pc)[0]) and "common_http_protocol_options" not in hcm(
        chains(pc)[0]
    )


def test_proxy_config_listeners_reads_as_istioctl(tmp_path: Path) -> None:
    """istioctl's table names the route config, whatever filters precede the HCM; ``-o json`` shows the filter."""
    pc = proxy_config(rendered_config("eks"), INGRESS, tmp_path)
    dump = {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "dynamic_listeners": [{"name": x["name"], "active_state": {"listener": x}} for x in pc.listeners],
            }
        ]
    }
    table = format_proxy_config("listeners", dump)
    assert "SNI: lambda.external" in table and "Route: https.443.https.eastwestgateway.istio-ingress" in table
    assert LIMIT in str(dump)


# -- any EnvoyFilter: selection, order, operations -------------------------------------------------------------


def test_selection_follows_namespace_selector_and_context(tmp_path: Path) -> None:
    docs = [
        envoy_filter([insert("INSERT_FIRST", "root-gw", before=None)], name="root", namespace="istio-system"),
        envoy_filter([insert("INSERT_FIRST", "other-ns", before=None)], name="other", namespace="sleep"),
        envoy_filter(
            [insert("INSERT_FIRST", "wrong-labels", before=None)], name="wl", labels={"istio": "egressgateway"}
        ),
        envoy_filter([insert("INSERT_FIRST", "sidecar-ctx", context="SIDECAR_OUTBOUND", before=None)], name="sc"),
    ]
    pc = proxy_config(with_docs(docs), INGRESS, tmp_path)
    # root namespace reaches the gateway; another namespace, other labels and a sidecar context do not
    assert filter_names(pc) == [["root-gw", LIMIT, HCM]]
    assert ("sleep", "other", 0) not in pc.patch_hits and ("istio-ingress", "wl", 0) not in pc.patch_hits
    assert pc.patch_hits[("istio-ingress", "sc", 0)] == 0  # selected, but no SIDECAR_OUTBOUND listener here


def test_root_namespace_and_priority_order_the_patches(tmp_path: Path) -> None:
    docs = [
        envoy_filter([insert("INSERT_FIRST", "local", before=None)], name="a-local"),
        envoy_filter([insert("INSERT_FIRST", "root", before=None)], name="z-root", namespace="istio-system"),
        envoy_filter([insert("INSERT_FIRST", "early", before=None)], name="early", priority=-1),
    ]
    pc = proxy_config(with_docs(docs), INGRESS, tmp_path)
    # applied in order early (priority -1), root, then the namespace's (meshbridge's, then 'local'); each
    # INSERT_FIRST goes in front of the previous ones
    assert filter_names(pc) == [["local", "root", "early", LIMIT, HCM]]


def test_insert_operations_place_the_filter_as_istiod_does(tmp_path: Path) -> None:
    docs = [
        envoy_filter(
            [
                insert("INSERT_AFTER", "after-limit", before=LIMIT),
                insert("ADD", "added", before=None),
                insert("INSERT_BEFORE", "before-missing", before="envoy.filters.network.nothing"),
                insert("INSERT_AFTER", "at-end", before=None),
            ]
        )
    ]
    pc = proxy_config(with_docs(docs), INGRESS, tmp_path)
    assert filter_names(pc) == [[LIMIT, "after-limit", HCM, "added", "at-end"]]
    assert pc.patch_hits[("istio-ingress", "user", 2)] == 0
    assert any("user" in w.name and w.field == "spec.configPatches[2]" for w in pc.warnings)


def test_a_user_merge_into_the_hcm_lands_after_the_inserts(tmp_path: Path) -> None:
    merge = {
        "applyTo": "NETWORK_FILTER",
        "match": {"context": "ANY", "listener": {"filterChain": {"filter": {"name": HCM}}}},
        "patch": {
            "operation": "MERGE",
            "value": {"typed_config": {"@type": "any", "stream_idle_timeout": "300s", "server_name": "edge"}},
        },
    }
    pc = proxy_config(with_docs([envoy_filter([merge], labels={"app": "istio-ingressgateway"})]), INGRESS, tmp_path)
    h = hcm(chains(pc)[0])
    assert (h["stream_idle_timeout"], h["server_name"], h["request_headers_timeout"]) == ("300s", "edge", "10s")
    assert h["@type"].endswith("HttpConnectionManager")  # istiod keeps the filter's own type URL


def test_proxy_version_is_a_regex_on_the_mesh_istio_version(tmp_path: Path) -> None:
    def versioned(regex: str) -> dict[str, Any]:
        p = insert("INSERT_FIRST", f"v{regex}", before=None)
        p["match"]["proxy"] = {"proxyVersion": regex}
        return p

    pc = proxy_config(with_docs([envoy_filter([versioned(r"^1\.17.*"), versioned(r"^1\.22.*")])]), INGRESS, tmp_path)
    assert filter_names(pc) == [[r"v^1\.17.*", LIMIT, HCM]]  # the seed runs 1.17.2


def test_merge_follows_protobuf_semantics() -> None:
    dst: dict[str, Any] = {
        "rds": {"route_config_name": "a"},
        "stream_idle_timeout": "300s",
        "http_filters": [{"name": "x"}],
    }
    proto_merge(
        dst,
        {"route_config": {"name": "b"}, "stream_idle_timeout": "0s", "http_filters": [{"name": "y"}], "a": {"b": 1}},
        (frozenset({"rds", "route_config", "scoped_routes"}),),
    )
    assert dst == {
        "route_config": {"name": "b"},  # one member of a oneof clears the others
        "stream_idle_timeout": "300s",  # a zero duration does not overwrite (proto3)
        "http_filters": [{"name": "x"}, {"name": "y"}],  # repeated fields append
        "a": {"b": 1},
    }


# -- what is not modelled is said, never dropped -----------------------------------------------------------------


UNSUPPORTED = [
    ({"applyTo": "CLUSTER", "patch": {"operation": "MERGE", "value": {}}}, "spec.configPatches[0]", "CLUSTER"),
    (
        {"applyTo": "HTTP_FILTER", "patch": {"operation": "INSERT_BEFORE", "value": {}}},
        "spec.configPatches[0]",
        "HTTP_FILTER",
    ),
    ({"applyTo": "NETWORK_FILTER", "patch": {"operation": "REMOVE"}}, "spec.configPatches[0]", "REMOVE"),
    (
        {
            "applyTo": "NETWORK_FILTER",
            "match": {"listener": {"filterChain": {"filter": {"name": "envoy.filters.network.tcp_proxy"}}}},
            "patch": {"operation": "MERGE", "value": {}},
        },
        "spec.configPatches[0]",
        "MERGE is modelled only into",
    ),
    (
        {
            "applyTo": "NETWORK_FILTER",
            "match": {"proxy": {"metadata": {"A": "b"}}},
            "patch": {"operation": "ADD", "value": {}},
        },
        "spec.configPatches[0].match.proxy.metadata",
        "not modelled",
    ),
    (
        {"applyTo": "NETWORK_FILTER", "patch": {"operation": "ADD", "value": {"name": "x", "config_discovery": {}}}},
        "spec.configPatches[0].patch.value.config_discovery",
        "not modelled",
    ),
    ({"applyTo": "NETWORK_FILTER"}, "spec.configPatches[0]", "no patch"),
]


@pytest.mark.parametrize(("patch", "field", "words"), UNSUPPORTED, ids=[u[2] for u in UNSUPPORTED])
def test_an_unsupported_patch_is_a_warning_naming_object_and_patch(
    tmp_path: Path, patch: dict[str, Any], field: str, words: str
) -> None:
    cfg = build_config([("user.yaml#3", envoy_filter([patch], name="odd"))])
    (w,) = [w for w in cfg.warnings if w.field == field]
    assert (w.kind, w.namespace, w.name, w.source) == ("EnvoyFilter", "istio-ingress", "odd", "user.yaml#3")
    assert words in w.message
    pc = proxy_config(with_docs([envoy_filter([patch], name="odd")]), INGRESS, tmp_path)
    assert any(x.name == "odd" and x.field == field for x in pc.warnings)  # the translation says it too
    assert filter_names(pc) == [[LIMIT, HCM]]  # and applies nothing of it


def test_target_refs_and_other_api_versions_are_reported() -> None:
    ef = envoy_filter([insert("ADD", "x")], name="t")
    ef["spec"]["targetRefs"] = [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]
    other = envoy_filter([insert("ADD", "x")], name="v1")
    other["apiVersion"] = "networking.istio.io/v1"
    cfg = build_config([("a", ef), ("b", other)])
    assert [(w.name, w.field) for w in cfg.warnings] == [("t", "spec.targetRefs"), ("v1", "")]
    assert [e.metadata.name for e in cfg.envoy_filters] == ["t"]


def test_a_supported_patch_is_no_warning() -> None:
    cfg = build_config([("a", envoy_filter([insert("INSERT_BEFORE", "x")]))])
    assert cfg.warnings == []
