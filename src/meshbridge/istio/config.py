"""One mesh's configuration as istiod sees it: the resources, the mesh settings, and what was not modelled."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from meshbridge.istio.changes import CHANGES
from meshbridge.istio.resources import (
    AuthorizationPolicy,
    Certificate,
    DestinationRule,
    EnvoyFilter,
    Gateway,
    KubeService,
    PolicyRule,
    Role,
    RoleBinding,
    Secret,
    ServiceEntry,
    TrustBundle,
    VirtualService,
)
from meshbridge.releases import CURRENT_ISTIO

_VERSION = re.compile(r"^1\.(\d+)")


@dataclass(frozen=True)
class MeshSettings:
    """Settings of a mesh that change how istiod programs proxies.

    Attributes:
        istio_version: e.g. ``1.17.2``; version-dependent defaults key off its minor number.
            Default: :data:`meshbridge.releases.CURRENT_ISTIO`.
        pilot_env: istiod's environment (``PILOT_FILTER_GATEWAY_CLUSTER_CONFIG``, ...).
        proxy_metadata: ``meshConfig.defaultConfig.proxyMetadata`` (``ISTIO_META_DNS_CAPTURE``, ...).
        trust_domain: the mesh's SPIFFE trust domain.
        root_namespace: the config root namespace (``istio-system``).
    """

    istio_version: str = CURRENT_ISTIO
    pilot_env: Mapping[str, str] = field(default_factory=dict)
    proxy_metadata: Mapping[str, str] = field(default_factory=dict)
    trust_domain: str = "cluster.local"
    root_namespace: str = "istio-system"

    @cached_property
    def minor(self) -> int:
        """Minor version (17 for 1.17.2); 99 when the version cannot be read."""
        m = _VERSION.match(self.istio_version)
        return int(m.group(1)) if m else 99

    def _flag(self, env: Mapping[str, str], name: str, default: bool) -> bool:
        value = env.get(name)
        return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")

    @property
    def filter_gateway_clusters(self) -> bool:
        """``PILOT_FILTER_GATEWAY_CLUSTER_CONFIG`` (default false): gateways get only referenced clusters."""
        return self._flag(self.pilot_env, "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG", False)

    @property
    def scope_gateway_to_namespace(self) -> bool:
        """``PILOT_SCOPE_GATEWAY_TO_NAMESPACE`` (default false): a Gateway selects pods of its namespace only."""
        return self._flag(self.pilot_env, "PILOT_SCOPE_GATEWAY_TO_NAMESPACE", False)

    def _on(self, key: str) -> bool:
        return CHANGES[key].on(self.minor, self.pilot_env)

    @property
    def auto_sni(self) -> bool:
        """``ENABLE_AUTO_SNI`` (:data:`~meshbridge.istio.changes.CHANGES` ``auto-sni``)."""
        return self._on("auto-sni")

    @property
    def verify_certificate_at_client(self) -> bool:
        """``VERIFY_CERTIFICATE_AT_CLIENT`` (``verify-certificate-at-client``): a SIMPLE/MUTUAL DestinationRule
        without a CA verifies against the OS bundle."""
        return self._on("verify-certificate-at-client")

    @property
    def dns_capture(self) -> bool:
        """``ISTIO_META_DNS_CAPTURE`` (default false): the sidecar agent answers DNS for mesh hosts."""
        return self._flag(self.proxy_metadata, "ISTIO_META_DNS_CAPTURE", False)

    @property
    def dns_auto_allocate(self) -> bool:
        """Whether ServiceEntries without ``addresses`` get a VIP (``240.240.0.0/16``): ``ISTIO_META_DNS_AUTO_ALLOCATE``
        in proxyMetadata, or istiod's controller (``ip-autoallocate``)."""
        legacy = self._flag(self.proxy_metadata, "ISTIO_META_DNS_AUTO_ALLOCATE", False)
        return legacy or self._on("ip-autoallocate")

    @property
    def absolute_fqdn_domains(self) -> bool:
        """Virtual hosts also match a host written with its trailing dot (``absolute-fqdn-vhost``)."""
        return self._on("absolute-fqdn-vhost")

    @property
    def outbound_http_alpns(self) -> list[str]:
        """ALPN values a sidecar's outbound HTTP filter chain matches (sniffed by the HTTP inspector):
        ``http/1.1`` and ``h2c``, and ``http/1.0`` only with ``PILOT_HTTP10`` (``http10-not-sniffed``); all three
        before that change."""
        if not self._on("http10-not-sniffed"):
            return ["http/1.1", "h2c", "http/1.0"]
        if self._flag(self.pilot_env, "PILOT_HTTP10", False):
            return ["http/1.0", "http/1.1", "h2c"]
        return ["http/1.1", "h2c"]

    @property
    def sidecar_passthrough_chain(self) -> bool:
        """A sidecar's outbound HTTP listener has a default chain to ``PassthroughCluster`` and inspects HTTP only
        (``sidecar-passthrough-chain``)."""
        return self._on("sidecar-passthrough-chain")

    @property
    def external_name_alias(self) -> bool:
        """An ExternalName Service is an alias of the host it names, with no cluster of its own; traffic to it goes
        to that host's (``external-name-alias``)."""
        return self._on("external-name-alias")

    @property
    def send_unhealthy_endpoints(self) -> bool:
        """Every cluster's healthy panic threshold is 0, so Envoy never spreads requests over endpoints that are
        not ready (``send-unhealthy-endpoints``)."""
        return self._on("send-unhealthy-endpoints")

    @property
    def retry_503(self) -> bool:
        """istiod's default retry policy also retries 503 responses (until ``no-503-retry``)."""
        return not self._on("no-503-retry")

    @property
    def track_remaining(self) -> bool:
        """Circuit-breaker thresholds track the remaining capacity (until ``no-track-remaining-cb-metrics``)."""
        return not self._on("no-track-remaining-cb-metrics")

    @property
    def shadow_host_suffix(self) -> bool:
        """A mirrored request's Host gets the ``-shadow`` suffix (until ``no-shadow-host-suffix``)."""
        return not self._on("no-shadow-host-suffix")

    @property
    def stat_suffix(self) -> str:
        """``;`` after stat prefixes and ``alt_stat_name`` (``stat-suffix``), nothing before."""
        return ";" if self._on("stat-suffix") else ""


@dataclass(frozen=True)
class ConfigWarning:
    """Something in the input the model does not act on, or acts on with a caveat.

    Attributes:
        source: file (and document index) it came from.
        kind, namespace, name: the object.
        field: the field path inside the object (``spec.http[0].fault``), or ``""`` for the whole object.
        message: what happens to it.
    """

    source: str
    kind: str
    namespace: str
    name: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.source}: {where}{' ' + self.field if self.field else ''}: {self.message}"


@dataclass(frozen=True)
class MisspelledWarning(ConfigWarning):
    """A :class:`ConfigWarning` about a key that is no field at its place but is close to one that is: a misspelling
    (``credentialname``, ``rout``), which Istio's CRD schema refuses; lint reports it as ``MB004``.

    Attributes:
        suggestion: the field of that place the key is closest to (``credentialName``).
    """

    suggestion: str


@dataclass
class ConfigSet:
    """The modelled resources of one mesh, plus the warnings produced while reading them.

    ``index`` holds lookup tables that :mod:`meshbridge.istio.visibility` derives from the resources; they are
    rebuilt whenever a resource list is replaced or changes length, so append to the lists freely.
    """

    gateways: list[Gateway] = field(default_factory=list)
    virtual_services: list[VirtualService] = field(default_factory=list)
    destination_rules: list[DestinationRule] = field(default_factory=list)
    service_entries: list[ServiceEntry] = field(default_factory=list)
    envoy_filters: list[EnvoyFilter] = field(default_factory=list)
    authorization_policies: list[AuthorizationPolicy] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    services: list[KubeService] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    """cert-manager Certificates: each writes a Secret istiod may serve (lint reads them; istiod never does)."""
    trust_bundles: list[TrustBundle] = field(default_factory=list)
    """trust-manager Bundles: each writes a ConfigMap or Secret of its name (lint reads the -cacert ones)."""
    roles: list[Role] = field(default_factory=list)
    role_bindings: list[RoleBinding] = field(default_factory=list)
    """Kubernetes RBAC: istiod serves a proxy its certificate Secrets only if its ServiceAccount may list them (lint
    MB212, MB213; :meth:`secret_list_rules`)."""
    cluster_objects: list[dict[str, Any]] = field(default_factory=list)
    """Objects istiod reads from the cluster that the model does not hold, kept as written: the Kubernetes Gateway
    API's (Gateway, HTTPRoute, BackendTLSPolicy) and the ConfigMaps a BackendTLSPolicy may name. The oracle is
    sent them (:func:`meshbridge.istiod.request.build_request`)."""
    warnings: list[ConfigWarning] = field(default_factory=list)
    settings: MeshSettings = field(default_factory=MeshSettings)
    index: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def secret_list_rules(self, namespace: str, account: str) -> list[PolicyRule]:
        """The rules of the Roles and ClusterRoles bound (in ``namespace``, or cluster-wide) to the ServiceAccount
        ``namespace/account`` that grant ``list`` on ``secrets``: what istiod's SubjectAccessReview asks before it
        serves that account's proxy a certificate Secret (``pilot/pkg/credentials/kube/secrets.go`` Authorize)."""
        roles: dict[tuple[str, str, str], Role] = {
            (r.kind, r.metadata.namespace if r.kind == "Role" else "", r.metadata.name): r for r in self.roles
        }
        out = []
        for b in self.role_bindings:
            if b.kind == "RoleBinding" and b.metadata.namespace != namespace:
                continue
            if not any(
                s.kind == "ServiceAccount" and s.name == account and s.namespace in (namespace, None)
                for s in b.subjects
            ):
                continue
            where = b.metadata.namespace if b.role_ref.kind == "Role" else ""
            role = roles.get((b.role_ref.kind, where, b.role_ref.name))
            out += [r for r in (role.rules if role else []) if r.grants("list", "secrets")]
        return out

    def secret(self, namespace: str, name: str) -> Secret | None:
        """The Secret ``namespace/name``, or ``None``."""
        for s in self.secrets:
            if s.metadata.namespace == namespace and s.metadata.name == name:
                return s
        return None
