"""The ambient importer's waypoint as istiod builds it (the oracle, ``model.Waypoint``): what render/ambient.py
claims, judged by istiod's code. A request ztunnel brings to the waypoint for ``lambda.external:80`` takes the
``main_internal`` listener's chain for that service, whose route goes to the service's ``inbound-vip`` cluster,
which dials the exporter's gateway with the client certificate of ``credentialName`` (served by SDS from the
waypoint's namespace), the pinned SNI and SAN. Each positive check has its negative twin: the ServiceEntry not
bound to the waypoint gets no chain or cluster there; without the DestinationRule the cluster sends plain text.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from meshbridge.istiod.oracle import IstiodConfig, run_oracle
from meshbridge.istiod.waypoint import waypoint_request
from meshbridge.render.ambient import USE_WAYPOINT
from meshbridge.render.bridge import render_bridge
from tests.builders import bridge_from, issued_store
from tests.unit.test_render_ambient import ambient_dict

CLUSTER = "inbound-vip|80|http|lambda.external"
TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

Document = dict[str, Any]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Document]]:
    bridge = bridge_from(ambient_dict())
    store = issued_store(tmp_path_factory.mktemp("ambient"), bridge)
    return bridge, list(render_bridge(bridge, store.credentials(bridge))["gke"])


def waypoint(oracle: Path, rendered: tuple[Any, list[Document]], docs: list[Document] | None = None) -> IstiodConfig:
    bridge, rendered_docs = rendered
    request = waypoint_request("gke", bridge.spec.meshes["gke"], docs if docs is not None else rendered_docs)
    return run_oracle(request, oracle).proxies["gke/istio-egressgateway"]


def main_internal_chain(cfg: IstiodConfig, port: int) -> str | None:
    """The chain ``main_internal`` picks for a tunnelled request to ``port`` (its matcher's port map)."""
    listener = next(x for x in cfg.listeners if x["name"] == "main_internal")
    ranges = listener["filterChainMatcher"]["matcherTree"]["customMatch"]["typedConfig"].get("rangeMatchers", [])
    for r in ranges:
        ports = r["onMatch"]["matcher"]["matcherTree"]["exactMatchMap"]["map"]
        if str(port) in ports:
            return str(ports[str(port)]["action"]["name"])
    return None


def route_cluster(cfg: IstiodConfig, chain: str) -> str:
    listener = next(x for x in cfg.listeners if x["name"] == "main_internal")
    fc = next(c for c in listener["filterChains"] if c["name"] == chain)
    hcm = fc["filters"][-1]["typedConfig"]
    (vhost,) = hcm["routeConfig"]["virtualHosts"]
    return str(vhost["routes"][0]["route"]["cluster"])


def upstream_tls(cluster: Document) -> Document | None:
    """The TLS a waypoint's cluster originates, inside its internal upstream transport socket."""
    inner = cluster["transportSocket"]["typedConfig"].get("transportSocket", {})
    config = inner.get("typedConfig", {})
    return config if config.get("@type") == TLS else None


def test_the_waypoint_sends_the_exported_host_to_the_exporter_with_the_client_certificate_and_sni(
    oracle: Path, rendered: tuple[Any, list[Document]]
) -> None:
    cfg = waypoint(oracle, rendered)
    chain = main_internal_chain(cfg, 80)
    assert chain == CLUSTER
    assert route_cluster(cfg, chain) == CLUSTER
    cluster = next(c for c in cfg.clusters if c["name"] == CLUSTER)
    (ep,) = cluster["loadAssignment"]["endpoints"][0]["lbEndpoints"]
    assert ep["endpoint"]["address"]["socketAddress"] == {"address": "ingress.eks.example.com", "portValue": 443}
    tls = upstream_tls(cluster)
    assert tls is not None
    assert tls["sni"] == "lambda.external"
    common = tls["commonTlsContext"]
    assert [s["name"] for s in common["tlsCertificateSdsSecretConfigs"]] == ["kubernetes://mtls-credential"]
    validation = common["combinedValidationContext"]
    assert validation["defaultValidationContext"]["matchSubjectAltNames"] == [{"exact": "lambda.external"}]
    assert validation["validationContextSdsSecretConfig"]["name"] == "kubernetes://mtls-credential-cacert"


def test_the_waypoint_is_served_the_client_certificate_from_its_namespace(
    oracle: Path, rendered: tuple[Any, list[Document]]
) -> None:
    cfg = waypoint(oracle, rendered)
    secrets = {s["name"]: s for s in cfg.secrets}
    assert set(secrets) == {"kubernetes://mtls-credential", "kubernetes://mtls-credential-cacert"}
    (rendered_secret,) = [d for d in rendered[1] if d["kind"] == "Secret"]
    cert = base64.b64decode(rendered_secret["data"]["cert"])
    served = secrets["kubernetes://mtls-credential"]["tlsCertificate"]["certificateChain"]["inlineBytes"]
    assert base64.b64decode(served) == cert


def test_only_the_apps_namespaces_pass_the_waypoints_policy_on_the_import(
    oracle: Path, rendered: tuple[Any, list[Document]]
) -> None:
    cfg = waypoint(oracle, rendered)
    listener = next(x for x in cfg.listeners if x["name"] == "main_internal")
    fc = next(c for c in listener["filterChains"] if c["name"] == CLUSTER)
    rbac = next(f for f in fc["filters"][-1]["typedConfig"]["httpFilters"] if f["name"] == "envoy.filters.http.rbac")
    (policy,) = rbac["typedConfig"]["rules"]["policies"].values()
    assert "/ns/sleep/" in str(policy["principals"])
    assert rbac["typedConfig"]["rules"].get("action", "ALLOW") == "ALLOW"


def test_a_service_entry_not_bound_to_the_waypoint_gets_nothing_there(
    oracle: Path, rendered: tuple[Any, list[Document]]
) -> None:
    docs = [_unbound(d) if d["kind"] == "ServiceEntry" else d for d in rendered[1]]
    cfg = waypoint(oracle, rendered, docs)
    assert main_internal_chain(cfg, 80) is None
    assert CLUSTER not in [c["name"] for c in cfg.clusters]
    assert cfg.secrets == []


def test_without_the_destination_rule_the_waypoint_sends_plain_text_to_the_exporter(
    oracle: Path, rendered: tuple[Any, list[Document]]
) -> None:
    docs = [d for d in rendered[1] if d["kind"] != "DestinationRule"]
    cfg = waypoint(oracle, rendered, docs)
    cluster = next(c for c in cfg.clusters if c["name"] == CLUSTER)
    assert upstream_tls(cluster) is None


def _unbound(service_entry: Document) -> Document:
    md = service_entry["metadata"]
    labels = {k: v for k, v in md["labels"].items() if k != USE_WAYPOINT}
    return {**service_entry, "metadata": {**md, "labels": labels}}
