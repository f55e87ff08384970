"""How the client behaves toward a server that is busy, failing, chatty or silent: bounded retries that honour
Retry-After on 429 and 5xx, the server's Warning headers shown, and a bound on every stream handshake.

The same behaviours are checked on real API servers where a real server can be made to show them: a 504 while etcd
is paused, warnings from a CRD's schema, port-forward refused (tests/cluster/test_real_server_defects.py), a 429
from API Priority and Fairness (tests/cluster/test_load.py); a server that never answers a handshake is played
here."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.kube.client import RETRIES, KubeClient, retry_pause, warning_texts
from meshbridge.kube.errors import KubeApiError
from tests.integration.conftest import World
from tests.integration.fakeapi import FakeApiServer

pytestmark = pytest.mark.integration

GW = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "ns"}}


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    s = FakeApiServer("busy").start()
    try:
        yield s
    finally:
        s.stop()


def test_429_is_retried_after_the_servers_retry_after(server: FakeApiServer) -> None:
    lines: list[str] = []
    server.fail("PATCH", "/gateways/", 429, message="too many requests", times=2, headers={"Retry-After": "3"})
    client = server.client("busy", notify=lines.append)
    assert client.apply(GW)["metadata"]["name"] == "gw"
    assert server.pauses == [3.0, 3.0]
    assert len([c for c in server.calls if c.method == "PATCH"]) == 3
    assert lines == [
        f"cluster 'busy': apply Gateway ns/gw: 429 TooManyRequests: too many requests; retrying in 3 s "
        f"(retry {n} of {RETRIES})"
        for n in (1, 2)
    ]


def test_5xx_is_retried_a_bounded_number_of_times_then_named(server: FakeApiServer) -> None:
    server.fail("GET", "/version", 503, message="etcd is down")
    with pytest.raises(KubeApiError) as e:
        server.client("down").version()
    assert server.pauses == [0.5, 1.0, 2.0, 4.0]  # a doubling pause without Retry-After
    assert e.value.status == 503 and f"({RETRIES + 1} attempts: the first and {RETRIES} retries)" in str(e.value)
    assert "etcd is down" in str(e.value)


@pytest.mark.parametrize("status", [429, 503])
def test_a_get_answered_with_retry_after_is_sent_once_per_attempt(server: FakeApiServer, status: int) -> None:
    """Only the client's own loop retries: urllib3's pool would resend a GET answered 429 or 503 with Retry-After
    3 times itself, unannounced, inside each attempt (20 GETs for 5 attempts). The twin: the PATCH of the first
    test, which urllib3 never resends, is sent as often."""
    server.fail("GET", "/version", status, headers={"Retry-After": "0"})
    with pytest.raises(KubeApiError) as e:
        server.client().version()
    assert len([c for c in server.calls if c.path == "/version"]) == RETRIES + 1
    assert server.pauses == [0.0] * RETRIES and e.value.status == status


def test_a_500_is_retried_only_when_the_server_says_when(server: FakeApiServer) -> None:
    server.fail("GET", "/version", 500, message="failed to create typed patch object", times=1)
    with pytest.raises(KubeApiError) as e:
        server.client().version()
    assert e.value.status == 500 and server.pauses == [] and "retries" not in str(e.value)
    server.fail("GET", "/version", 500, message="storage is busy", times=1, headers={"Retry-After": "1"})
    assert server.client().version()["gitVersion"] == "v1.30.0" and server.pauses == [1.0]


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_other_errors_are_not_retried(server: FakeApiServer, status: int) -> None:
    server.fail("PATCH", "/gateways/", status)
    with pytest.raises(KubeApiError) as e:
        server.client().apply(GW)
    assert e.value.status == status and server.pauses == []
    assert len([c for c in server.calls if c.method == "PATCH"]) == 1


def test_retry_pauses_are_bounded() -> None:
    assert retry_pause("120", 1) == 10.0  # a Retry-After beyond the cap waits the cap
    assert retry_pause("Wed, 21 Oct 2015 07:28:00 GMT", 3) == 2.0  # a date: the doubling pause
    assert retry_pause(None, 1) == 0.5 and retry_pause("0", 2) == 0.0


def test_warning_headers_are_parsed_as_the_api_server_writes_them() -> None:
    assert warning_texts('299 - "unknown field \\"spec.bogus\\""') == ['unknown field "spec.bogus"']
    two = '299 - "networking.istio.io/v1alpha3 is deprecated", 299 - "second"'
    assert warning_texts(two) == ["networking.istio.io/v1alpha3 is deprecated", "second"]
    assert warning_texts("not a warning in form") == ["not a warning in form"]


def test_the_servers_warnings_are_shown_by_the_cli(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.eks.warnings.append('299 - "unknown field \\"spec.servers[0].bogus\\""')
    from tests.builders import seed_dict

    spec = seed_dict()
    del spec["spec"]["meshes"]["eks"]["ingressGateway"]["address"]
    bridge = tmp_path / "bridge.yaml"
    bridge.write_text(yaml.safe_dump(spec))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": n, "cluster": {"server": s.url}} for n, s in (("eks", world.eks), ("gke", world.gke))
                ],
                "users": [{"name": "admin", "user": {"token": "t"}}],
                "contexts": [{"name": n, "context": {"cluster": n, "user": "admin"}} for n in ("eks", "gke")],
            }
        )
    )
    code = main(
        [
            *("status", "-f", str(bridge), "--kubeconfig", str(kubeconfig)),
            *("--context", "eks=eks", "--context", "gke=gke", "--no-secrets"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1  # nothing applied yet
    assert (
        "cluster 'eks': get the API server version (/version): warning: unknown field \"spec.servers[0].bogus\"" in err
    )
    assert "cluster 'gke'" not in err.split("warning:")[0].rsplit("\n", 1)[-1]


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never answers (a stuck proxy, a half-open load balancer)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        t.join()
        for s in held:
            s.close()
        sock.close()


def test_every_stream_handshake_is_bounded_by_the_request_timeout(silent: str) -> None:
    from kubernetes.client import Configuration

    conf = Configuration()
    conf.host = silent
    client = KubeClient.from_configuration(conf, "silent", request_timeout=1.0, retries=0)
    for call in (
        lambda: client.http_get("istio-ingress", "gw-0", 15000, "/config_dump"),
        lambda: client.exec("sleep", "sleep-0", ["true"], timeout=30),
    ):
        start = time.monotonic()
        with pytest.raises(KubeApiError) as e:
            call()
        took = time.monotonic() - start
        assert took < 5, took  # without a bound the official client waits forever here
        assert e.value.status == 0 and "'silent'" in str(e.value)
        assert e.value.reason == "Timeout" and "no answer to the WebSocket handshake within 1 s" in str(e.value)
