"""Traffic simulation and consistency over translated configs: the data-plane kinds of L06, L10, L12."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.envoy.consistency import check_consistency
from meshbridge.envoy.pathsim import path_findings, trace_exports
from meshbridge.envoy.simulate import Index, Request, simulate
from meshbridge.envoy.view import EnvoyView
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import parse_yaml_text
from meshbridge.world import mesh_config
from tests.builders import ARTICLE, bridge_from, seed_bridge, seed_dict
from tests.istio_builders import Docs, article_config, doc_named, proxy_config, rendered_config, seed_path
from tests.lint_builders import lint_docs, seed_docs

MTLS = {"tls": True, "client_cert": True}


def test_ingress_routes_the_exported_host_to_the_alb(tmp_path: Path) -> None:
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    r = simulate(pc, Request(8443, "lambda.external", "/hello-world", sni="lambda.external", **MTLS))
    assert r.ok, r.detail
    assert (r.route_config, r.virtual_host, r.cluster) == (
        "https.443.https.eastwestgateway.istio-ingress",
        "lambda.external:443",
        "outbound|443||alb.jesus2.solo.io",
    )


def test_wrong_sni_finds_no_filter_chain(tmp_path: Path) -> None:
    """MB303: the importer's SNI must be one of the exporter Gateway's hosts."""
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    for sni in ("ingress.eks.example.com", None):
        r = simulate(pc, Request(8443, "lambda.external", sni=sni, **MTLS))
        assert (r.error, r.response_flag) == ("NoFilterChain", "NR")
        assert "filter_chain_not_found" in r.detail


def test_mutual_server_demands_a_client_certificate(tmp_path: Path) -> None:
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    r = simulate(pc, Request(8443, "lambda.external", sni="lambda.external", tls=True, client_cert=False))
    assert r.error == "ClientCertRequired"
    assert simulate(pc, Request(8443, "lambda.external", sni="lambda.external")).error == "TLSRequired"


def test_host_mismatch_after_sni_gets_404(tmp_path: Path) -> None:
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    r = simulate(pc, Request(8443, "orders.external", sni="lambda.external", **MTLS))
    assert (r.status, r.response_flag, r.error) == (404, "NR", "NoRoute")
    assert simulate(pc, Request(8443, "LAMBDA.external:443", sni="lambda.external", **MTLS)).ok  # case, port ignored


def test_sidecar_and_egress_legs(tmp_path: Path) -> None:
    sidecar = proxy_config(article_config("gke"), "gke/sleep", tmp_path)
    r = simulate(sidecar, Request(80, "lambda.external", "/hello-world"))
    assert r.cluster == "outbound|80|lambda|istio-egressgateway.istio-egress.svc.cluster.local"
    egress = proxy_config(article_config("gke"), "gke/istio-egressgateway", tmp_path)
    r = simulate(egress, Request(8080, "lambda.external", "/hello-world"))
    assert r.ok and r.cluster == "outbound|80||lambda.external"
    assert simulate(egress, Request(8080, "alb.jesus2.solo.io")).error == "NoRoute"


def test_virtual_host_choice_follows_envoy(tmp_path: Path) -> None:
    """Exact domain, then the longest ``*suffix``, then the longest ``prefix*``, then ``*``; first among equals."""
    sidecar = proxy_config(article_config("gke"), "gke/sleep", tmp_path)
    domains = [
        ["*"],
        ["lambda.*"],
        ["lambda.ex*"],
        ["*.external"],
        ["*.b.external"],
        ["exact.b.external"],
        ["*.external"],
    ]
    vhosts = [
        {"name": str(i), "domains": d, "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}
        for i, d in enumerate(domains)
    ]
    pc = dataclasses.replace(sidecar, route_configs=[{"name": "80", "virtual_hosts": vhosts}])
    index = Index(pc)
    chosen = {
        host: simulate(pc, Request(80, host), index).virtual_host
        for host in ("EXACT.b.external:80", "a.b.external", "lambda.external", "lambda.example", "lambda.other", "x.y")
    }
    assert chosen == {
        "EXACT.b.external:80": "5",
        "a.b.external": "4",
        "lambda.external": "3",  # a suffix beats a prefix; the first *.external wins the tie
        "lambda.example": "2",
        "lambda.other": "1",
        "x.y": "0",
    }


def _eks_with(doc_edit: Callable[[list[dict[str, Any]]], None]) -> ConfigSet:
    """The article's step-4 manifests, edited, with the gateway Secret."""
    docs = [d for d in yaml.safe_load_all((ARTICLE / "eks.yaml").read_text()) if d]
    doc_edit(docs)
    cfg = mesh_config(seed_bridge(), "eks", parse_yaml_text(yaml.safe_dump_all(docs), "eks.yaml"))
    cfg.secrets += article_config("eks").secrets
    return cfg


def test_service_entry_private_to_another_namespace_leaves_no_cluster(tmp_path: Path) -> None:
    """MB106: visibility is decided for the namespace of the acting proxy."""

    def move_se(docs: list[dict[str, Any]]) -> None:
        docs[0]["metadata"]["namespace"] = "lambda-ns"
        docs[1]["metadata"]["namespace"] = "lambda-ns"

    pc = proxy_config(_eks_with(move_se), "eks/istio-ingressgateway", tmp_path)
    r = simulate(pc, Request(8443, "lambda.external", sni="lambda.external", **MTLS))
    assert (r.status, r.response_flag) == (503, "NC")
    assert any("cluster_not_found" in str(i) for i in check_consistency(pc))

    def export_all(docs: list[dict[str, Any]]) -> None:
        move_se(docs)
        docs[0]["spec"]["exportTo"] = ["*"]

    assert simulate(
        proxy_config(_eks_with(export_all), "eks/istio-ingressgateway", tmp_path),
        Request(8443, "lambda.external", sni="lambda.external", **MTLS),
    ).ok


def test_gateway_cluster_filtering(tmp_path: Path) -> None:
    """MB109: with PILOT_FILTER_GATEWAY_CLUSTER_CONFIG a gateway only gets clusters its bound VSes use."""

    def extra_se(docs: list[dict[str, Any]]) -> None:
        se = copy.deepcopy(docs[0])
        se["metadata"]["name"] = "se-other"
        se["spec"]["hosts"] = ["other.internal.example.com"]
        docs.append(se)

    pc = proxy_config(_eks_with(extra_se), "eks/istio-ingressgateway", tmp_path)
    names = {c["name"] for c in pc.clusters}
    assert "outbound|443||other.internal.example.com" not in names
    assert "outbound|443||alb.jesus2.solo.io" in names

    d = seed_dict()
    d["spec"]["meshes"]["eks"]["istio"]["pilotEnv"] = {"PILOT_FILTER_GATEWAY_CLUSTER_CONFIG": "false"}
    b = bridge_from(d)
    docs = [d for d in yaml.safe_load_all((ARTICLE / "eks.yaml").read_text()) if d]
    extra_se(docs)
    cfg = mesh_config(b, "eks", parse_yaml_text(yaml.safe_dump_all(docs), "eks.yaml"))
    names = {c["name"] for c in proxy_config(cfg, "eks/istio-ingressgateway", tmp_path, b).clusters}
    assert "outbound|443||other.internal.example.com" in names


def test_gateway_cluster_filtering_keeps_a_mirror_destination(tmp_path: Path) -> None:
    """MB109: istiod's destinationsByGateway counts a bound VirtualService's mirror host (virtualServiceDestinations);
    the negative twin: the same ServiceEntry that nothing mirrors to gets no cluster."""

    def shadow(mirrored: bool) -> Callable[[list[dict[str, Any]]], None]:
        def edit(docs: list[dict[str, Any]]) -> None:
            se = copy.deepcopy(docs[0])
            se["metadata"]["name"] = "se-shadow"
            se["spec"]["hosts"] = ["shadow.internal.example.com"]
            docs.append(se)
            if mirrored:
                docs[3]["spec"]["http"][0]["mirror"] = {"host": "shadow.internal.example.com", "port": {"number": 443}}

        return edit

    wanted = "outbound|443||shadow.internal.example.com"
    pc = proxy_config(_eks_with(shadow(True)), "eks/istio-ingressgateway", tmp_path)
    assert wanted in {c["name"] for c in pc.clusters}
    pc = proxy_config(_eks_with(shadow(False)), "eks/istio-ingressgateway", tmp_path)
    assert wanted not in {c["name"] for c in pc.clusters}


def test_gateway_gets_no_cluster_for_a_virtual_service_bound_elsewhere(tmp_path: Path) -> None:
    """MB109: a VirtualService whose ``gateways`` do not name this gateway gives it no cluster."""

    def with_vs(gateways: list[str]) -> Callable[[list[dict[str, Any]]], None]:
        def edit(docs: list[dict[str, Any]]) -> None:
            se = copy.deepcopy(docs[0])
            se["metadata"]["name"] = "se-orders"
            se["spec"]["hosts"] = ["orders.internal.example.com"]
            vs = copy.deepcopy(docs[3])
            vs["metadata"]["name"] = "vs-orders"
            vs["spec"]["hosts"] = ["orders.external"]
            vs["spec"]["gateways"] = gateways
            vs["spec"]["http"][0]["route"][0]["destination"]["host"] = "orders.internal.example.com"
            docs += [se, vs]

        return edit

    assert _eks_with(with_vs(["mesh"])).settings.filter_gateway_clusters  # the seed sets the pilot flag
    wanted = "outbound|443||orders.internal.example.com"
    for elsewhere in (["mesh"], ["istio-ingress/other-gateway"], ["default/eastwestgateway"], ["other-gateway"]):
        pc = proxy_config(_eks_with(with_vs(elsewhere)), "eks/istio-ingressgateway", tmp_path)
        names = {c["name"] for c in pc.clusters}
        assert wanted not in names, elsewhere
        assert "outbound|443||alb.jesus2.solo.io" in names  # the bound VirtualService keeps its cluster
    for bound in (["eastwestgateway"], ["istio-ingress/eastwestgateway"], ["mesh", "eastwestgateway"]):
        pc = proxy_config(_eks_with(with_vs(bound)), "eks/istio-ingressgateway", tmp_path)
        assert wanted in {c["name"] for c in pc.clusters}, bound


# -- the path of each export: sidecar → egress gateway → exporter's ingress gateway ---------------------


def test_every_hop_of_the_seed_reaches_its_cluster(tmp_path: Path) -> None:
    hops = trace_exports(seed_bridge(), seed_path(tmp_path))
    assert [(h.proxy, h.request.port, h.request.sni, h.result.cluster) for h in hops] == [
        ("gke/sleep", 80, None, "outbound|80|lambda|istio-egressgateway.istio-egress.svc.cluster.local"),
        ("gke/istio-egressgateway", 8080, None, "outbound|80||lambda.external"),  # Service 80 → targetPort 8080
        ("eks/istio-ingressgateway", 8443, "lambda.external", "outbound|443||alb.internal.example.com"),
    ]
    assert all(h.ok and h.export == "lambda" and h.app == "gke/sleep" for h in hops)
    assert hops[2].request.tls and hops[2].request.client_cert  # the egress cluster's UpstreamTlsContext
    assert path_findings(seed_bridge(), seed_path(tmp_path)) == []


def _wrong_sni(docs: Docs) -> None:
    """MB303: the importer's DestinationRule sends the load balancer's name as SNI."""
    dr = doc_named(docs, "gke", "DestinationRule", "dr-lambda-ext")
    tls = dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
    tls["sni"] = "ingress.eks.example.com"


def _unbound_vs(docs: Docs) -> None:
    """MB102/MB109: the exporter's VirtualService is bound to the sidecars only, not to its gateway."""
    doc_named(docs, "eks", "VirtualService", "vs-lambda")["spec"]["gateways"] = ["mesh"]


def _no_service_entry(docs: Docs) -> None:
    """The exporter's ServiceEntry for the backend is missing: its route names a cluster nobody built."""
    docs["eks"].remove(doc_named(docs, "eks", "ServiceEntry", "se-lambda-backend"))


def _egress_vs_unbound(docs: Docs) -> None:
    doc_named(docs, "gke", "VirtualService", "direct-lambda-through-egress-gateway")["spec"]["gateways"] = [
        "mesh",
        "istio-egress/other-gateway",
    ]


@pytest.mark.parametrize(
    ("edit", "proxy", "flag", "words"),
    [
        (_wrong_sni, "eks/istio-ingressgateway", "NR", "filter_chain_not_found"),
        (_unbound_vs, "eks/istio-ingressgateway", "NR", "route_not_found"),
        (_no_service_entry, "eks/istio-ingressgateway", "NC", "outbound|443||alb.internal.example.com"),
        (_egress_vs_unbound, "gke/istio-egressgateway", "NR", "route_not_found"),
    ],
)
def test_a_broken_hop_is_named_with_its_proxy_request_and_flag(
    tmp_path: Path, edit: Callable[[Docs], None], proxy: str, flag: str, words: str
) -> None:
    (finding,) = path_findings(seed_bridge(), seed_path(tmp_path, edit))
    assert (finding.proxy, finding.result.response_flag) == (proxy, flag)
    text = str(finding)
    assert text.startswith(f"{proxy}: GET ") and f"→ {flag}: " in text and words in text
    assert "(export lambda, app gke/sleep)" in text


def test_wrong_sni_is_reported_with_the_sni_the_egress_sends(tmp_path: Path) -> None:
    (finding,) = path_findings(seed_bridge(), seed_path(tmp_path, _wrong_sni))
    assert str(finding).startswith(
        "eks/istio-ingressgateway: GET https://lambda.external:8443/ (SNI ingress.eks.example.com, "
        "a client certificate) → NR: no filter chain"
    )


def test_path_skips_proxies_that_were_not_translated(tmp_path: Path) -> None:
    pcs = seed_path(tmp_path)
    del pcs["gke/istio-egressgateway"]
    hops = trace_exports(seed_bridge(), pcs)
    assert [h.proxy for h in hops] == ["gke/sleep", "eks/istio-ingressgateway"]
    assert all(h.ok for h in hops)


def test_rendered_seed_is_consistent_apart_from_missing_secrets(tmp_path: Path) -> None:
    for mesh, proxy in (("eks", "eks/istio-ingressgateway"), ("gke", "gke/istio-egressgateway"), ("gke", "gke/sleep")):
        found = check_consistency(proxy_config(rendered_config(mesh), proxy, tmp_path))
        assert [i for i in found if "is not served" not in i.message] == [], proxy
        assert all(i.severity == "warning" for i in found)


# -- Envoy's matching rules, each with the case that does not match ---------------------------------------------


def _chain(match: dict[str, Any], *, tls: bool = False, cluster: str = "", rds: str = "") -> dict[str, Any]:
    """A filter chain: TLS or not, a TCP proxy to ``cluster`` or an HTTP connection manager naming ``rds``."""
    chain: dict[str, Any] = {"filter_chain_match": match} if match else {}
    if tls:
        chain["transport_socket"] = {"name": "tls", "typed_config": {"common_tls_context": {}}}
    if cluster:
        chain["filters"] = [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": cluster}}]
    else:
        hcm = {"rds": {"route_config_name": rds or "r"}}
        chain["filters"] = [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    return chain


def _view(*chains: dict[str, Any], default: dict[str, Any] | None = None, routes: Any = None) -> EnvoyView:
    lst: dict[str, Any] = {"name": "0.0.0.0_8443", "filter_chains": list(chains)}
    if default is not None:
        lst["default_filter_chain"] = default
    vhosts = routes or [
        {"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]}
    ]
    return EnvoyView([lst], [{"name": "c"}, {"name": "tcp"}], [{"name": "r", "virtual_hosts": vhosts}])


def _chain_of(view: EnvoyView, req: Request) -> int | None:
    r = simulate(view, req)
    return None if r.error == "NoFilterChain" else r.filter_chain


TLS = Request(8443, "h.example", tls=True, sni="h.example", client_cert=True)


def test_the_transport_protocol_picks_between_chains_of_one_sni() -> None:
    view = _view(
        _chain({"server_names": ["h.example"], "transport_protocol": "raw_buffer"}),
        _chain({"server_names": ["h.example"], "transport_protocol": "tls"}, tls=True),
    )
    assert _chain_of(view, TLS) == 1
    assert _chain_of(view, dataclasses.replace(TLS, tls=False)) == 0


def test_the_sni_step_prunes_for_good_even_when_a_later_step_fails() -> None:
    """Envoy prunes criterion by criterion: the SNI chain wins step 3, fails step 4, and nothing is left."""
    view = _view(
        _chain({"server_names": ["h.example"], "transport_protocol": "raw_buffer"}),
        _chain({"transport_protocol": "tls"}, tls=True),
    )
    r = simulate(view, TLS)
    assert (r.error, r.response_flag) == ("NoFilterChain", "NR")
    assert _chain_of(view, dataclasses.replace(TLS, sni="other.example")) == 1  # no SNI chain: the TLS one


def test_alpn_picks_the_chain_that_lists_it_first() -> None:
    view = _view(_chain({"application_protocols": ["h2"]}), _chain({}))
    assert _chain_of(view, Request(8443, "h", alpn=("h2", "http/1.1"))) == 0
    assert _chain_of(view, Request(8443, "h")) == 1  # plain HTTP/1.1: http/1.1 as http_inspector sees it
    only_h2 = _view(_chain({"application_protocols": ["h2"]}))
    assert _chain_of(only_h2, Request(8443, "h")) is None


def test_a_destination_port_match_beats_none_and_a_wrong_one_never_matches() -> None:
    view = _view(_chain({"destination_port": 9443}), _chain({}), _chain({"destination_port": 8443}))
    assert _chain_of(view, Request(8443, "h")) == 2
    assert _chain_of(_view(_chain({"destination_port": 9443})), Request(8443, "h")) is None


def test_the_default_chain_takes_what_no_chain_matches() -> None:
    view = _view(_chain({"server_names": ["h.example"]}, tls=True), default=_chain({}, cluster="tcp"))
    r = simulate(view, dataclasses.replace(TLS, sni="other.example"))
    assert (r.filter_chain, r.cluster, r.ok) == (-1, "tcp", True)  # a TCP proxy passes the TLS through
    without = _view(_chain({"server_names": ["h.example"]}, tls=True))
    assert simulate(without, dataclasses.replace(TLS, sni="other.example")).error == "NoFilterChain"


def test_a_tcp_proxy_chain_reaches_its_cluster_without_routes() -> None:
    r = simulate(_view(_chain({}, cluster="tcp")), TLS)
    assert (r.ok, r.cluster, r.route_config, r.status) == (True, "tcp", None, None)
    missing = simulate(_view(_chain({}, cluster="gone")), TLS)
    assert (missing.error, missing.response_flag, missing.status) == ("NoCluster", "NC", None)
    plain_http = simulate(_view(_chain({})), TLS)  # an HTTP chain without TLS cannot take a handshake
    assert plain_http.error == "PlaintextOnTLS"


def test_a_route_matches_on_headers_and_query_parameters() -> None:
    routes = [
        {
            "name": "v",
            "domains": ["*"],
            "routes": [
                {
                    "name": "jason",
                    "match": {"prefix": "/", "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}]},
                    "route": {"cluster": "c"},
                },
                {
                    "name": "not-get",
                    "match": {
                        "prefix": "/",
                        "headers": [{"name": ":method", "exact_match": "GET", "invert_match": True}],
                    },
                    "route": {"cluster": "c"},
                },
                {
                    "name": "debug",
                    "match": {"prefix": "/", "query_parameters": [{"name": "debug", "present_match": True}]},
                    "route": {"cluster": "c"},
                },
                {"name": "api", "match": {"path_separated_prefix": "/api"}, "route": {"cluster": "c"}},
            ],
        }
    ]
    view = _view(_chain({}), routes=routes)

    def route(req: Request) -> str | None:
        return simulate(view, req).route

    assert route(Request(8443, "h", "/x", headers=(("End-User", "jason"),))) == "jason"
    assert route(Request(8443, "h", "/x", method="POST")) == "not-get"
    assert route(Request(8443, "h", "/x?debug")) == "debug"
    assert route(Request(8443, "h", "/api/v1")) == "api" and route(Request(8443, "h", "/api")) == "api"
    for nothing in (
        Request(8443, "h", "/x", headers=(("end-user", "jasonx"),)),
        Request(8443, "h", "/x?verbose=1"),
        Request(8443, "h", "/apix"),
    ):
        assert simulate(view, nothing).error == "NoRoute", nothing


def test_a_domain_wildcard_stands_for_at_least_one_character() -> None:
    routes = [
        {
            "name": "suffix",
            "domains": ["*-bar.example"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}],
        },
        {
            "name": "prefix",
            "domains": ["api.*"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}],
        },
    ]
    view = _view(_chain({}), routes=routes)
    assert simulate(view, Request(8443, "baz-bar.example")).virtual_host == "suffix"
    assert simulate(view, Request(8443, "api.x")).virtual_host == "prefix"
    assert simulate(view, Request(8443, "-bar.example")).error == "NoRoute"
    assert simulate(view, Request(8443, "api.")).error == "NoRoute"


def test_redirects_answer_with_their_status() -> None:
    """A route's redirect answers its response_code (301 by default); a virtual host that requires TLS
    (a Gateway server's httpsRedirect) answers a plain-text request with 301, and lets TLS through."""
    routes = [
        {
            "name": "v",
            "domains": ["*"],
            "routes": [
                {"match": {"prefix": "/old"}, "redirect": {"path_redirect": "/new"}},
                {"match": {"prefix": "/tmp"}, "redirect": {"path_redirect": "/t", "response_code": "FOUND"}},
                {"match": {"prefix": "/"}, "route": {"cluster": "c"}},
            ],
        }
    ]
    view = _view(_chain({}), routes=routes)
    assert (simulate(view, Request(8443, "h", "/old/1")).status, simulate(view, Request(8443, "h", "/tmp")).status) == (
        301,
        302,
    )
    assert simulate(view, Request(8443, "h", "/other")).cluster == "c"
    secure = _view(_chain({}), routes=[{**routes[0], "require_tls": "ALL", "routes": routes[0]["routes"][2:]}])
    r = simulate(secure, Request(8443, "h", "/other"))
    assert (r.status, r.cluster, r.ok) == (301, None, True)
    tls = _view(_chain({}, tls=True), routes=[{**routes[0], "require_tls": "ALL", "routes": routes[0]["routes"][2:]}])
    assert simulate(tls, TLS).cluster == "c"


def test_lint_and_the_path_simulation_agree_on_the_exporters_chain(tmp_path: Path) -> None:
    """Lint's cross-mesh walk asks the simulator: a wrong SNI is MB303 there and NR filter_chain_not_found here."""
    docs = seed_docs()
    _wrong_sni(docs)
    codes = {f.code for f in lint_docs(docs).findings}
    (hop,) = path_findings(seed_bridge(), seed_path(tmp_path, _wrong_sni))
    assert "MB303" in codes and hop.result.error == "NoFilterChain"
    assert "MB303" not in {f.code for f in lint_docs(seed_docs()).findings}
    assert path_findings(seed_bridge(), seed_path(tmp_path)) == []


def test_a_waypoints_policy_reads_the_peer_principal_from_the_filter_state() -> None:
    """istiod's waypoint RBAC matches the peer HBONE authenticated (``io.istio.peer_principal``); the twin's path
    simulation gives the app's request that identity. Its twins: another namespace, no identity, another key."""
    from meshbridge.envoy.simulate import _rbac_principal

    admitted = {
        "filter_state": {"key": "io.istio.peer_principal", "string_match": {"safe_regex": {"regex": ".*/ns/sleep/.*"}}}
    }
    assert _rbac_principal(
        admitted, Request(80, "lambda.external", principal="spiffe://gke.example.com/ns/sleep/sa/sleep")
    )
    assert not _rbac_principal(
        admitted, Request(80, "lambda.external", principal="spiffe://gke.example.com/ns/other/sa/x")
    )
    assert not _rbac_principal(admitted, Request(80, "lambda.external"))
    other_key = {"filter_state": {**admitted["filter_state"], "key": "io.istio.other"}}
    assert not _rbac_principal(
        other_key, Request(80, "lambda.external", principal="spiffe://gke.example.com/ns/sleep/sa/sleep")
    )
