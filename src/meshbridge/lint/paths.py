"""Field paths inside Istio resources, so a finding points at the exact field to change (pure)."""

from __future__ import annotations

from collections.abc import Iterator

from meshbridge.istio.resources import ClientTLSSettings, DestinationRule, TrafficPolicy, VirtualService
from meshbridge.istio.visibility import port_tls, qualify_host


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


def tls_path(dr: DestinationRule, port: int, subset: str | None = None) -> str:
    """The path of the ``tls`` block that applies to ``port`` (and ``subset``), as
    :meth:`MergedDestinationRule.tls_for` chooses it; ``spec.trafficPolicy.tls`` when none is set."""
    found = {(p, s): path for path, _, p, s in tls_settings(dr)}
    for key in ((port, subset), (None, subset), (port, None), (None, None)):
        if key in found and (key[1] is None or subset is not None):
            return found[key]
    return "spec.trafficPolicy.tls"


def tls_for_port(dr: DestinationRule, port: int) -> ClientTLSSettings | None:
    """The top-level (not subset) TLS of ``dr`` for ``port``: port-level first, then ``trafficPolicy.tls``."""
    return port_tls(dr.spec.traffic_policy, port)


def destination_paths(vs: VirtualService, host: str, subset: str = "") -> list[str]:
    """Paths of ``spec.http[i].route[j].destination`` entries of ``vs`` that send to ``host`` (and ``subset``)."""
    out = []
    for i, http in enumerate(vs.spec.http):
        for j, rd in enumerate(http.route):
            d = rd.destination
            if qualify_host(d.host, vs.metadata.namespace).lower() == host.lower() and (d.subset or "") == subset:
                out.append(f"spec.http[{i}].route[{j}].destination")
    return out
