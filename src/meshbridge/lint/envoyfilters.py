"""MB115, MB116: EnvoyFilters that istiod applies to nothing (pure).

An EnvoyFilter that selects no proxy, or whose patch matches no listener of the proxies it selects, is not
an error to istiod: it applies nothing and says nothing (``istioctl analyze`` is silent too). For the
exporter's edge limits that means a gateway without its connection limit and timeouts. Both checks read
the selection from :mod:`meshbridge.istio.envoyfilter` and what each patch changed from the proxies'
translations (``ProxyConfig.patch_hits``), so lint and the local twin agree on every match.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshbridge.envoy.envoyfilter import listener_port, patch_context
from meshbridge.envoy.gateway import resolve_port
from meshbridge.istio.envoyfilter import PatchRef, applies_to, filter_name, proxy_matches, supported
from meshbridge.istio.resources import EnvoyFilter
from meshbridge.istio.visibility import Proxy
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding
from meshbridge.lint.inputs import LintInput, MeshInput


def check_envoy_filter_selectors(inp: LintInput) -> Iterator[Finding]:
    """MB115: an EnvoyFilter whose namespace and ``workloadSelector`` pick no proxy of the world."""
    for mesh in inp.meshes:
        root = mesh.config.settings.root_namespace
        for ef in mesh.config.envoy_filters:
            if ef.spec.target_refs or _selected(mesh, ef):
                continue
            md = ef.metadata
            namespaces = sorted({p.namespace for p in mesh.routers + mesh.sidecars})
            if md.namespace != root and md.namespace not in namespaces:
                why = (
                    f"it lives in namespace {md.namespace}, where no proxy runs (an EnvoyFilter applies to the "
                    f"workloads of its own namespace, or of every namespace from {root}; proxies run in "
                    f"{', '.join(namespaces) or 'none'})"
                )
                fix = "create it in the namespace of the pods it is meant for (a gateway's namespace), or in " + root
                field = "metadata.namespace"
            else:
                sel = ef.spec.workload_selector.labels if ef.spec.workload_selector else {}
                pods = "; ".join(f"{p.namespace}/{p.name} {dict(p.labels)}" for p in mesh.routers) or "none"
                why = f"workloadSelector {sel} matches no pod of namespace {md.namespace}; gateway pods: {pods}"
                fix = "make workloadSelector.labels a subset of the gateway pods' labels (check istio.io/rev)"
                field = "spec.workloadSelector.labels"
            yield finding("MB115", [mesh.ref("EnvoyFilter", md.namespace, md.name, field)], why, fix)


def check_envoy_filter_patches(inp: LintInput) -> Iterator[Finding]:
    """MB116: a patch the translation applies that changes no listener of the proxies its EnvoyFilter selects."""
    for mesh in inp.meshes:
        for ef in mesh.config.envoy_filters:
            proxies = _selected(mesh, ef)
            if not proxies:
                continue  # MB115
            for i, cp in enumerate(ef.spec.config_patches):
                if not supported(cp):
                    continue  # reported as not modelled (MB002)
                ref = PatchRef(ef, i, cp)
                version = mesh.config.settings.istio_version
                if not proxy_matches(cp, version):
                    wanted = ref.match.proxy.proxy_version if ref.match.proxy is not None else None
                    why = f"match.proxy.proxyVersion {wanted!r} does not match the mesh's Istio {version}"
                    yield _patch_finding(mesh, ref, f"{ref.field}.match.proxy.proxyVersion", why)
                    continue
                if any(mesh.translation(p).patch_hits.get(ref.key, 0) for p in proxies):
                    continue
                why, field = _why_nothing(mesh, ref, proxies)
                yield _patch_finding(mesh, ref, field, why)


def _selected(mesh: MeshInput, ef: EnvoyFilter) -> list[Proxy]:
    root = mesh.config.settings.root_namespace
    return [s.proxy for s in mesh.proxies if applies_to(ef, s.proxy, root)]


def _patch_finding(mesh: MeshInput, ref: PatchRef, field: str, why: str) -> Finding:
    md = ref.envoy_filter.metadata
    return finding(
        "MB116",
        [mesh.ref("EnvoyFilter", md.namespace, md.name, field)],
        f"{ref.describe()} changes nothing: {why}",
        "match what istiod builds: context GATEWAY for gateways, listener.portNumber the port the listener binds "
        "(the Service's targetPort, e.g. 8443 for 443), filter name envoy.filters.network.http_connection_manager",
    )


def _why_nothing(mesh: MeshInput, ref: PatchRef, proxies: list[Proxy]) -> tuple[str, str]:
    """Why a patch matched nothing, and the field to look at."""
    m = ref.match
    at = ref.field
    same_context = [p for p in proxies if m.context in ("ANY", patch_context(p))]
    names = ", ".join(f"{p.namespace}/{p.name}" for p in proxies)
    if not same_context:
        kinds = sorted({patch_context(p) for p in proxies})
        return (
            f"context {m.context}, but it selects only {' and '.join(kinds)} proxies ({names})",
            f"{at}.match.context",
        )
    listeners = [(p, lst) for p in same_context for lst in mesh.translation(p).listeners]
    ports = sorted({listener_port(lst) for _, lst in listeners})
    lm = m.listener
    if lm is not None and lm.port_number and lm.port_number not in ports:
        hint = ""
        for p in same_context:
            target = resolve_port(p, lm.port_number)
            if p.kind == "router" and target != lm.port_number:
                hint = f"; {lm.port_number} is the gateway Service's port, whose listener binds targetPort {target}"
        return (
            f"no listener of {names} binds port {lm.port_number} (listener ports: {_ports(ports)}){hint}",
            f"{at}.match.listener.portNumber",
        )
    if lm is not None and lm.name and lm.name not in {str(lst.get("name")) for _, lst in listeners}:
        return f"no listener of {names} is named {lm.name}", f"{at}.match.listener.name"
    if lm is not None and lm.port_number:
        listeners = [(p, lst) for p, lst in listeners if listener_port(lst) == lm.port_number]
    chains = [c for _, lst in listeners for c in _chains(lst)]
    fc = lm.filter_chain if lm is not None else None
    if (
        fc is not None
        and fc.sni
        and not any(fc.sni in (c.get("filter_chain_match") or {}).get("server_names", []) for c in chains)
    ):
        return f"no filter chain of {names} serves SNI {fc.sni}", f"{at}.match.listener.filterChain.sni"
    wanted = filter_name(ref.patch)
    have = sorted({str(f.get("name")) for c in chains for f in c.get("filters", [])})
    if wanted:
        return (
            f"no filter chain of {names} has a filter named {wanted} (filters: {', '.join(have) or 'none'})",
            f"{at}.match.listener.filterChain.filter.name",
        )
    return f"no filter chain of {names} matches {ref.describe()}", f"{at}.match.listener"


def _chains(lst: dict[str, Any]) -> list[dict[str, Any]]:
    return list(lst.get("filter_chains", []))


def _ports(ports: list[int]) -> str:
    return ", ".join(map(str, ports)) or "none"


CHECKS = (check_envoy_filter_selectors, check_envoy_filter_patches)
