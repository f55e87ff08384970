"""Field paths inside Istio resources, so a finding points at the exact field to change (pure)."""

from __future__ import annotations

from meshbridge.istio.resources import ClientTLSSettings, DestinationRule, TrafficPolicy, VirtualService
from meshbridge.istio.visibility import port_tls, qualify_host


def tls_path(dr: DestinationRule, port: int, subset: str | None = None) -> str:
    """The path of the ``tls`` block that applies to ``port`` (and ``subset``), as
    :meth:`MergedDestinationRule.tls_for` chooses it; ``spec.trafficPolicy.tls`` when none is set.

    A port-level setting for ``port`` replaces the policy above it whole (istiod's ``MergeTrafficPolicy``): when
    it sets no ``tls``, the path is that entry's own (``spec.trafficPolicy.portLevelSettings[i]``), where the
    missing ``tls`` goes, not the ``tls`` above it that does not apply.
    """
    top = _policy_tls_path(dr.spec.traffic_policy, "spec.trafficPolicy", port)
    for i, sub in enumerate(dr.spec.subsets):
        if subset is not None and sub.name == subset and sub.traffic_policy is not None:
            at = f"spec.subsets[{i}].trafficPolicy"
            mine = _policy_tls_path(sub.traffic_policy, at, port)
            if "portLevelSettings[" in mine or sub.traffic_policy.tls is not None:
                return mine
    return top


def _policy_tls_path(policy: TrafficPolicy | None, at: str, port: int) -> str:
    """``at``'s port-level entry for ``port`` (its ``tls`` if set), else ``at``'s ``tls``."""
    for i, pl in enumerate(policy.port_level_settings if policy is not None else ()):
        if pl.port is not None and pl.port.number == port:
            return f"{at}.portLevelSettings[{i}]" + (".tls" if pl.tls is not None else "")
    return f"{at}.tls"


def misported_tls(dr: DestinationRule, port: int, subset: str | None = None) -> tuple[str, int] | None:
    """(path, number) of the first ``portLevelSettings`` entry of ``dr`` whose ``tls`` is for another port than
    ``port``, when no ``tls`` applies to ``port`` (:func:`tls_path` finds no entry for it and the policy above sets
    none): the port that entry names is likely the one the user meant; ``None`` otherwise."""
    policies = [("spec.trafficPolicy", dr.spec.traffic_policy)]
    policies += [
        (f"spec.subsets[{i}].trafficPolicy", s.traffic_policy)
        for i, s in enumerate(dr.spec.subsets)
        if subset is not None and s.name == subset
    ]
    if not tls_path(dr, port, subset).endswith("trafficPolicy.tls"):
        return None  # a port-level entry for this port decides it
    for at, policy in policies:
        if policy is None:
            continue
        if policy.tls is not None:
            return None
        for i, pl in enumerate(policy.port_level_settings):
            if pl.tls is not None and pl.port is not None and pl.port.number not in (None, port):
                return f"{at}.portLevelSettings[{i}]", pl.port.number
    return None


def replaced_tls(path: str) -> bool:
    """Whether ``path`` (from :func:`tls_path`) is a port-level entry without ``tls``, which replaced the ``tls``
    above it: the port gets no TLS however that one is set."""
    return "portLevelSettings[" in path and not path.endswith(".tls")


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
