"""What Istio removed, and where users' manifests still use it (pure).

Manifests written for old Istio releases keep circulating (blog posts, charts, the article's own era). The
table :data:`REMOVALS` is the one place meshbridge states these facts: what was removed, in which release,
what current Istio does with it, the replacement, and the release note that says so. The parser
(:func:`meshbridge.istio.parse.build_config`) turns every use into a :class:`RemovedWarning` (printed by
``local up`` and ``translate``), and lint reports the same warning as ``MB003``: one table, one wording.

A removal applies to a mesh whose Istio version is at or after the release that removed it
(:meth:`Removal.applies`); older meshes still serve the API, and their manifests are read as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshbridge.istio.config import ConfigWarning


@dataclass(frozen=True)
class Removal:
    """One API or feature Istio removed.

    Attributes:
        key: the row's name in :data:`REMOVALS`.
        what: what was removed, in the release note's words.
        release: the Istio release that removed it (``1.6``).
        effect: what current Istio does with a manifest that still uses it.
        fix: the replacement, as the user writes it.
        source: the release or upgrade note that says so.
    """

    key: str
    what: str
    release: str
    effect: str
    fix: str
    source: str

    @property
    def minor(self) -> int:
        """The minor number of :attr:`release` (6 for ``1.6``)."""
        return int(self.release.split(".")[1])

    def applies(self, istio_minor: int) -> bool:
        """Whether a mesh on Istio ``1.<istio_minor>`` no longer has it."""
        return istio_minor >= self.minor


_ALPHA_SECURITY = "https://istio.io/latest/blog/2021/migrate-alpha-policy/"
_MIXER = "https://istio.io/latest/news/releases/1.8.x/announcing-1.8/upgrade-notes/"

REMOVALS: dict[str, Removal] = {
    r.key: r
    for r in (
        Removal(
            "mesh-policy",
            "the alpha authentication API (MeshPolicy, Policy)",
            "1.6",
            "the CRD is gone: kubectl apply fails (no matches for kind MeshPolicy) and no proxy gets its mTLS setting",
            "a PeerAuthentication (security.istio.io/v1) named default in the root namespace (istio-system) with "
            "spec.mtls.mode STRICT or PERMISSIVE, as the MeshPolicy's peers said",
            _ALPHA_SECURITY,
        ),
        Removal(
            "policy",
            "the alpha authentication API (MeshPolicy, Policy)",
            "1.6",
            "the CRD is gone: kubectl apply fails (no matches for kind) and neither its mTLS nor its JWT rules apply",
            "a PeerAuthentication (security.istio.io/v1) for spec.peers and a RequestAuthentication for "
            "spec.origins (plus an AuthorizationPolicy requiring requestPrincipals where a JWT was mandatory); "
            "select the workloads with selector.matchLabels instead of targets",
            _ALPHA_SECURITY,
        ),
        Removal(
            "rbac",
            "the alpha RBAC API (ClusterRbacConfig, RbacConfig, ServiceRole, ServiceRoleBinding)",
            "1.6",
            "the CRDs are gone: kubectl apply fails (no matches for kind) and nothing is authorized or denied by it",
            "an AuthorizationPolicy (security.istio.io/v1): a ServiceRole and its ServiceRoleBindings become one "
            "ALLOW policy (rules[].to.operation from the role, rules[].from.source from the bindings' subjects); "
            "ClusterRbacConfig and RbacConfig have no counterpart (a policy applies to the workloads it selects)",
            _ALPHA_SECURITY + ", https://istio.io/v1.4/docs/reference/config/security/istio.rbac.v1alpha1/",
        ),
        Removal(
            "routing-v1alpha2",
            "the first traffic management API (RouteRule, DestinationPolicy, EgressRule)",
            "1.0",
            "the CRDs are gone: kubectl apply fails (no matches for kind) and no route comes from it",
            "a VirtualService for RouteRule, a DestinationRule for DestinationPolicy, a ServiceEntry for EgressRule "
            "(networking.istio.io/v1)",
            "https://istio.io/v1.0/about/notes/1.0/",
        ),
        Removal(
            "mixer",
            "Mixer, and with it its configuration (handler, instance, rule, attributemanifest, adapter, template "
            "and the adapters' own kinds)",
            "1.8",
            "nothing reads it any more (no istio-policy or istio-telemetry), and without the CRDs kubectl apply "
            "fails (no matches for kind)",
            "the Telemetry API (telemetry.istio.io/v1) for metrics, access logs and traces; a WasmPlugin "
            "(extensions.istio.io) or an ext_authz provider (AuthorizationPolicy action CUSTOM) for policy adapters",
            _MIXER,
        ),
        Removal(
            "mixer-filter",
            "the Mixer filter of the proxies (mixer, envoy.filters.http.mixer, istio.mixer types)",
            "1.8",
            "current proxies have no such filter: a patch that inserts it gets the listener rejected, and a patch "
            "matched against it applies to nothing",
            "remove the patch (Mixer is gone; use the Telemetry API or a WasmPlugin), or match a filter current "
            "proxies have, e.g. subFilter envoy.filters.http.router",
            _MIXER,
        ),
        Removal(
            "filter-config-struct",
            "the untyped filter config (config: a Struct; Envoy's v3 API has typed_config only)",
            "1.7",
            "istiod drops the config field (kubectl apply warns: unknown field), so the filter goes out without "
            "its settings and Envoy rejects the listener, or the MERGE changes nothing",
            'typed_config with an "@type" (e.g. "@type": '
            "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua and the same fields under it)",
            "https://istio.io/latest/news/releases/1.7.x/announcing-1.7/upgrade-notes/ (EnvoyFilter syntax change)",
        ),
        Removal(
            "citadel-certs",
            "Citadel's /etc/certs/ mount (the per-namespace istio.* Secrets in the proxies)",
            "1.5",
            "Citadel no longer writes the istio.* Secrets and proxies no longer mount /etc/certs/: unless you mount "
            "files there yourself, the listener or cluster waits for certificates that never come (handshake reset "
            "at a gateway, 503 at a client)",
            "credentialName (a Secret in the gateway's namespace) for your own certificates, or mode ISTIO_MUTUAL "
            "for the mesh's workload certificates",
            "https://istio.io/latest/news/releases/1.5.x/announcing-1.5/upgrade-notes/ (Citadel, Sidecar)",
        ),
    )
}
"""Every removal meshbridge names, by key. Sources: Istio's release and upgrade notes (``source``)."""

_ROUTING_V1ALPHA2 = frozenset({"RouteRule", "DestinationPolicy", "EgressRule"})
_MIXER_GROUPS = frozenset({"config.istio.io", "policy.istio.io"})
MIXER_FILTERS = frozenset({"mixer", "envoy.filters.http.mixer"})
_MIXER_TYPE = re.compile(r"(^|/)istio\.mixer\.")
_FILTER_APPLY_TO = frozenset({"NETWORK_FILTER", "HTTP_FILTER", "LISTENER_FILTER"})  # the value is a filter
CITADEL_DIR = "/etc/certs/"


@dataclass(frozen=True)
class RemovedWarning(ConfigWarning):
    """A :class:`ConfigWarning` about something Istio removed: ``message`` is ``problem`` and ``fix`` joined,
    and lint reports it as ``MB003`` with both apart.

    Attributes:
        removal: the row of :data:`REMOVALS`.
        problem: what is wrong, with the release and what current Istio does.
        fix: what to write instead.
    """

    removal: Removal
    problem: str
    fix: str


def removed_warning(
    source: str, kind: str, namespace: str, name: str, field: str, removal: Removal, used: str
) -> RemovedWarning:
    """The warning for ``used`` (what the manifest has, e.g. ``config`` or the apiVersion and kind)."""
    problem = f"{used}: {removal.what} was removed in Istio {removal.release}; {removal.effect}"
    fix = removal.fix
    message = f"{problem}. Fix: {fix} (source: {removal.source})"
    return RemovedWarning(source, kind, namespace, name, field, message, removal, problem, fix)


def removed_kind(api_version: str, kind: str) -> Removal | None:
    """The removal that took ``api_version`` ``kind`` away, if any (``networking.istio.io`` kinds never)."""
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    if group == "authentication.istio.io":
        return REMOVALS["mesh-policy" if kind == "MeshPolicy" else "policy"]
    if group == "rbac.istio.io":
        return REMOVALS["rbac"]
    if group == "config.istio.io" and kind in _ROUTING_V1ALPHA2:
        return REMOVALS["routing-v1alpha2"]
    if group in _MIXER_GROUPS:
        return REMOVALS["mixer"]
    return None


def envoy_filter_uses(doc: Mapping[str, Any]) -> Iterator[tuple[str, Removal, str]]:
    """``(field, removal, what is used)`` for each removed feature an EnvoyFilter document still uses: a
    ``config`` Struct where Envoy's v3 API has ``typed_config``, and the Mixer filter (by name or type)."""
    spec = doc.get("spec")
    patches = spec.get("configPatches") if isinstance(spec, Mapping) else None
    if not isinstance(patches, list):
        return
    for i, cp in enumerate(patches):
        if not isinstance(cp, Mapping):
            continue
        at = f"spec.configPatches[{i}]"
        match = cp.get("match")
        lst = match.get("listener") if isinstance(match, Mapping) else None
        fc = lst.get("filterChain") if isinstance(lst, Mapping) else None
        flt = fc.get("filter") if isinstance(fc, Mapping) else None
        if isinstance(flt, Mapping):
            fat = f"{at}.match.listener.filterChain.filter"
            if flt.get("name") in MIXER_FILTERS:
                yield f"{fat}.name", REMOVALS["mixer-filter"], f"filter {flt['name']}"
            sub = flt.get("subFilter")
            if isinstance(sub, Mapping) and sub.get("name") in MIXER_FILTERS:
                yield f"{fat}.subFilter.name", REMOVALS["mixer-filter"], f"filter {sub['name']}"
        patch = cp.get("patch")
        value = patch.get("value") if isinstance(patch, Mapping) else None
        if value is not None:
            yield from _value_uses(value, f"{at}.patch.value", cp.get("applyTo") in _FILTER_APPLY_TO)


def _value_uses(value: Any, at: str, is_filter: bool) -> Iterator[tuple[str, Removal, str]]:
    """Removed features inside a patch value (Envoy's own config). ``is_filter``: ``value`` is a filter (its
    ``config`` is the old Struct even without a ``name``). A typed object (``@type``) is the extension's own
    message, whose fields may well be called ``config``: only its type is checked."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _value_uses(item, f"{at}[{i}]", False)
        return
    if not isinstance(value, Mapping):
        return
    typ = value.get("@type")
    if isinstance(typ, str):
        if _MIXER_TYPE.search(typ):
            yield f"{at}.@type", REMOVALS["mixer-filter"], f"type {typ}"
        return
    if value.get("name") in MIXER_FILTERS:
        yield f"{at}.name", REMOVALS["mixer-filter"], f"filter {value['name']}"
    if "config" in value and (is_filter or "name" in value):
        yield f"{at}.config", REMOVALS["filter-config-struct"], "config"
    for key, child in value.items():
        if key != "config":
            yield from _value_uses(child, f"{at}.{key}", False)


_SERVER_FILES = ("serverCertificate", "privateKey", "caCertificates")
_CLIENT_FILES = ("clientCertificate", "privateKey", "caCertificates")


def citadel_paths(doc: Mapping[str, Any]) -> Iterator[tuple[str, Removal, str]]:
    """``(field, removal, path)`` for each file path under Citadel's ``/etc/certs/`` in a Gateway's server TLS
    or a DestinationRule's client TLS (top level, port level, subsets)."""
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        return
    if doc.get("kind") == "Gateway":
        servers = spec.get("servers")
        for i, server in enumerate(servers if isinstance(servers, list) else []):
            tls = server.get("tls") if isinstance(server, Mapping) else None
            yield from _files(tls, f"spec.servers[{i}].tls", _SERVER_FILES)
    elif doc.get("kind") == "DestinationRule":
        yield from _policy_files(spec.get("trafficPolicy"), "spec.trafficPolicy")
        subsets = spec.get("subsets")
        for i, subset in enumerate(subsets if isinstance(subsets, list) else []):
            if isinstance(subset, Mapping):
                yield from _policy_files(subset.get("trafficPolicy"), f"spec.subsets[{i}].trafficPolicy")


def _policy_files(policy: Any, at: str) -> Iterator[tuple[str, Removal, str]]:
    if not isinstance(policy, Mapping):
        return
    yield from _files(policy.get("tls"), f"{at}.tls", _CLIENT_FILES)
    levels = policy.get("portLevelSettings")
    for i, level in enumerate(levels if isinstance(levels, list) else []):
        if isinstance(level, Mapping):
            yield from _files(level.get("tls"), f"{at}.portLevelSettings[{i}].tls", _CLIENT_FILES)


def _files(tls: Any, at: str, keys: tuple[str, ...]) -> Iterator[tuple[str, Removal, str]]:
    if not isinstance(tls, Mapping):
        return
    for key in keys:
        path = tls.get(key)
        if isinstance(path, str) and path.startswith(CITADEL_DIR):
            yield f"{at}.{key}", REMOVALS["citadel-certs"], f"{key} {path}"
