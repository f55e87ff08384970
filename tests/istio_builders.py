"""Builders for translation tests: a mesh's config from the article or the seed, and a proxy's placement."""

from __future__ import annotations

from pathlib import Path

from meshbridge.envoy.placement import Placement
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import load_documents
from meshbridge.render import render_bridge
from meshbridge.spec import Bridge
from meshbridge.world import find_proxy, mesh_config, workloads
from tests.builders import ARTICLE, seed_bridge

ADDRESSES = {"eks/istio-ingressgateway": "127.0.9.2", "gke/istio-egressgateway": "127.0.9.3", "gke/sleep": "127.0.9.4"}


def article_config(mesh: str, bridge: Bridge | None = None) -> ConfigSet:
    """The article's own manifests for ``mesh`` (eks: step 4, gke: step 5) in the seed's world."""
    env = {"HOST_GW_CLUSTER2": "ingress.eks.example.com"}
    return mesh_config(bridge or seed_bridge(), mesh, load_documents([ARTICLE / f"{mesh}.yaml"], env))


def rendered_config(mesh: str, bridge: Bridge | None = None) -> ConfigSet:
    """meshbridge's rendered manifests for ``mesh`` (no Secrets)."""
    b = bridge or seed_bridge()
    docs = [("rendered", d) for d in render_bridge(b, None)[mesh]]
    return mesh_config(b, mesh, docs)


def placement(tmp: Path, address: str = "127.0.9.9") -> Placement:
    return Placement(
        address,
        tmp / "xds",
        resolver=("127.0.9.53", 10053),
        system_ca=tmp / "system.pem",
        access_log=tmp / "access.log",
    )


def proxy_config(cfg: ConfigSet, name: str, tmp: Path, bridge: Bridge | None = None) -> ProxyConfig:
    b = bridge or seed_bridge()
    spec = find_proxy(b, name)
    return translate(cfg, spec.proxy, placement(tmp, ADDRESSES[spec.name]), workloads(b, spec.mesh, ADDRESSES))
