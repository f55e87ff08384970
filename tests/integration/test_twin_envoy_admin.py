"""A gateway pod that no kubelet serves (the twin on the real control plane represents its pods on node 'twin'): the
one reader of a pod's Envoy (``fetch_config_dump``) reads it at the admin address the twin recorded on the pod
(``meshbridge.io/twin-envoy-admin``) when the port-forward finds no kubelet and the API server is on this machine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshbridge.errors import KubeError
from meshbridge.kube.client import TWIN_ENVOY_ADMIN, fetch_config_dump
from meshbridge.kube.errors import KubeApiError
from meshbridge.ports import free_ports
from tests.integration.conftest import INGRESS_LABELS, INGRESS_POD, INGRESS_ROUTE, World, ready_pod, routes_dump

pytestmark = pytest.mark.integration

NO_NODE = 'pods "twin" not found'  # kube-apiserver's 404 to a port-forward when the pod's node has no Node
DUMP = routes_dump((INGRESS_ROUTE, ["lambda.external"]))


@pytest.fixture
def admin() -> Iterator[tuple[str, list[str]]]:
    """An Envoy admin stand-in on 127.0.0.1 answering ``/config_dump`` with :data:`DUMP`; the paths it was asked."""
    asked: list[str] = []

    class Admin(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps(DUMP).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Admin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def _twin_pod(world: World, admin: str | None) -> None:
    ns, name = INGRESS_POD
    pod = ready_pod(name, ns, INGRESS_LABELS)
    pod["spec"]["nodeName"] = "twin"
    if admin is not None:
        pod["metadata"]["annotations"] = {TWIN_ENVOY_ADMIN: admin}
    world.eks.seed(pod)
    world.eks.fail("GET", r"/portforward$", 404, reason="NotFound", message=NO_NODE)


def test_a_pod_no_kubelet_serves_is_read_at_the_envoy_the_twin_recorded(
    world: World, admin: tuple[str, list[str]]
) -> None:
    address, asked = admin
    _twin_pod(world, address)
    with world.eks.client() as client:
        dump = fetch_config_dump(client, *INGRESS_POD, mask="dynamic_route_configs")
    assert dump == DUMP
    assert asked == ["/config_dump?mask=dynamic_route_configs"]


def test_without_the_record_the_port_forward_error_names_the_node_without_a_kubelet(world: World) -> None:
    _twin_pod(world, None)
    with world.eks.client() as client, pytest.raises(KubeApiError) as e:
        fetch_config_dump(client, *INGRESS_POD)
    message = " ".join(str(e.value).split())
    assert f"port-forward to port 15000 of pod {INGRESS_POD[0]}/{INGRESS_POD[1]} failed: 404 NotFound" in message
    assert "bound to node 'twin'" in message and "no kubelet serves the pod" in message


def test_a_recorded_envoy_that_does_not_answer_says_whose_it_is_and_the_fix(world: World) -> None:
    (port,) = free_ports(1)
    _twin_pod(world, f"127.0.0.1:{port}")
    with world.eks.client() as client, pytest.raises(KubeError) as e:
        fetch_config_dump(client, *INGRESS_POD, timeout=5)
    message = " ".join(str(e.value).split())
    assert f"pod {INGRESS_POD[0]}/{INGRESS_POD[1]}: its Envoy admin at 127.0.0.1:{port}" in message
    assert "without a kubelet" in message and "Fix: is the twin up? 'meshbridge local status'" in message


def test_an_api_server_on_another_machine_is_never_taken_for_the_twins() -> None:
    """The record is read only when the API server is on a loopback address (the twin's own): the pods of a server
    elsewhere run on another machine, where 127.0.0.1 is not theirs (nothing is asked of that server)."""
    from kubernetes.client import Configuration

    from meshbridge.kube.client import KubeClient, _twin_admin

    cfg = Configuration()
    cfg.host = "https://10.255.255.1:6443"
    with KubeClient.from_configuration(cfg, "remote", request_timeout=1.0) as client:
        assert _twin_admin(client, *INGRESS_POD) is None
