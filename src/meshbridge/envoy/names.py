"""istiod's names for Envoy resources, so ``proxy-config`` output reads like ``istioctl proxy-config``.

Sources (istio/istio): ``pilot/pkg/model/service.go`` ``BuildSubsetKey``, ``BuildDNSSrvSubsetKey``;
``pilot/pkg/model/gateway.go`` ``gatewayRDSRouteName``; ``pilot/pkg/networking/core/gateway.go``
``getListenerName``; ``pilot/pkg/model/credentials/resource.go`` ``ToResourceName``;
``pkg/security/security.go`` ``SdsCertificateConfig`` (files in the pod, served by the istio-agent).
"""

from __future__ import annotations

import functools
import re

KUBERNETES = "kubernetes://"
KUBERNETES_GATEWAY = "kubernetes-gateway://"
CONFIGMAP = "configmap://"
"""The SDS prefix of a ``credentialName`` read from a Kubernetes Secret (``ToResourceName``)."""
SDS_CA_SUFFIX = "-cacert"
FILE_CERT = "file-cert:"
"""The SDS prefix of a certificate and key read from files in the pod: ``file-cert:<cert>~<key>``."""
FILE_ROOT = "file-root:"
"""The SDS prefix of a CA bundle read from a file in the pod: ``file-root:<ca>``."""
SYSTEM_ROOTS = FILE_ROOT + "system"
WORKLOAD_CERT = "default"
"""SDS name of the proxy's own workload certificate, which the istio-agent serves (ISTIO_MUTUAL; the twin too)."""
WORKLOAD_ROOTS = "ROOTCA"
"""SDS name of the mesh's root certificates, which the istio-agent serves (ISTIO_MUTUAL; the twin too)."""


def cluster_name(port: int, host: str, subset: str = "", direction: str = "outbound") -> str:
    """``outbound|443||alb.example.com``: direction, the *service* port (never the target port), subset, host."""
    return f"{direction}|{port}|{subset}|{host}"


def istio_mutual_sni(port: int, host: str, subset: str = "") -> str:
    """``outbound_.8080_.v1_.reviews.default.svc.cluster.local``: the SNI ISTIO_MUTUAL sends when the rule names
    none (``BuildDNSSrvSubsetKey``): direction, the service port, subset and host, each after ``_.``."""
    return f"outbound_.{port}_.{subset}_.{host}"


@functools.lru_cache(maxsize=65536)
def parse_cluster_name(name: str) -> tuple[str, int, str, str] | None:
    """``(direction, port, subset, host)`` of a subset-key cluster name, or ``None`` for other names."""
    parts = name.split("|")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2], parts[3]


def http_route_name(target_port: int, bind: str | None = None) -> str:
    """``http.8080``: a gateway's plain-HTTP route config, keyed by the *target* (container) port."""
    return f"http.{target_port}" + (f".{bind}" if bind else "")


def https_route_name(server_port: int, port_name: str, gateway: str, namespace: str, bind: str | None = None) -> str:
    """``https.443.https.eastwestgateway.istio-ingress``: a terminating HTTPS server's route config.

    Keyed by the Gateway *server* port (443, not 8443), the server port's name, the Gateway's name and namespace.
    """
    return f"https.{server_port}.{port_name}.{gateway}.{namespace}" + (f".{bind}" if bind else "")


def listener_name(port: int, bind: str = "0.0.0.0") -> str:
    """``0.0.0.0_8443``: a gateway or sidecar listener, keyed by the port it binds."""
    return f"{bind}_{port}"


def vhost_name(host: str, port: int) -> str:
    """``lambda.external:443``: a virtual host, keyed by the server (or service) port."""
    return f"{host}:{port}"


def sds_name(credential_name: str) -> str:
    """The SDS resource of a ``credentialName``: ``kubernetes://<name>`` (prefixed names are kept)."""
    if credential_name.startswith((KUBERNETES, KUBERNETES_GATEWAY, CONFIGMAP, "file-")):
        return credential_name
    return f"{KUBERNETES}{credential_name}"


def sds_ca_name(credential_name: str) -> str:
    """The SDS resource of a credential's CA: ``kubernetes://<name>-cacert``."""
    return sds_name(credential_name) + SDS_CA_SUFFIX


def credential_name(name: str) -> str:
    """A ``credentialName`` as written, without istiod's ``kubernetes://`` prefix if it carries one
    (``kubernetes://mtls-credential`` → ``mtls-credential``; a ``-cacert`` suffix is kept)."""
    return name.removeprefix(KUBERNETES)


def parse_sds_name(name: str) -> tuple[str, bool] | None:
    """``(credentialName, is_ca)`` of a Kubernetes Secret's SDS name, ``None`` for any other SDS name.

    ``kubernetes://mtls-credential`` → ``("mtls-credential", False)``; ``kubernetes://mtls-credential-cacert`` →
    ``("mtls-credential", True)`` (istiod's ``-cacert`` suffix: the credential's CA); ``default``, ``ROOTCA``,
    ``file-root:system`` → ``None``.
    """
    if not name.startswith(KUBERNETES):
        return None
    cred = name[len(KUBERNETES) :]
    if cred.endswith(SDS_CA_SUFFIX):
        return cred[: -len(SDS_CA_SUFFIX)], True
    return cred, False


def parse_gateway_sds_name(name: str) -> tuple[str, str, bool] | None:
    """``(namespace, Secret name, is_ca)`` of the SDS name istiod gives a Kubernetes Gateway API listener's
    Secret, ``None`` for any other SDS name.

    ``kubernetes-gateway://istio-ingress/mtls-credential`` → ``("istio-ingress", "mtls-credential", False)``;
    ``kubernetes-gateway://istio-ingress/mtls-credential-cacert`` (its ``caCertificateRefs``) → ``(..., True)``.
    """
    if not name.startswith(KUBERNETES_GATEWAY):
        return None
    namespace, _, cred = name[len(KUBERNETES_GATEWAY) :].partition("/")
    if cred.endswith(SDS_CA_SUFFIX):
        return namespace, cred[: -len(SDS_CA_SUFFIX)], True
    return namespace, cred, False


def parse_configmap_sds_name(name: str) -> tuple[str, str] | None:
    """``(namespace, ConfigMap name)`` of the SDS name istiod gives a CA in a ConfigMap (a BackendTLSPolicy's
    ``caCertificateRefs``: ``configmap://istio-ingress/lambda-backend-ca-cacert``), ``None`` for any other."""
    if not name.startswith(CONFIGMAP) or not name.endswith(SDS_CA_SUFFIX):
        return None
    namespace, _, config_map = name[len(CONFIGMAP) : -len(SDS_CA_SUFFIX)].partition("/")
    return namespace, config_map


def sds_credential(name: str) -> tuple[str, bool] | None:
    """``(credentialName, is_ca)`` of a Kubernetes Secret's SDS name, as istiod's own configuration names the
    credential: ``kubernetes://mtls-credential-cacert`` → ``("mtls-credential", True)``; a Gateway API listener's
    ``kubernetes-gateway://istio-ingress/mtls-credential`` → ``("kubernetes-gateway://istio-ingress/mtls-credential",
    False)`` (:func:`sds_name` and :func:`sds_ca_name` give its SDS names back); ``None`` for any other SDS name."""
    gateway = parse_gateway_sds_name(name)
    if gateway is not None:
        namespace, cred, is_ca = gateway
        return f"{KUBERNETES_GATEWAY}{namespace}/{cred}", is_ca
    return parse_sds_name(name)


def file_cert_name(certificate: str, private_key: str) -> str:
    """The SDS resource of a certificate and key in the pod's files: ``file-cert:<cert>~<key>``
    (``SdsCertificateConfig.GetResourceName``)."""
    return f"{FILE_CERT}{certificate}~{private_key}"


def file_root_name(ca_certificates: str) -> str:
    """The SDS resource of a CA bundle in the pod's files: ``file-root:<ca>`` (``GetRootResourceName``)."""
    return f"{FILE_ROOT}{ca_certificates}"


def parse_file_sds_name(name: str) -> tuple[str, ...] | None:
    """The pod's file paths an SDS name reads: ``(cert, key)`` of ``file-cert:<cert>~<key>``, ``(ca,)`` of
    ``file-root:<ca>``; ``None`` for any other name, the OS bundle ``file-root:system`` included (the agent's own,
    not a file the pod mounts)."""
    if name.startswith(FILE_CERT):
        cert, sep, key = name[len(FILE_CERT) :].partition("~")
        return (cert, key) if sep and cert and key and "~" not in key else None
    if name.startswith(FILE_ROOT) and name != SYSTEM_ROOTS:
        ca = name[len(FILE_ROOT) :]
        return (ca,) if ca and "~" not in ca else None
    return None


def rbac_policy_name(namespace: str, name: str, rule: int) -> str:
    """The RBAC policy istiod writes for rule ``rule`` of AuthorizationPolicy ``namespace/name``:
    ``ns[<namespace>]-policy[<name>]-rule[<index>]`` (``pilot/pkg/security/authz/builder/builder.go``
    ``policyName``)."""
    return f"ns[{namespace}]-policy[{name}]-rule[{rule}]"


_RBAC_POLICY = re.compile(r"ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[\d+\]")


def find_rbac_policy(text: str) -> tuple[str, str] | None:
    """The AuthorizationPolicy ``(namespace, name)`` of the first RBAC policy name (:func:`rbac_policy_name`) in
    ``text`` (a simulation's detail: ``DENY policy ns[gw]-policy[p]-rule[0] matches``), or ``None``."""
    found = _RBAC_POLICY.search(text)
    return (found[1], found[2]) if found else None


def vs_config_path(namespace: str, name: str) -> str:
    """Route metadata ``istio.config``: ``/apis/networking.istio.io/v1/namespaces/<ns>/virtual-service/<name>``."""
    return f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtual-service/{name}"


def dr_config_path(namespace: str, name: str) -> str:
    """Cluster metadata ``istio.config`` for the DestinationRule that applies."""
    return f"/apis/networking.istio.io/v1/namespaces/{namespace}/destination-rule/{name}"


PEER_PRINCIPAL = "io.istio.peer_principal"
"""The filter state a waypoint's HBONE listener sets to the peer's URI SAN (pilot/pkg/xds/filters), which its RBAC
filter's principals read (``filter_state``)."""
