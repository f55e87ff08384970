"""What an administrator sets up on a real API server to make it refuse or throttle meshbridge, for the cluster
suite: an admission webhook of the test's own (HTTPS on loopback, as controller-runtime's envtest serves webhooks)
that holds or denies requests, and an API Priority and Fairness limit on user ``meshbridge``.

The limit is deterministic, with no timing in it: a PriorityLevelConfiguration of type ``Limited`` with
``nominalConcurrencyShares: 0`` (a "jail": its concurrency limit is 0 seats, and kube-apiserver then admits one
request at a time, only while none of the level's requests executes; k8s.io/apiserver
``queueset.canAccommodateSeatsLocked``) and ``limitResponse: Reject`` (no queue: a request that cannot run is
answered 429 at once, with ``Retry-After``), matched by a FlowSchema for the user. Held: a request of the user
whose admission webhook (ours) does not answer until the test releases it keeps the level's one request executing,
so every other request of the user is refused until then. The server's own answers say when a change took effect:
each answer names the FlowSchema that classified it (``X-Kubernetes-PF-FlowSchema-UID``).
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from meshbridge.kube.client import apply_raw
from meshbridge.kube.envtest import USER, Cluster, _issue, _key_pem

FLOWCONTROL = "/apis/flowcontrol.apiserver.k8s.io/v1"
ADMISSIONREGISTRATION = "/apis/admissionregistration.k8s.io/v1"
HOLD_LABEL = "meshbridge-e2e/hold"
HOLD_LIMIT = 25.0
"""Seconds the webhook holds a request at most (the API server gives a webhook 30 s, ``timeoutSeconds``)."""
FLOW_HEADER = "x-kubernetes-pf-flowschema-uid"
Doc = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """A raw answer of the API server (``headers``: names in lower case)."""

    status: int
    headers: dict[str, str]
    body: str


def raw(cluster: Cluster, method: str, path: str, *, body: Doc | None = None, admin: bool = False) -> Answer:
    """One request straight to ``cluster`` as :data:`USER` (or the admin), without meshbridge's client (no retry)."""
    token = cluster.admin_token if admin else cluster.user_token
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": "application/json"}
    req = urllib.request.Request(f"{cluster.url}{path}", data=data, method=method, headers=headers)
    ctx = ssl.create_default_context(cafile=str(cluster.ca_file))
    try:
        with urllib.request.urlopen(req, timeout=60, context=ctx) as resp:
            return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode())
    except urllib.error.HTTPError as e:
        return Answer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode(errors="replace"))


class Webhook:
    """An admission webhook served by the test on 127.0.0.1: ``/hold`` answers only once :meth:`release` is called
    (or after :data:`HOLD_LIMIT`), ``/deny`` refuses with 403 and :attr:`deny_message`, ``/judge`` answers as
    istiod's validation does: :attr:`judge` returns a denial's message (sent without a code: the API server makes
    it a 400) or ``None`` to allow. :attr:`reviews` keeps every request asked, in order."""

    def __init__(self, folder: Path) -> None:
        ca = _issue("meshbridge-e2e-webhook-ca")
        leaf = _issue("meshbridge-e2e-webhook", ca=ca, server=True)  # its SANs include 127.0.0.1
        folder.mkdir(parents=True, exist_ok=True)
        crt, key = folder / "webhook.crt", folder / "webhook.key"
        crt.write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(_key_pem(leaf.key))
        self.ca_bundle = base64.b64encode(ca.cert.public_bytes(serialization.Encoding.PEM)).decode()
        self.entered = threading.Event()
        self.released = threading.Event()
        self.deny_message = "Secrets of this bridge are frozen on this cluster"
        self.judge: Callable[[Doc], str | None] = lambda _: None
        self.reviews: list[Doc] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                response: Doc = {"uid": review["request"]["uid"], "allowed": True}
                hook.reviews.append(review["request"])
                path = self.path.split("?", 1)[0]  # the API server adds ?timeout=30s
                if path == "/hold":
                    hook.entered.set()
                    hook.released.wait(HOLD_LIMIT)
                elif path == "/deny":
                    response["allowed"] = False
                    response["status"] = {"code": 403, "reason": "Forbidden", "message": hook.deny_message}
                elif path == "/judge" and (why := hook.judge(review["request"])) is not None:
                    response["allowed"] = False
                    response["status"] = {"message": why}
                out = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(out.encode())

            def log_message(self, *_: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}{path}"

    def configuration(self, name: str, path: str, rule: Doc, labels: dict[str, str], webhook: str = "") -> Doc:
        """A ValidatingWebhookConfiguration sending the requests of ``rule`` for objects labelled ``labels`` here,
        its webhook named ``webhook`` (default ``<name>.meshbridge-e2e.test``)."""
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": webhook or f"{name}.meshbridge-e2e.test",
                    "clientConfig": {"url": self.url(path), "caBundle": self.ca_bundle},
                    "rules": [rule],
                    "objectSelector": {"matchLabels": labels},
                    "sideEffects": "None",  # so dry runs are sent too
                    "admissionReviewVersions": ["v1"],
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 30,
                }
            ],
        }

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def webhook_installed(cluster: Cluster, doc: Doc) -> Iterator[None]:
    """``doc`` (a ValidatingWebhookConfiguration) installed on ``cluster`` for the block, removed after."""
    path = f"{ADMISSIONREGISTRATION}/validatingwebhookconfigurations/{doc['metadata']['name']}"
    with cluster.client() as admin:
        apply_raw(admin, path, doc, manager="meshbridge-e2e")
    try:
        yield
    finally:
        raw(cluster, "DELETE", path, admin=True)


def secrets_rule(*operations: str) -> Doc:
    return {"apiGroups": [""], "apiVersions": ["v1"], "operations": list(operations), "resources": ["secrets"]}


def wait_until(done: Callable[[], bool], what: str, attempts: int = 400) -> None:
    """Ask ``done`` until it is true (the server's own answer that a configuration took effect), 50 ms apart."""
    for _ in range(attempts):
        if done():
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"the API server never showed that {what}")


class Throttle:
    """API Priority and Fairness on ``cluster``: user ``meshbridge``'s requests one at a time, the rest refused 429
    (see the module's docstring). :meth:`hold` makes the one request run until :meth:`release`."""

    NAME = "meshbridge-e2e-jail"

    def __init__(self, cluster: Cluster, webhook: Webhook, namespace: str) -> None:
        self.cluster, self.webhook, self.namespace = cluster, webhook, namespace
        self.uid = ""
        self.holder: threading.Thread | None = None
        self.held: Answer | None = None

    def __enter__(self) -> Throttle:
        level = {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": self.NAME},
            "spec": {
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 0,
                    "lendablePercent": 0,
                    "borrowingLimitPercent": 0,
                    "limitResponse": {"type": "Reject"},
                },
            },
        }
        everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True, "namespaces": ["*"]}
        schema = {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": self.NAME},
            "spec": {
                "priorityLevelConfiguration": {"name": self.NAME},
                "matchingPrecedence": 100,  # before every suggested schema that matches an ordinary user
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [{"kind": "User", "user": {"name": USER}}],
                        "resourceRules": [everything],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                    }
                ],
            },
        }
        with self.cluster.client() as admin:
            apply_raw(admin, f"{FLOWCONTROL}/prioritylevelconfigurations/{self.NAME}", level, manager="meshbridge-e2e")
            out = apply_raw(admin, f"{FLOWCONTROL}/flowschemas/{self.NAME}", schema, manager="meshbridge-e2e")
        self.uid = str(out["metadata"]["uid"])
        self._hook = webhook_installed(
            self.cluster,
            self.webhook.configuration(self.NAME, "/hold", secrets_rule("CREATE"), {HOLD_LABEL: "true"}),
        )
        self._hook.__enter__()
        wait_until(lambda: self.classifies(raw(self.cluster, "GET", "/version")), "the FlowSchema took effect")
        return self

    def classifies(self, answer: Answer) -> bool:
        """Whether ``answer`` was classified by this FlowSchema (the server says so in every answer)."""
        return answer.headers.get(FLOW_HEADER) == self.uid

    def rejected(self) -> int:
        """How many requests this level has refused since the server started (its metric
        ``apiserver_flowcontrol_rejected_requests_total``, read by the admin)."""
        metrics = raw(self.cluster, "GET", "/metrics", admin=True).body
        label = f'priority_level="{self.NAME}"'
        lines = [x for x in metrics.splitlines() if x.startswith("apiserver_flowcontrol_rejected_requests_total{")]
        return sum(int(float(x.rsplit(" ", 1)[1])) for x in lines if label in x)

    def hold(self) -> None:
        """Start a request of the user that keeps its level's one seat until :meth:`release`; return once the
        webhook has it (a request sent before the webhook took effect passes: sent again)."""
        self.webhook.released.clear()
        self.webhook.entered.clear()
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "meshbridge-e2e-holder", "labels": {HOLD_LABEL: "true"}},
        }
        path = f"/api/v1/namespaces/{self.namespace}/secrets?dryRun=All"

        def send() -> None:
            self.held = raw(self.cluster, "POST", path, body=secret)

        for _ in range(200):
            self.holder = threading.Thread(target=send, daemon=True)
            self.holder.start()
            while self.holder.is_alive() and not self.webhook.entered.wait(0.05):
                pass
            if self.webhook.entered.is_set():
                return
            assert self.held is not None and self.held.status in (200, 201), self.held
        raise AssertionError("the hold webhook never took effect")

    def release(self) -> None:
        """Let the held request finish; return once its answer came back (the seat is free)."""
        self.webhook.release()
        if self.holder is not None:
            self.holder.join()
            self.holder = None

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._hook.__exit__(None, None, None)
        for kind in ("flowschemas", "prioritylevelconfigurations"):
            raw(self.cluster, "DELETE", f"{FLOWCONTROL}/{kind}/{self.NAME}", admin=True)
        wait_until(lambda: not self.classifies(raw(self.cluster, "GET", "/version")), "the FlowSchema was removed")
