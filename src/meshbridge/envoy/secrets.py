"""SDS resources for ``credentialName`` secrets, served as istiod serves them.

Sources: istio/istio ``pilot/pkg/xds/sds.go`` and ``pilot/pkg/credentials/kube/secrets.go``.

* ``kubernetes://<name>``: the Secret ``<name>`` **in the proxy's namespace**; generic ``cert``/``key`` first,
  then TLS-type ``tls.crt``/``tls.key``; both values must be non-empty.
* ``kubernetes://<name>-cacert``: the Secret ``<name>-cacert`` if it exists, else ``<name>``; ``cacert``
  first, then ``ca.crt``; a ``crl`` (or ``ca.crl``) beside it becomes the validation context's CRL.
* ``kubernetes-gateway://<namespace>/<name>`` (a Kubernetes Gateway API listener's ``certificateRefs``) and its
  ``-cacert`` (the Gateway's ``caCertificateRefs``): the same, for the Secret in ``<namespace>``, which istiod serves
  only to a gateway in that namespace (a reference elsewhere needs a ReferenceGrant, which meshbridge never renders).
* ``configmap://<namespace>/<name>-cacert`` (a BackendTLSPolicy's CA): the ConfigMap's ``ca.crt``, from any
  namespace (istiod: "we allow any configmap references").
* Anything missing is simply not served: the listener or cluster waits for it (503 at the egress, a reset
  handshake at the ingress).

What a pod's istio-agent serves itself (:func:`agent_secret`) comes from the proxy's :class:`Placement`: the OS
bundle (``file-root:system``), the workload certificate (``default``) and mesh root (``ROOTCA``) that the
twin's mesh CA issued (:attr:`Placement.workload_certs`), and the files a Gateway or DestinationRule names in the
pod (``file-cert:<cert>~<key>``, ``file-root:<ca>``) from their mounted copies (:attr:`Placement.mounts`), as
files Envoy reads, so no private key is inline. A file that is not mounted is not served, as an agent serves
nothing for a file the pod lacks.
"""

from __future__ import annotations

import base64
from typing import Any

from meshbridge.envoy.names import (
    SDS_CA_SUFFIX,
    SYSTEM_ROOTS,
    WORKLOAD_CERT,
    WORKLOAD_ROOTS,
    parse_configmap_sds_name,
    parse_file_sds_name,
    parse_gateway_sds_name,
    parse_sds_name,
)
from meshbridge.envoy.placement import WORKLOAD_FILES, Placement
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import secret_values
from meshbridge.istio.visibility import ProxyKind

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def sds_resource(cfg: ConfigSet, namespace: str, name: str, placement: Placement | None) -> dict[str, Any] | None:
    """The Envoy ``Secret`` resource istiod (or the pod's istio-agent) would serve for SDS ``name`` to a proxy in
    ``namespace``.

    Args:
        cfg: the mesh's configuration (its Secrets).
        namespace: the proxy's namespace: only Secrets there are served.
        name: ``kubernetes://<cred>``, ``kubernetes://<cred>-cacert``, their ``kubernetes-gateway://<ns>/`` forms,
            or a name the agent serves
            (:func:`agent_secret`).
        placement: where the proxy runs (its OS bundle and workload certificate files); ``None``: only the
            Secrets of ``cfg`` are served.

    Returns:
        The resource, or ``None`` when nothing would be served.
    """
    config_map = parse_configmap_sds_name(name)
    if config_map is not None:
        return _config_map_ca(cfg, name, *config_map)
    parsed = parse_sds_name(name)
    gateway = parse_gateway_sds_name(name)
    if gateway is not None:
        secret_namespace, cred_name, ca = gateway
        if secret_namespace != namespace:
            return None
        parsed = cred_name, ca
    if parsed is None:
        return agent_secret(name, placement)
    cred, is_ca = parsed
    if is_ca:
        return _ca_secret(cfg, namespace, name, cred)
    secret = cfg.secret(namespace, cred)
    if secret is None:
        return None
    values = secret_values(secret)
    for cert_key, key_key in (("cert", "key"), ("tls.crt", "tls.key")):
        cert, key = values.get(cert_key), values.get(key_key)
        if cert and key:
            return {
                "@type": SECRET_TYPE,
                "name": name,
                "tls_certificate": {
                    "certificate_chain": {"inline_bytes": _b64(cert)},
                    "private_key": {"inline_bytes": _b64(key)},
                },
            }
    return None


def other_namespace(kind: ProxyKind) -> tuple[str, str]:
    """Why a proxy of ``kind`` gets no Secret that the input holds only in another namespace, and which namespace the
    fix puts it in: lint MB207's words, which ``local up`` repeats. istiod serves a proxy only the Secrets of its own
    namespace (``pilot/pkg/xds/sds.go`` filterAuthorizedResources: ``sameNamespace``)."""
    proxy = "gateway" if kind == "router" else "sidecar"
    return (
        f"istiod serves a {proxy} only the Secrets of its own namespace",
        f"the {proxy} workload's namespace, not the namespace of the resource that names it",
    )


def unlisted_secrets(namespace: str, account: str) -> tuple[str, str]:
    """Why a sidecar of ``namespace`` running as ServiceAccount ``account``, bound no rule that lists Secrets, may get
    none of its credentialName Secrets, and the fix: lint MB213's words, which ``local up`` repeats. istiod serves a
    proxy a certificate Secret (not a ``-cacert``) only if its account may list Secrets in its namespace
    (``pilot/pkg/xds/sds.go`` filterAuthorizedResources, a SubjectAccessReview); a sidecar's has no such Role
    unless someone binds one (istio.io's TLS origination at a sidecar creates client-credential-role)."""
    ns, sa = namespace, account
    return (
        f"istiod serves a sidecar only if its ServiceAccount {ns}/{sa} may list Secrets in {ns} (a "
        "SubjectAccessReview), and no Role or ClusterRole of the input is bound to it with list on secrets; "
        "Kubernetes grants a ServiceAccount none by default. Not checked further: RBAC outside the input is not seen",
        f"bind {ns}/{sa} a Role in {ns} with list on secrets (kubectl create role client-credential-role "
        f"--resource=secret --verb=list -n {ns}; kubectl create rolebinding client-credential-role-binding "
        f"--role=client-credential-role --serviceaccount={ns}:{sa} -n {ns}) and pass it to lint, or check it: kubectl "
        f"auth can-i list secrets -n {ns} --as=system:serviceaccount:{ns}:{sa}",
    )


def agent_secret(name: str, placement: Placement | None) -> dict[str, Any] | None:
    """What a pod's istio-agent serves for SDS ``name``, from the files ``placement`` names.

    ``file-root:system``: the OS bundle (:attr:`Placement.system_ca`); ``default``: the workload certificate and
    its key; ``ROOTCA``: the mesh's root (both in :attr:`Placement.workload_certs`); ``file-cert:<cert>~<key>``
    and ``file-root:<ca>``: the pod's files, from their copies in :attr:`Placement.mounts`. ``None`` for any other
    name, or when the placement has no such file.
    """
    if placement is None:
        return None
    paths = parse_file_sds_name(name)
    if paths is not None:
        if not all(p in placement.mounts for p in paths):
            return None
        files = [placement.pod_file(p) for p in paths]
        if len(files) == 1:
            return {"@type": SECRET_TYPE, "name": name, "validation_context": {"trusted_ca": {"filename": files[0]}}}
        return {
            "@type": SECRET_TYPE,
            "name": name,
            "tls_certificate": {"certificate_chain": {"filename": files[0]}, "private_key": {"filename": files[1]}},
        }
    if name == SYSTEM_ROOTS and placement.system_ca is not None:
        return {
            "@type": SECRET_TYPE,
            "name": name,
            "validation_context": {"trusted_ca": {"filename": str(placement.system_ca)}},
        }
    folder = placement.workload_certs
    if folder is None or name not in (WORKLOAD_CERT, WORKLOAD_ROOTS):
        return None
    chain, key, root = (str(folder / f) for f in WORKLOAD_FILES)
    if name == WORKLOAD_ROOTS:
        return {"@type": SECRET_TYPE, "name": name, "validation_context": {"trusted_ca": {"filename": root}}}
    return {
        "@type": SECRET_TYPE,
        "name": name,
        "tls_certificate": {"certificate_chain": {"filename": chain}, "private_key": {"filename": key}},
    }


def _ca_secret(cfg: ConfigSet, namespace: str, name: str, cred: str) -> dict[str, Any] | None:
    secret = cfg.secret(namespace, cred + SDS_CA_SUFFIX) or cfg.secret(namespace, cred)
    if secret is None:
        return None
    values = secret_values(secret)
    for ca_key, crl_key in (("cacert", "crl"), ("ca.crt", "ca.crl")):
        ca = values.get(ca_key)
        if ca:
            vc: dict[str, Any] = {"trusted_ca": {"inline_bytes": _b64(ca)}}
            if values.get(crl_key):
                vc["crl"] = {"inline_bytes": _b64(values[crl_key])}
            return {"@type": SECRET_TYPE, "name": name, "validation_context": vc}
    return None


def _config_map_ca(cfg: ConfigSet, name: str, namespace: str, config_map: str) -> dict[str, Any] | None:
    for doc in cfg.cluster_objects:
        md = doc.get("metadata") or {}
        if doc.get("kind") == "ConfigMap" and (md.get("namespace", "default"), md.get("name")) == (
            namespace,
            config_map,
        ):
            ca = (doc.get("data") or {}).get("ca.crt")
            if ca:
                return {
                    "@type": SECRET_TYPE,
                    "name": name,
                    "validation_context": {"trusted_ca": {"inline_bytes": _b64(ca.encode())}},
                }
    return None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
