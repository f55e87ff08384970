"""Each mesh's inputs, assembled one way (pure): the spec's rendering, or the user's manifests, plus credentials.

The twin (``local up``), ``translate``, ``verify --local`` and lint's :func:`meshbridge.lint.inputs.from_bridge`
read a mesh through :func:`mesh_documents` (the (source, document) pairs, for callers that name where an
object came from) or :func:`mesh_configs` (the :class:`~meshbridge.istio.config.ConfigSet` of each). Reading
files (manifests, backend CAs, the PKI store) is the caller's job; nothing here does I/O.

The cluster commands (``kube apply``, ``plan``, ``status``, ``verify --context``) call
:func:`meshbridge.render.render_bridge` directly: they apply the rendered documents, not a ConfigSet of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshbridge.envoy.names import SDS_CA_SUFFIX
from meshbridge.envoy.secrets import other_namespace
from meshbridge.istio.config import ConfigSet
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.render import render_bridge
from meshbridge.spec.models import Bridge
from meshbridge.world import mesh_config

Documents = Sequence[tuple[str, dict[str, Any]]]
ROUTING_KINDS = frozenset({"Gateway", "VirtualService", "DestinationRule", "ServiceEntry"})


def mesh_documents(
    bridge: Bridge,
    credentials: Mapping[str, MeshCredentials] | None,
    *,
    backend_cas: Mapping[str, bytes] | None = None,
    addresses: Mapping[str, str] | None = None,
    manifests: Mapping[str, tuple[str, Documents]] | None = None,
) -> tuple[dict[str, list[tuple[str, dict[str, Any]]]], list[str]]:
    """Each rendered mesh's documents: what the spec renders, or the user's manifests for the meshes named.

    Args:
        bridge: the validated spec.
        credentials: the meshes' certificates (``PkiStore.credentials``); ``None`` leaves the gateway Secrets out.
        backend_cas: export name → the backend's CA bundle (PEM), for exports that originate TLS.
        addresses: mesh → its ingress gateway's load-balancer address, over the spec's.
        manifests: mesh → (how the user named them, e.g. ``--manifests eks=a.yaml``; their (source, document)
            pairs, ``${VAR}`` already expanded). A Secret the spec renders that they lack is added from
            ``credentials``.

    Returns:
        mesh → (source, document) pairs, for every mesh :func:`meshbridge.render.render_bridge` renders; and
        notices for the user: a mesh whose manifests hold no routing object, each Secret filled from the PKI.

    Raises:
        RenderError: the spec cannot be rendered (e.g. no ingress gateway address).
    """
    manifests = manifests or {}
    rendered = render_bridge(
        bridge,
        dict(credentials) if credentials is not None else None,
        backend_cas=dict(backend_cas or {}),
        addresses=dict(addresses) if addresses is not None else None,
    )
    notices: list[str] = []
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for mesh, ms in rendered.items():
        if mesh not in manifests:
            out[mesh] = [("rendered", dict(d)) for d in ms]
            continue
        given, user_docs = manifests[mesh]
        docs = list(user_docs)
        have = {_key(d) for _, d in docs}
        if not any(kind in ROUTING_KINDS for kind, _, _ in have):
            notices.append(
                f"{mesh}: {given} hold no Gateway, VirtualService, DestinationRule or ServiceEntry: this mesh's "
                "proxies get no routes. Fix: pass the files that hold them, or drop --manifests for this mesh to "
                "run the rendered ones"
            )
        for d in ms:
            if d["kind"] == "Secret" and _key(d) not in have:
                md = d["metadata"]
                elsewhere = _held_elsewhere(user_docs, md["namespace"], md["name"])
                if not elsewhere:
                    docs.append(("meshbridge PKI", dict(d)))
                if _names_secret(user_docs, md["name"]):  # else nothing reads it: no need to say so
                    notices.append(_fill_notice(mesh, md["namespace"], md["name"], elsewhere))
        out[mesh] = docs
    return out, notices


def mesh_configs(
    bridge: Bridge,
    credentials: Mapping[str, MeshCredentials] | None,
    *,
    backend_cas: Mapping[str, bytes] | None = None,
    addresses: Mapping[str, str] | None = None,
    manifests: Mapping[str, tuple[str, Documents]] | None = None,
) -> tuple[dict[str, ConfigSet], list[str]]:
    """Each rendered mesh's :class:`ConfigSet` (:func:`mesh_documents`, then the world's gateway Services), and
    the notices. Arguments and errors as :func:`mesh_documents`."""
    docs, notices = mesh_documents(
        bridge, credentials, backend_cas=backend_cas, addresses=addresses, manifests=manifests
    )
    return {mesh: mesh_config(bridge, mesh, d) for mesh, d in docs.items()}, notices


_SECRET_REFS = ("credentialName", "credentialNames", "certificateRefs", "caCertificateRefs")
"""The fields by which an Istio or Gateway API document names a Secret its gateway reads."""


def _held_elsewhere(docs: Documents, namespace: str, name: str) -> list[str]:
    """The namespaces other than ``namespace`` where ``docs`` hold a Secret ``name`` or its ``-cacert`` (or, for a
    ``-cacert``, its certificate's): the Secret the user meant, which a gateway of ``namespace`` is not served."""
    stem = name.removesuffix(SDS_CA_SUFFIX)
    found = [
        d.get("metadata", {}).get("namespace", "default")
        for _, d in docs
        if d.get("kind") == "Secret" and d.get("metadata", {}).get("name") in (stem, stem + SDS_CA_SUFFIX)
    ]
    return sorted({ns for ns in found if ns != namespace})


def _fill_notice(mesh: str, namespace: str, name: str, elsewhere: Sequence[str]) -> str:
    """What the user learns of the gateway Secret ``namespace/name`` their manifests lack: filled from the PKI, or
    (held in ``elsewhere``) served to no gateway, in lint MB207's words."""
    if not elsewhere:
        return (
            f"{mesh}: Secret {namespace}/{name} is not in the manifests; using meshbridge's issued certificates for it"
        )
    rule, whose = other_namespace("router")
    return (
        f"{mesh}: the manifests hold Secret {name} in {', '.join(elsewhere)}, not in {namespace}: {rule}, so a gateway "
        f"of {namespace} that reads credentialName {name.removesuffix(SDS_CA_SUFFIX)} gets none, and the twin does not "
        f"fill it from meshbridge's certificates either (lint MB207). Fix: create the Secret {name} in namespace "
        f"{namespace} ({whose})"
    )


def _names_secret(docs: Documents, name: str) -> bool:
    """Whether a document of ``docs`` names Secret ``name`` (or its ``-cacert``) in a field of :data:`_SECRET_REFS`."""
    wanted = {name, name + SDS_CA_SUFFIX}

    def walk(node: Any) -> bool:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in _SECRET_REFS:
                    values = value if isinstance(value, list) else [value]
                    named = {v.get("name") if isinstance(v, Mapping) else v for v in values}
                    if named & wanted:
                        return True
                if walk(value):
                    return True
        elif isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return any(walk(d) for _, d in docs)


def _key(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    md = doc.get("metadata", {})
    return doc.get("kind", ""), md.get("namespace", "default"), md.get("name", "")
