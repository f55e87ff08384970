"""cert-manager mode (``spec.tls.issuer: cert-manager``): the gateways' certificates come from cert-manager in each
cluster, not from meshbridge's local store (pure: spec and the issuers' public CA certificates in, dicts out).

Per gateway, in the gateway workload's namespace (istiod serves a gateway only the Secrets of its own namespace):

* a ``Certificate`` (``cert-manager.io/v1``) whose ``secretName`` is the mesh's credentialName: the ingress
  gateway's server certificate (DNS SANs: the exported hosts, usage ``server auth``), the egress gateway's client
  certificate (URI SAN: its SPIFFE identity, usage ``client auth``), ``digital signature`` (and ``key
  encipherment`` for an RSA key, as meshbridge's own leaves), the key type and lifetime of ``spec.tls``, renewed
  when a third of the lifetime is left (cert-manager's own default, written out);
* a ``<credentialName>-cacert`` Secret with only ``ca.crt``: the peer meshes' CA certificates (public). cert-manager
  writes its *own* issuer's ``ca.crt`` into the credential Secret, which would make the gateway trust its own
  mesh and refuse the peer's certificates. The exporter's Gateway names it in ``caCertCredentialName`` (Istio
  1.28+; before, the field does not exist and istiod reads the same name by default); the importer's
  DestinationRule has no such field, and istiod reads ``<credentialName>-cacert`` before the credential's own
  ``ca.crt``. A CA-only Secret must carry the ``-cacert`` suffix: istiod serves any other
  name as a certificate and key (``pilot/pkg/xds/sds.go``);
  With ``certManager.peerTrust: Bundle`` a trust-manager ``Bundle`` of that name (cluster-scoped, the CAs inline)
  writes that Secret into the gateway's namespace instead;
* with ``certManager.caSecret``, a CA ``Issuer`` on that Secret (``meshbridge-<bridge>``): the CA key stays in the
  cluster.

The Secret cert-manager writes carries no meshbridge label: meshbridge does not own it (prune would delete it).
The local twin, which runs no cert-manager, plays it: given leaves and the issuer's CA (``MeshCredentials`` with
``issuer_ca``), render also emits the Secret cert-manager would write, as it writes it (``kubernetes.io/tls``:
``tls.crt``, ``tls.key``, ``ca.crt`` the issuer's own CA).
"""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.names import SDS_CA_SUFFIX
from meshbridge.errors import RenderError
from meshbridge.pki import identities
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.pki.identities import LeafSpec
from meshbridge.render.manifests import Document, secret
from meshbridge.spec.models import Bridge, CertManager, GatewayWorkload

CERT_MANAGER_API = "cert-manager.io/v1"
"""The API version of ``Certificate`` and ``Issuer``."""
TRUST_MANAGER_API = "trust.cert-manager.io/v1alpha1"
"""The API version of trust-manager's ``Bundle``."""
CA_KEY = "ca.crt"
"""The key of the peer CA Secret (istiod reads ``cacert`` or ``ca.crt``; cert-manager's own name)."""


def peer_ca_secret_name(credential_name: str) -> str:
    """The Secret holding the peers' CA certificates beside ``credential_name``: ``<credentialName>-cacert``."""
    return credential_name + SDS_CA_SUFFIX


def issuer_name(bridge: Bridge) -> str:
    """The CA ``Issuer`` meshbridge renders on ``certManager.caSecret``: ``meshbridge-<bridge>``."""
    return f"meshbridge-{bridge.metadata.name}"


def cert_manager_documents(bridge: Bridge, mesh: str, creds: MeshCredentials | None) -> list[Document]:
    """The Certificates, peer CA Secrets and CA Issuers of ``mesh``'s gateways.

    Args:
        bridge: a validated spec in cert-manager mode.
        mesh: one of its own meshes.
        creds: the mesh's trust bundles (``PkiStore.credentials``: the peers' CA certificates, no leaves);
            ``None`` renders no peer CA Secret (``--no-secrets``: ``<credentialName>-cacert`` comes another way).
            With leaves and ``issuer_ca`` (the local twin), also the Secrets cert-manager would write.

    Returns:
        The documents, unlabelled (the caller labels them as the bridge's).
    """
    m = bridge.spec.meshes[mesh]
    cm = m.cert_manager
    assert cm is not None  # validated
    name = bridge.credential_name(mesh)
    out: list[Document] = []
    issuers: set[str] = set()
    roles = (
        (m.ingress_gateway, identities.server_leaf(bridge, mesh), creds.server_trust if creds else None),
        (m.egress_gateway, identities.client_leaf(bridge, mesh), creds.client_trust if creds else None),
    )
    issued = {"server": creds.server, "client": creds.client} if creds and creds.issuer_ca else {}
    bundles: dict[str, tuple[str, bytes]] = {}
    for gw, leaf, trust in roles:
        if gw is None or leaf is None:
            continue
        if cm.ca_secret is not None and gw.namespace not in issuers:
            issuers.add(gw.namespace)
            out.append(_ca_issuer(bridge, gw.namespace, cm.ca_secret))
        out.append(_certificate(bridge, cm, name, gw, leaf))
        if trust is not None and cm.peer_trust == "Bundle":
            out += _bundle(mesh, peer_ca_secret_name(name), gw.namespace, trust, bundles)
        if trust is not None and (cm.peer_trust == "Secret" or issued):  # the twin plays trust-manager too
            out.append(secret(peer_ca_secret_name(name), gw.namespace, {CA_KEY: trust}))
        bundle = issued.get(leaf.role)
        if bundle is not None and bundle.key_pem is not None and creds is not None and creds.issuer_ca:
            data = {"tls.crt": bundle.cert_pem, "tls.key": bundle.key_pem, CA_KEY: creds.issuer_ca}
            out.append(_as_cert_manager_writes(secret(name, gw.namespace, data), _issuer_ref(bridge, cm)["name"]))
    return out


def _certificate(bridge: Bridge, cm: CertManager, name: str, gw: GatewayWorkload, leaf: LeafSpec) -> Document:
    tls = bridge.spec.tls
    rsa = tls.key_type == "RSA_2048"
    hours = tls.leaf_validity_days * 24
    spec: dict[str, Any] = {"secretName": name, "commonName": leaf.common_name}
    if leaf.dns_names:
        spec["dnsNames"] = list(leaf.dns_names)
    if leaf.uris:
        spec["uris"] = list(leaf.uris)
    key = {"algorithm": "RSA", "size": 2048} if rsa else {"algorithm": "ECDSA", "size": 256}
    spec |= {
        "duration": f"{hours}h",
        "renewBefore": f"{hours // 3}h",
        "privateKey": key | {"rotationPolicy": "Always"},
        "usages": [
            "digital signature",
            *(["key encipherment"] if rsa else []),
            "server auth" if leaf.role == "server" else "client auth",
        ],
        "issuerRef": _issuer_ref(bridge, cm),
    }
    return {
        "apiVersion": CERT_MANAGER_API,
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": gw.namespace},
        "spec": spec,
    }


def _bundle(mesh: str, name: str, namespace: str, pem: bytes, seen: dict[str, tuple[str, bytes]]) -> list[Document]:
    """The trust-manager ``Bundle`` that writes Secret ``name`` (``ca.crt``: ``pem``) into ``namespace``; none when
    the mesh's other gateway, in the same namespace, already has that very Bundle.

    Raises:
        RenderError: the mesh's other gateway needs a Bundle of the same name elsewhere or with other CAs (a Bundle
            is cluster-scoped: one per name).
    """
    if seen.get(name) == (namespace, pem):
        return []
    if name in seen:
        raise RenderError(
            f"mesh {mesh!r}: its ingress and egress gateways would each need a trust-manager Bundle named {name!r} "
            "(a Bundle is cluster-scoped: one per name). Fix: give the mesh certManager.peerTrust: Secret"
        )
    seen[name] = (namespace, pem)
    spec = {
        "sources": [{"inLine": pem.decode("ascii")}],
        "target": {
            "secret": {"key": CA_KEY},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        },
    }
    return [{"apiVersion": TRUST_MANAGER_API, "kind": "Bundle", "metadata": {"name": name}, "spec": spec}]


def _as_cert_manager_writes(doc: Document, issuer: str) -> Document:
    """``doc`` (a Secret) typed and annotated as cert-manager writes the Secret of a Certificate of the same name."""
    name = doc["metadata"]["name"]
    annotations = {"cert-manager.io/certificate-name": name, "cert-manager.io/issuer-name": issuer}
    return doc | {"type": "kubernetes.io/tls", "metadata": doc["metadata"] | {"annotations": annotations}}


def _issuer_ref(bridge: Bridge, cm: CertManager) -> dict[str, str]:
    if cm.issuer_ref is None:
        return {"name": issuer_name(bridge), "kind": "Issuer", "group": "cert-manager.io"}
    ref = cm.issuer_ref
    return {"name": ref.name, "kind": ref.kind, "group": ref.group}


def _ca_issuer(bridge: Bridge, namespace: str, ca_secret: str) -> Document:
    return {
        "apiVersion": CERT_MANAGER_API,
        "kind": "Issuer",
        "metadata": {"name": issuer_name(bridge), "namespace": namespace},
        "spec": {"ca": {"secretName": ca_secret}},
    }
