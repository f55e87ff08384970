"""A port-forward or exec to a pod bound to a node the API server does not know (the twin's pods on the real control
plane: ``spec.nodeName`` without a Node, no kubelet): its 404 names the node, not the pod, and means what a pod on no
node means. Checked on a real API server by tests/cluster/test_controlplane.py (a twin's pod bound to node twin)."""

from __future__ import annotations

from meshbridge.kube.errors import http_error, unscheduled

POD = "port 15000 of pod istio-ingress/istio-ingressgateway-twin-0"


def test_a_404_naming_the_pods_node_says_no_kubelet_serves_it() -> None:
    e = http_error(404, "NotFound", 'pods "twin" not found', context="eks", what=POD, verb="port-forward to")
    text = str(e)
    assert "the pod exists, bound to node 'twin', which this API server does not know: no kubelet serves" in text
    assert "a retry is refused alike. Fix: check the pod's node ('kubectl --context eks get node twin')" in text
    assert "it does not exist" not in text
    assert unscheduled(e)


def test_a_404_naming_the_pod_itself_is_a_pod_that_is_gone() -> None:
    """The twin of the test above: the pod asked for is not found: no node is involved."""
    name = 'pods "istio-ingressgateway-twin-0" not found'
    e = http_error(404, "NotFound", name, context="eks", what=POD, verb="port-forward to")
    assert "it does not exist" in str(e) and "bound to node" not in str(e)
    assert not unscheduled(e)


def test_a_404_of_another_request_is_not_a_node() -> None:
    """Only a stream to a pod names its node: a Secret not found stays a Secret not found."""
    e = http_error(404, "NotFound", 'pods "twin" not found', context="eks", what="Secret a/b", verb="get")
    assert "bound to node" not in str(e) and not unscheduled(e)
