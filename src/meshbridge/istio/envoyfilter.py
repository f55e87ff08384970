"""EnvoyFilter as istiod reads it: which patches the model supports, and which apply to a proxy, in order.

Sources (istio/istio): ``pilot/pkg/model/envoyfilter.go`` (``convertToEnvoyFilterWrapper``, ``proxyMatch``),
``pilot/pkg/model/push_context.go`` (``EnvoyFilters``, ``getMatchedEnvoyFilters``),
``pilot/pkg/networking/core/envoyfilter/listener_patch.go``.

What istiod does, and meshbridge with it:

* an EnvoyFilter applies to a proxy when it lives in the config root namespace (``istio-system``) or the
  proxy's own namespace, and its ``workloadSelector.labels`` are a subset of the pod's labels (no selector:
  every workload of that namespace); one with ``targetRefs`` is skipped;
* the EnvoyFilters that apply are ordered by ``priority``, root namespace first, then creation time (the
  input order here) and ``name.namespace``; their patches are merged per ``applyTo`` in that order, keeping
  only those whose ``match.proxy`` fits the proxy (``proxyVersion`` is a regex on the Istio version);
* a patch without ``match`` has context ``ANY``; one without ``patch`` is discarded.

The translation applies ``NETWORK_FILTER`` patches to listeners (``meshbridge.envoy.envoyfilter``): MERGE into
the HTTP connection manager, and INSERT_BEFORE, INSERT_AFTER, INSERT_FIRST and ADD of a network filter. Every
other patch, and every match field the translation cannot evaluate, is a warning that names the EnvoyFilter
and the patch (:func:`envoy_filter_warnings`); nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meshbridge.istio.config import ConfigSet, ConfigWarning
from meshbridge.istio.resources import EnvoyConfigObjectMatch, EnvoyConfigObjectPatch, EnvoyFilter
from meshbridge.istio.visibility import Proxy, selects

HCM_FILTER = "envoy.filters.network.http_connection_manager"
INSERTS = ("INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "ADD")
FILTER_FIELDS = frozenset({"name", "typed_config"})  # of a listener.Filter value the translation uses


@dataclass(frozen=True)
class PatchRef:
    """One patch of one EnvoyFilter, in the order istiod applies it.

    Attributes:
        envoy_filter: the EnvoyFilter.
        index: its position in ``spec.configPatches``.
        patch: the patch (``applyTo``, ``match``, ``patch``).
    """

    envoy_filter: EnvoyFilter
    index: int
    patch: EnvoyConfigObjectPatch

    @property
    def key(self) -> tuple[str, str, int]:
        """``(namespace, name, index)``: the patch's identity across proxies."""
        md = self.envoy_filter.metadata
        return (md.namespace, md.name, self.index)

    @property
    def field(self) -> str:
        """``spec.configPatches[<index>]``."""
        return f"spec.configPatches[{self.index}]"

    @property
    def match(self) -> EnvoyConfigObjectMatch:
        """The match (``context: ANY`` when absent, as istiod fills it)."""
        return self.patch.match or EnvoyConfigObjectMatch()

    @property
    def operation(self) -> str:
        """The patch operation (``INVALID`` without a patch)."""
        return self.patch.patch.operation if self.patch.patch is not None else "INVALID"

    def describe(self) -> str:
        """``NETWORK_FILTER INSERT_BEFORE (GATEWAY, port 8443, filter envoy.filters...)``."""
        m = self.match
        parts: list[str] = [m.context]
        lst = m.listener
        if lst is not None:
            if lst.port_number:
                parts.append(f"port {lst.port_number}")
            if lst.name:
                parts.append(f"listener {lst.name}")
            fc = lst.filter_chain
            if fc is not None and fc.sni:
                parts.append(f"sni {fc.sni}")
            if fc is not None and fc.filter is not None and fc.filter.name:
                parts.append(f"filter {fc.filter.name}")
        return f"{self.patch.apply_to} {self.operation} ({', '.join(parts)})"


def supported(p: EnvoyConfigObjectPatch) -> bool:
    """Whether the translation applies this patch shape (the others are warnings, see :func:`envoy_filter_warnings`)."""
    if p.patch is None or p.apply_to != "NETWORK_FILTER":
        return False
    m = p.match or EnvoyConfigObjectMatch()
    if m.context == "SIDECAR_INBOUND" or (m.proxy is not None and m.proxy.metadata):
        return False
    if set(p.patch.value) - FILTER_FIELDS:
        return False
    if p.patch.operation == "MERGE":
        return filter_name(p) == HCM_FILTER
    return p.patch.operation in INSERTS


def filter_name(p: EnvoyConfigObjectPatch) -> str:
    """``match.listener.filterChain.filter.name``, or ``""``."""
    lst = p.match.listener if p.match is not None else None
    fc = lst.filter_chain if lst is not None else None
    return fc.filter.name if fc is not None and fc.filter is not None else ""


def envoy_filter_warnings(ef: EnvoyFilter, source: str) -> list[ConfigWarning]:
    """What of ``ef`` the translation does not apply, one warning per patch or field, naming both."""
    md = ef.metadata
    out: list[ConfigWarning] = []

    def warn(field: str, message: str) -> None:
        out.append(ConfigWarning(source, "EnvoyFilter", md.namespace, md.name, field, message))

    if ef.spec.target_refs:
        warn("spec.targetRefs", "targetRefs is not modelled; this EnvoyFilter is not applied to any proxy here")
    for i, cp in enumerate(ef.spec.config_patches):
        ref = PatchRef(ef, i, cp)
        at = ref.field
        if cp.patch is None:
            warn(at, "no patch: istiod discards this entry")
            continue
        m = ref.match
        if cp.apply_to != "NETWORK_FILTER":
            warn(
                at,
                f"{ref.describe()}: applyTo {cp.apply_to} is not modelled (only NETWORK_FILTER patches of listeners "
                "are); ignored by the translation, istiod would apply it",
            )
            continue
        op = cp.patch.operation
        if op == "MERGE" and filter_name(cp) != HCM_FILTER:
            warn(
                at,
                f"{ref.describe()}: MERGE is modelled only into {HCM_FILTER} (match.listener.filterChain.filter."
                "name); ignored by the translation, istiod would apply it",
            )
        elif op not in (*INSERTS, "MERGE"):
            warn(at, f"{ref.describe()}: operation {op} is not modelled; ignored by the translation")
        if m.context == "SIDECAR_INBOUND":
            warn(f"{at}.match.context", "SIDECAR_INBOUND: the translation builds no inbound listeners; ignored")
        if m.proxy is not None and m.proxy.metadata:
            warn(f"{at}.match.proxy.metadata", "proxy node metadata is not modelled; the patch is not applied here")
        if m.proxy is not None and m.proxy.proxy_version and _regex(m.proxy.proxy_version) is None:
            warn(f"{at}.match.proxy.proxyVersion", "not a valid regular expression: istiod rejects it; never matches")
        lst = m.listener
        if lst is not None and lst.port_name:
            warn(f"{at}.match.listener.portName", "istiod does not implement portName; it matches every port")
        if lst is not None and lst.listener_filter:
            warn(f"{at}.match.listener.listenerFilter", "ignored for NETWORK_FILTER patches (by istiod too)")
        fc = lst.filter_chain if lst is not None else None
        if fc is not None and fc.filter is not None and fc.filter.sub_filter is not None:
            warn(f"{at}.match.listener.filterChain.filter.subFilter", "ignored for NETWORK_FILTER patches (istiod too)")
        if cp.patch.filter_class:
            warn(f"{at}.patch.filterClass", "applies to HTTP filters only; ignored")
        for key in sorted(set(cp.patch.value) - FILTER_FIELDS):
            warn(f"{at}.patch.value.{key}", "not modelled for network filters; the patch is not applied here")
    return out


def patches_for(cfg: ConfigSet, proxy: Proxy) -> list[PatchRef]:
    """Every patch istiod would consider for ``proxy`` (any ``applyTo``), in istiod's order."""
    root = cfg.settings.root_namespace
    order = {id(ef): i for i, ef in enumerate(cfg.envoy_filters)}
    chosen = [ef for ef in cfg.envoy_filters if applies_to(ef, proxy, root)]
    chosen.sort(
        key=lambda ef: (
            ef.spec.priority,
            0 if ef.metadata.namespace == root else 1,
            order[id(ef)],
            f"{ef.metadata.name}.{ef.metadata.namespace}",
        )
    )
    version = cfg.settings.istio_version
    return [
        PatchRef(ef, i, cp)
        for ef in chosen
        for i, cp in enumerate(ef.spec.config_patches)
        if cp.patch is not None and proxy_matches(cp, version)
    ]


def applies_to(ef: EnvoyFilter, proxy: Proxy, root_namespace: str = "istio-system") -> bool:
    """istiod's ``getMatchedEnvoyFilters``: namespace (root or the proxy's), no targetRefs, selector ⊆ labels."""
    if ef.metadata.namespace not in (root_namespace, proxy.namespace) or ef.spec.target_refs:
        return False
    sel = ef.spec.workload_selector
    return sel is None or selects(sel.labels, proxy.labels)


def proxy_matches(cp: EnvoyConfigObjectPatch, istio_version: str) -> bool:
    """istiod's ``proxyMatch``: ``proxyVersion`` (a regex, searched) against the proxy's Istio version."""
    pm = cp.match.proxy if cp.match is not None else None
    if pm is None:
        return True
    if pm.proxy_version:
        rx = _regex(pm.proxy_version)
        if rx is None or not rx.search(istio_version):
            return False
    return not pm.metadata  # node metadata is not modelled: such a patch is reported and never applied


def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None
