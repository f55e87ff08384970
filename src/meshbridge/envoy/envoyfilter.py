"""EnvoyFilter ``NETWORK_FILTER`` patches applied to a proxy's listeners, as istiod applies them (pure).

Source: istio/istio ``pilot/pkg/networking/core/envoyfilter/listener_patch.go`` (``patchFilterChain``,
``patchNetworkFilters``, ``patchNetworkFilter``, ``listenerMatch``, ``filterChainMatch``,
``networkFilterMatch``). For each listener and each of its filter chains:

1. the insertions, in patch order: ADD appends; INSERT_FIRST prepends; INSERT_BEFORE / INSERT_AFTER put the
   value before / after the first filter named by ``match.listener.filterChain.filter.name`` (without a
   filter name: at the start / the end; with one that the chain lacks: nothing);
2. then, filter by filter, the MERGEs whose filter name matches: the value's ``typed_config`` is merged
   into the filter's (its ``@type`` is replaced by the filter's own, as istiod does), and a non-empty
   ``name`` renames the filter.

A listener matches on ``match.listener.name`` and ``portNumber``: the port istiod's listener binds in the pod
(a gateway's targetPort, 8443 for the Service's 443), which the listener's name carries; the local twin's
own port mapping is not seen. A chain matches on ``filterChain`` ``name``, ``sni`` (one of its
``server_names``), ``transportProtocol``, ``applicationProtocols`` (all of them) and ``destinationPort``.

MERGE follows protobuf's merge as far as JSON shows it: messages merge key by key, repeated fields are
appended, scalars replace; a zero duration (``0s``) or an empty string leaves a set field unchanged (proto3
does not merge zero scalars); setting one member of the HTTP connection manager's ``route_specifier`` or
``strip_port_mode`` oneof clears the others. Other zero scalars (``false``, ``0``) replace the value: where
the field is a plain proto3 scalar rather than a wrapper, istiod would keep the old one.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

from meshbridge.istio.config import ConfigSet, ConfigWarning
from meshbridge.istio.envoyfilter import PatchRef, filter_name, patches_for, supported
from meshbridge.istio.visibility import Proxy

_ZERO_DURATION = re.compile(r"^0+(\.0+)?s$")
_HCM_ONEOFS = (
    frozenset({"rds", "route_config", "scoped_routes"}),
    frozenset({"strip_matching_host_port", "strip_any_host_port"}),
)


def patch_context(proxy: Proxy) -> str:
    """The patch context of ``proxy``'s listeners: ``GATEWAY`` for gateways, ``SIDECAR_OUTBOUND`` for sidecars
    (the translation builds no inbound listeners)."""
    return "GATEWAY" if proxy.kind == "router" else "SIDECAR_OUTBOUND"


def apply_listener_patches(
    cfg: ConfigSet, proxy: Proxy, listeners: list[dict[str, Any]]
) -> tuple[dict[tuple[str, str, int], int], list[ConfigWarning]]:
    """Apply the ``NETWORK_FILTER`` patches of the EnvoyFilters selecting ``proxy`` to ``listeners`` (in place).

    Returns:
        How many filter chains each patch changed, by ``(namespace, name, index)`` (every patch that applies
        to the proxy is present, 0 when it changed nothing), and a warning for each patch whose context is
        the proxy's yet changed nothing.
    """
    context = patch_context(proxy)
    patches = [p for p in patches_for(cfg, proxy) if supported(p.patch)]
    hits: Counter[tuple[str, str, int]] = Counter({p.key: 0 for p in patches})
    for lst in listeners:
        port = listener_port(lst)
        ours = [p for p in patches if _context_matches(p, context) and _listener_matches(p, lst, port)]
        for chain in lst.get("filter_chains", []):
            here = [p for p in ours if _chain_matches(p, chain)]
            for p in here:
                if p.operation != "MERGE" and _insert(p, chain):
                    hits[p.key] += 1
            for f in chain.get("filters", []):
                for p in here:
                    if p.operation == "MERGE" and f.get("name") == filter_name(p.patch) and _merge(p, f):
                        hits[p.key] += 1
    warnings = [
        ConfigWarning(
            "translate",
            "EnvoyFilter",
            p.envoy_filter.metadata.namespace,
            p.envoy_filter.metadata.name,
            p.field,
            f"{p.describe()} selects {proxy.namespace}/{proxy.name} but changes none of its listeners "
            f"(ports {', '.join(str(listener_port(x)) for x in listeners) or 'none'}): istiod applies nothing",
        )
        for p in patches
        if hits[p.key] == 0 and _context_matches(p, context)
    ]
    return dict(hits), warnings


def listener_port(lst: dict[str, Any]) -> int:
    """The port istiod's listener binds in the pod: the ``_<port>`` of its name (``0.0.0.0_8443``), else its own."""
    _, _, tail = str(lst.get("name", "")).rpartition("_")
    if tail.isdigit():
        return int(tail)
    return int(lst.get("address", {}).get("socket_address", {}).get("port_value", 0))


def _context_matches(p: PatchRef, context: str) -> bool:
    return p.match.context in ("ANY", context)


def _listener_matches(p: PatchRef, lst: dict[str, Any], port: int) -> bool:
    m = p.match.listener
    if m is None:
        return True
    if m.name and m.name != lst.get("name"):
        return False
    return not m.port_number or m.port_number == port


def _chain_matches(p: PatchRef, chain: dict[str, Any]) -> bool:
    lm = p.match.listener
    m = lm.filter_chain if lm is not None else None
    if m is None:
        return True
    fcm = chain.get("filter_chain_match") or {}
    if m.name and m.name != chain.get("name", ""):
        return False
    if m.sni and m.sni not in fcm.get("server_names", []):
        return False
    if m.transport_protocol and fcm.get("transport_protocol") != m.transport_protocol:
        return False
    if m.application_protocols and not all(
        a in fcm.get("application_protocols", []) for a in m.application_protocols.split(",")
    ):
        return False
    return not m.destination_port or fcm.get("destination_port") == m.destination_port


def _insert(p: PatchRef, chain: dict[str, Any]) -> bool:
    assert p.patch.patch is not None
    value = copy.deepcopy(p.patch.patch.value)
    filters: list[dict[str, Any]] = chain.setdefault("filters", [])
    named = filter_name(p.patch)
    op = p.operation
    if op == "ADD" or (op == "INSERT_AFTER" and not named):
        filters.append(value)
        return True
    if op == "INSERT_FIRST" or (op == "INSERT_BEFORE" and not named):
        filters.insert(0, value)
        return True
    at = next((i for i, f in enumerate(filters) if f.get("name") == named), None)
    if at is None:
        return False
    filters.insert(at if op == "INSERT_BEFORE" else at + 1, value)
    return True


def _merge(p: PatchRef, f: dict[str, Any]) -> bool:
    assert p.patch.patch is not None
    value = p.patch.patch.value
    if "typed_config" not in f:
        return False  # istiod skips a filter without typed_config
    if value.get("name"):
        f["name"] = value["name"]
    patch = {k: v for k, v in (value.get("typed_config") or {}).items() if k != "@type"}
    proto_merge(f["typed_config"], patch, _HCM_ONEOFS)
    return True


def proto_merge(dst: dict[str, Any], src: dict[str, Any], oneofs: tuple[frozenset[str], ...] = ()) -> None:
    """Merge ``src`` into ``dst`` as protobuf merges messages, seen through their JSON (see the module doc)."""
    for key, value in src.items():
        for group in oneofs:
            if key in group:
                for other in group - {key}:
                    dst.pop(other, None)
        have = dst.get(key)
        if isinstance(value, dict) and isinstance(have, dict):
            proto_merge(have, value)
        elif isinstance(value, list) and isinstance(have, list):
            have.extend(copy.deepcopy(value))
        elif have is not None and (value == "" or (isinstance(value, str) and _ZERO_DURATION.match(value))):
            continue
        else:
            dst[key] = copy.deepcopy(value)
