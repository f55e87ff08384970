"""Faults under load: a killed gateway, a missing or broken secret, a hanging backend (S16, S19)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from meshbridge.cli.init_cmd import seed_text
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.local.xds import swap_secrets
from meshbridge.spec import load_bridge
from tests.reliability.conftest import Load, last_access_lines

pytestmark = pytest.mark.reliability
EGRESS = "gke/istio-egressgateway"
SECRET_FILE = "kubernetes___mtls-credential.yaml"


def _wait_ready(twin: LocalTwin, name: str, old_pid: int | None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = next(x for x in twin.status() if x.name == name)
        if s.ready and s.pid not in (None, old_pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not come back within {timeout} s")


def test_killed_exporter_gateway_errors_only_during_the_outage(twin: LocalTwin) -> None:
    victim = next(s for s in twin.status() if s.name == "eks/istio-ingressgateway")
    with Load(twin, seconds=8) as load:
        time.sleep(1.5)
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        _wait_ready(twin, victim.name, victim.pid)
        recovered_in = time.monotonic() - killed_at
    r = load.result
    assert r is not None
    failed = r.sent - r.ok
    assert failed > 0, "the outage must be visible"
    assert failed <= 50 * (recovered_in + 1.0), f"{failed} failures for a {recovered_in:.2f} s outage"
    flags = {f for line in last_access_lines(twin, EGRESS) if '" 503 ' in line for f in line.split()[5].split(",")}
    assert flags & {"UF", "URX", "UH", "UC"}, flags  # visible with Envoy's response flags
    assert curl(twin.app_view(), "http://lambda.external/hello-world").status == 200


def _requests_served(stats: dict[str, int]) -> int:
    """HTTP requests a gateway's listeners have decoded (``http.<stat prefix>.downstream_rq_total``)."""
    return sum(v for k, v in stats.items() if k.startswith("http.outbound_") and k.endswith(".downstream_rq_total"))


def _sds(twin: LocalTwin) -> tuple[Path, dict[str, dict[str, object]]]:
    folder = twin.root / EGRESS / "sds"
    files = {
        p.name: json.loads(p.read_text()) for p in folder.iterdir() if p.is_symlink() and not p.name.startswith("..")
    }
    return folder, files


def test_secret_deleted_at_runtime_keeps_the_last_good_certificate(twin: LocalTwin) -> None:
    """Envoy ignores an SDS removal and rejects a broken update: traffic goes on with the last good cert."""
    folder, files = _sds(twin)
    rejected = twin.stats(EGRESS).get("sds.kubernetes_mtls-credential.update_rejected", 0)
    swap_secrets(folder, {**files, SECRET_FILE: {"version_info": "deleted", "resources": []}})
    deadline = time.monotonic() + 5
    while (
        twin.stats(EGRESS).get("sds.kubernetes_mtls-credential.update_rejected", 0) == rejected
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert twin.stats(EGRESS)["sds.kubernetes_mtls-credential.update_rejected"] > rejected
    assert curl(twin.app_view(), "http://lambda.external/hello-world").status == 200
    swap_secrets(folder, files)


def test_missing_secret_at_start_gives_503_never_plaintext_and_recovers(twin: LocalTwin) -> None:
    folder, files = _sds(twin)
    swap_secrets(folder, {**files, SECRET_FILE: {"version_info": "deleted", "resources": []}})
    egress = next(s for s in twin.status() if s.name == EGRESS)
    os.kill(egress.pid, signal.SIGKILL)  # type: ignore[arg-type]
    _wait_ready(twin, EGRESS, egress.pid)
    before = twin.stats("eks/istio-ingressgateway")
    r = curl(twin.app_view(), "http://lambda.external/hello-world")
    assert r.status == 503 and b"Hello World" not in r.body
    # never plaintext: the exporter's TLS inspector saw no plain-text connection, and served no request
    after = twin.stats("eks/istio-ingressgateway")
    assert after["tls_inspector.tls_not_found"] == before["tls_inspector.tls_not_found"]
    assert _requests_served(after) == _requests_served(before)
    swap_secrets(folder, files)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if curl(twin.app_view(), "http://lambda.external/hello-world").status == 200:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the egress did not recover once the secret was back")


def test_hanging_backend_hits_the_lambda_timeout(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("import time\n\ndef lambda_handler(event, context):\n    time.sleep(30)\n")
    spec = seed_text("bridge.yaml").replace("timeout: 3\n          memory", "timeout: 1\n          memory")
    (tmp_path / "bridge.yaml").write_text(spec)
    twin = LocalTwin(load_bridge(tmp_path / "bridge.yaml"), tmp_path / "bridge.yaml", tmp_path / ".meshbridge")
    try:
        twin.up()
        t0 = time.monotonic()
        r = curl(twin.app_view(), "http://lambda.external/hello-world", timeout=20)
        took = time.monotonic() - t0
    finally:
        twin.down()
    assert r.status == 502  # the ALB's answer to a Lambda timeout (Sandbox.Timedout), not a hang
    assert took < 10, f"took {took:.1f} s"


def test_a_plain_text_client_is_seen_by_the_exporters_tls_inspector(twin: LocalTwin) -> None:
    """The negative twin of 'never plaintext': plain HTTP to the exporter is counted, and reset."""
    import socket

    before = twin.stats("eks/istio-ingressgateway")["tls_inspector.tls_not_found"]
    ip = twin.plan()["proxies"]["eks/istio-ingressgateway"]["address"]
    with socket.create_connection((ip, 8443), timeout=5) as s:
        s.sendall(b"GET /hello-world HTTP/1.1\r\nHost: lambda.external\r\n\r\n")
        with contextlib.suppress(OSError):
            assert s.recv(100) == b""
    deadline = time.monotonic() + 5
    while (
        twin.stats("eks/istio-ingressgateway")["tls_inspector.tls_not_found"] == before and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert twin.stats("eks/istio-ingressgateway")["tls_inspector.tls_not_found"] == before + 1
