"""A translated proxy of one mesh, as lint's checks read it (pure).

Checks about what a proxy actually gets (which clusters exist, which TLS a cluster originates, which secret is
served, which filter chain an SNI selects) read the translation through the one reader of Envoy configuration,
:class:`meshbridge.envoy.view.EnvoyView`, and ask :mod:`meshbridge.envoy.simulate` how Envoy would match a
request; nothing here guesses in parallel. A :class:`ProxyView` adds who the proxy is (its mesh and
:class:`~meshbridge.istio.visibility.Proxy`) and a memo for what checks derive once per proxy.
"""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import EnvoyView
from meshbridge.istio.visibility import Proxy


class ProxyView(EnvoyView):
    """The Envoy configuration of one translated proxy of ``mesh``.

    Attributes:
        mesh: the mesh's name.
        proxy: the proxy.
        memo: derived facts other modules compute once per proxy, by ``(what, key)``.
    """

    def __init__(self, mesh: str, pc: ProxyConfig) -> None:
        view = EnvoyView.of(pc)
        super().__init__(
            view.listeners, view.clusters.values(), view.route_configs, view.assignments, view.secret_entries
        )
        self.mesh = mesh
        self.proxy: Proxy = pc.proxy
        self.memo: dict[tuple[str, str], Any] = {}

    @property
    def name(self) -> str:
        """``<mesh>/<workload>``."""
        return f"{self.mesh}/{self.proxy.name}"
