"""Errors of the Kubernetes layer, all under :class:`meshbridge.errors.KubeError`.

::

    KubeError                 (meshbridge.errors) any failure talking to a real cluster
     ├── KubeApiError         one API call failed: the context, the object, the HTTP status, the server's reason
     ├── PreflightError       checks failed before anything was written; ``checks`` holds every finding
     ├── ConflictError        objects exist that this bridge does not own; nothing was written
     └── ApplyError           a write failed part-way; ``results`` says, per mesh, what landed

Every message names the cluster (kubeconfig context) and the object, and ends with the fix. Errors of the
``kubernetes`` client, ``urllib3`` and ``websocket`` are translated here and never escape a public call.

Some answers mean something other than their status code says, and get their own fix (:func:`http_error`):

* an admission webhook's denial (``admission webhook "validation.istio.io" denied the request: ...``): the
  API server answers it 400 ``BadRequest`` unless the webhook chose another code, so it is recognised by its
  message whatever the code; the webhook judged the object, and a retry would be judged alike;
* an admission webhook the API server could not call (``failed calling webhook "X": failed to call webhook:
  ...``, a 500 ``InternalError`` when its ``failurePolicy`` is ``Fail``): nothing judged the object, the
  webhook's service (istiod) must answer first;
* a 403 for a namespace being deleted (``unable to create new content in namespace X because it is being
  terminated``): not a permission, no grant helps (status states such a namespace with the same fix,
  :func:`namespace_terminating`);
* a 401 of the in-cluster configuration (context ``@in-cluster``): the Pod's service account token, not a
  kubeconfig, was refused;
* a 404 to an exec or port-forward that names another pod than the one asked for (``pods "twin" not found``):
  the API server looked up the Node the pod is bound to (``spec.nodeName``) and has none, so no kubelet serves
  the pod (the twin's pods on the real control plane); :func:`unscheduled` is true for it as for a pod on no node.

A kind whose CRD is not installed is stated once per kind (:func:`crd_not_served`), by preflight and status.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException, OpenApiException

from meshbridge.errors import KubeError
from meshbridge.kube.kubeconfig import IN_CLUSTER, in_cluster_files

if TYPE_CHECKING:
    from meshbridge.kube.apply import MeshResult
    from meshbridge.kube.plan import PlannedChange
    from meshbridge.kube.preflight import PreflightCheck
    from meshbridge.kube.resources import ResourceType

RBAC_HINT = (
    "'meshbridge render --rbac | kubectl apply -f -' grants what meshbridge needs; 'Required RBAC' in docs/clusters.md"
)


class KubeApiError(KubeError):
    """One call to the API server failed.

    Attributes:
        context: the kubeconfig context (the cluster) the call went to.
        object: what the call was about, e.g. ``VirtualService istio-ingress/vs-lambda``.
        status: the HTTP status (403, 404, 409, 422, ...); 0 when the server never answered (timeout,
            refused connection, TLS failure).
        reason: the API server's ``Status.reason`` (``Forbidden``, ``Conflict``, ``Invalid``, ...) or the
            transport error's name (``Timeout``, ``ConnectionFailed``).
        server_message: the API server's ``Status.message`` (or the transport error's text).
    """

    def __init__(
        self, message: str, *, context: str, object: str, status: int, reason: str, server_message: str
    ) -> None:
        super().__init__(message)
        self.context = context
        self.object = object
        self.status = status
        self.reason = reason
        self.server_message = server_message


class PreflightError(KubeError):
    """One or more preflight checks failed; nothing was written.

    Attributes:
        findings: every finding of the run, passed ones included (``PreflightCheck.ok`` tells them apart).
    """

    def __init__(self, findings: Sequence[PreflightCheck]) -> None:
        failed = [f for f in findings if f.severity == "error" and not f.ok]
        lines = [f"preflight failed ({len(failed)} problem(s)); nothing was written:"]
        lines += [f"  - {f.mesh} ({f.context}) {f.check}: {f.message}" for f in failed]
        super().__init__("\n".join(lines))
        self.findings = list(findings)


class ConflictError(KubeError):
    """Objects the bridge would write exist but are not labelled as this bridge's; nothing was written.

    Attributes:
        conflicts: the planned changes whose action is ``conflict``.
    """

    def __init__(self, conflicts: Sequence[PlannedChange], contexts: dict[str, str]) -> None:
        lines = [
            f"{len(conflicts)} object(s) are not this bridge's alone (not labelled as its own, or fields another "
            "field manager owns); nothing was written:"
        ]
        lines += [
            f"  - {c.mesh + ' ' if c.mesh else ''}({contexts.get(c.mesh, '?')}) {c.ref}: {c.reason}" for c in conflicts
        ]
        lines.append(
            "Fix: delete or rename them, or re-run with --force-conflicts to take them over (their labels and "
            "the fields meshbridge sets are overwritten; what a client-side 'kubectl apply' set becomes meshbridge's)"
        )
        super().__init__("\n".join(lines))
        self.conflicts = list(conflicts)


class ApplyError(KubeError):
    """A write failed after others had landed; ``results`` says precisely what is on each cluster now.

    Attributes:
        results: one :class:`~meshbridge.kube.apply.MeshResult` per mesh, in the order they were visited.
        cause: the error that stopped the run.
        operation: ``apply``, ``delete``, or ``push`` (the gateway Secrets of ``certs push``, ``rotate``, ``revoke``).
    """

    def __init__(self, results: Sequence[MeshResult], cause: KubeError, operation: str = "apply") -> None:
        what = "was deleted" if operation == "delete" else "landed"
        lines = [str(cause), "", f"What {what} before the failure (nothing was rolled back):"]
        for r in results:
            lines.append(f"  {r.mesh} ({r.context}): {r.summary()}")
        lines.append(_RERUN[operation])
        super().__init__("\n".join(lines))
        self.results = list(results)
        self.cause = cause
        self.operation = operation


_RERUN = {
    "apply": "Fix the cause above and re-run 'meshbridge apply': server-side apply is idempotent, so the run "
    "converges from wherever this one stopped",
    "delete": "Fix the cause above and re-run 'meshbridge delete': it deletes what is left",
    "push": "Fix the cause above and re-run 'meshbridge certs push': the store holds the "
    "certificates, and a Secret that holds them already is left as it is",
}

# -- translation of the client's errors ------------------------------------------------------------------

_FIXES = {
    401: "the credentials of this context were rejected. Fix: refresh them (e.g. 'aws eks update-kubeconfig', "
    "'gcloud container clusters get-credentials') and check 'kubectl --context {context} auth whoami'",
    403: "the user of this context may not do this. Fix: grant the verb on this resource (" + RBAC_HINT + ")",
    404: "it does not exist. Fix: check the namespace and name, and that the API (CRD) is installed",
    409: "the object changed or fields are owned by another manager. Fix: re-run; to take over fields that "
    "another field manager owns, pass --force-conflicts",
    410: "the list expired while paging. Fix: re-run",
    422: "the API server rejected the object as invalid. Fix: correct the field named above in the bridge spec",
    429: "the API server throttled the request (API Priority and Fairness: too many requests in flight for this "
    "user's priority level). Fix: re-run later; if it persists, check which FlowSchema matches this context's user "
    "and the concurrency of its PriorityLevelConfiguration ('kubectl get flowschemas,prioritylevelconfigurations')",
}


def translate(error: BaseException, *, context: str, what: str, verb: str) -> KubeError:
    """Turn an error of the ``kubernetes`` client, ``urllib3`` or the socket layer into a :class:`KubeApiError`.

    Args:
        error: the exception caught at the boundary.
        context: the kubeconfig context of the call.
        what: the object, e.g. ``Gateway istio-ingress/eastwestgateway`` or ``pods in istio-ingress``.
        verb: what was attempted (``get``, ``apply``, ``delete``, ``list``, ``exec into``, ...).

    Returns:
        The error to raise (``raise translate(...) from error``).
    """
    if isinstance(error, KubeError):
        return error
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        reason, message = parse_status(error.body, str(error.reason or ""))
        if status == 0:
            return _transport(context, what, verb, "ConnectionFailed", message or str(error))
        return http_error(status, reason, message, context=context, what=what, verb=verb)
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        return translate(error.reason, context=context, what=what, verb=verb)
    if isinstance(error, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError subclass, but refused
        return _transport(context, what, verb, "ConnectionFailed", str(error))
    if isinstance(error, urllib3.exceptions.TimeoutError | socket.timeout | TimeoutError):
        return _transport(context, what, verb, "Timeout", str(error) or "timed out")
    if isinstance(error, urllib3.exceptions.HTTPError | OSError | OpenApiException):
        return _transport(context, what, verb, "ConnectionFailed", str(error))
    return _transport(context, what, verb, type(error).__name__, str(error))


_WEBHOOK_DENIAL = re.compile(r'admission webhook "(?P<webhook>[^"]+)" denied the request')
_WEBHOOK_UNREACHABLE = re.compile(r'failed calling webhook "(?P<webhook>[^"]+)"')
_NO_HOST = re.compile(r"pod \S+ does not have a host assigned")
_POD_NOT_FOUND = re.compile(r'pods "(?P<name>[^"]+)" not found')
_TERMINATING = re.compile(
    r"unable to create new content in namespace (?P<namespace>\S+) because it is being terminated"
)


def unscheduled(error: KubeApiError) -> bool:
    """True when the API server refused an exec or port-forward because the pod runs on no node it knows (none
    assigned, or a ``spec.nodeName`` without a Node: no kubelet to ask). The command that hit it says what it did and
    what it cannot check."""
    message = error.server_message
    return bool(_NO_HOST.search(message) or _unknown_node(error.status, message, error.object))


def _unknown_node(status: int, message: str, what: str) -> str | None:
    """The node of a pod the API server could not stream to because it has no such Node: its 404 to an exec or
    port-forward names the pod's ``spec.nodeName`` as ``pods "<node>" not found`` (the pod itself exists); None
    for any other answer. ``what`` is the stream's object (``port 15000 of pod <ns>/<pod>``, ``pod <ns>/<pod>``)."""
    found = _POD_NOT_FOUND.search(message)
    pod = re.search(r"\bpod [^/\s]+/(?P<name>[^\s]+)", what)
    if status != 404 or found is None or pod is None or found["name"] == pod["name"]:
        return None
    return found["name"]


def http_error(
    status: int, reason: str, message: str, *, context: str, what: str, verb: str, retries: int = 0
) -> KubeApiError:
    """A :class:`KubeApiError` for an HTTP error answer of the API server (status ≥ 400); ``retries``: how many
    times the request was sent again, answered the same way (the message then counts the attempts)."""
    fix = _FIXES.get(status)
    if "field not declared in schema" in message:  # server-side apply of a field the CRD does not know: a 500
        fix = (
            "the object has a field the installed CRD's schema does not declare. Fix: install the CRDs of the Istio "
            "release the spec names (istio.version), or set istio.version to the installed release"
        )
    elif denial := _WEBHOOK_DENIAL.search(message):
        fix = _webhook_fix(denial["webhook"], what)
    elif unreachable := _WEBHOOK_UNREACHABLE.search(message):
        fix = (
            f"the API server could not call the admission webhook {unreachable['webhook']!r}, and its failurePolicy "
            "refuses the request then: nothing judged the object. Fix: check that the webhook's service runs and "
            "answers (Istio's is istiod of the spec's revision: 'kubectl --context {context} -n istio-system get "
            "pods -l app=istiod'; 'kubectl --context {context} get validatingwebhookconfigurations' shows where it "
            "is called), then re-run"
        )
    elif terminating := _TERMINATING.search(message):
        fix = _terminating_fix(terminating["namespace"])
    elif node := _unknown_node(status, message, what):
        fix = (
            f"the pod exists, bound to node {node!r}, which this API server does not know: no kubelet serves the pod, "
            "so no port-forward or exec reaches it (the twin's pods on the real control plane run so, beside istiod, "
            "without a kubelet); a retry is refused alike. Fix: check the pod's node ('kubectl --context {context} "
            f"get node {node}'); once the pod runs on a node, re-run"
        )
    elif _NO_HOST.search(message):
        fix = (
            "the pod is not scheduled on a node, so no kubelet can port-forward or exec into it (an API server "
            "without nodes, such as 'make clusters-up', has none); a retry is refused alike. Fix: check the pod "
            "('kubectl --context {context} describe pod'); once it runs on a node, re-run"
        )
    elif status == 401 and context == IN_CLUSTER:
        token, ca = in_cluster_files()
        fix = (
            f"the in-cluster configuration's service account token ({token}) was rejected. Fix: check that the Pod "
            "runs as the service account you granted ('spec.serviceAccountName'), that its token is mounted "
            "(automountServiceAccountToken is not false) and current, and that KUBERNETES_SERVICE_HOST/PORT and "
            f"{ca} are this cluster's; or choose a kubeconfig context for this mesh (--context MESH=CONTEXT)"
        )
    if fix is None:
        fix = (
            "the API server failed. Fix: re-run; if it persists, check the control plane's health"
            if status >= 500
            else "Fix: see the server's message"
        )
    attempts = f" ({retries + 1} attempts: the first and {retries} retries)" if retries else ""
    text = (
        f"cluster {context!r}: {verb} {what} failed: {status} {reason or 'Error'}: {message or '(no message)'}"
        f"{attempts}; {fix.format(context=context)}"
    )
    return KubeApiError(text, context=context, object=what, status=status, reason=reason, server_message=message)


def _webhook_fix(webhook: str, what: str) -> str:
    """The fix of an admission webhook's denial: the object, or the webhook; never a retry or a grant."""
    return (
        f"the admission webhook {webhook!r} denied {what} (a validating webhook judged the object; a retry would be "
        "judged alike, and no permission changes it). Fix: correct what the webhook's message names in the bridge "
        "spec ('meshbridge render' shows the object, 'meshbridge lint' checks the spec); if the object is right, "
        "check the webhook: 'kubectl --context {context} get validatingwebhookconfigurations' lists the webhooks "
        "(Istio's is istio-validator-<revision>-istio-system, answered by istiod of that revision)"
    )


def _terminating_fix(namespace: str) -> str:
    """The fix of a write refused because its namespace is being deleted: no grant helps."""
    return (
        f"namespace {namespace} is being deleted (Terminating): the API server refuses new objects in it, whatever "
        f"the permissions. {_terminating_wait(namespace)}"
    )


def namespace_terminating(namespace: str, *, context: str) -> str:
    """Status's line for a namespace the bridge uses that is being deleted (``status.phase: Terminating`` or a
    ``deletionTimestamp``): the problem and the same fix as the 403 of a write there."""
    return (
        f"namespace {namespace} is being deleted (Terminating): the objects in it go with it, and the API server "
        f"refuses new ones. {_terminating_wait(namespace)}"
    ).format(context=context)


def _terminating_wait(namespace: str) -> str:
    return (
        f"Fix: wait until 'kubectl --context {{context}} get namespace {namespace}' no longer finds it (a namespace "
        "stuck in Terminating waits on its finalizers and on the objects left in it), re-create what it held (the "
        "Istio gateway), then re-run; or use another namespace in the bridge spec"
    )


def crd_not_served(rtype: ResourceType, *, context: str, mesh: str, istio_version: str) -> str:
    """The problem and fix of a kind whose API the cluster does not serve (its CRD is not installed, or is
    older than the spec's Istio): one sentence per kind, for preflight and status alike.

    Args:
        rtype: the kind and the API version meshbridge renders it at.
        context: the kubeconfig context of the cluster.
        mesh: the mesh (for the spec field to change).
        istio_version: ``spec.meshes.<mesh>.istio.version``.
    """
    return (
        f"the CRD {rtype.plural}.{rtype.group} is not installed in context {context!r} ({rtype.api_version} does "
        f"not serve {rtype.kind}). Fix: install Istio's CRDs (the base chart: 'helm install istio-base "
        "istio/base -n istio-system', or 'istioctl install'); if they are installed, they are older than "
        f"istio.version {istio_version} implies: upgrade them, or set spec.meshes.{mesh}.istio.version to the "
        "installed release"
    )


def _transport(context: str, what: str, verb: str, reason: str, detail: str) -> KubeApiError:
    if reason == "Timeout":
        fix = (
            "the API server did not answer in time. Fix: check it is reachable and healthy, or raise --request-timeout"
        )
    else:
        fix = (
            "the API server could not be reached. Fix: check the network path (VPN, bastion, private endpoint) "
            f"and 'kubectl --context {context} get --raw /version'"
        )
    text = f"cluster {context!r}: {verb} {what} failed: {reason}: {detail}; {fix}"
    return KubeApiError(text, context=context, object=what, status=0, reason=reason, server_message=detail)


def parse_status(body: Any, fallback: str) -> tuple[str, str]:
    """``(reason, message)`` of a Kubernetes ``Status`` body; the field causes of a 422 are appended to the message.

    Args:
        body: the answer's body (``bytes`` or ``str``; JSON when the API server wrote it).
        fallback: the reason to use when the body is not a ``Status`` (e.g. the HTTP reason phrase).
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return fallback, ""
    try:
        status = json.loads(body)
    except ValueError:
        return fallback, body.strip()[:500]
    if not isinstance(status, dict):
        return fallback, body.strip()[:500]
    message = str(status.get("message", ""))
    causes = (status.get("details") or {}).get("causes") or []
    extra = [f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes if isinstance(c, dict)]
    missing = [x for x in extra if x.split(": ", 1)[-1] not in message]
    if missing:
        message = f"{message} ({'; '.join(missing)})"
    return str(status.get("reason") or fallback), message
