"""Verify a bridge on real clusters: the article's checks, as :class:`~meshbridge.verify.Condition` s.

* ``IngressGatewayRoutes`` / ``EgressGatewayRoutes``: every Ready gateway pod serves the routes the bridge
  implies (the article's ``istioctl proxy-config routes``), read from its Envoy ``/config_dump`` through
  the API server's port-forward.
* ``GatewaysServeCurrentCerts`` (when the PKI store's credentials are given): every Ready gateway pod serves the
  store's certificate chain, trust bundle and CRLs, read from its ``/config_dump`` the same way; a rotation or
  revocation recorded in the store but never pushed shows as ``StaleSecret``.
* ``AppReachesExport``: the article's step 6, ``kubectl exec -n sleep deploy/sleep -- curl -is
  http://lambda.external/hello-world``, through the exec API, from the importer's app (the spec's first
  ``apps`` entry, the article's ``sleep`` by default, or ``workload``); 200 expected. A failure names the
  hop, the HTTP status and the Envoy response flag it implies (``NR``, ``UF``, ``UH``, ``NC``) and what to
  look at.

Nothing is written. A cluster that cannot be reached or read yields ``Unknown`` conditions (their reasons are
in :data:`CLUSTER_FAILURES`), never an exception; the checks of a mesh whose cluster does not answer are listed
too, ``Unknown`` with the reason ``NotRunWithoutClusterReachable``.

:func:`wait_served` is the check between certificate rotation steps on clusters: every gateway pod serves
what the PKI store says (istiod delivers an updated Secret over SDS within seconds).
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from meshbridge.errors import KubeError
from meshbridge.kube.apply import check_routes, mesh_order
from meshbridge.kube.client import (
    TWIN_APP_VIEW,
    TWIN_ENVOY_ADMIN,
    Document,
    ExecResult,
    KubeClient,
    fetch_config_dump,
    on_this_machine,
)
from meshbridge.kube.clusters import connect
from meshbridge.kube.preflight import PODS, gateway_pods, pod_ready
from meshbridge.kube.resources import ResourceRef
from meshbridge.kube.routes import ExpectedRoute, expected_routes, gateway_workloads
from meshbridge.kube.status import PENDING_ADDRESS
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.render import render_bridge
from meshbridge.render.gatewayapi import served_credential
from meshbridge.spec.models import App, Bridge, Export
from meshbridge.verify.report import Condition, Status, not_run
from meshbridge.verify.served import Role, served_problems

DEFAULT_PATH = "/hello-world"
CLUSTER_FAILURES = frozenset({"ClusterUnreachable", "CannotReadGateway", "ClusterRequestFailed"})
"""Reasons of the ``Unknown`` conditions whose check could not run because a request to the cluster failed
(no answer, credentials refused, 403, 5xx ...): the CLI exits 2 for them, as every cluster command does."""
_MARK = "\n__meshbridge_http_code="


def verify_clusters(
    bridge: Bridge,
    contexts: Mapping[str, str] | None = None,
    *,
    clients: Mapping[str, KubeClient] | None = None,
    kubeconfig: Path | None = None,
    workload: str | None = None,
    path: str = DEFAULT_PATH,
    headers: tuple[tuple[str, str], ...] = (),
    timeout: float = 10.0,
    progress: Callable[[str], None] | None = None,
    credentials: Mapping[str, MeshCredentials] | None = None,
) -> list[Condition]:
    """Run the article's checks on the real clusters of ``bridge``.

    Args:
        bridge: the spec.
        contexts: ``--context MESH=CONTEXT`` overrides of ``spec.meshes.<mesh>.context``.
        clients: ready clients per mesh (tests); when given, ``contexts`` and ``kubeconfig`` are unused.
        kubeconfig: the kubeconfig file (default ``$KUBECONFIG`` / ``~/.kube/config``).
        workload: ``NAMESPACE/DEPLOYMENT`` of the caller in every importing mesh, instead of the spec's app.
            Its first non-sidecar container must have ``curl`` (the article's ``curlimages/curl``).
        path: the path requested from each exported host.
        headers: request headers the app's curl sends (``-H``), beside curl's own.
        timeout: seconds curl may take per request.
        progress: receives one line per check.
        credentials: the PKI store's credentials per own mesh: what the gateways must serve
            (``GatewaysServeCurrentCerts``); ``None`` leaves that check out.

    Returns:
        One condition per gateway role and mesh, one for the served certificates (with ``credentials``), and one
        per (importing mesh, export).

    Raises:
        KubeError: a context is missing or cannot be loaded (before any check runs); ``workload`` is not
            ``NAMESPACE/NAME``.
    """
    if workload is not None and not re.fullmatch(r"[a-z0-9-]+/[a-z0-9.-]+", workload):
        raise KubeError(f"--workload {workload!r} is not NAMESPACE/DEPLOYMENT (e.g. sleep/sleep)")
    say = progress or (lambda _: None)
    owned_clients = clients is None
    live = dict(clients) if clients is not None else connect(bridge, contexts, kubeconfig=kubeconfig, notify=progress)
    try:
        found = _verify(bridge, live, workload, path, headers, timeout, say)
        if credentials is None:
            return found
        return _with_served(found, bridge, credentials, live, say)
    finally:
        if owned_clients:
            for c in live.values():
                c.close()


def _verify(
    bridge: Bridge,
    clients: Mapping[str, KubeClient],
    workload: str | None,
    path: str,
    headers: tuple[tuple[str, str], ...],
    timeout: float,
    say: Callable[[str], None],
) -> list[Condition]:
    addresses = {}
    for m in bridge.spec.meshes:
        ig = bridge.spec.meshes[m].ingress_gateway
        if bridge.exports_from(m) and ig is not None:
            addresses[m] = ig.address or PENDING_ADDRESS  # routes do not depend on the address
    manifests = render_bridge(bridge, None, addresses=addresses)
    out: list[Condition] = []
    unreachable: dict[str, Condition] = {}
    for mesh in mesh_order(bridge):
        client = clients[mesh]
        started = time.monotonic()
        try:
            client.version()
        except KubeError as e:
            down = Condition("ClusterReachable", "Unknown", "ClusterUnreachable", str(e), f"{mesh}", _ms(started), mesh)
            unreachable[mesh] = down
            out.append(down)
    for mesh in mesh_order(bridge):
        client = clients[mesh]
        for role, gw in gateway_workloads(bridge, mesh):
            check, hop = f"{role.capitalize()}GatewayRoutes", f"{mesh}: {role} gateway"
            if mesh in unreachable:
                out.append(not_run(check, unreachable[mesh], hop, mesh))
                continue
            started = time.monotonic()
            say(f"verify: {mesh} ({client.context}): routes of the {role} gateway {gw.namespace}/{gw.name}")
            try:
                targets = {(gw.namespace, gw.name): _target_ports(client, gw.namespace, gw.name)}
                expected = [e for e in expected_routes(bridge, mesh, manifests[mesh], targets) if e.role == role]
                found = _routes_condition(mesh, role, client, expected, started)
            except KubeError as e:
                found = Condition(check, "Unknown", "CannotReadGateway", str(e), hop, _ms(started))
            out.append(replace(found, subject=mesh))
    for mesh in mesh_order(bridge):
        for ex in bridge.exports_to(mesh):
            subject = f"{ex.name} → {mesh}"
            if mesh in unreachable:
                out.append(not_run("AppReachesExport", unreachable[mesh], _hop(bridge, mesh, ex), subject))
                continue
            started = time.monotonic()
            say(f"verify: {mesh} ({clients[mesh].context}): curl http://{ex.import_host}{_port(ex)}{path} from the app")
            try:
                found = _call(bridge, mesh, clients[mesh], ex, workload, path, headers, timeout, started)
            except KubeError as e:
                found = Condition(
                    "AppReachesExport", "Unknown", "ClusterRequestFailed", str(e), _hop(bridge, mesh, ex), _ms(started)
                )
            out.append(replace(found, subject=subject))
    return out


def _with_served(
    found: list[Condition],
    bridge: Bridge,
    credentials: Mapping[str, MeshCredentials],
    clients: Mapping[str, KubeClient],
    say: Callable[[str], None],
) -> list[Condition]:
    """``found`` with ``GatewaysServeCurrentCerts`` after the routes' checks, on the clusters that answered."""
    down = {c.subject: c for c in found if c.check == "ClusterReachable"}
    reachable = {m: c for m, c in clients.items() if m not in down and m in credentials}
    started = time.monotonic()
    if not reachable:
        first = next(iter(down.values()), None)
        checked = [not_run(SERVED, first, "clusters")] if first is not None else []
    else:
        say(f"verify: {', '.join(reachable)}: what every gateway pod serves, against the PKI store")
        try:
            checked = [served_condition(wait_served(bridge, credentials, reachable, timeout=0), list(reachable))]
        except KubeError as e:
            checked = [Condition(SERVED, "Unknown", "CannotReadGateway", str(e), "clusters", _ms(started))]
    at = next((i for i, c in enumerate(found) if c.check == "AppReachesExport"), len(found))
    return [*found[:at], *checked, *found[at:]]


SERVED = "GatewaysServeCurrentCerts"


def unread_error(bridge: Bridge, unread: list[Condition]) -> str:
    """The CLI's one line for the ``Unknown`` conditions of :data:`CLUSTER_FAILURES`: which meshes' clusters
    could not be reached or read, and why. A condition of the hop ``clusters`` (what every gateway serves) read
    every mesh, so it names them all; another names the mesh its hop starts with (``eks: ingress gateway``)."""
    meshes = set()
    for c in unread:
        head = c.hop.split(":", 1)[0]
        meshes |= {head} if head in bridge.spec.meshes else set(bridge.spec.meshes)
    names = ", ".join(m for m in bridge.spec.meshes if m in meshes)
    what = f"the clusters of meshes {names}" if len(meshes) > 1 else f"the cluster of mesh {names}"
    return (
        f"error: could not reach or read {what} ({', '.join(sorted({c.reason for c in unread}))}): the checks "
        "marked Unknown did not run. Fix: see their messages above"
    )


def served_condition(problems: list[str], meshes: list[str], *, fix: bool = True) -> Condition:
    """``GatewaysServeCurrentCerts`` on clusters from what :func:`wait_served` found (``problems``, ``[]``: all
    current) on ``meshes``; ``fix`` adds how to push the store (not between rotation steps, which push)."""
    if not problems:
        message = f"every gateway pod of {', '.join(meshes)} serves the store's certificates, trust bundles and CRLs"
        return Condition(SERVED, "True", "Current", message, "clusters")
    push = ". Fix: 'meshbridge certs push --context MESH=CONTEXT ...' sends the store's certificates and CRLs"
    return Condition(SERVED, "False", "StaleSecret", "; ".join(problems) + (push if fix else ""), "clusters")


def wait_served(
    bridge: Bridge,
    credentials: Mapping[str, MeshCredentials],
    clients: Mapping[str, KubeClient],
    *,
    timeout: float = 120.0,
    interval: float = 2.0,
) -> list[str]:
    """Wait until every Ready gateway pod of the meshes in ``clients`` serves the store's certificate chain,
    trust bundle and CRLs (compared with :func:`meshbridge.verify.served.served_problems` on its Envoy
    ``/config_dump``); the differences left at ``timeout`` seconds, ``[]`` when they all match.

    Raises:
        KubeError: a cluster cannot be read.
    """
    roles: list[tuple[str, Role]] = []
    for m in clients:
        if any(ex.from_ == m for ex in bridge.spec.exports):
            roles.append((m, "ingress"))
        if any(m in ex.to for ex in bridge.spec.exports):
            roles.append((m, "egress"))
    deadline = time.monotonic() + timeout
    while True:
        problems: list[str] = []
        for mesh, role in roles:
            client = clients[mesh]
            for pod in gateway_pods(bridge, mesh, role, client):
                md = pod["metadata"]
                dump = fetch_config_dump(client, md["namespace"], md["name"], mask="dynamic_active_secrets")
                problems += served_problems(
                    f"{client.context}: pod {md['namespace']}/{md['name']}",
                    role,
                    dump,
                    credentials[mesh],
                    served_credential(bridge, mesh, role),
                )
        if not problems or time.monotonic() >= deadline:
            return problems
        time.sleep(interval)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _port(ex: Export) -> str:
    return "" if ex.port == 80 else f":{ex.port}"


def _hop(bridge: Bridge, mesh: str, ex: Export) -> str:
    egress = "ztunnel → waypoint" if bridge.spec.meshes[mesh].dataplane == "ambient" else "egress gateway"
    return f"{mesh}: app → {egress} → {ex.from_} ingress gateway → backend"


def _target_ports(client: KubeClient, namespace: str, name: str) -> dict[int, int]:
    svc = client.get(ResourceRef("v1", "Service", namespace, name))
    out: dict[int, int] = {}
    for p in ((svc or {}).get("spec") or {}).get("ports") or []:
        target = p.get("targetPort", p.get("port"))
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            out[int(p["port"])] = int(target)
    return out


# -- routes ----------------------------------------------------------------------------------------------


def _routes_condition(
    mesh: str, role: str, client: KubeClient, expected: list[ExpectedRoute], started: float
) -> Condition:
    check = f"{role.capitalize()}GatewayRoutes"
    hop = f"{mesh}: {role} gateway"
    if not expected:
        return Condition(
            check, "True", "NothingExpected", "no Gateway server of this bridge selects it", hop, _ms(started)
        )
    e0 = expected[0]
    problems = check_routes({mesh: client}, {(mesh, e0.namespace, e0.selector_text): expected})
    names = ", ".join(sorted({e.route for e in expected}))
    if not problems:
        return Condition(
            check, "True", "RoutesPresent", f"every Ready pod in {e0.namespace} serves {names}", hop, _ms(started)
        )
    detail = "; ".join(f"{where}: {', '.join(what)}" for where, what in problems.items())
    reason = "NoReadyPod" if any("no Ready gateway pod" in w for v in problems.values() for w in v) else "RouteMissing"
    return Condition(
        check,
        "False",
        reason,
        f"{detail}. Without {names} the gateway answers 404 (NR). Look at: the Gateway's selector against the pod "
        f"labels ('meshbridge status'), 'istioctl --context {client.context} proxy-status' (SYNCED?), the istiod "
        "logs, and whether the VirtualService names this Gateway in 'gateways'",
        hop,
        _ms(started),
    )


# -- the call from the app -------------------------------------------------------------------------------


def _call(
    bridge: Bridge,
    mesh: str,
    client: KubeClient,
    ex: Export,
    workload: str | None,
    path: str,
    headers: tuple[tuple[str, str], ...],
    timeout: float,
    started: float,
) -> Condition:
    hop = _hop(bridge, mesh, ex)
    if workload:
        ns, _, name = workload.partition("/")
        app = App.model_construct(name=name, namespace=ns, labels={})  # its Deployment's selector finds its pod
    else:
        app = bridge.spec.meshes[mesh].callers()[0]
    pod = find_caller_pod(client, app)
    if pod is None:
        return Condition(
            "AppReachesExport",
            "Unknown",
            "NoCallerPod",
            f"no Ready pod of {app.namespace}/{app.name} in {client.context}. Fix: deploy the article's sleep app "
            f"(curlimages/curl) in namespace {app.namespace}, or name a workload with curl (--workload NS/DEPLOY)",
            hop,
            _ms(started),
        )
    pname = str(pod["metadata"]["name"])
    if bridge.spec.meshes[mesh].dataplane == "ambient":
        if not ambient_captured(pod):
            return Condition(
                "AppReachesExport",
                "False",
                "NotCaptured",
                f"pod {app.namespace}/{pname} is not in the ambient mesh (no {AMBIENT_REDIRECTION}: enabled, which "
                f"istio-cni sets on the pods ztunnel captures), so its call to {ex.import_host} bypasses the waypoint "
                f"and cannot resolve or reach it. Fix: label namespace {app.namespace} "
                "'istio.io/dataplane-mode=ambient' (new pods are captured; restart the others if they are not)",
                hop,
                _ms(started),
            )
    elif not has_sidecar(pod):
        return Condition(
            "AppReachesExport",
            "False",
            "NoSidecar",
            f"pod {app.namespace}/{pname} has no istio-proxy sidecar, so its call to {ex.import_host} bypasses the "
            f"mesh and cannot resolve or reach it. Fix: label namespace {app.namespace} 'istio.io/rev="
            f"{bridge.spec.meshes[mesh].istio.revision or 'default'}' (or istio-injection=enabled) and restart the pod",
            hop,
            _ms(started),
        )
    url = f"http://{ex.import_host}{_port(ex)}{path}"
    ran = _curl_in(client, pod, app, url, headers, timeout)
    if isinstance(ran, str):
        return Condition("AppReachesExport", "Unknown", "NoExecOnTwin", ran, hop, _ms(started))
    status, reason, message = diagnose(ran[0], url, ex)
    return Condition("AppReachesExport", status, reason, f"{message} ({ran[1]})", hop, _ms(started))


def _curl_in(
    client: KubeClient, pod: Document, app: App, url: str, headers: tuple[tuple[str, str], ...], timeout: float
) -> tuple[ExecResult, str] | str:
    """curl ``url`` in the app's ``pod``: what it printed and how it was run. On a pod of the local twin, whose exec
    no kubelet serves, it is sent as the app through its sidecar as 'local curl' does (:data:`TWIN_APP_VIEW`), or,
    without that record, the message saying why it was not run."""
    pname = str(pod["metadata"]["name"])
    sent = [arg for name, value in headers for arg in ("-H", f"{name}: {value}")]
    command = ["curl", "-sS", "-i", "--max-time", f"{timeout:g}", *sent, "-w", _MARK + "%{http_code}\n", url]
    try:
        result = client.exec(app.namespace, pname, command, container=app_container(pod), timeout=timeout + 15)
    except KubeError as e:
        if not twin_pod(client, pod):
            raise
        view = (pod["metadata"].get("annotations") or {}).get(TWIN_APP_VIEW)
        if not view:
            return _no_exec(pod, e)
        return send_as_app(json.loads(view), url, timeout, headers), (
            f"{client.context}: no kubelet serves exec into {app.namespace}/{pname}; sent as its app through its "
            "sidecar by the local twin, as 'meshbridge local curl' does"
        )
    return result, f"{client.context}: kubectl exec -n {app.namespace} {pname} -- {shlex.join([*command[:-3], url])}"


def send_as_app(
    view: dict[str, Any], url: str, timeout: float, headers: tuple[tuple[str, str], ...] = ()
) -> ExecResult:
    """``url`` sent as the app the local twin recorded (:func:`meshbridge.local.curl.curl`), printed as ``curl -i``
    with the check's marker prints it, or curl's exit code and message."""
    from meshbridge.local.curl import CurlError, curl, view_from_doc

    try:
        r = curl(view_from_doc(view), url, headers=list(headers), timeout=timeout)
    except CurlError as e:
        return ExecResult("", str(e), e.code)
    head = "".join(f"{k}: {v}\r\n" for k, v in r.headers)
    text = f"{r.http_version} {r.status} {r.reason}\r\n{head}\r\n{r.body.decode('utf-8', 'replace')}"
    return ExecResult(f"{text}{_MARK}{r.status}\n", "", 0)


def twin_pod(client: KubeClient, pod: Document) -> bool:
    """Whether ``pod`` is one the local twin represents on its own API server (no kubelet runs it)."""
    return TWIN_ENVOY_ADMIN in (pod["metadata"].get("annotations") or {}) and on_this_machine(client)


def _no_exec(pod: Document, e: KubeError) -> str:
    """Why the app's curl is not run on a pod of the local twin on the real control plane that does not record how
    to send as its app (:data:`TWIN_APP_VIEW`), and the way it is."""
    name = f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"
    refused = str(e).splitlines()[0]
    return (
        f"pod {name} is represented by the local twin on the real control plane: no kubelet runs it, so nothing "
        f"serves an exec into it ({refused}) and the app's curl was not run. Fix: check the path from the app with "
        "'meshbridge verify -f BRIDGE' without --context (the local twin's verify sends the request as the app, "
        "through its sidecar), or 'meshbridge local curl URL'"
    )


def find_caller_pod(client: KubeClient, app: App) -> Document | None:
    """A Ready pod of the app's Deployment (its ``spec.selector``), else of the app's labels; ``None`` if none."""
    deploy = client.get(ResourceRef("apps/v1", "Deployment", app.namespace, app.name))
    labels = ((deploy or {}).get("spec") or {}).get("selector", {}).get("matchLabels") or dict(app.labels)
    if not labels:
        return None
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    pods = [p for p in client.list_objects(PODS, namespace=app.namespace, label_selector=selector) if pod_ready(p)]
    return pods[0] if pods else None


AMBIENT_REDIRECTION = "ambient.istio.io/redirection"
"""The annotation istio-cni sets to ``enabled`` on a pod whose traffic ztunnel captures."""


def ambient_captured(pod: Document) -> bool:
    """True when ztunnel captures the pod's traffic (istio-cni's ``ambient.istio.io/redirection: enabled``)."""
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(AMBIENT_REDIRECTION) == "enabled"


def has_sidecar(pod: Document) -> bool:
    """True when the pod runs ``istio-proxy`` (a container, or a native sidecar init container)."""
    spec = pod.get("spec") or {}
    return any(
        c.get("name") == "istio-proxy" for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
    )


def app_container(pod: Document) -> str | None:
    """The container to exec into: the ``kubectl.kubernetes.io/default-container`` annotation, else the first
    container that is not istio-proxy."""
    md = pod.get("metadata") or {}
    default = (md.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if default:
        return str(default)
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") != "istio-proxy":
            return str(c.get("name"))
    return None


def diagnose(result: ExecResult, url: str, ex: Export) -> tuple[Status, str, str]:
    """Turn curl's outcome into ``(status, reason, message)``; the message names the hop and what to look at (pure).

    Args:
        result: what ``curl -sS -i -w <marker>%{http_code}`` printed and its exit code.
        url: the URL requested.
        ex: the export called.
    """
    failed = _curl_failure(result, url, ex)
    if failed is not None:
        return failed
    text, _, code_text = result.stdout.rpartition(_MARK.strip("\n"))
    code = int(code_text.strip() or 0) if code_text.strip().isdigit() else 0
    headers, body = _split_response(text)
    return _diagnose_answer(code, headers, body.strip(), url, ex)


def _curl_failure(result: ExecResult, url: str, ex: Export) -> tuple[Status, str, str] | None:
    """The diagnosis of a curl that got no HTTP answer (it did not run, timed out, or exited non-zero);
    ``None`` when it got one."""
    if result.failure:
        return (
            "Unknown",
            "ExecFailed",
            f"the command could not run: {result.failure}. Fix: pick a workload whose container has curl (--workload)",
        )
    if result.exit_code is None:
        return "Unknown", "ExecTimeout", f"curl {url} did not finish; the exec stream was closed"
    err = result.stderr.strip()
    if result.exit_code == 6:
        return (
            "False",
            "DnsResolutionFailed",
            f"could not resolve {ex.import_host} in the app pod (curl exit 6: {err}). Istio's DNS proxy answers "
            "made-up hosts only with ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE on (lint MB101): check "
            "them in the mesh config, and that the importer's ServiceEntry exists",
        )
    if result.exit_code == 7:
        return (
            "False",
            "ConnectFailed",
            f"connecting to {url} failed (curl exit 7: {err}); is the sidecar capturing traffic?",
        )
    if result.exit_code == 28:
        return (
            "False",
            "Timeout",
            f"no answer from {url} in time (curl exit 28). Hop: egress gateway → exporter's load balancer; check that "
            f"the exporter's ingress gateway address is reachable from the importer (firewall, security groups) and "
            f"listens on {ex.gateway_port}",
        )
    if result.exit_code != 0:
        return "False", "CurlFailed", f"curl {url} failed with exit code {result.exit_code}: {err}"
    return None


def _diagnose_answer(code: int, headers: dict[str, str], b: str, url: str, ex: Export) -> tuple[Status, str, str]:
    """The diagnosis of an HTTP answer: its status, headers (lower-case names) and body ``b`` (stripped)."""
    server = headers.get("server", "")
    upstream = "x-envoy-upstream-service-time" in headers
    if 200 <= code < 400:
        took = f", upstream {headers['x-envoy-upstream-service-time']} ms" if upstream else ""
        return "True", "Reachable", f"HTTP {code} from {url} (server: {server or '?'}{took})"
    if code == 404 and not upstream:
        return (
            "False",
            "RouteNotFound",
            f"HTTP 404 from {server or 'a proxy'} without calling upstream: Envoy flag NR, no route for {ex.host}. "
            "Hop: the egress gateway (VirtualService direct-…-through-egress-gateway, gateway leg) or the exporter's "
            "ingress gateway (vs-… bound to its Gateway). Look at: 'meshbridge proxy-config routes' on both gateways",
        )
    if code == 503 and "upstream connect error" in b:
        detail = b.split("reset reason:", 1)[-1].strip() if "reset reason:" in b else b
        if "TLS" in b or "tls" in b or "CERTIFICATE" in b:
            return (
                "False",
                "HandshakeRefused",
                f"HTTP 503, Envoy flag UF: the mutual TLS handshake between the gateways failed ({detail}). "
                "Hop: egress gateway → exporter. Look at: 'meshbridge certs check', the credentialName Secret in "
                "the egress and ingress gateways' namespaces (lint MB207), and that the DestinationRule's sni is a "
                "host of the exporter's Gateway (lint MB303)",
            )
        return (
            "False",
            "UpstreamConnectFailure",
            f"HTTP 503, Envoy flag UF: {detail}. Hop: egress gateway → exporter's load balancer, or exporter → "
            "backend. Look at: the exporter address in the importer's ServiceEntry, and the backend's reachability",
        )
    if code == 503 and "no healthy upstream" in b:
        return (
            "False",
            "NoHealthyUpstream",
            "HTTP 503, Envoy flag UH: no endpoint. Hop: egress gateway (the exporter's address does not resolve) or "
            "exporter (the backend host does not resolve). Look at: the ServiceEntry endpoints",
        )
    if code == 503 and not upstream:
        return (
            "False",
            "ClusterNotFound",
            "HTTP 503 without calling upstream: Envoy flag NC (no cluster) or a missing secret. Look at: the "
            "DestinationRule subset of the egress gateway (lint MB110), PILOT_FILTER_GATEWAY_CLUSTER_CONFIG and the "
            "VirtualService binding (lint MB109), 'meshbridge proxy-config clusters'",
        )
    if code == 400:
        return (
            "False",
            "PlaintextToTlsPort",
            "HTTP 400: plain HTTP probably reached a TLS port, i.e. the mutual TLS was not originated where the "
            "traffic leaves (lint MB201). Look at: the DestinationRule with credentialName must apply at the egress "
            "gateway, and the mesh leg must route to the egress gateway",
        )
    if code == 502:
        return (
            "False",
            "BadGateway",
            f"HTTP 502 from {server or 'upstream'}: an ALB answers 502 when the Lambda's response breaks its contract "
            "(statusCode, headers) or the function failed. Look at: the Lambda's logs",
        )
    return "False", "UnexpectedStatus", f"HTTP {code} from {url} (server: {server or '?'}); expected 200"


def _split_response(text: str) -> tuple[dict[str, str], str]:
    """Headers (lower-case names, the last response block) and body of ``curl -i`` output."""
    text = text.replace("\r\n", "\n")
    blocks = text.split("\n\n")
    head_end = 0
    for i, block in enumerate(blocks):
        if block.startswith("HTTP/"):
            head_end = i
        else:
            break
    head = blocks[head_end] if blocks else ""
    body = "\n\n".join(blocks[head_end + 1 :])
    headers: dict[str, str] = {}
    for line in head.split("\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, body
