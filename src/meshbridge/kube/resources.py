"""Which REST path serves which kind: the few resource types meshbridge reads and writes (pure).

meshbridge talks to the API server with the official client's ``ApiClient`` and explicit paths rather than
the ``DynamicClient``: the dynamic client discovers every API group on first use (dozens of requests, and a
cache file in the temp folder), while meshbridge only ever touches the kinds below, whose paths are fixed
by Kubernetes and Istio. The table is the whole surface; an unknown kind is a :class:`KubeError`, never a
guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshbridge.errors import KubeError


@dataclass(frozen=True)
class ResourceType:
    """A kind and where the API serves it.

    Attributes:
        api_version: ``v1``, ``apps/v1``, ``networking.istio.io/v1`` ...
        kind: ``Secret``, ``Gateway`` ...
        plural: the resource name in the path (``secrets``, ``gateways``).
        namespaced: whether objects live in a namespace.
    """

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        """The API group (``""`` for the core group)."""
        return self.api_version.rpartition("/")[0]

    def collection_path(self, namespace: str | None = None) -> str:
        """``/api/v1/namespaces/<ns>/secrets`` or, without a namespace, the cluster-wide collection."""
        root = f"/api/{self.api_version}" if not self.group else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"

    def object_path(self, name: str, namespace: str | None = None) -> str:
        """The path of one object."""
        if self.namespaced and not namespace:
            raise KubeError(f"{self.kind} {name!r} is namespaced but has no namespace")
        return f"{self.collection_path(namespace)}/{name}"


_ISTIO_NETWORKING = {
    "Gateway": "gateways",
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "ServiceEntry": "serviceentries",
}
ENVOY_FILTER_API = "networking.istio.io/v1alpha3"  # EnvoyFilter is served at v1alpha3 only
GATEWAY_API = "gateway.networking.k8s.io/v1"
_GATEWAY_API = {"Gateway": "gateways", "HTTPRoute": "httproutes", "BackendTLSPolicy": "backendtlspolicies"}
CERT_MANAGER_API = "cert-manager.io/v1"
_CERT_MANAGER = {"Certificate": "certificates", "Issuer": "issuers"}
TRUST_MANAGER_API = "trust.cert-manager.io/v1alpha1"
_CORE = {
    "Namespace": ("namespaces", False),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "Pod": ("pods", True),
    "ConfigMap": ("configmaps", True),
}


def resource_type(api_version: str, kind: str) -> ResourceType:
    """The :class:`ResourceType` of ``apiVersion``/``kind``.

    Raises:
        KubeError: meshbridge does not manage this kind.
    """
    if api_version == "v1" and kind in _CORE:
        plural, namespaced = _CORE[kind]
        return ResourceType(api_version, kind, plural, namespaced)
    if api_version == "apps/v1" and kind == "Deployment":
        return ResourceType(api_version, kind, "deployments", True)
    group, _, version = api_version.rpartition("/")
    if group == "networking.istio.io" and version in ("v1", "v1beta1", "v1alpha3") and kind in _ISTIO_NETWORKING:
        return ResourceType(api_version, kind, _ISTIO_NETWORKING[kind], True)
    if api_version == ENVOY_FILTER_API and kind == "EnvoyFilter":
        return ResourceType(api_version, kind, "envoyfilters", True)
    if group == "security.istio.io" and version in ("v1", "v1beta1") and kind == "AuthorizationPolicy":
        return ResourceType(api_version, kind, "authorizationpolicies", True)
    if api_version == GATEWAY_API and kind in _GATEWAY_API:  # a waypoint, or an exporter's Gateway and routes
        return ResourceType(api_version, kind, _GATEWAY_API[kind], True)
    if api_version == CERT_MANAGER_API and kind in _CERT_MANAGER:
        return ResourceType(api_version, kind, _CERT_MANAGER[kind], True)
    if api_version == TRUST_MANAGER_API and kind == "Bundle":
        return ResourceType(api_version, kind, "bundles", False)
    if api_version == "install.istio.io/v1alpha1" and kind == "IstioOperator":
        return ResourceType(api_version, kind, "istiooperators", True)
    raise KubeError(
        f"meshbridge does not manage {kind} ({api_version}); it applies only Namespaces, Secrets and Istio "
        "networking resources (Gateway, VirtualService, DestinationRule, ServiceEntry, EnvoyFilter), "
        "AuthorizationPolicies, cert-manager Certificates and Issuers, and trust-manager Bundles"
    )


def istio_types(api_version: str) -> list[ResourceType]:
    """The four Istio networking types at ``api_version`` (``networking.istio.io/v1`` or ``.../v1beta1``)."""
    return [resource_type(api_version, k) for k in ("ServiceEntry", "DestinationRule", "Gateway", "VirtualService")]


def envoy_filter_type() -> ResourceType:
    """EnvoyFilter (``networking.istio.io/v1alpha3``, whatever the other Istio kinds' version)."""
    return resource_type(ENVOY_FILTER_API, "EnvoyFilter")


def authorization_policy_type(api_version: str) -> ResourceType:
    """AuthorizationPolicy at ``api_version`` (``security.istio.io/v1`` or ``.../v1beta1``)."""
    return resource_type(api_version, "AuthorizationPolicy")


@dataclass(frozen=True, order=True)
class ResourceRef:
    """One API object: its type, namespace (``None`` when cluster-scoped) and name.

    It addresses the object on a server (its REST path); the object a lint finding is about, with its mesh
    and field, is :class:`meshbridge.lint.findings.ObjectRef`.

    Two refs are the same object when group, kind, namespace and name agree: the API version is only the
    path it is read through (``networking.istio.io/v1`` and ``v1beta1`` serve the same Gateway).
    """

    api_version: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, doc: dict[str, Any]) -> ResourceRef:
        """The ref of a Kubernetes document (``apiVersion``, ``kind``, ``metadata.namespace/name``)."""
        md = doc.get("metadata") or {}
        return cls(str(doc.get("apiVersion", "")), str(doc.get("kind", "")), md.get("namespace"), str(md.get("name")))

    @property
    def type(self) -> ResourceType:
        """The :class:`ResourceType` (raises :class:`KubeError` for kinds meshbridge does not manage)."""
        return resource_type(self.api_version, self.kind)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """``(group, kind, namespace, name)``: the version-independent identity."""
        return (self.api_version.rpartition("/")[0], self.kind, self.namespace or "", self.name)

    @property
    def path(self) -> str:
        """The object's REST path."""
        return self.type.object_path(self.name, self.namespace)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"
