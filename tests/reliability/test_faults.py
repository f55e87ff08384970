"""Faults under load: a killed gateway, a missing or broken secret, a hanging backend (S16, S19)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from meshbridge.cli.common import seed_text
from meshbridge.local.curl import curl
from meshbridge.local.twin import ComponentStatus, LocalTwin
from meshbridge.local.xds import swap_secrets
from meshbridge.spec import load_bridge
from meshbridge.verify.local import served_certificates
from tests.reliability.conftest import (
    RATE,
    Load,
    error_lines,
    last_access_lines,
    p99_ms,
    record,
    sds_updates,
    sent_and_failed,
)

pytestmark = pytest.mark.reliability
EGRESS = "gke/istio-egressgateway"
INGRESS = "eks/istio-ingressgateway"
SECRET_FILE = "kubernetes___mtls-credential.yaml"
REJECTED = "sds.kubernetes_mtls-credential.update_rejected"


def _wait_ready(
    twin: LocalTwin, name: str, old_pid: int | None, timeout: float = 20, allow_missing_secrets: bool = False
) -> ComponentStatus:
    """Wait until ``name`` runs again in a new process and is ready; with ``allow_missing_secrets``, until it
    runs and lacks nothing but secrets that never came (a proxy started on purpose without one is not ready:
    see :meth:`ComponentStatus.ready_for`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = next(x for x in twin.status() if x.name == name)
        if s.ready_for(allow_missing_secrets=allow_missing_secrets) and s.pid not in (None, old_pid):
            return s
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
    record(
        "SIGKILL of the exporter gateway",
        sent=r.sent,
        failed=failed,
        errors=r.errors,
        flags=sorted(flags),
        recovered_in_s=round(recovered_in, 2),
        p99_ms=p99_ms(r),
    )


def _sds(twin: LocalTwin, proxy: str = EGRESS) -> tuple[Path, dict[str, dict[str, Any]]]:
    folder = twin.root / proxy / "sds"
    files = {
        p.name: json.loads(p.read_text()) for p in folder.iterdir() if p.is_symlink() and not p.name.startswith("..")
    }
    return folder, files


def _wait(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> float:
    """Poll ``condition`` until it holds; the seconds it took."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - t0


def _stat(twin: LocalTwin, proxy: str, name: str) -> int:
    return twin.stats(proxy).get(name, 0)


def _plaintext_seen(twin: LocalTwin) -> int:
    """Connections the exporter's TLS inspector found not to be TLS (plaintext reaching the exporter)."""
    return _stat(twin, INGRESS, "tls_inspector.tls_not_found")


def _requests_served(stats: dict[str, int]) -> int:
    """HTTP requests a gateway's listeners have decoded (``http.<stat prefix>.downstream_rq_total``)."""
    return sum(v for k, v in stats.items() if k.startswith("http.outbound_") and k.endswith(".downstream_rq_total"))


@pytest.mark.usefixtures("restore_secrets")
def test_secret_deleted_at_runtime_keeps_the_last_good_certificate(twin: LocalTwin) -> None:
    """Envoy ignores an SDS removal (the update is rejected): traffic goes on with the last good certificate."""
    folder, files = _sds(twin)
    rejected, plaintext = _stat(twin, EGRESS, REJECTED), _plaintext_seen(twin)
    with Load(twin, seconds=4) as load:
        time.sleep(1)
        swap_secrets(folder, {**files, SECRET_FILE: {"version_info": "deleted", "resources": []}})
        rejected_in = _wait(lambda: _stat(twin, EGRESS, REJECTED) > rejected, "the SDS removal being rejected")
    sent, failed = sent_and_failed(load)
    assert (sent, failed) == (4 * RATE, 0), error_lines(twin)
    assert curl(twin.app_view(), "http://lambda.external/hello-world").status == 200
    assert _plaintext_seen(twin) == plaintext
    served = served_certificates(twin)
    assert served.passed, served.message  # Envoy still holds the store's certificate
    record(
        "secret deleted at runtime (egress)",
        sent=sent,
        failed=failed,
        rejected_in_s=round(rejected_in, 2),
        plaintext_seen=_plaintext_seen(twin) - plaintext,
        p99_ms=p99_ms(load.result),
    )


def _garbage_certificate(leaf: dict[str, Any]) -> None:
    body = base64.b64encode(b"not a certificate, whatever the envelope says").decode()
    pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    leaf["tls_certificate"]["certificate_chain"]["inline_bytes"] = base64.b64encode(pem.encode()).decode()


def _key_of_another_certificate(leaf: dict[str, Any]) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    leaf["tls_certificate"]["private_key"]["inline_bytes"] = base64.b64encode(key).decode()


BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "garbage certificate PEM": _garbage_certificate,
    "key not matching the certificate": _key_of_another_certificate,
}


PEER = {EGRESS: INGRESS, INGRESS: EGRESS}


def _break(twin: LocalTwin, proxy: str, breakage: str) -> float:
    """Swap a broken copy of ``proxy``'s leaf secret into its SDS folder, and wait until Envoy rejects it;
    the seconds that took."""
    folder, files = _sds(twin, proxy)
    broken = json.loads(json.dumps(files[SECRET_FILE]))
    broken["version_info"] = "broken"
    BREAKAGES[breakage](broken["resources"][0])
    rejected = _stat(twin, proxy, REJECTED)
    swap_secrets(folder, {**files, SECRET_FILE: broken})
    return _wait(lambda: _stat(twin, proxy, REJECTED) > rejected, "the broken update being rejected")


@pytest.fixture
def restore_secrets(twin: LocalTwin) -> Iterator[None]:
    """Whatever a test did to the SDS files, the store's secrets are pushed back after it."""
    yield
    twin.refresh_secrets()


@pytest.mark.usefixtures("restore_secrets")
@pytest.mark.parametrize("proxy", [EGRESS, INGRESS])
@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_broken_secret_is_rejected_and_the_last_good_certificate_served(
    twin: LocalTwin, proxy: str, breakage: str
) -> None:
    """A broken leaf secret is rejected by Envoy; the gateway keeps the last good one (no failed request, never
    plaintext, new handshakes still succeed), and takes the good one again once it is pushed back."""
    rejected, plaintext = _stat(twin, proxy, REJECTED), _plaintext_seen(twin)
    with Load(twin, seconds=4) as load:
        time.sleep(1)
        rejected_in = _break(twin, proxy, breakage)
    sent, failed = sent_and_failed(load)
    assert (sent, failed) == (4 * RATE, 0), error_lines(twin)
    assert _plaintext_seen(twin) == plaintext
    assert _stat(twin, proxy, REJECTED) == rejected + 1
    # new handshakes, not only the connections opened before: restart the peer gateway, whose connections with
    # this one all start again; the peer accepts only a certificate its CA pins, so a 200 means the last good one
    peer = next(s for s in twin.status() if s.name == PEER[proxy])
    os.kill(peer.pid, signal.SIGKILL)  # type: ignore[arg-type]
    _wait_ready(twin, peer.name, peer.pid)
    handshake_in = _wait(
        lambda: curl(twin.app_view(), "http://lambda.external/hello-world").status == 200, "a new handshake"
    )
    assert _plaintext_seen(twin) == plaintext
    # pushed back: the store's secret replaces the broken file, is accepted, and is served
    updates = sds_updates(twin, proxy)
    assert SECRET_FILE in twin.refresh_secrets()[proxy]
    taken_in = _wait(lambda: sds_updates(twin, proxy) > updates, "the good secret being taken again")
    assert _stat(twin, proxy, REJECTED) == rejected + 1
    served = served_certificates(twin)
    assert served.passed, served.message
    with Load(twin, seconds=2) as after:
        pass
    assert sent_and_failed(after) == (2 * RATE, 0), error_lines(twin)
    record(
        f"broken secret at {proxy.split('/')[1]}: {breakage}",
        sent=sent,
        failed=failed,
        rejected_in_s=round(rejected_in, 2),
        new_handshake_after_peer_restart_in_s=round(handshake_in, 2),
        good_secret_taken_again_in_s=round(taken_in, 2),
        plaintext_seen=_plaintext_seen(twin) - plaintext,
        p99_ms=p99_ms(load.result),
    )


@pytest.mark.usefixtures("restore_secrets")
def test_verify_reports_a_gateway_that_received_a_broken_certificate(twin: LocalTwin) -> None:
    _break(twin, EGRESS, "garbage certificate PEM")
    served = served_certificates(twin, timeout=0)
    assert not served.passed and EGRESS in served.message


@pytest.mark.usefixtures("restore_secrets")
def test_missing_secret_at_start_gives_503_never_plaintext_and_recovers(twin: LocalTwin) -> None:
    folder, files = _sds(twin)
    swap_secrets(folder, {**files, SECRET_FILE: {"version_info": "deleted", "resources": []}})
    egress = next(s for s in twin.status() if s.name == EGRESS)
    os.kill(egress.pid, signal.SIGKILL)  # type: ignore[arg-type]
    restarted = _wait_ready(twin, EGRESS, egress.pid, allow_missing_secrets=True)
    # the twin tells the truth: the egress runs but is not ready, and says which secret it waits for
    assert not restarted.ready and restarted.live
    assert [(p.name, p.state) for p in restarted.problems] == [("kubernetes://mtls-credential", "missing")]
    assert "Missing SDS resources for kubernetes://mtls-credential" in restarted.problems[0].envoy
    before = twin.stats(INGRESS)
    with Load(twin, seconds=2) as missing:
        pass
    # never plaintext: the exporter's TLS inspector saw no plain-text connection, and served no request
    after = twin.stats(INGRESS)
    assert after["tls_inspector.tls_not_found"] == before["tls_inspector.tls_not_found"]
    assert _requests_served(after) == _requests_served(before)
    assert missing.result is not None and missing.result.errors == {"HTTP 503": 2 * RATE}
    r = curl(twin.app_view(), "http://lambda.external/hello-world")
    assert r.status == 503 and b"Hello World" not in r.body
    with Load(twin, seconds=4) as restored:
        time.sleep(1)
        swap_secrets(folder, files)
        recovered_in = _wait(
            lambda: curl(twin.app_view(), "http://lambda.external/hello-world").status == 200,
            "the egress recovering once the secret was back",
            timeout=10,
        )
    sent, failed = sent_and_failed(restored)
    assert _wait_ready(twin, EGRESS, None).problems == ()  # the secret taken: ready again, in the same process
    assert restored.result is not None and set(restored.result.errors) <= {"HTTP 503"}, restored.result.errors
    assert failed <= RATE * (1 + recovered_in + 0.5), f"{failed} of {sent} failed, recovered in {recovered_in:.2f} s"
    assert failed < sent  # served again before the load ended
    with Load(twin, seconds=2) as after_recovery:
        pass
    assert sent_and_failed(after_recovery) == (2 * RATE, 0), error_lines(twin)
    missing_sent, missing_failed = sent_and_failed(missing)
    record(
        "secret missing at the egress's start, then pushed",
        sent=missing_sent + sent,
        failed=missing_failed + failed,
        errors=dict(Counter(missing.result.errors) + Counter(restored.result.errors)),
        load_of_2_s_with_the_secret_missing={"sent": missing_sent, "failed": missing_failed},
        load_of_4_s_with_the_push_at_1_s={"sent": sent, "failed": failed},
        served_again_in_s=round(recovered_in, 2),
        p99_ms=p99_ms(restored.result),
    )


def test_hanging_backend_hits_the_lambda_timeout(tmp_path: Path) -> None:
    """Under load, every request to a function that never answers gets an answer (502 at the Lambda timeout,
    or the ALB's refusal once the environments are busy): none hangs, none succeeds."""
    (tmp_path / "handler.py").write_text("import time\n\ndef lambda_handler(event, context):\n    time.sleep(30)\n")
    spec = seed_text("bridge.yaml").replace("timeout: 3\n          memory", "timeout: 1\n          memory")
    (tmp_path / "bridge.yaml").write_text(spec)
    twin = LocalTwin(load_bridge(tmp_path / "bridge.yaml"), tmp_path / "bridge.yaml", tmp_path / ".meshbridge")
    try:
        twin.up()
        t0 = time.monotonic()
        r = curl(twin.app_view(), "http://lambda.external/hello-world", timeout=20)
        took = time.monotonic() - t0
        t0 = time.monotonic()
        with Load(twin, seconds=3) as load:
            pass
        load_took = time.monotonic() - t0
    finally:
        twin.down()
    assert r.status == 502  # the ALB's answer to a Lambda timeout (Sandbox.Timedout), not a hang
    assert took < 10, f"took {took:.1f} s"
    sent, failed = sent_and_failed(load)
    assert (sent, failed) == (3 * RATE, 3 * RATE)
    assert load.result is not None and set(load.result.errors) <= {"HTTP 502", "HTTP 503", "HTTP 504"}, (
        load.result.errors  # answers only: a client-side timeout (TimeoutError) would be a hang
    )
    assert load_took < 3 + 5, f"the load took {load_took:.1f} s"
    record(
        "hanging backend (Lambda timeout 1 s)",
        sent=sent,
        failed=failed,
        errors=load.result.errors,
        one_request_answered_in_s=round(took, 2),
        one_request_status=r.status,
        load_of_3_s_took_s=round(load_took, 2),
    )


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
    record("plain-text client to the exporter", plaintext_connections=1, counted_by_tls_inspector=1, answer="reset")
