"""One reader of Envoy configuration, whoever made it (pure).

Three sources, one shape (Envoy's v3 resources in its snake_case field names):

* meshbridge's own translation (:class:`~meshbridge.envoy.translate.ProxyConfig`): :meth:`EnvoyView.of`;
* istiod's, as the oracle writes it (protobuf JSON, camelCase; :class:`~meshbridge.istiod.oracle.IstiodConfig`):
  :meth:`EnvoyView.from_istiod`;
* a running Envoy's admin ``/config_dump``, local or through the API server's port-forward (the whole dump,
  one taken with ``mask=``, or one taken with ``resource=``, whose items are single resources):
  :meth:`EnvoyView.from_config_dump`.

The questions every consumer asks are answered here, once: listeners by port and their filter chains
(:class:`ChainRef`), route configurations and their routes (:class:`RouteRef`), clusters, their endpoints and
upstream TLS, the secrets served (:class:`SecretEntry`) and the certificates in them. How Envoy *matches* a
request against all this is :mod:`meshbridge.envoy.simulate`'s, and nowhere else.

A port is the one in the listener's name (istiod's ``0.0.0.0_8443``; the local twin keeps the name when it moves
a port below 1024), else the port the listener binds.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

from meshbridge.envoy.clusters import HTTP_PROTOCOL_OPTIONS
from meshbridge.envoy.compare import snake_keys
from meshbridge.envoy.names import parse_cluster_name
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.istio.envoyfilter import HCM_FILTER

TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
_VS_PREFIX = "/apis/networking.istio.io/v1/namespaces/"

SecretState = Literal["ACTIVE", "WARMING", "UNINITIALIZED"]


class IstiodResources(Protocol):
    """What the oracle answers for one proxy (:class:`~meshbridge.istiod.oracle.IstiodConfig`), in camelCase."""

    @property
    def listeners(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def routes(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def clusters(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def endpoints(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def secrets(self) -> Sequence[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class RouteRef:
    """One Envoy route and where it came from.

    Attributes:
        route_config: the route configuration's name (``http.8080``, ``80``, ``https.443.https.gw.ns``).
        vhost: the virtual host's name; ``domains`` its domains.
        clusters: the clusters it sends to (one, or the weighted ones).
        virtual_service: ``(namespace, name)`` of the VirtualService it came from; ``None`` for defaults.
        host_rewrite: the ``Host`` it sends upstream instead of the request's, if any.
        has_action: it forwards somewhere (not a direct response).
    """

    route_config: str
    vhost: str
    domains: tuple[str, ...]
    clusters: tuple[str, ...]
    virtual_service: tuple[str, str] | None
    host_rewrite: str | None
    has_action: bool


@dataclass(frozen=True)
class ChainRef:
    """One filter chain of a listener.

    Attributes:
        listener: the listener's name (``0.0.0.0_8443``).
        index: the chain's place in ``filter_chains``; ``-1`` for the listener's ``default_filter_chain``.
        port: the listener's port (see the module's note).
        server_names: the SNI names it matches; ``None`` when it matches any.
        tls: its ``DownstreamTlsContext``; ``None`` when it is plain text.
        route_config: the RDS route configuration its HTTP connection manager names, if any.
        config: the chain itself (Envoy's ``FilterChain``).
    """

    listener: str
    index: int
    port: int
    server_names: tuple[str, ...] | None
    tls: dict[str, Any] | None
    route_config: str | None
    config: dict[str, Any] = field(compare=False, repr=False)

    @property
    def match(self) -> dict[str, Any]:
        """Its ``filter_chain_match`` (``{}``: it matches any connection)."""
        return self.config.get("filter_chain_match") or {}

    @property
    def require_client_certificate(self) -> bool:
        """MUTUAL: the chain demands a client certificate."""
        return bool(self.tls and self.tls.get("require_client_certificate"))

    @property
    def http(self) -> dict[str, Any] | None:
        """The ``typed_config`` of its HTTP connection manager, or ``None``."""
        return _filter_config(self.config, HCM_FILTER)

    @property
    def tcp_proxy(self) -> dict[str, Any] | None:
        """The ``typed_config`` of its TCP proxy, or ``None``."""
        return _filter_config(self.config, TCP_PROXY_FILTER)


@dataclass(frozen=True)
class SecretEntry:
    """One SDS secret as the proxy holds it.

    Attributes:
        name: the SDS name (``kubernetes://mtls-credential``).
        state: ``ACTIVE``; ``WARMING`` while the proxy still waits for it (for a translation: istiod would serve
            none); ``UNINITIALIZED``, a live Envoy's active entry that never got content.
        resource: the ``Secret`` resource (``tls_certificate`` or ``validation_context``), if any.
    """

    name: str
    state: SecretState
    resource: dict[str, Any] | None

    def data(self, which: Literal["chain", "trust", "crl"]) -> dict[str, Any] | None:
        """The data source of the certificate chain it presents, the CAs it trusts, or their CRLs."""
        res = self.resource or {}
        if which == "chain":
            found = (res.get("tls_certificate") or {}).get("certificate_chain")
        else:
            found = (res.get("validation_context") or {}).get("trusted_ca" if which == "trust" else "crl")
        return found if isinstance(found, dict) else None

    def pem(self, which: Literal["chain", "trust", "crl"]) -> bytes | None:
        """The bytes of :meth:`data` held inline, ``None`` when there are none.

        Raises:
            ValueError: ``inline_bytes`` that are not base64.
        """
        source = self.data(which)
        if source is None or not ("inline_bytes" in source or "inline_string" in source):
            return None
        return inline(source)


class EnvoyView:
    """One proxy's Envoy configuration: listeners, clusters, route configurations, endpoints and secrets.

    Build it with :meth:`of`, :meth:`from_istiod` or :meth:`from_config_dump`; the first resource of a name wins
    when a source holds two, as a scan would.

    Args:
        listeners: LDS resources (a dump's active and static ones).
        clusters: CDS resources that serve requests (a dump's active and static ones).
        route_configs: RDS resources.
        assignments: EDS ``ClusterLoadAssignment`` resources.
        secrets: the SDS secrets held.
        warming_clusters: clusters a live Envoy still warms (they serve no request yet).
        static_route_configs: a dump's static route configurations (inline in static listeners).
    """

    def __init__(
        self,
        listeners: Iterable[dict[str, Any]] = (),
        clusters: Iterable[dict[str, Any]] = (),
        route_configs: Iterable[dict[str, Any]] = (),
        assignments: Iterable[dict[str, Any]] = (),
        secrets: Iterable[SecretEntry] = (),
        warming_clusters: Iterable[dict[str, Any]] = (),
        static_route_configs: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.listeners = list(listeners)
        self.clusters = _by_name(clusters)
        self.route_configs = list(route_configs)
        self.assignments = list(assignments)
        self.secret_entries = tuple(secrets)
        self.warming_clusters = list(warming_clusters)
        self.static_route_configs = list(static_route_configs)

    # -- sources ---------------------------------------------------------------------------------------------

    @classmethod
    def of(cls, pc: ProxyConfig) -> EnvoyView:
        """meshbridge's translation of one proxy."""
        return cls(
            pc.listeners,
            pc.clusters,
            pc.route_configs,
            pc.endpoints,
            (SecretEntry(n, "ACTIVE" if s is not None else "WARMING", s) for n, s in pc.secrets.items()),
        )

    @classmethod
    def from_istiod(cls, istiod: IstiodResources) -> EnvoyView:
        """istiod's configuration of one proxy, as the oracle answers it (camelCase keys made snake_case)."""
        secrets = snake_keys(list(istiod.secrets))
        return cls(
            snake_keys(list(istiod.listeners)),
            snake_keys(list(istiod.clusters)),
            snake_keys(list(istiod.routes)),
            snake_keys(list(istiod.endpoints)),
            (SecretEntry(str(s.get("name", "")), "ACTIVE", s) for s in secrets),
        )

    @classmethod
    def from_config_dump(cls, dump: Mapping[str, Any]) -> EnvoyView:
        """A running Envoy's ``/config_dump`` (JSON): the whole dump, a masked one, or one of ``resource=`` items."""
        listeners: list[dict[str, Any]] = []
        static_listeners: list[dict[str, Any]] = []
        clusters: list[dict[str, Any]] = []
        static_clusters: list[dict[str, Any]] = []
        warming: list[dict[str, Any]] = []
        routes: list[dict[str, Any]] = []
        static_routes: list[dict[str, Any]] = []
        assignments: list[dict[str, Any]] = []
        secrets: list[SecretEntry] = []
        for cfg in dump.get("configs") or []:
            if not isinstance(cfg, dict):
                continue
            kind = str(cfg.get("@type", "")).rsplit(".", 1)[-1]
            if kind in ("DynamicRouteConfig", "StaticRouteConfig"):  # one item of a resource= dump
                _add(routes if kind == "DynamicRouteConfig" else static_routes, cfg.get("route_config"))
                continue
            groups: dict[str, tuple[list[dict[str, Any]], str]] = {  # section → (where to, the resource's key)
                "dynamic_listeners": (listeners, "listener"),  # inside active_state
                "static_listeners": (static_listeners, "listener"),
                "dynamic_active_clusters": (clusters, "cluster"),
                "static_clusters": (static_clusters, "cluster"),
                "dynamic_warming_clusters": (warming, "cluster"),
                "dynamic_route_configs": (routes, "route_config"),
                "static_route_configs": (static_routes, "route_config"),
                "dynamic_endpoint_configs": (assignments, "endpoint_config"),
                "static_endpoint_configs": (assignments, "endpoint_config"),
            }
            for group, (out, key) in groups.items():
                for entry in _items(cfg, group):
                    _add(out, (entry.get("active_state") or entry).get(key))
            for entry in _items(cfg, "dynamic_warming_secrets"):
                secrets.append(SecretEntry(str(entry.get("name", "")), "WARMING", entry.get("secret")))
            for entry in _items(cfg, "dynamic_active_secrets"):
                state: SecretState = "UNINITIALIZED" if entry.get("version_info") == "uninitialized" else "ACTIVE"
                secrets.append(SecretEntry(str(entry.get("name", "")), state, entry.get("secret")))
        return cls(
            listeners + static_listeners,
            clusters + static_clusters,
            routes,
            assignments,
            secrets,
            warming_clusters=warming,
            static_route_configs=static_routes,
        )

    # -- listeners and filter chains -------------------------------------------------------------------------

    @cached_property
    def listeners_by_port(self) -> dict[int, dict[str, Any]]:
        """Listener by port (the first, if several bind one)."""
        out: dict[int, dict[str, Any]] = {}
        for lst in self.listeners:
            out.setdefault(listener_port(lst), lst)
        return out

    def listener(self, port: int) -> dict[str, Any] | None:
        """The listener on ``port`` (the first, if several bind it)."""
        return self.listeners_by_port.get(port)

    @cached_property
    def chains(self) -> list[ChainRef]:
        """Every filter chain of every listener (default chains last, per listener)."""
        return [c for lst in self.listeners for c in listener_chains(lst)]

    @cached_property
    def _chains_by_port(self) -> dict[int, list[ChainRef]]:
        out: dict[int, list[ChainRef]] = {}
        for port, lst in self.listeners_by_port.items():
            out[port] = listener_chains(lst)
        return out

    def chains_on(self, port: int) -> list[ChainRef]:
        """The filter chains of the listener on ``port``, default chain last."""
        return self._chains_by_port.get(port, [])

    @cached_property
    def _tls_chains_by_port(self) -> dict[int, list[ChainRef]]:
        return {port: [c for c in chains if c.tls is not None] for port, chains in self._chains_by_port.items()}

    def tls_chains_on(self, port: int) -> list[ChainRef]:
        """The chains on ``port`` that terminate TLS."""
        return self._tls_chains_by_port.get(port, [])

    @cached_property
    def _chain_by_place(self) -> dict[tuple[int, int], ChainRef]:
        return {(port, c.index): c for port, chains in self._chains_by_port.items() for c in chains}

    def chain(self, port: int, index: int) -> ChainRef | None:
        """The chain ``index`` of the listener on ``port`` (``-1``: its default chain)."""
        return self._chain_by_place.get((port, index))

    # -- routes ----------------------------------------------------------------------------------------------

    @cached_property
    def route_configs_by_name(self) -> dict[str, dict[str, Any]]:
        """Route configuration by name (RDS)."""
        return _by_name(self.route_configs)

    def route_config(self, name: str) -> dict[str, Any] | None:
        """The route configuration called ``name`` (RDS)."""
        return self.route_configs_by_name.get(name)

    @cached_property
    def routes(self) -> list[RouteRef]:
        """Every route of every route configuration."""
        out = []
        for rc in self.route_configs:
            for vh in rc.get("virtual_hosts", []):
                for r in vh.get("routes", []):
                    action = r.get("route")
                    out.append(
                        RouteRef(
                            rc["name"],
                            vh.get("name", ""),
                            tuple(vh.get("domains", [])),
                            tuple(route_clusters(r)),
                            _vs_of(r),
                            action.get("host_rewrite_literal") if action is not None else None,
                            action is not None,
                        )
                    )
        return out

    @cached_property
    def routed(self) -> dict[str, list[RouteRef]]:
        """Cluster name → the routes that send to it (special clusters left out)."""
        out: dict[str, list[RouteRef]] = {}
        for r in self.routes:
            for c in r.clusters:
                if parse_cluster_name(c) is not None:
                    out.setdefault(c, []).append(r)
        return out

    @cached_property
    def routed_hosts(self) -> set[str]:
        """Lower-cased hosts of the clusters the proxy's routes send to."""
        return {host_of(c).lower() for c in self.routed}

    # -- clusters and endpoints ------------------------------------------------------------------------------

    @cached_property
    def cluster_hosts(self) -> set[str]:
        """Hosts of the proxy's (subset-key) clusters."""
        return {host_of(c) for c in self.clusters if parse_cluster_name(c) is not None}

    @cached_property
    def _assignments(self) -> dict[str, dict[str, Any]]:
        return _by_name(self.assignments, "cluster_name")

    def endpoints(self, cluster: str) -> list[tuple[str, int]]:
        """(address, port) of the cluster's endpoints, inline (DNS clusters) or from EDS."""
        c = self.clusters.get(cluster)
        if c is None:
            return []
        cla = c.get("load_assignment") or self._assignments.get(cluster) or {}
        out = []
        for group in cla.get("endpoints", []):
            for lb in group.get("lb_endpoints", []):
                sa = lb.get("endpoint", {}).get("address", {}).get("socket_address", {})
                out.append((str(sa.get("address", "")), int(sa.get("port_value", 0))))
        return out

    def upstream_tls(self, cluster: str) -> dict[str, Any] | None:
        """The cluster's ``UpstreamTlsContext``, or ``None`` when it sends plain text."""
        socket = (self.clusters.get(cluster) or {}).get("transport_socket")
        return socket.get("typed_config") if socket else None

    def auto_sni(self, cluster: str) -> tuple[bool, bool]:
        """(``auto_sni``, ``auto_san_validation``) of the cluster's HTTP protocol options."""
        c = self.clusters.get(cluster) or {}
        opts = (c.get("typed_extension_protocol_options") or {}).get(HTTP_PROTOCOL_OPTIONS, {})
        up = opts.get("upstream_http_protocol_options", {})
        return bool(up.get("auto_sni")), bool(up.get("auto_san_validation"))

    def upstream_hosts(self) -> set[str]:
        """Every host the proxy can send to: its clusters' hosts, their endpoint addresses, its routes' domains."""
        hosts: set[str] = set()
        for c in [*self.clusters.values(), *self.warming_clusters]:
            parsed = parse_cluster_name(str(c.get("name", "")))
            if parsed is not None:
                hosts.add(parsed[3])
            for locality in (c.get("load_assignment") or {}).get("endpoints", []):
                for lb in locality.get("lb_endpoints", []):
                    hosts.add(lb.get("endpoint", {}).get("address", {}).get("socket_address", {}).get("address", ""))
        for rc in self.route_configs:
            for vh in rc.get("virtual_hosts", []):
                hosts.update(vh.get("domains", []))
        return hosts

    # -- secrets ---------------------------------------------------------------------------------------------

    @cached_property
    def secrets(self) -> dict[str, dict[str, Any] | None]:
        """SDS name → the secret the proxy uses (an active one), or ``None`` while it waits for it."""
        out: dict[str, dict[str, Any] | None] = {}
        for e in self.secret_entries:
            if e.state == "ACTIVE":
                out[e.name] = e.resource
            else:
                out.setdefault(e.name, None)
        return out

    def secret(self, name: str) -> dict[str, Any] | None:
        """The SDS resource served under ``name``, or ``None`` when none is."""
        return self.secrets.get(name)

    def secret_resources(self) -> list[dict[str, Any]]:
        """The served secrets as named resources (what :func:`meshbridge.envoy.compare.facts` reads)."""
        return [{"name": n, **s} for n, s in self.secrets.items() if s is not None]

    def active_secrets(self) -> list[SecretEntry]:
        """The entries of the secrets the proxy uses, in the order it lists them."""
        return [e for e in self.secret_entries if e.state == "ACTIVE"]


# -- reading single resources ------------------------------------------------------------------------------


def listener_port(lst: Mapping[str, Any]) -> int:
    """The port of a listener: the one in its name (``0.0.0.0_8443``), else the one it binds."""
    tail = str(lst.get("name", "")).rsplit("_", 1)[-1]
    if tail.isdigit():
        return int(tail)
    return int(lst.get("address", {}).get("socket_address", {}).get("port_value", 0))


def listener_chains(lst: Mapping[str, Any]) -> list[ChainRef]:
    """The filter chains of ``lst`` in order, then its ``default_filter_chain`` (index ``-1``)."""
    port = listener_port(lst)
    name = str(lst.get("name", ""))
    chains = list(enumerate(lst.get("filter_chains") or []))
    if lst.get("default_filter_chain"):
        chains.append((-1, lst["default_filter_chain"]))
    out = []
    for i, chain in chains:
        names = (chain.get("filter_chain_match") or {}).get("server_names")
        socket = chain.get("transport_socket")
        hcm = _filter_config(chain, HCM_FILTER) or {}
        rds = (hcm.get("rds") or {}).get("route_config_name")
        tls = socket.get("typed_config") if socket else None
        out.append(ChainRef(name, i, port, tuple(names) if names else None, tls, rds, chain))
    return out


def route_clusters(route: Mapping[str, Any]) -> list[str]:
    """The clusters a route sends to: its cluster, or its weighted clusters in order; ``[]`` for other actions."""
    action = route.get("route") or {}
    if "cluster" in action:
        return [action["cluster"]]
    return [c["name"] for c in (action.get("weighted_clusters") or {}).get("clusters", [])]


def host_of(cluster: str) -> str:
    """The host of a subset-key cluster name (``outbound|443||h`` → ``h``); the name itself otherwise."""
    parsed = parse_cluster_name(cluster)
    return parsed[3] if parsed is not None else cluster


def sds_names(common: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """(certificate SDS names, validation SDS name) of a ``CommonTlsContext``."""
    certs = [s["name"] for s in common.get("tls_certificate_sds_secret_configs", [])]
    cvc = common.get("combined_validation_context") or {}
    ca = (cvc.get("validation_context_sds_secret_config") or {}).get("name")
    return certs, ca


def secret_refs(socket: Mapping[str, Any]) -> list[str]:
    """The SDS names a transport socket uses: its certificates, then its validation context."""
    certs, ca = sds_names((socket.get("typed_config") or {}).get("common_tls_context") or {})
    return [*certs, ca] if ca else certs


def inline(data: Mapping[str, Any] | None) -> bytes:
    """The bytes of an inline data source (``inline_bytes``, base64, or ``inline_string``); ``b""`` otherwise.

    Raises:
        ValueError: ``inline_bytes`` that are not base64.
    """
    if not data:
        return b""
    if "inline_bytes" in data:
        return base64.b64decode(data["inline_bytes"])
    return str(data.get("inline_string", "")).encode()


def _filter_config(chain: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for f in chain.get("filters") or []:
        if f.get("name") == name:
            found: dict[str, Any] = f.get("typed_config") or {}
            return found
    return None


def _by_name(resources: Iterable[dict[str, Any]], key: str = "name") -> dict[str, dict[str, Any]]:
    """Each resource by its ``key`` field; the first of a name wins, as a scan would."""
    out: dict[str, dict[str, Any]] = {}
    for r in resources:
        out.setdefault(str(r.get(key, "")), r)
    return out


def _items(cfg: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return [e for e in cfg.get(key) or [] if isinstance(e, dict)]


def _add(out: list[dict[str, Any]], resource: Any) -> None:
    if isinstance(resource, dict):
        out.append(resource)


def _vs_of(route: Mapping[str, Any]) -> tuple[str, str] | None:
    path = (((route.get("metadata") or {}).get("filter_metadata") or {}).get("istio") or {}).get("config", "")
    if not path.startswith(_VS_PREFIX):
        return None
    ns, _, rest = path[len(_VS_PREFIX) :].partition("/virtual-service/")
    return (ns, rest) if rest else None
