"""Builders for translation tests: a mesh's config from the article or the seed, and a proxy's placement."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshbridge.envoy.placement import Placement
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import load_documents
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge
from meshbridge.spec import Bridge
from meshbridge.world import find_proxy, mesh_config, workloads
from tests.builders import ARTICLE, scratch_dir, seed_bridge

ADDRESSES = {"eks/istio-ingressgateway": "127.0.9.2", "gke/istio-egressgateway": "127.0.9.3", "gke/sleep": "127.0.9.4"}


def _secrets(mesh: str) -> list[tuple[str, dict[str, Any]]]:
    """The seed's gateway Secrets for ``mesh``, from a PKI issued once per test session (one for both meshes, so
    each gateway trusts the other's certificate)."""
    return [("secrets", copy.deepcopy(d)) for d in _seed_secrets()[mesh]]


@functools.cache
def _seed_secrets() -> dict[str, list[dict[str, Any]]]:
    b = seed_bridge()
    with scratch_dir("meshbridge-test-pki-") as tmp:  # the store (CA keys) is gone once the Secrets are rendered
        store = PkiStore(tmp)
        store.issue(b)
        rendered = render_bridge(b, store.credentials(b))
        return {mesh: [d for d in docs if d["kind"] == "Secret"] for mesh, docs in rendered.items()}


def article_config(mesh: str, bridge: Bridge | None = None, secrets: bool = True) -> ConfigSet:
    """The article's own manifests for ``mesh`` (eks: step 4, gke: step 5) in the seed's world.

    With ``secrets``, the gateway Secrets the article creates with kubectl are added (issued by meshbridge).
    """
    env = {"HOST_GW_CLUSTER2": "ingress.eks.example.com"}
    docs = load_documents([ARTICLE / f"{mesh}.yaml"], env) + (_secrets(mesh) if secrets else [])
    return mesh_config(bridge or seed_bridge(), mesh, docs)


def rendered_config(mesh: str, bridge: Bridge | None = None, secrets: bool = False) -> ConfigSet:
    """meshbridge's rendered manifests for ``mesh`` (with the seed's Secrets when ``secrets``)."""
    b = bridge or seed_bridge()
    docs = [("rendered", d) for d in render_bridge(b, None)[mesh]] + (_secrets(mesh) if secrets else [])
    return mesh_config(b, mesh, docs)


def placement(tmp: Path, address: str = "127.0.9.9") -> Placement:
    return Placement(
        address,
        tmp / "xds",
        resolver=("127.0.9.53", 10053),
        system_ca=tmp / "system.pem",
        workload_certs=tmp / "workload",
        access_log=tmp / "access.log",
    )


def proxy_config(cfg: ConfigSet, name: str, tmp: Path, bridge: Bridge | None = None) -> ProxyConfig:
    b = bridge or seed_bridge()
    spec = find_proxy(b, name)
    return translate(cfg, spec.proxy, placement(tmp, ADDRESSES[spec.name]), workloads(b, spec.mesh, ADDRESSES))


SEED_PATH = ("gke/sleep", "gke/istio-egressgateway", "eks/istio-ingressgateway")
Docs = dict[str, list[dict[str, Any]]]


def seed_path(tmp: Path, edit: Callable[[Docs], None] = lambda _: None) -> dict[str, ProxyConfig]:
    """The seed's three proxies translated from its rendered manifests (edited), with the gateway Secrets."""
    b = seed_bridge()
    docs = {mesh: copy.deepcopy(list(ms)) for mesh, ms in render_bridge(b, None).items()}
    edit(docs)
    out = {}
    for name in SEED_PATH:
        mesh = name.split("/")[0]
        cfg = mesh_config(b, mesh, [("rendered", d) for d in docs[mesh]])
        cfg.secrets += rendered_config(mesh, secrets=True).secrets
        out[name] = proxy_config(cfg, name, tmp)
    return out


def doc_named(docs: Docs, mesh: str, kind: str, name: str) -> dict[str, Any]:
    """The document of ``kind`` named ``name`` in ``mesh``'s rendered manifests."""
    return next(d for d in docs[mesh] if d["kind"] == kind and d["metadata"]["name"] == name)


def istio_mutual_egress(docs: Docs, port: int = 443) -> None:
    """The seed's sidecar → egress gateway hop (gke) on ISTIO_MUTUAL, in the shape of Istio's egress mutual-TLS
    origination task: the egress Gateway's server on ``port`` (443 as in the task; 80, the seed's, puts it on the
    listener istiod's default route for the egress gateway Service's own host reaches) with ``tls.mode:
    ISTIO_MUTUAL``, the DestinationRule's subset sending ISTIO_MUTUAL with ``sni``, the VirtualService's two routes
    on ``port``."""
    doc_named(docs, "gke", "Gateway", "istio-egressgateway")["spec"]["servers"] = [
        {
            "port": {"number": port, "name": "https-mesh", "protocol": "HTTPS"},
            "hosts": ["lambda.external"],
            "tls": {"mode": "ISTIO_MUTUAL"},
        }
    ]
    tls = {"mode": "ISTIO_MUTUAL", "sni": "lambda.external"}
    doc_named(docs, "gke", "DestinationRule", "egressgateway-for-lambda")["spec"]["subsets"] = [
        {"name": "lambda", "trafficPolicy": {"portLevelSettings": [{"port": {"number": port}, "tls": tls}]}}
    ]
    mesh_route, gateway_route = doc_named(docs, "gke", "VirtualService", "direct-lambda-through-egress-gateway")[
        "spec"
    ]["http"]
    mesh_route["route"][0]["destination"]["port"]["number"] = port
    gateway_route["match"][0]["port"] = port


CLIENT_FILES = {
    "clientCertificate": "/etc/istio/egressgateway-certs/tls.crt",
    "privateKey": "/etc/istio/egressgateway-certs/tls.key",
    "caCertificates": "/etc/istio/egressgateway-ca-certs/ca.crt",
}
"""Where the egress gateway's pod mounts its client certificate, key and the exporter's CA, as Istio's egress TLS
origination task mounted them before credentialName (:func:`client_certificate_files`)."""


def client_certificate_files(docs: Docs) -> None:
    """The seed's egress gateway (gke) originates its mutual TLS with the certificate, key and CA its pod mounts as
    files (:data:`CLIENT_FILES`): the importer's DestinationRule names them instead of a credentialName, and gke
    keeps no gateway Secret."""
    tls = doc_named(docs, "gke", "DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"]["portLevelSettings"][0]
    del tls["tls"]["credentialName"]
    tls["tls"].update(CLIENT_FILES)
    docs["gke"] = [d for d in docs["gke"] if d["kind"] != "Secret"]
