"""A real validating admission webhook in front of the local real API server (``-m cluster``, local servers only).

The webhook is the suite's own (:class:`tests.cluster.admission.Webhook`, HTTPS on loopback), on its ``/judge``
path, which answers as istiod's validation does (a ``Status`` with a message and no code); it is registered on
the eks cluster as istiod registers its own (a ``ValidatingWebhookConfiguration`` whose webhook is named
``validation.istio.io``, ``failurePolicy: Fail``, ``sideEffects: None``, so dry runs are judged too). The API
server, not this file, turns its answer into the HTTP answer meshbridge handles; the first test measures it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from meshbridge.kube.envtest import Cluster
from tests.cluster.admission import Webhook, raw, wait_until, webhook_installed
from tests.cluster.conftest import Target
from tests.cluster.support import Cli, get, paths

pytestmark = pytest.mark.cluster

Doc = dict[str, Any]
WEBHOOK = "validation.istio.io"
CONFIGURATION = "meshbridge-e2e-istio-validator"
WHY = "configuration is invalid: http route 0: weight 150 is more than 100 (the test webhook's rule)"
DENIAL = f'admission webhook "{WEBHOOK}" denied the request: {WHY}'
VS = "/apis/networking.istio.io/v1/namespaces/istio-ingress/virtualservices"
PROBE: Doc = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "webhook-probe", "namespace": "istio-ingress"},
    "spec": {"hosts": ["probe.example"], "http": [{"route": [{"destination": {"host": "probe.example"}}]}]},
}
ISTIO_RULE: Doc = {
    "operations": ["CREATE", "UPDATE"],
    "apiGroups": ["networking.istio.io"],
    "apiVersions": ["*"],
    "resources": ["*"],
}
"""What istiod's validation is asked about: every Istio networking kind, created or updated."""


def allow(_: Doc) -> str | None:
    return None


def deny(name: str, *, writes_only: bool = False) -> Callable[[Doc], str | None]:
    """Deny VirtualServices named ``name`` with istiod's kind of message (only real writes, if ``writes_only``)."""

    def judge(request: Doc) -> str | None:
        hit = request["kind"]["kind"] == "VirtualService" and request.get("name") == name
        return WHY if hit and not (writes_only and request.get("dryRun")) else None

    return judge


def asked(webhook: Webhook, name: str) -> list[Doc]:
    """The requests the webhook was asked about objects named ``name``, in order."""
    return [r for r in list(webhook.reviews) if r.get("name") == name]


def probe(cluster: Cluster) -> tuple[int, Doc]:
    """A dry-run create of :data:`PROBE` as the admin, outside meshbridge: the HTTP status and the body."""
    answer = raw(cluster, "POST", f"{VS}?dryRun=All", body=PROBE, admin=True)
    return answer.status, json.loads(answer.body)


@pytest.fixture(scope="module")
def webhook(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    """The test's webhook on ``/judge``, registered on the eks cluster as istiod's (allowing unless told)."""
    if target.run is None:
        pytest.skip("needs the clusters this suite starts (MESHBRIDGE_CONTEXTS is set)")
    hook = Webhook(tmp_path_factory.mktemp("webhook"))
    cluster = target.run["eks"]
    try:
        with webhook_installed(cluster, hook.configuration(CONFIGURATION, "/judge", ISTIO_RULE, {}, WEBHOOK)):
            # the API server picks the configuration up from an informer: until the webhook is asked
            wait_until(lambda: probe(cluster)[0] == 201 and bool(asked(hook, "webhook-probe")), "the webhook is asked")
            yield hook
    finally:
        hook.stop()


def test_the_api_server_answers_a_webhooks_denial_400_with_its_name_and_message(
    webhook: Webhook, target: Target
) -> None:
    """Measured, not assumed: what meshbridge handles is this answer (no reason: the webhook gave none)."""
    assert target.run is not None
    webhook.judge = deny("webhook-probe")
    code, body = probe(target.run["eks"])
    assert code == 400
    assert {k: body.get(k) for k in ("kind", "status", "code", "reason")} == {
        "kind": "Status",
        "status": "Failure",
        "code": 400,
        "reason": None,
    }
    assert body["message"] == f'admission webhook "{WEBHOOK}" denied the request: {WHY}'
    # negative twin: the same request, allowed
    webhook.judge = allow
    assert probe(target.run["eks"])[0] == 201  # created (a dry run: nothing stored)


def test_plan_shows_a_denial_with_the_webhook_the_object_and_the_fix_and_asks_once(
    cli: Cli, webhook: Webhook, target: Target
) -> None:
    """istiod judges dry runs too, so plan meets the denial; nothing is written, and apply (which plans first)
    stops there as well."""
    assert target.run is not None
    webhook.judge = deny("vs-lambda")
    before = len(asked(webhook, "vs-lambda"))
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
    assert [r["dryRun"] for r in asked(webhook, "vs-lambda")[before:]] == [True]  # asked once: a denial is not retried
    code, _, err = cli("apply", "--no-wait")
    assert code == 2 and DENIAL in " ".join(err.split())
    assert all(get(target.run, "eks", p) is None for p in paths(cli, "eks"))


def test_a_denied_write_stops_apply_and_lists_what_landed(cli: Cli, webhook: Webhook, target: Target) -> None:
    """A webhook that lets the dry run pass and denies the write (a policy engine can): apply stops at the denied
    object and says, per mesh, what landed and what was not reached."""
    assert target.run is not None
    webhook.judge = deny("vs-lambda", writes_only=True)
    code, _, err = cli("apply", "--no-wait")
    text = " ".join(err.split())
    assert code == 2
    assert "cluster 'eks': apply VirtualService istio-ingress/vs-lambda failed: 400 Bad Request: " + DENIAL in text
    assert "What landed before the failure (nothing was rolled back):" in text
    assert (
        "eks (eks): landed: Secret istio-ingress/mtls-credential, ServiceEntry istio-ingress/se-lambda-backend, "
        "DestinationRule istio-ingress/dr-lambda-backend, "
        "AuthorizationPolicy istio-ingress/istio-ingressgateway-importers, Gateway istio-ingress/eastwestgateway; "
        "FAILED at VirtualService istio-ingress/vs-lambda; not reached: "
        "EnvoyFilter istio-ingress/istio-ingressgateway-edge-limits"
    ) in text
    assert "gke (gke): landed: nothing; not reached: Secret istio-egress/mtls-credential" in text
    landed = {p.rsplit("/", 1)[1]: get(target.run, "eks", p) is not None for p in paths(cli, "eks")}
    assert landed == {
        "mtls-credential": True,
        "se-lambda-backend": True,
        "dr-lambda-backend": True,
        "istio-ingressgateway-importers": True,
        "eastwestgateway": True,
        "vs-lambda": False,
        "istio-ingressgateway-edge-limits": False,
    }
    # negative twin: once the webhook allows, the re-run converges
    webhook.judge = allow
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
    webhook.judge = allow
    unreachable = webhook.configuration(f"{CONFIGURATION}-unreachable", "/judge", ISTIO_RULE, {}, f"rev.{WEBHOOK}")
    unreachable["webhooks"][0]["clientConfig"]["url"] = f"https://127.0.0.1:{_closed_port()}/validate"
    with webhook_installed(cluster, unreachable):
        wait_until(lambda: probe(cluster)[0] != 201, "the unreachable webhook took effect")
        code, body = probe(cluster)
        assert (code, body.get("reason")) == (500, "InternalError"), body
        assert body["message"].startswith(f'Internal error occurred: failed calling webhook "rev.{WEBHOOK}": ')
        code, _, err = cli("plan")
    wait_until(lambda: probe(cluster)[0] == 201, "the unreachable webhook was removed")
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
    webhook.judge = allow
    before = len(asked(webhook, "vs-lambda"))
    code, _, err = cli("plan")
    assert code == 0, err
    assert [r["dryRun"] for r in asked(webhook, "vs-lambda")[before:]] == [True]
