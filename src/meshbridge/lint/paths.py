"""Field paths inside Istio resources, so a finding points at the exact field to change (pure)."""

from __future__ import annotations

from meshbridge.istio.resources import ClientTLSSettings, DestinationRule, VirtualService
from meshbridge.istio.visibility import port_tls, qualify_host, tls_settings


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
