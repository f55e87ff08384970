"""status's judgement of a Namespace being deleted (pure): by its phase or its deletionTimestamp."""

from __future__ import annotations

import pytest

from meshbridge.kube.errors import namespace_terminating
from meshbridge.kube.status import is_terminating


@pytest.mark.parametrize(
    "namespace",
    [
        {"metadata": {"name": "istio-ingress"}, "status": {"phase": "Terminating"}},
        {"metadata": {"name": "istio-ingress", "deletionTimestamp": "2026-12-06T23:00:00Z"}},
    ],
)
def test_a_namespace_with_phase_terminating_or_a_deletion_timestamp_is_terminating(namespace: dict) -> None:
    assert is_terminating(namespace)


@pytest.mark.parametrize(
    "namespace",
    [
        {"metadata": {"name": "istio-ingress"}, "status": {"phase": "Active"}},
        {"metadata": {"name": "istio-ingress"}},
    ],
)
def test_a_live_namespace_is_not_terminating(namespace: dict) -> None:
    assert not is_terminating(namespace)


def test_the_line_names_the_namespace_the_context_and_the_fix() -> None:
    assert namespace_terminating("istio-ingress", context="eks") == (
        "namespace istio-ingress is being deleted (Terminating): the objects in it go with it, and the API server "
        "refuses new ones. Fix: wait until 'kubectl --context eks get namespace istio-ingress' no longer finds it (a "
        "namespace stuck in Terminating waits on its finalizers and on the objects left in it), re-create what it "
        "held (the Istio gateway), then re-run; or use another namespace in the bridge spec"
    )
