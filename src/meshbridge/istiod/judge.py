"""Judge meshbridge's translation of one mesh by istiod's own (runs the oracle).

For each proxy of a mesh, :func:`judge_mesh` translates the mesh's configuration twice, with meshbridge's
translator and with istiod's (the oracle), reads both into facts (:mod:`meshbridge.envoy.compare`) and
returns the differences, each marked with the ``docs/fidelity.md`` entry that explains it, if any.

Both translations see the same world: the proxies at the oracle's pod addresses (192.0.2.0/24), no local
port remapping, the same Services, Secrets and mesh settings. The oracle is one Istio release (its line, e.g.
1.31); a mesh that declares another version is judged as if it ran the oracle's, and :class:`MeshVerdict`
says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshbridge.envoy.compare import Difference, Facts, compare, facts
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.envoy.view import EnvoyView
from meshbridge.istio.changes import has_compatibility_profile, line, minor
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.visibility import Proxy, Workload
from meshbridge.istiod.oracle import IstiodConfig, run_oracle
from meshbridge.istiod.request import build_request

NOWHERE = Path("/nonexistent/meshbridge-oracle")
"""The configuration folder of a translation that is only compared, never run."""


@dataclass(frozen=True)
class ProxyVerdict:
    """meshbridge's configuration of one proxy against istiod's.

    Attributes:
        name: ``<mesh>/<workload>``.
        facts: how many facts each side has (meshbridge, istiod).
        identical: how many of istiod's facts meshbridge has with the same value.
        differences: every fact that differs, documented or not.
        ours, istiod: the two configurations compared.
    """

    name: str
    facts: tuple[int, int]
    identical: int
    differences: list[Difference]
    ours: ProxyConfig
    istiod: IstiodConfig

    @property
    def undocumented(self) -> list[Difference]:
        """The differences no ``docs/fidelity.md`` entry explains: translator defects until proven otherwise."""
        return [d for d in self.differences if not d.documented]


@dataclass(frozen=True)
class MeshVerdict:
    """One mesh judged: the oracle's Istio line, the version the mesh declares, and each proxy's verdict."""

    mesh: str
    istio: str
    declared: str
    proxies: list[ProxyVerdict]

    @property
    def note(self) -> str:
        """A sentence when the mesh declares another Istio line than the oracle's, else ``""``."""
        if line(self.declared) == self.istio:
            return ""
        if judged_at(self.declared, self.istio):
            return (
                f"{self.mesh}: the mesh declares Istio {self.declared}; istiod {self.istio} ran with Istio's "
                f"compatibility profile for {line(self.declared)}, and meshbridge translated for {self.declared}"
            )
        return (
            f"{self.mesh}: the mesh declares Istio {self.declared}; istiod's translation is that of Istio "
            f"{self.istio}, so both sides were computed for {self.istio}"
        )


def judged_at(declared: str, oracle_line: str) -> bool:
    """Whether a mesh declaring Istio ``declared`` is judged at its own line: the oracle's line, or a line the
    oracle's compatibility profiles describe (:func:`~meshbridge.istio.changes.compatibility_env`). Otherwise both
    sides are computed for the oracle's line."""
    return line(declared) == oracle_line or has_compatibility_profile(minor(declared))


def judge_mesh(mesh: str, cfg: ConfigSet, proxies: Sequence[Proxy], binary: Path | None = None) -> MeshVerdict:
    """Compare meshbridge's and istiod's configuration of every proxy in ``proxies``.

    Raises:
        OracleUnavailable: the oracle cannot run here (no Go); the message says what is missing.
        TranslateError: istiod refused the input.
    """
    request = build_request(mesh, cfg, proxies)
    answer = run_oracle(request, binary)
    declared = cfg.settings.istio_version
    if not judged_at(declared, answer.istio):
        at_line = dataclasses.replace(cfg.settings, istio_version=f"{answer.istio}.0")
        cfg = dataclasses.replace(cfg, settings=at_line, index={})
    workloads = [
        Workload(p.proxy.name, p.proxy.namespace, p.proxy.labels, p.ip, p.service_account) for p in request.proxies
    ]
    verdicts = []
    for placed in request.proxies:
        ours = translate(cfg, placed.proxy, Placement(address=placed.ip, xds_dir=NOWHERE), workloads)
        theirs = answer.proxies[placed.name]
        mine, istiod = _facts(EnvoyView.of(ours)), _facts(EnvoyView.from_istiod(theirs))
        same = sum(1 for k, v in istiod.items() if k in mine and mine[k] == v)
        diffs = compare(mine, istiod, proxy_kind=placed.proxy.kind)
        verdicts.append(ProxyVerdict(placed.name, (len(mine), len(istiod)), same, diffs, ours, theirs))
    return MeshVerdict(mesh, answer.istio, declared, verdicts)


def _facts(view: EnvoyView) -> Facts:
    return facts(view.listeners, view.route_configs, view.clusters.values(), view.assignments, view.secret_resources())
