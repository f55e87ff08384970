"""istiod's configuration delivered on the twin (meshbridge.istiod.adopt): one listener per port on the proxy's one
address, and every secret istiod references served by the mesh's Secrets."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from meshbridge.envoy.placement import Placement
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.istio.parse import build_config
from meshbridge.istio.visibility import Proxy
from meshbridge.istiod.adopt import adopt
from meshbridge.istiod.oracle import IstiodConfig
from meshbridge.pki.x509 import issue_ca, issue_leaf

SLEEP = Proxy("sidecar", "sleep", "apps", {"app": "sleep"})
GATEWAY = Proxy("router", "egress", "mesh-egress", {"istio": "egressgateway"})
VIP = "240.240.236.36"


def _tcp_chain(cluster: str, **match: Any) -> dict[str, Any]:
    chain: dict[str, Any] = {
        "filters": [{"name": "envoy.filters.network.tcp_proxy", "typedConfig": {"cluster": cluster}}]
    }
    if match:
        chain["filterChainMatch"] = match
    return chain


def _listener(address: str, port: int, *chains: dict[str, Any], **extra: Any) -> dict[str, Any]:
    name = f"{address}_{port}"
    return {"name": name, "address": {"socketAddress": {"address": address, "portValue": port}}, **extra} | {
        "filterChains": list(chains)
    }


WILDCARD_443 = _listener(
    "0.0.0.0",
    443,
    _tcp_chain("outbound|443||egress.mesh-egress.svc.cluster.local", serverNames=["egress.mesh-egress"]),
    defaultFilterChain={"name": "PassthroughFilterChain", "filters": []},
    listenerFilters=[{"name": "envoy.filters.listener.tls_inspector", "typedConfig": {}}],
)
VIP_443 = _listener(VIP, 443, _tcp_chain("outbound|443||lambda.external"))


def _ours(tmp: Path, proxy: Proxy = SLEEP, docs: list[dict[str, Any]] | None = None) -> ProxyConfig:
    return translate(build_config([("test", d) for d in docs or []]), proxy, Placement("127.0.9.9", tmp / "xds"))


def _adopt(ours: ProxyConfig, *listeners: dict[str, Any], docs: list[dict[str, Any]] | None = None) -> ProxyConfig:
    cfg = build_config([("test", d) for d in docs or []])
    return adopt(IstiodConfig(ours.proxy.namespace, list(listeners), [], [], [], []), ours, cfg)


# -- listeners: a VIP's listener folded into the port's ------------------------------------------------------


def test_a_vip_listener_beside_the_wildcard_one_is_folded_into_it_as_envoy_matches_it(tmp_path: Path) -> None:
    pc = _adopt(_ours(tmp_path), WILDCARD_443, VIP_443)
    (lst,) = pc.listeners  # two listeners on 127.0.9.9:443 would be refused: 'has duplicate address'
    assert lst["name"] == "0.0.0.0_443"
    assert lst["address"]["socket_address"] == {"address": "127.0.9.9", "port_value": 443}
    wildcard, vip = lst["filter_chains"]
    assert wildcard["filter_chain_match"] == {"server_names": ["egress.mesh-egress"]}
    assert vip["filter_chain_match"] == {"prefix_ranges": [{"address_prefix": VIP, "prefix_len": 32}]}
    assert vip["filters"][0]["typed_config"]["cluster"] == "outbound|443||lambda.external"
    assert lst["default_filter_chain"]["name"] == "PassthroughFilterChain"  # the wildcard's default stays


def test_a_vip_listener_alone_on_its_port_stays_its_own_listener(tmp_path: Path) -> None:
    """The twin: nothing to fold into on another port, so the VIP's listener binds there unchanged."""
    vip_8443 = _listener(VIP, 8443, _tcp_chain("outbound|8443||lambda.external"))
    pc = _adopt(_ours(tmp_path), WILDCARD_443, vip_8443)
    assert [x["name"] for x in pc.listeners] == ["0.0.0.0_443", f"{VIP}_8443"]
    (chain,) = pc.listeners[1]["filter_chains"]
    assert "filter_chain_match" not in chain
    assert [len(x["filter_chains"]) for x in pc.listeners] == [1, 1]


# -- secrets: what istiod references, served from the mesh's Secrets -----------------------------------------


def _secret(namespace: str, name: str) -> dict[str, Any]:
    ca = issue_ca("test CA")
    leaf = issue_leaf(ca, "client", common_name="egress", dns_names=["egress.example"])
    data = {"cert": leaf.cert_pem, "key": leaf.key_pem, "cacert": ca.cert_pem}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def _references(name: str) -> dict[str, Any]:
    tls = {"commonTlsContext": {"tlsCertificateSdsSecretConfigs": [{"name": name, "sdsConfig": {"ads": {}}}]}}
    chain = _tcp_chain("x") | {"transportSocket": {"name": "envoy.transport_sockets.tls", "typedConfig": tls}}
    return _listener("0.0.0.0", 8443, chain)


def test_a_secret_istiod_references_and_meshbridge_does_not_is_served_from_the_meshs_secret(tmp_path: Path) -> None:
    """A Secret the twin filled from meshbridge's PKI (or the user's) serves istiod's reference to it, though
    meshbridge's own translation of the proxy names no such secret."""
    ours = _ours(tmp_path, GATEWAY)
    assert "kubernetes://mtls-credential" not in ours.secrets
    pc = _adopt(ours, _references("kubernetes://mtls-credential"), docs=[_secret("mesh-egress", "mtls-credential")])
    served = pc.secrets["kubernetes://mtls-credential"]
    assert served is not None and served["tls_certificate"]["private_key"]["inline_bytes"]
    assert pc.warnings == []


def test_a_secret_of_another_namespace_is_not_served_and_the_warning_says_so(tmp_path: Path) -> None:
    """The twin: a gateway reads the Secrets of its own namespace only, as istiod serves them."""
    pc = _adopt(
        _ours(tmp_path, GATEWAY), _references("kubernetes://mtls-credential"), docs=[_secret("apps", "mtls-credential")]
    )
    assert pc.secrets["kubernetes://mtls-credential"] is None
    (w,) = pc.warnings
    assert w.name == "kubernetes://mtls-credential" and "the twin serves none by that name" in w.message
