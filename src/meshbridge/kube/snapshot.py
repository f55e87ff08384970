"""A mesh's live configuration read from its cluster, as the documents lint reads from files (``lint --context``).

What istiod of that cluster reads for the bridge: the Istio networking resources (Gateway, VirtualService,
DestinationRule, ServiceEntry at the mesh's API version, EnvoyFilter), AuthorizationPolicies and Services, the
Secrets the Gateways and DestinationRules name by ``credentialName`` (and their ``-cacert``), and the running
istiod's settings: its mesh config ConfigMap and its Deployment's environment and image. Each kind is listed
cluster-wide; where the user may not (403, e.g. with ``render --rbac``'s minimal rights) it is listed in the
namespaces the caller names, and a note says so. Nothing is written; Secrets stay in memory (lint reads their
certificates, and never prints a key).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from meshbridge.istio.parse import is_istiod_deployment, is_mesh_config_map
from meshbridge.kube.client import Document, KubeClient
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.plan import normalize
from meshbridge.kube.resources import ENVOY_FILTER_API, ResourceRef, ResourceType, resource_type

_LISTED = ("Gateway", "VirtualService", "DestinationRule", "ServiceEntry")


@dataclass
class Snapshot:
    """The documents read from one cluster (``(source, document)``, as :func:`meshbridge.istio.parse.load_documents`
    gives them) and the notes on what could not be read."""

    documents: list[tuple[str, Document]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def snapshot(
    client: KubeClient,
    *,
    api_version: str,
    namespaces: Sequence[str],
    gateway_namespaces: Sequence[str] = (),
    istiod_namespace: str = "istio-system",
    revision: str | None = None,
) -> Snapshot:
    """Read the mesh's live configuration.

    Args:
        client: the mesh's cluster.
        api_version: the networking API the mesh serves (``networking.istio.io/v1`` or ``.../v1beta1``).
        namespaces: where to list when a cluster-wide list is forbidden (the gateways', the apps').
        gateway_namespaces: where the gateway pods run: a ``credentialName`` is read there too (and in the
            Gateway's or DestinationRule's own namespace).
        istiod_namespace: where istiod, its mesh config and its Deployment are.
        revision: istiod's revision (its ConfigMap is ``istio-<revision>``, its Deployment ``istiod-<revision>``).

    Raises:
        KubeApiError: a read failed otherwise than 403 or 404 (a timeout, a 500 ...).
    """
    shot = Snapshot()
    source = f"cluster {client.context}"
    security = api_version.replace("networking.istio.io", "security.istio.io")
    types = [resource_type(api_version, k) for k in _LISTED]
    types += [resource_type(ENVOY_FILTER_API, "EnvoyFilter"), resource_type(security, "AuthorizationPolicy")]
    types.append(resource_type("v1", "Service"))
    for rtype in types:
        shot.documents += [(source, normalize(d)) for d in _list(client, rtype, namespaces, shot.notes)]
    for ref in _credential_secrets(shot.documents, gateway_namespaces):
        _get(client, ref, source, shot, quiet_missing=True)
    if revision is not None:
        _get(client, ResourceRef("v1", "ConfigMap", istiod_namespace, f"istio-{revision}"), source, shot)
        _get(client, ResourceRef("apps/v1", "Deployment", istiod_namespace, f"istiod-{revision}"), source, shot)
    else:
        _find_istiod(client, istiod_namespace, source, shot)
    return shot


def _find_istiod(client: KubeClient, namespace: str, source: str, shot: Snapshot) -> None:
    """istiod's mesh config and Deployment when its revision is not known: the one of each in ``namespace``."""
    for kind, api, wanted in (("ConfigMap", "v1", is_mesh_config_map), ("Deployment", "apps/v1", is_istiod_deployment)):
        try:
            found = [d for d in client.list_objects(resource_type(api, kind), namespace=namespace) if wanted(d)]
        except KubeApiError as e:
            if e.status not in (403, 404):
                raise
            shot.notes.append(f"{client.context}: cannot list {kind}s in {namespace} ({e.status}): istiod not read")
            continue
        if len(found) == 1:
            shot.documents.append((source, normalize(found[0])))
        else:
            names = ", ".join(str(d["metadata"]["name"]) for d in found) or "none"
            shot.notes.append(
                f"{client.context}: istiod's {kind} in {namespace}: {names}; pass -f bridge.yaml (its istio.revision "
                "chooses one) to read the mesh settings"
            )


def _list(client: KubeClient, rtype: ResourceType, namespaces: Sequence[str], notes: list[str]) -> list[Document]:
    try:
        return client.list_objects(rtype)
    except KubeApiError as e:
        if e.status == 404:
            notes.append(f"{client.context}: {rtype.plural}.{rtype.group or 'core'} is not served: none read")
            return []
        if e.status != 403:
            raise
    found: list[Document] = []
    read, refused = [], []
    for ns in namespaces:
        try:
            found += client.list_objects(rtype, namespace=ns)
            read.append(ns)
        except KubeApiError as e:
            if e.status not in (403, 404):
                raise
            refused.append(ns)
    where = ", ".join(read) or "no namespace"
    notes.append(
        f"{client.context}: no permission to list {rtype.plural} cluster-wide; read in {where}"
        + (f" (refused in {', '.join(refused)})" if refused else "")
    )
    return found


def _credential_secrets(
    documents: Iterable[tuple[str, Document]], gateway_namespaces: Sequence[str]
) -> list[ResourceRef]:
    """The Secrets the Gateways and DestinationRules name (``credentialName`` and its ``-cacert``), in the
    Gateway's or rule's namespace and in ``gateway_namespaces`` (a gateway reads its Secret where its pods run)."""
    refs: dict[tuple[str, str], ResourceRef] = {}
    for _, doc in documents:
        if doc.get("kind") not in ("Gateway", "DestinationRule"):
            continue
        own = str((doc.get("metadata") or {}).get("namespace", "default"))
        for name in _credential_names(doc):
            for ns in {own, *gateway_namespaces}:
                for secret in (name, f"{name}-cacert"):
                    refs.setdefault((ns, secret), ResourceRef("v1", "Secret", ns, secret))
    return sorted(refs.values(), key=lambda r: (r.namespace, r.name))


def _credential_names(doc: Document) -> set[str]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Gateway":
        return {
            str(tls["credentialName"])
            for s in spec.get("servers") or []
            if "credentialName" in (tls := s.get("tls") or {})
        }
    policies = [spec.get("trafficPolicy") or {}, *((s.get("trafficPolicy") or {}) for s in spec.get("subsets") or [])]
    policies += [p for t in list(policies) for p in t.get("portLevelSettings") or []]
    return {str(p["tls"]["credentialName"]) for p in policies if "credentialName" in (p.get("tls") or {})}


def _get(client: KubeClient, ref: ResourceRef, source: str, shot: Snapshot, *, quiet_missing: bool = False) -> None:
    try:
        doc = client.get(ref)
    except KubeApiError as e:
        if e.status != 403:
            raise
        shot.notes.append(f"{client.context}: no permission to read {ref.kind} {ref.namespace}/{ref.name}")
        return
    if doc is None:
        if not quiet_missing:
            shot.notes.append(f"{client.context}: {ref.kind} {ref.namespace}/{ref.name} not found")
        return
    shot.documents.append((source, normalize(doc)))
