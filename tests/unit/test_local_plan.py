"""The local twin's plan (pure): which proxies it starts, and why one the spec declares is left out."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from meshbridge.local.plan import plan_topology
from tests.builders import bridge_from, seed_dict


def test_a_mesh_that_imports_nothing_starts_no_egress_gateway_and_the_plan_says_why(tmp_path: Path) -> None:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["egressGateway"] = copy.deepcopy(d["spec"]["meshes"]["gke"]["egressGateway"])
    plan = plan_topology(bridge_from(d), tmp_path, "127.0.9.0/24", privileged=False)
    assert "eks/istio-egressgateway" not in plan.proxies and "eks/istio-egressgateway" not in plan.addresses
    assert "gke/istio-egressgateway" in plan.proxies  # negative twin: the importer's egress gateway runs
    [note] = plan.notes
    assert note.startswith("eks/istio-egressgateway (spec.meshes.eks.egressGateway) is not started: mesh eks imports")
    assert "Fix: nothing to do for the twin; remove spec.meshes.eks.egressGateway" in note
    # negative twin: once eks imports an export, its egress gateway starts and nothing is said
    back = {**copy.deepcopy(d["spec"]["exports"][0]), "name": "back", "host": "back.external"}
    d["spec"]["exports"].append({**back, "from": "gke", "to": ["eks"]})
    d["spec"]["meshes"]["gke"]["ingressGateway"] = copy.deepcopy(d["spec"]["meshes"]["eks"]["ingressGateway"])
    d["spec"]["meshes"]["gke"]["ingressGateway"]["address"] = "ingress.gke.example.com"
    d["spec"]["meshes"]["eks"]["apps"] = [{"name": "sleep", "namespace": "sleep", "labels": {"app": "sleep"}}]
    plan = plan_topology(bridge_from(d), tmp_path, "127.0.9.0/24", privileged=False)
    assert "eks/istio-egressgateway" in plan.proxies and plan.notes == []


def test_the_seed_leaves_nothing_out(tmp_path: Path) -> None:
    plan = plan_topology(bridge_from(seed_dict()), tmp_path, "127.0.9.0/24", privileged=False)
    assert list(plan.proxies) == ["eks/istio-ingressgateway", "gke/istio-egressgateway", "gke/sleep"]
    assert plan.notes == []


def _second_export_on_the_seeds_backend(handler: str) -> dict[str, Any]:
    d = seed_dict()
    second = copy.deepcopy(d["spec"]["exports"][0])
    second.update(name="orders", host="orders.external")
    second["backend"]["local"]["handler"] = handler
    d["spec"]["exports"].append(second)
    return d


def test_an_export_whose_lambda_the_twin_does_not_run_is_named(tmp_path: Path) -> None:
    """Two exports on one backend host with different handlers: the first's ALB and Lambda answer both, and the
    plan says so with the fix."""
    plan = plan_topology(
        bridge_from(_second_export_on_the_seeds_backend("orders.py:handler")), tmp_path, "127.0.9.0/24", False
    )
    [note] = plan.notes
    assert note.startswith("export 'orders': its backend.local is not run: it shares backend host")
    assert "with export 'lambda', whose emulated ALB and Lambda answer both" in note
    assert note.endswith("Fix: give 'orders' a backend host of its own to run its Lambda")


def test_exports_on_one_backend_with_the_same_lambda_say_nothing(tmp_path: Path) -> None:
    """The twin of the test above: the same handler behind both exports is what the twin runs."""
    d = _second_export_on_the_seeds_backend("handler.py:lambda_handler")
    assert plan_topology(bridge_from(d), tmp_path, "127.0.9.0/24", False).notes == []
