"""``exports[].timeout``: spec → the exporter VirtualService's route ``timeout`` → the gateway route's timeout.

Its effect on a real Envoy (504 ``UT`` instead of waiting) is ``tests/security/test_edge_limits.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.errors import SpecError
from meshbridge.render import render_bridge
from tests.builders import bridge_from, seed_bridge, seed_dict
from tests.istio_builders import proxy_config, rendered_config


def _with_timeout(value: object) -> dict[str, object]:
    d = seed_dict()
    d["spec"]["exports"][0]["timeout"] = value
    return d


@pytest.mark.parametrize(
    ("seconds", "rendered", "envoy"), [(2, "2s", "2s"), (1.5, "1.5s", "1.500s"), (0.25, "0.25s", "0.250s")]
)
def test_timeout_renders_the_route_timeout(seconds: float, rendered: str, envoy: str, tmp_path: Path) -> None:
    """The VirtualService carries Istio's duration; the route, protobuf JSON's (0, 3, 6 or 9 digits), as istiod."""
    bridge = bridge_from(_with_timeout(seconds))
    (vs,) = [d for d in render_bridge(bridge, None)["eks"] if d["kind"] == "VirtualService"]
    assert vs["spec"]["http"][0]["timeout"] == rendered
    pc = proxy_config(rendered_config("eks", bridge), "eks/istio-ingressgateway", tmp_path, bridge)
    (rc,) = pc.route_configs
    assert rc["virtual_hosts"][0]["routes"][0]["route"]["timeout"] == envoy


def test_no_timeout_keeps_istios_default(tmp_path: Path) -> None:
    (vs,) = [d for d in render_bridge(seed_bridge(), None)["eks"] if d["kind"] == "VirtualService"]
    assert "timeout" not in vs["spec"]["http"][0]
    (rc,) = proxy_config(rendered_config("eks"), "eks/istio-ingressgateway", tmp_path).route_configs
    assert rc["virtual_hosts"][0]["routes"][0]["route"]["timeout"] == "0s"


@pytest.mark.parametrize("bad", [0, -1, 3601, "5s"])
def test_timeout_must_be_positive_seconds(bad: object) -> None:
    with pytest.raises(SpecError, match=r"spec\.exports\[0\]\.timeout"):
        bridge_from(_with_timeout(bad))
