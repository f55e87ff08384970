"""Visibility as istiod computes it, for one proxy (the pieces of pilot's PushContext meshbridge needs).

Sources (istio/istio, paths under ``pilot/pkg/``): ``model/push_context.go`` (``mergeGateways``,
``initVirtualServices``, ``VirtualServicesForGateway``, ``destinationRule``), ``model/config.go``
(``resolveGatewayName``), ``model/sidecar.go`` (``DefaultSidecarScopeForGateway``),
``serviceregistry/serviceentry/conversion.go``, ``model/sidecar.go`` (``SidecarScope.DestinationRule``: a
DestinationRule's ``workloadSelector`` picks proxies of its namespace, gateways included).

Both ``meshbridge lint`` and the local twin's translation answer every visibility question here, so the
two never disagree about what istiod would do.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from meshbridge.istio import protocol
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.resources import (
    DYNAMIC_DNS,
    ClientTLSSettings,
    ConnectionPoolSettings,
    DestinationRule,
    Gateway,
    KubeService,
    LoadBalancerSettings,
    OutlierDetection,
    ServiceEntry,
    Subset,
    TrafficPolicy,
    VirtualService,
)

MESH_GATEWAY = "mesh"
ProxyKind = Literal["router", "sidecar"]


@dataclass(frozen=True)
class Proxy:
    """The proxy a question is asked for: a gateway (``router``) or an app's ``sidecar``.

    Attributes:
        kind: ``router`` for gateways, ``sidecar`` for apps.
        name: the workload (Deployment) name, e.g. ``istio-ingressgateway``.
        namespace: the pod's namespace (visibility is decided for it, lint MB106).
        labels: the pod's labels (Gateway selectors and ``sourceLabels`` are matched against them).
        service: the gateway's Kubernetes Service (ports → targetPorts), when it has one.
        service_account: the pod's ServiceAccount, its identity in the mesh (:attr:`sa`).
    """

    kind: ProxyKind
    name: str
    namespace: str
    labels: Mapping[str, str]
    service: KubeService | None = None
    service_account: str | None = None

    @property
    def sa(self) -> str:
        """The pod's ServiceAccount: the one given, else the workload's name (as Istio's samples name it)."""
        return self.service_account or self.name


@dataclass(frozen=True)
class Workload:
    """A pod of the world (gateway or app), so that Services have endpoints (and identities: :attr:`sa`)."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    address: str
    service_account: str | None = None

    @property
    def sa(self) -> str:
        """The pod's ServiceAccount: the one given, else the workload's name (as :attr:`Proxy.sa`)."""
        return self.service_account or self.name


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """``spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>``: a workload's identity, as Istio's CA writes it
    in the workload certificate's URI SAN and istiod pins it in ISTIO_MUTUAL's SAN matchers."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True)
class ServicePortInfo:
    """One port of a mesh service."""

    number: int
    name: str
    protocol: str
    target_port: int | None = None


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: an address (IP or host name) and its port for a given service port."""

    address: str
    port: int


@dataclass(frozen=True)
class MeshService:
    """A host in the service registry (from a ServiceEntry host or a Kubernetes Service).

    Attributes:
        hostname: the FQDN or external host.
        namespace: the namespace of the ServiceEntry or Service.
        ports: its ports.
        resolution: ``DNS``, ``DNS_ROUND_ROBIN``, ``STATIC``, ``NONE`` (ServiceEntry) or ``EDS`` (Kubernetes).
        addresses: ``spec.addresses`` (VIPs).
        external: MESH_EXTERNAL.
        subject_alt_names: the ServiceEntry's SANs (used when a DestinationRule sets none).
        source: ``ServiceEntry ns/name`` or ``Service ns/name``.
        export_to: its exportTo.
        merged: later ServiceEntries of the same host in the same namespace (:func:`merge_same_host`): their
            endpoints join this service's, as istiod keeps one endpoint shard per host and namespace.
    """

    hostname: str
    namespace: str
    ports: tuple[ServicePortInfo, ...]
    resolution: str
    addresses: tuple[str, ...] = ()
    external: bool = True
    subject_alt_names: tuple[str, ...] = ()
    source: str = ""
    export_to: tuple[str, ...] = ()
    entry: ServiceEntry | None = None
    kube: KubeService | None = None
    workloads: tuple[Workload, ...] = field(default=())
    merged: tuple[MeshService, ...] = field(default=())

    def port(self, number: int) -> ServicePortInfo | None:
        """The port numbered ``number``."""
        return next((p for p in self.ports if p.number == number), None)

    def endpoints(self, port: ServicePortInfo, subset_labels: Mapping[str, str] | None = None) -> list[Endpoint]:
        """Endpoints for ``port`` (of a subset with ``subset_labels``), as istiod computes them.

        ServiceEntry (``convertServiceEntryToInstances``): each ``endpoints[].address`` on
        ``ports[<port name>]``, else ``targetPort``, else the port number; with no endpoints, the host
        itself. Kubernetes Service: each selected pod on the ``targetPort``.
        """
        joined = [e for m in self.merged if (p := m.port(port.number)) for e in m.endpoints(p, subset_labels)]
        if self.entry is not None and all(p.number != port.number for p in self.entry.spec.ports):
            return joined  # a port a later ServiceEntry of the host added: only its endpoints serve it
        return self._own_endpoints(port, subset_labels) + joined

    def _own_endpoints(self, port: ServicePortInfo, subset_labels: Mapping[str, str] | None) -> list[Endpoint]:
        default = port.target_port or port.number
        wanted = subset_labels or {}
        if self.entry is not None:
            eps = self.entry.spec.endpoints
            if not eps:
                if self.resolution in ("DNS", "DNS_ROUND_ROBIN") and not wanted:
                    return [Endpoint(self.hostname, default)]
                return []
            return [
                Endpoint(e.address, e.ports.get(port.name, default))
                for e in eps
                if e.address and selects(wanted, e.labels)
            ]
        return [Endpoint(w.address, default) for w in self.workloads if selects(wanted, w.labels)]

    def service_accounts(self, trust_domain: str) -> list[str]:
        """The identities istiod expects of the service's endpoints (``PushContext.ServiceAccounts``), sorted: a
        ServiceEntry's ``subjectAltNames``; a Kubernetes Service's pods' SPIFFE IDs. ISTIO_MUTUAL pins them when
        the DestinationRule names no ``subjectAltNames``."""
        if self.entry is not None:
            return sorted(set(self.subject_alt_names))
        return sorted({spiffe_id(trust_domain, w.namespace, w.sa) for w in self.workloads})


@dataclass(frozen=True)
class ConfigIndex:
    """Lookups istiod keeps in its PushContext, built once per configuration (input order preserved).

    :meth:`of` memoizes the index on the ``ConfigSet`` (``cfg.index``); it is rebuilt when a resource list is
    replaced or changes length.

    Attributes:
        order: position of each resource in the input (ties broken as istiod does, by creation order).
        vs_by_gateway: resolved gateway key (or ``mesh``) → VirtualServices bound to it.
        vs_by_host: (gateway key, qualified host) → VirtualServices with that exact host.
        vs_wildcard: gateway key → VirtualServices with a wildcard host.
        dr_by_host: (namespace, qualified host) → DestinationRules with that exact host.
        dr_wildcard: namespace → DestinationRules with a wildcard host.
    """

    order: dict[int, int]
    vs_by_gateway: dict[str, list[VirtualService]]
    vs_by_host: dict[tuple[str, str], list[VirtualService]]
    vs_wildcard: dict[str, list[VirtualService]]
    dr_by_host: dict[tuple[str, str], list[DestinationRule]]
    dr_wildcard: dict[str, list[DestinationRule]]
    stamp: tuple[int, ...] = ()
    dr_memo: dict[tuple[int, str, str, str], tuple[Proxy, MergedDestinationRule | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: ConfigSet) -> ConfigIndex:
        """The index of ``cfg`` (built in linear time, then reused while the resource lists are unchanged)."""
        stamp = (
            id(cfg.virtual_services),
            len(cfg.virtual_services),
            id(cfg.destination_rules),
            len(cfg.destination_rules),
        )
        cached = cfg.index.get("visibility")
        if isinstance(cached, ConfigIndex) and cached.stamp == stamp:
            return cached
        built = cls._build(cfg, stamp)
        cfg.index["visibility"] = built
        return built

    @classmethod
    def _build(cls, cfg: ConfigSet, stamp: tuple[int, ...]) -> ConfigIndex:
        order: dict[int, int] = {}
        vs_by_gateway: dict[str, list[VirtualService]] = {}
        vs_by_host: dict[tuple[str, str], list[VirtualService]] = {}
        vs_wildcard: dict[str, list[VirtualService]] = {}
        for i, vs in enumerate(cfg.virtual_services):
            order[id(vs)] = i
            hosts = [qualify_host(h, vs.metadata.namespace).lower() for h in vs.spec.hosts]
            for gw in dict.fromkeys(vs_gateways(vs)):
                vs_by_gateway.setdefault(gw, []).append(vs)
                if any("*" in h for h in hosts):
                    vs_wildcard.setdefault(gw, []).append(vs)
                for h in dict.fromkeys(x for x in hosts if "*" not in x):
                    vs_by_host.setdefault((gw, h), []).append(vs)
        dr_by_host: dict[tuple[str, str], list[DestinationRule]] = {}
        dr_wildcard: dict[str, list[DestinationRule]] = {}
        for i, dr in enumerate(cfg.destination_rules):
            order[id(dr)] = i
            ns = dr.metadata.namespace
            host = qualify_host(dr.spec.host, ns).lower()
            if "*" in host:
                dr_wildcard.setdefault(ns, []).append(dr)
            else:
                dr_by_host.setdefault((ns, host), []).append(dr)
        return cls(order, vs_by_gateway, vs_by_host, vs_wildcard, dr_by_host, dr_wildcard, stamp)

    def virtual_services(self, gateway: str, hosts: list[str] | None = None) -> list[VirtualService]:
        """VirtualServices bound to ``gateway``; with ``hosts`` (exact names), only those that may match them."""
        if hosts is None or any("*" in h for h in hosts):
            return list(self.vs_by_gateway.get(gateway, []))
        found = {id(vs): vs for h in hosts for vs in self.vs_by_host.get((gateway, h.lower()), [])}
        found.update({id(vs): vs for vs in self.vs_wildcard.get(gateway, [])})
        return sorted(found.values(), key=lambda vs: self.order[id(vs)])


def export_visible(export_to: list[str] | tuple[str, ...], owner_ns: str, proxy_ns: str) -> bool:
    """Whether a resource in ``owner_ns`` with ``exportTo`` is visible in ``proxy_ns``.

    Empty or ``*``: everywhere; ``.``: its own namespace; ``~``: nowhere; other entries: those namespaces.
    """
    if not export_to or "*" in export_to:
        return True
    if "~" in export_to:
        return False
    return any((ns == "." and owner_ns == proxy_ns) or ns == proxy_ns for ns in export_to)


def resolve_gateway_name(name: str, vs_namespace: str) -> str:
    """A VirtualService ``gateways`` entry as ``<ns>/<name>`` (or ``mesh``), like istiod's resolveGatewayName.

    ``mesh`` stays; ``ns/name`` stays; ``./name`` and a bare ``name`` mean the VirtualService's namespace;
    the legacy ``name.ns.svc.cluster.local`` form becomes ``ns/name``.
    """
    if name == MESH_GATEWAY:
        return name
    if "/" in name:
        ns, gw = name.split("/", 1)
        return f"{vs_namespace if ns == '.' else ns}/{gw}"
    if "." in name:
        parts = name.split(".")
        return f"{parts[1]}/{parts[0]}"
    return f"{vs_namespace}/{name}"


def gateway_key(gw: Gateway) -> str:
    """``<namespace>/<name>`` of a Gateway."""
    return f"{gw.metadata.namespace}/{gw.metadata.name}"


def vs_gateways(vs: VirtualService) -> list[str]:
    """A VirtualService's resolved gateways; empty ``gateways`` means ``["mesh"]``."""
    names = vs.spec.gateways or [MESH_GATEWAY]
    return [resolve_gateway_name(g, vs.metadata.namespace) for g in names]


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Label selection: every selector pair is among ``labels`` (an empty selector selects everything)."""
    return all(labels.get(k) == v for k, v in selector.items())


def gateways_for(cfg: ConfigSet, proxy: Proxy) -> list[Gateway]:
    """Gateways whose selector picks ``proxy``'s pod (from every namespace unless scoped)."""
    if proxy.kind != "router":
        return []
    out = []
    for gw in cfg.gateways:
        if cfg.settings.scope_gateway_to_namespace and gw.metadata.namespace != proxy.namespace:
            continue
        if selects(gw.spec.selector, proxy.labels):
            out.append(gw)
    return out


def virtual_services_for_gateway(
    cfg: ConfigSet, proxy: Proxy, gw_key: str, hosts: list[str] | None = None
) -> list[VirtualService]:
    """VirtualServices bound to ``gw_key`` and visible to the proxy's namespace (lint MB106).

    A private VirtualService (``exportTo: ["."]``) is found only by proxies running in its own namespace,
    wherever the Gateway object lives. ``gw_key`` ``mesh`` gives the VirtualServices of sidecars. With
    ``hosts``, only VirtualServices that may serve one of them are returned (a shortcut, same result).
    """
    return [
        vs
        for vs in ConfigIndex.of(cfg).virtual_services(gw_key, hosts)
        if export_visible(vs.spec.export_to, vs.metadata.namespace, proxy.namespace)
    ]


def virtual_services_for_sidecar(cfg: ConfigSet, proxy: Proxy, hosts: list[str] | None = None) -> list[VirtualService]:
    """VirtualServices that apply to sidecars (``mesh`` among their gateways), visible to the proxy."""
    return virtual_services_for_gateway(cfg, proxy, MESH_GATEWAY, hosts)


def external_name_aliases(cfg: ConfigSet) -> dict[str, str]:
    """ExternalName Services as istiod reads them from 1.21 (``ENABLE_EXTERNAL_NAME_ALIAS``): their FQDN →
    the host they name. A route to the alias goes to the named host's cluster (none without a Service or a
    ServiceEntry for it: 503 NC)."""
    if not cfg.settings.external_name_alias:
        return {}
    return {
        s.fqdn: s.spec.external_name for s in cfg.services if s.spec.type == "ExternalName" and s.spec.external_name
    }


def qualify_host(host: str, namespace: str) -> str:
    """A short name (no dot) becomes ``<host>.<namespace>.svc.cluster.local``; others stay."""
    return host if "." in host or host == "*" else f"{host}.{namespace}.svc.cluster.local"


def host_matches(pattern: str, host: str) -> bool:
    """Istio host matching: exact, ``*``, or a ``*.suffix`` wildcard (case-insensitive)."""
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*" or pattern == host:
        return True
    return pattern.startswith("*.") and host.endswith(pattern[1:])


def services(cfg: ConfigSet, workloads: list[Workload] | None = None) -> list[MeshService]:
    """The service registry: one entry per ServiceEntry host and per Kubernetes Service."""
    out: list[MeshService] = []
    for se in cfg.service_entries:
        if se.spec.resolution == DYNAMIC_DNS:
            continue  # not modelled: the parser said so (meshbridge.istio.parse), docs/fidelity.md FD09
        ports = tuple(
            ServicePortInfo(p.number, p.name, _entry_protocol(p.protocol), p.target_port) for p in se.spec.ports
        )
        for host in se.spec.hosts:
            out.append(
                MeshService(
                    hostname=host,
                    namespace=se.metadata.namespace,
                    ports=ports,
                    resolution=se.spec.resolution,
                    addresses=tuple(se.spec.addresses),
                    external=se.spec.location == "MESH_EXTERNAL",
                    subject_alt_names=tuple(se.spec.subject_alt_names),
                    source=f"ServiceEntry {se.metadata.namespace}/{se.metadata.name}",
                    export_to=tuple(se.spec.export_to),
                    entry=se,
                )
            )
    for svc in cfg.services:
        if svc.spec.type == "ExternalName" and cfg.settings.external_name_alias:
            continue  # an alias of another host (external_name_aliases), not a service of its own
        pods = [
            w
            for w in workloads or []
            if w.namespace == svc.metadata.namespace and svc.spec.selector and selects(svc.spec.selector, w.labels)
        ]
        ports = tuple(
            ServicePortInfo(
                p.port,
                p.name,
                protocol_from_name(p.name, p.app_protocol),
                p.target_port if isinstance(p.target_port, int) else None,
            )
            for p in svc.spec.ports
        )
        out.append(
            MeshService(
                hostname=svc.fqdn,
                namespace=svc.metadata.namespace,
                ports=ports,
                resolution="EDS",
                external=False,
                source=f"Service {svc.metadata.namespace}/{svc.metadata.name}",
                kube=svc,
                workloads=tuple(pods),
            )
        )
    return out


def visible_services(cfg: ConfigSet, proxy: Proxy, registry: list[MeshService]) -> list[MeshService]:
    """Services exported to the proxy's namespace (gateways ignore Sidecar resources; so do we), one per host
    (:func:`merge_same_host`)."""
    return merge_same_host([s for s in registry if export_visible(s.export_to, s.namespace, proxy.namespace)])


def merge_same_host(services: list[MeshService]) -> list[MeshService]:
    """One service per host, as istiod's sidecar scope keeps them (``SidecarScope.appendSidecarServices``).

    The first (the oldest) of a host stays; a Kubernetes Service replaces a ServiceEntry before it. A later
    ServiceEntry of the same host in the same namespace, with the same resolution, labels and exportTo
    (``canMergeServices``), adds the ports the first lacks; its endpoints join the first's whatever its ports (one
    endpoint shard per host and namespace). Any other is ignored.
    """
    out: dict[str, MeshService] = {}
    for s in services:
        key = s.hostname.lower()
        first = out.get(key)
        if first is None or (first.kube is None and s.kube is not None):
            out[key] = s
        elif first.entry is not None and s.entry is not None and first.namespace == s.namespace:
            ports = first.ports
            if can_merge(first, s):
                ports += tuple(p for p in s.ports if first.port(p.number) is None)
            out[key] = dataclasses.replace(first, ports=ports, merged=(*first.merged, s))
    return list(out.values())


def can_merge(first: MeshService, s: MeshService) -> bool:
    """Whether istiod merges ServiceEntry service ``s`` into ``first`` of the same host and namespace
    (``canMergeServices``): the same resolution, labels and exportTo."""
    a, b = first.entry, s.entry
    assert a is not None and b is not None
    return (
        first.resolution == s.resolution
        and a.metadata.labels == b.metadata.labels
        and set(first.export_to) == set(s.export_to)
    )


def find_service(visible: list[MeshService], host: str) -> MeshService | None:
    """The visible service for ``host``: an exact hostname first, then the most specific wildcard."""
    exact = [s for s in visible if s.hostname.lower() == host.lower()]
    if exact:
        return exact[0]
    wild = sorted((s for s in visible if host_matches(s.hostname, host)), key=lambda s: -len(s.hostname))
    return wild[0] if wild else None


def service_finder(visible: list[MeshService]) -> Callable[[str], MeshService | None]:
    """:func:`find_service` over ``visible``, indexed once: for many lookups against the same services."""
    exact: dict[str, MeshService] = {}
    for s in visible:
        exact.setdefault(s.hostname.lower(), s)
    wild = sorted((s for s in visible if s.hostname.startswith("*")), key=lambda s: -len(s.hostname))

    def find(host: str) -> MeshService | None:
        found = exact.get(host.lower())
        if found is not None:
            return found
        return next((s for s in wild if host_matches(s.hostname, host)), None)

    return find


@dataclass(frozen=True)
class MergedDestinationRule:
    """The DestinationRule that applies to one host for one proxy (same-host rules merged, as istiod does).

    Attributes:
        rules: the contributing DestinationRules, first one's trafficPolicy wins.
        traffic_policy: the effective top-level policy.
        subsets: subsets of all contributing rules (first definition of a name wins).
    """

    rules: tuple[DestinationRule, ...]
    traffic_policy: TrafficPolicy | None
    subsets: tuple[Subset, ...]

    @functools.cached_property
    def _subsets_by_name(self) -> dict[str, Subset]:
        return {s.name: s for s in self.subsets}

    @property
    def first(self) -> DestinationRule:
        """The rule whose traffic policy applies (its ``ns/name`` goes into cluster metadata)."""
        return self.rules[0]

    def tls_for(self, port: int, subset: str | None = None) -> ClientTLSSettings | None:
        """The client TLS for ``port`` and ``subset`` (see :meth:`policy_for`)."""
        return self.policy_for(port, subset).tls

    def policy_for(self, port: int, subset: str | None = None) -> EffectivePolicy:
        """The policy of the cluster for ``port`` and ``subset``, merged as istiod merges it
        (``MergeSubsetTrafficPolicy`` in ``pilot/pkg/networking/util/util.go``):

        1. a port-level setting for ``port`` replaces the top-level policy whole (what it leaves out is
           Istio's default, not the top level's);
        2. the subset's policy (its own port-level setting for ``port`` first, likewise whole) overrides
           each of TLS, connection pool, load balancer and outlier detection that it sets, or all four
           when it came from a port-level setting.
        """
        top = _at_port(self.traffic_policy, port)[0]
        sub = self._subsets_by_name.get(subset) if subset is not None else None
        if sub is None or sub.traffic_policy is None:
            return top
        mine, whole = _at_port(sub.traffic_policy, port)
        return EffectivePolicy(
            *(
                mine_field if (mine_field is not None or whole) else top_field
                for mine_field, top_field in zip(mine.fields(), top.fields(), strict=True)
            )
        )


@dataclass(frozen=True)
class EffectivePolicy:
    """The four traffic policies that apply to one cluster, after port-level and subset merging."""

    tls: ClientTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    load_balancer: LoadBalancerSettings | None = None
    outlier_detection: OutlierDetection | None = None

    def fields(self) -> tuple[Any, ...]:
        """The four policies, in field order."""
        return (self.tls, self.connection_pool, self.load_balancer, self.outlier_detection)


def _at_port(policy: TrafficPolicy | None, port: int) -> tuple[EffectivePolicy, bool]:
    """``policy`` at ``port``: its port-level setting, whole, if it has one (``True``), else its top level."""
    if policy is None:
        return EffectivePolicy(), False
    for pl in policy.port_level_settings:
        if pl.port is not None and pl.port.number == port:
            return EffectivePolicy(pl.tls, pl.connection_pool, pl.load_balancer, pl.outlier_detection), True
    return EffectivePolicy(policy.tls, policy.connection_pool, policy.load_balancer, policy.outlier_detection), False


def destination_rule(cfg: ConfigSet, proxy: Proxy, service: MeshService) -> MergedDestinationRule | None:
    """The DestinationRule for ``service`` as seen by ``proxy``.

    Lookup order (istiod ``PushContext.destinationRule``): a rule in the proxy's namespace, then in the
    service's namespace (exported to the proxy), then in the root namespace. Rules for the same host in the
    chosen namespace are merged: subsets are combined, the first rule's trafficPolicy wins. A rule with a
    ``workloadSelector`` applies only to the proxies it selects in its own namespace, gateways included
    (:func:`dr_selects`), and then alone; a namespace whose rules for the host all select other proxies gives
    none (istiod looks no further, ``SidecarScope.DestinationRule``).
    """
    idx = ConfigIndex.of(cfg)
    # memoized per proxy object; the entry holds the proxy, so its id cannot be reused by another object
    key = (id(proxy), cfg.settings.root_namespace, service.hostname, service.namespace)
    entry = idx.dr_memo.get(key)
    if entry is None or entry[0] is not proxy:
        entry = (proxy, _destination_rule(cfg, idx, proxy, service))
        idx.dr_memo[key] = entry
    return entry[1]


def _destination_rule(
    cfg: ConfigSet, idx: ConfigIndex, proxy: Proxy, service: MeshService
) -> MergedDestinationRule | None:
    host = service.hostname.lower()
    for ns in (proxy.namespace, service.namespace, cfg.settings.root_namespace):
        exact = [
            dr for dr in idx.dr_by_host.get((ns, host), []) if export_visible(dr.spec.export_to, ns, proxy.namespace)
        ]
        wild = [
            dr
            for dr in idx.dr_wildcard.get(ns, [])
            if export_visible(dr.spec.export_to, ns, proxy.namespace)
            and host_matches(qualify_host(dr.spec.host, ns), service.hostname)
        ]
        if exact or wild:
            found = exact or wild
            # istiod stops at this namespace; a rule whose workloadSelector picks the proxy wins alone, else the
            # rules without a selector merge (none: no rule at all)
            picked = [dr for dr in found if dr_selects(dr, proxy)][:1]
            chosen = picked or [dr for dr in found if dr.spec.workload_selector is None]
            if not chosen:
                return None
            subsets: dict[str, Subset] = {}
            for r in chosen:
                for s in r.spec.subsets:
                    subsets.setdefault(s.name, s)
            return MergedDestinationRule(tuple(chosen), chosen[0].spec.traffic_policy, tuple(subsets.values()))
    return None


def dr_selects(dr: DestinationRule, proxy: Proxy) -> bool:
    """Whether a DestinationRule's ``workloadSelector`` picks ``proxy``: the rule lives in the proxy's namespace
    and its ``matchLabels`` are among the pod's labels, a gateway's as a sidecar's (istiod's
    ``SidecarScope.DestinationRule``, whose scope a gateway also has, ``DefaultSidecarScopeForGateway``). A rule
    without a selector selects nothing by this test (it applies to every proxy that sees it).
    """
    ws = dr.spec.workload_selector
    return ws is not None and dr.metadata.namespace == proxy.namespace and selects(ws.match_labels, proxy.labels)


def port_tls(policy: TrafficPolicy | None, port: int) -> ClientTLSSettings | None:
    """The client TLS of ``policy`` (no subset) for ``port``: its port-level setting's, whole, if it has one
    for the port (none there means no TLS, as in istiod), else ``tls``."""
    return _at_port(policy, port)[0].tls


def tls_settings(dr: DestinationRule) -> Iterator[tuple[str, ClientTLSSettings, int | None, str | None]]:
    """Every ``tls`` block of a DestinationRule: (field path, settings, port or ``None``, subset or ``None``)."""
    yield from _policy_tls(dr.spec.traffic_policy, "spec.trafficPolicy", None)
    for i, sub in enumerate(dr.spec.subsets):
        yield from _policy_tls(sub.traffic_policy, f"spec.subsets[{i}].trafficPolicy", sub.name)


def _policy_tls(
    policy: TrafficPolicy | None, at: str, subset: str | None
) -> Iterator[tuple[str, ClientTLSSettings, int | None, str | None]]:
    if policy is None:
        return
    if policy.tls is not None:
        yield f"{at}.tls", policy.tls, None, subset
    for i, pl in enumerate(policy.port_level_settings):
        if pl.tls is not None:
            port = pl.port.number if pl.port is not None else None
            yield f"{at}.portLevelSettings[{i}].tls", pl.tls, port, subset


SNIFFED = "AUTO"
"""The protocol of a Kubernetes Service port whose name and ``appProtocol`` say none: istiod sniffs it on
outbound traffic (HTTP or TCP, decided per connection)."""


def _entry_protocol(written: str) -> str:
    """A ServiceEntry port's protocol as istiod converts it (``protocol.Parse``): none (or one Istio does not know,
    which its validation refuses) is :data:`SNIFFED`."""
    parsed = protocol.parse(written)
    return SNIFFED if parsed == protocol.UNSUPPORTED else parsed


def protocol_from_name(name: str, app_protocol: str | None = None) -> str:
    """Istio's protocol of a Kubernetes Service port: ``appProtocol``, else the port name's prefix
    (``http2-web`` → HTTP2, ``grpc-web`` → GRPC-WEB), else :data:`SNIFFED` (``status-port``, an unnamed port).

    Source: Istio's ``pkg/config/protocol`` (``Parse``) and ``kube.ConvertProtocol``.
    """
    for candidate in (app_protocol or "", name, name.split("-", 1)[0]):
        found = protocol.parse(candidate)
        if found != protocol.UNSUPPORTED:
            return found
    return SNIFFED


def source_labels_match(match_labels: Mapping[str, str], proxy: Proxy) -> bool:
    """``match.sourceLabels`` against the acting proxy's own labels (a gateway's, on a gateway)."""
    return selects(match_labels, proxy.labels)
