"""local curl resolves a name as a pod does: with ndots:5, the pod's search domains first (no Envoy here)."""

from __future__ import annotations

import pytest

from meshbridge.local.curl import AppView, CurlError, resolve

AGENT = {"hw.sleep.svc.cluster.local": ["240.240.0.2"], "lambda.external": ["240.240.0.1"]}


def _view(namespace: str | None) -> AppView:
    """An app of ``namespace`` whose agent knows AGENT; its DNS server (port 9) does not answer."""
    return AppView("c1/sleep", "127.0.0.2", 0, AGENT, ("127.0.0.1", 9), (5000,), namespace=namespace)


def test_a_short_name_finds_the_serviceentry_host_of_the_pods_namespace() -> None:
    trace: list[str] = []
    assert resolve(_view("sleep"), "hw", trace) == ("240.240.0.2", True)
    assert trace == [
        "* istio-agent DNS: hw.sleep.svc.cluster.local → 240.240.0.2 (ServiceEntry, answered by the sidecar's DNS "
        "proxy; hw through the pod's DNS search path)"
    ]
    assert resolve(_view("sleep"), "hw.sleep", []) == ("240.240.0.2", True)  # <name>.<ns> + svc.cluster.local
    assert resolve(_view("sleep"), "lambda.external", []) == ("240.240.0.1", True)  # a name as it stands, last


@pytest.mark.parametrize("namespace", ["default", None])
def test_negative_twin_from_another_namespace_the_short_name_does_not_resolve(namespace: str | None) -> None:
    with pytest.raises(CurlError) as e:
        resolve(_view(namespace), "hw", [])
    assert e.value.code == 6 and "Could not resolve host: hw" in str(e.value)
