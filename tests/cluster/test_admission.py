"""A real validating admission webhook in front of the local real API server (``-m cluster``, local servers only).

The webhook is served here, over HTTPS with a certificate of its own CA, and registered on the eks cluster as
istiod registers its own (a ``ValidatingWebhookConfiguration`` whose webhook is named ``validation.istio.io``,
``failurePolicy: Fail``, ``sideEffects: None``, so dry runs are judged too); it answers as istiod does (a
``Status`` with a message and no code). The API server, not this file, turns its answer into the HTTP answer
meshbridge handles; the first test measures that answer.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshbridge.kube.envtest import Cluster, apply_raw
from meshbridge.pki import issue_ca
from tests.cluster.conftest import Target
from tests.cluster.support import Cli, get, paths

pytestmark = pytest.mark.cluster

Doc = dict[str, Any]
WEBHOOK = "validation.istio.io"
CONFIGURATIONS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
CONFIG_PATH = f"{CONFIGURATIONS}/meshbridge-test-istio-validator"
UNREACHABLE_PATH = f"{CONFIGURATIONS}/meshbridge-test-istio-validator-unreachable"
WHY = "configuration is invalid: http route 0: weight 150 is more than 100 (the test webhook's rule)"
DENIAL = f'admission webhook "{WEBHOOK}" denied the request: {WHY}'
VS = "/apis/networking.istio.io/v1/namespaces/istio-ingress/virtualservices"
PROBE: Doc = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "webhook-probe", "namespace": "istio-ingress"},
    "spec": {"hosts": ["probe.example"], "http": [{"route": [{"destination": {"host": "probe.example"}}]}]},
}
Decide = Callable[[Doc], "str | None"]
PROBES = 400
"""Dry runs sent until the API server has picked the webhook's configuration up (it takes a few, ~50 ms apart)."""


def allow(_: Doc) -> str | None:
    return None


def deny(name: str, *, writes_only: bool = False) -> Decide:
    """Deny VirtualServices named ``name`` with istiod's kind of message (only real writes, if ``writes_only``)."""

    def decide(request: Doc) -> str | None:
        hit = request["kind"]["kind"] == "VirtualService" and request.get("name") == name
        return WHY if hit and not (writes_only and request.get("dryRun")) else None

    return decide


class Webhook:
    """An HTTPS validating webhook on 127.0.0.1 (a thread); ``decide`` judges, ``reviews`` records every request.

    Args:
        folder: where its certificate and key are written (the key 0600, never printed).
    """

    def __init__(self, folder: Path) -> None:
        ca = issue_ca("meshbridge test webhook CA", days=1)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test webhook")]))
            .issuer_name(ca.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(ca.private_key(), hashes.SHA256())
        )
        crt, pem_key = folder / "webhook.crt", folder / "webhook.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem_key.touch(mode=0o600)
        pem_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.ca_pem = ca.cert_pem
        self.decide: Decide = allow
        self.reviews: list[Doc] = []
        self._lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(crt, pem_key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def review(self, request: Doc) -> Doc:
        """The AdmissionReview answer to ``request``, as istiod writes it (``Status`` with a message, no code)."""
        with self._lock:
            self.reviews.append(request)
        why = self.decide(request)
        response: Doc = {"uid": request["uid"], "allowed": why is None}
        if why is not None:
            response["status"] = {"message": why}
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}

    def of(self, name: str) -> list[Doc]:
        """The requests the webhook was asked about for objects named ``name``, in order."""
        with self._lock:
            return [r for r in self.reviews if r.get("name") == name]

    def configuration(self, *, port: int | None = None, name: str = WEBHOOK) -> Doc:
        """Its ``ValidatingWebhookConfiguration``: every Istio networking kind, created or updated, sent to the
        webhook (or to ``port``, where nothing need listen), under the webhook name ``name``."""
        rule = {
            "operations": ["CREATE", "UPDATE"],
            "apiGroups": ["networking.istio.io"],
            "apiVersions": ["*"],
            "resources": ["*"],
        }
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": CONFIG_PATH.rsplit("/", 1)[1] if port is None else UNREACHABLE_PATH.rsplit("/", 1)[1]},
            "webhooks": [
                {
                    "name": name,
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{port or self.port}/validate",
                        "caBundle": base64.b64encode(self.ca_pem).decode(),
                    },
                    "rules": [rule],
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                }
            ],
        }


def _handler(webhook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = json.dumps(webhook.review(json.loads(body)["request"])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def raw_apply(cluster: Cluster, doc: Doc) -> tuple[int, Doc]:
    """A server-side apply dry run of ``doc`` as the admin, outside meshbridge: the HTTP status and the body."""
    path = f"{VS}/{doc['metadata']['name']}?fieldManager=probe&dryRun=All"
    request = urllib.request.Request(
        cluster.url + path,
        data=json.dumps(doc).encode(),
        method="PATCH",
        headers={
            "Authorization": f"Bearer {cluster.admin_token}",
            "Content-Type": "application/apply-patch+yaml",
            "Accept": "application/json",
        },
    )
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return int(e.code), json.loads(e.read())


def probe_until(cluster: Cluster, done: Callable[[tuple[int, Doc]], bool]) -> tuple[int, Doc]:
    """Dry runs of :data:`PROBE` until ``done`` holds for an answer, which is returned (the API server picks webhook
    configurations up from an informer, a moment after they change)."""
    for _ in range(PROBES):
        answer = raw_apply(cluster, PROBE)
        if done(answer):
            return answer
        time.sleep(0.05)
    raise AssertionError(f"the API server's answer never changed as expected; the last: {answer}")


@pytest.fixture(scope="module")
def webhook(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    """The webhook, registered on the eks cluster until the module ends (allowing everything unless told)."""
    if target.run is None:
        pytest.skip("needs the clusters this suite starts (MESHBRIDGE_CONTEXTS is set)")
    hook = Webhook(tmp_path_factory.mktemp("webhook"))
    hook.start()
    cluster = target.run["eks"]
    try:
        with cluster.client() as admin:
            apply_raw(admin, CONFIG_PATH, hook.configuration())
        probe_until(cluster, lambda _: bool(hook.of("webhook-probe")))
        yield hook
    finally:
        with cluster.client() as admin:
            admin.request("DELETE", CONFIG_PATH, what="the test webhook's configuration", verb="delete")
        hook.stop()


def test_the_api_server_answers_a_webhooks_denial_400_with_its_name_and_message(
    webhook: Webhook, target: Target
) -> None:
    """Measured, not assumed: what meshbridge handles is this answer (no reason: the webhook gave none)."""
    assert target.run is not None
    webhook.decide = deny("webhook-probe")
    code, body = raw_apply(target.run["eks"], PROBE)
    assert code == 400
    assert {k: body.get(k) for k in ("kind", "status", "code", "reason")} == {
        "kind": "Status",
        "status": "Failure",
        "code": 400,
        "reason": None,
    }
    assert body["message"] == f'admission webhook "{WEBHOOK}" denied the request: {WHY}'
    # negative twin: the same request, allowed
    webhook.decide = allow
    assert raw_apply(target.run["eks"], PROBE)[0] == 201  # created (a dry run: nothing stored)


def test_plan_shows_a_denial_with_the_webhook_the_object_and_the_fix_and_asks_once(
    cli: Cli, webhook: Webhook, target: Target
) -> None:
    """istiod judges dry runs too, so plan meets the denial; nothing is written, and apply (which plans first)
    stops there as well."""
    assert target.run is not None
    webhook.decide = deny("vs-lambda")
    asked = len(webhook.of("vs-lambda"))
    code, _, err = cli("plan")
    text = " ".join(err.split())
    assert code == 2
    assert (
        "cluster 'eks': apply (dry run) VirtualService istio-ingress/vs-lambda failed: 400 Bad Request: " + DENIAL
    ) in text
    assert f"the admission webhook '{WEBHOOK}' denied VirtualService istio-ingress/vs-lambda" in text
    assert "Fix: correct what the webhook's message names in the bridge spec" in text
    assert "'kubectl --context eks get validatingwebhookconfigurations'" in text
    assert "Traceback" not in err and "grant the verb" not in text
    assert [r["dryRun"] for r in webhook.of("vs-lambda")[asked:]] == [True]  # asked once: a denial is not retried
    code, _, err = cli("apply", "--no-wait")
    assert code == 2 and DENIAL in " ".join(err.split())
    assert all(get(target.run, "eks", p) is None for p in paths(cli, "eks"))


def test_a_denied_write_stops_apply_and_lists_what_landed(cli: Cli, webhook: Webhook, target: Target) -> None:
    """A webhook that lets the dry run pass and denies the write (a policy engine can): apply stops at the denied
    object and says, per mesh, what landed and what was not reached."""
    assert target.run is not None
    webhook.decide = deny("vs-lambda", writes_only=True)
    code, _, err = cli("apply", "--no-wait")
    text = " ".join(err.split())
    assert code == 2
    assert "cluster 'eks': apply VirtualService istio-ingress/vs-lambda failed: 400 Bad Request: " + DENIAL in text
    assert "What landed before the failure (nothing was rolled back):" in text
    assert (
        "eks (eks): landed: Secret istio-ingress/mtls-credential, ServiceEntry istio-ingress/se-lambda-backend, "
        "DestinationRule istio-ingress/dr-lambda-backend, Gateway istio-ingress/eastwestgateway; FAILED at "
        "VirtualService istio-ingress/vs-lambda; not reached: "
        "EnvoyFilter istio-ingress/istio-ingressgateway-edge-limits"
    ) in text
    assert "gke (gke): landed: nothing; not reached: Secret istio-egress/mtls-credential" in text
    landed = {p.rsplit("/", 1)[1]: get(target.run, "eks", p) is not None for p in paths(cli, "eks")}
    assert landed == {
        "mtls-credential": True,
        "se-lambda-backend": True,
        "dr-lambda-backend": True,
        "eastwestgateway": True,
        "vs-lambda": False,
        "istio-ingressgateway-edge-limits": False,
    }
    # negative twin: once the webhook allows, the re-run converges
    webhook.decide = allow
    assert cli("apply", "--no-wait")[0] == 0


def _closed_port() -> int:
    """A loopback port nothing listens on (the kernel's choice, released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_webhook_the_server_cannot_call_is_named_with_its_service(cli: Cli, webhook: Webhook, target: Target) -> None:
    """istiod down: the API server cannot call the webhook and, failurePolicy Fail, refuses (a 500, measured);
    plan names the webhook and what to check, not the control plane's health."""
    assert target.run is not None
    cluster = target.run["eks"]
    webhook.decide = allow
    try:
        with cluster.client() as admin:
            apply_raw(admin, UNREACHABLE_PATH, webhook.configuration(port=_closed_port(), name=f"rev.{WEBHOOK}"))
        code, body = probe_until(cluster, lambda answer: answer[0] != 201)
        assert (code, body.get("reason")) == (500, "InternalError"), body
        assert body["message"].startswith(f'Internal error occurred: failed calling webhook "rev.{WEBHOOK}": ')
        code, _, err = cli("plan")
    finally:
        with cluster.client() as admin:
            admin.request("DELETE", UNREACHABLE_PATH, what="the unreachable webhook's configuration", verb="delete")
        probe_until(cluster, lambda answer: answer[0] == 201)
    text = " ".join(err.split())
    assert code == 2
    assert (
        "cluster 'eks': apply (dry run) ServiceEntry istio-ingress/se-lambda-backend failed: 500 InternalError: "
        f'Internal error occurred: failed calling webhook "rev.{WEBHOOK}": failed to call webhook: Post'
    ) in text
    assert f"the API server could not call the admission webhook 'rev.{WEBHOOK}'" in text
    assert "'kubectl --context eks -n istio-system get pods -l app=istiod'" in text
    assert "check the control plane's health" not in text


def test_with_the_webhook_allowing_plan_passes_and_the_webhook_was_asked(cli: Cli, webhook: Webhook) -> None:
    """Negative twin of the denials: the same webhook, allowing; it did judge the plan's dry runs."""
    webhook.decide = allow
    asked = len(webhook.of("vs-lambda"))
    code, _, err = cli("plan")
    assert code == 0, err
    assert [r["dryRun"] for r in webhook.of("vs-lambda")[asked:]] == [True]
