"""status counts as READY only gateway pods bound to a node: a pod marked Ready on no node (``make clusters-up``'s
stand-in, no kubelet) serves nothing, as apply and verify find ('not scheduled')."""

from __future__ import annotations

from meshbridge.kube import cluster_status, preflight
from tests.integration.conftest import INGRESS_LABELS, INGRESS_POD, World, ready_pod


def test_a_ready_pod_on_no_node_is_not_ready_and_status_says_why(world: World) -> None:
    ns, name = INGRESS_POD
    pod = ready_pod(name, ns, INGRESS_LABELS)
    del pod["spec"]["nodeName"]
    world.eks.seed(pod)
    (eks,) = [
        s for s in cluster_status(world.bridge, world.clients(), credentials=world.credentials) if s.mesh == "eks"
    ]
    ingress = eks.gateways[0]
    assert (ingress.ready, ingress.total) == (0, 1) and not eks.healthy
    (note,) = [n for n in eks.notes if name in n]
    assert "marked Ready but on no node (spec.nodeName empty)" in note and "apply there with --no-wait" in note
    # preflight says the same of them, and lets apply run (--no-wait): Ready, but on no node
    (pods,) = [
        f for f in preflight(world.bridge, world.clients()).findings if f.check == "GatewayPods" and f.mesh == "eks"
    ]
    assert pods.ok and "1/1 ingress gateway pod(s) Ready" in pods.message
    assert (
        "1 of them on no node (spec.nodeName empty)" in pods.message and "status counts them not READY" in pods.message
    )


def test_the_same_pod_on_a_node_is_ready_and_has_no_note(world: World) -> None:
    (eks,) = [
        s for s in cluster_status(world.bridge, world.clients(), credentials=world.credentials) if s.mesh == "eks"
    ]
    assert (eks.gateways[0].ready, eks.gateways[0].total) == (1, 1)
    assert not [n for n in eks.notes if "no node" in n]
    assert not [f for f in preflight(world.bridge, world.clients()).findings if "no node" in f.message]
