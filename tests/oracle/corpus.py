"""The conformance corpus: one mesh's manifests per case, in the shapes users write (``cases/*.yaml``).

A case is a YAML file of Istio and Kubernetes documents for one mesh, as a user would apply them. Its first
comment lines say what it is. The world it runs in is assumed from the manifests, as ``meshbridge lint`` does
without a spec (``meshbridge.world.assumed_world``): a gateway pod per Gateway selector (with the Service
whose selector fits it, else the chart's ports 80→8080 and 443→8443), and one app ``sleep`` in ``default``.
Mesh settings come from an ``IstioOperator`` document in the case, if any, over Istio's defaults at the
current release. Every ``credentialName`` the case references gets a Secret with a real certificate in the
namespace where a gateway that uses it runs (the case's own Secret wins).

``python -m tests.oracle.corpus [CASE...]`` loads cases and prints their proxies (a quick check while writing).
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from meshbridge.envoy.names import parse_gateway_sds_name
from meshbridge.istio.config import ConfigSet, MeshSettings
from meshbridge.istio.parse import build_config, load_documents
from meshbridge.istio.resources import Secret
from meshbridge.istio.visibility import Proxy
from meshbridge.pki.x509 import issue_ca, issue_leaf
from meshbridge.world import assumed_world

CASES = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class Case:
    """One corpus case: its name, its mesh's configuration and the proxies of its world."""

    name: str
    cfg: ConfigSet
    proxies: list[Proxy]


def case_names() -> list[str]:
    """Every case, by file name without ``.yaml``."""
    return sorted(p.stem for p in CASES.glob("*.yaml"))


def load_case(name: str) -> Case:
    """The case ``cases/<name>.yaml`` with its assumed world and generated Secrets."""
    docs = load_documents([CASES / f"{name}.yaml"])
    cfg = build_config(docs, MeshSettings())
    world = assumed_world("mesh", cfg)
    cfg.services += world.services
    _add_secrets(cfg, [p.proxy for p in world.proxies])
    return Case(name, cfg, [p.proxy for p in world.proxies])


def _credential_names(cfg: ConfigSet) -> set[tuple[str, str]]:
    """(namespace, credentialName) pairs: gateways' in their workloads' namespaces, DRs' in the DR's."""
    wanted = set()
    for gw in cfg.gateways:
        for server in gw.spec.servers:
            if server.tls is not None and server.tls.credential_name:
                gateway_api = parse_gateway_sds_name(server.tls.credential_name)  # a Gateway API listener's Secret
                wanted.add(gateway_api[:2] if gateway_api else (gw.metadata.namespace, server.tls.credential_name))
    for dr in cfg.destination_rules:
        policies = [dr.spec.traffic_policy, *(s.traffic_policy for s in dr.spec.subsets)]
        for tp in policies:
            if tp is None:
                continue
            for tls in [tp.tls, *(p.tls for p in tp.port_level_settings)]:
                if tls is not None and tls.credential_name:
                    wanted.add((dr.metadata.namespace, tls.credential_name))
    return wanted


def _add_secrets(cfg: ConfigSet, proxies: list[Proxy]) -> None:
    namespaces = {p.namespace for p in proxies if p.kind == "router"}
    for ns, name in sorted(_credential_names(cfg)):
        for where in sorted(namespaces | {ns}):
            if cfg.secret(where, name) is None:
                cfg.secrets.append(_secret(where, name))


@cache
def _material() -> dict[str, str]:
    ca = issue_ca("corpus CA")
    leaf = issue_leaf(ca, "server", common_name="corpus", dns_names=["corpus.example.com"])
    assert leaf.key_pem is not None
    return {"cert": _b64(leaf.cert_pem), "key": _b64(leaf.key_pem), "cacert": _b64(ca.cert_pem)}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _secret(namespace: str, name: str) -> Secret:
    return Secret.model_validate(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "data": _material(),
        }
    )


if __name__ == "__main__":
    for n in sys.argv[1:] or case_names():
        case = load_case(n)
        proxies = ", ".join(f"{p.kind} {p.namespace}/{p.name}" for p in case.proxies)
        print(f"{n}: {len(case.cfg.warnings)} warnings; proxies: {proxies}")
        for w in case.cfg.warnings:
            print(f"  warning: {w}")
