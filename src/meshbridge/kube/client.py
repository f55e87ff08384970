"""The thin seam over the official ``kubernetes`` client: one :class:`KubeClient` per cluster (context).

Reads and writes go through ``ApiClient.param_serialize`` + ``ApiClient.call_api`` with explicit paths
(see :mod:`meshbridge.kube.resources` for why not the ``DynamicClient``); exec and port-forward go through
``kubernetes.stream``. Authentication, TLS, proxies and kubeconfig exec plugins (``aws eks get-token``,
``gke-gcloud-auth-plugin``) are the client's. Every error leaves as a :class:`~meshbridge.errors.KubeError`
naming the context and the object (:func:`meshbridge.kube.errors.translate`).

What is sent, so a reviewer can check it against RBAC and audit logs:

* get: ``GET <object path>``; list: ``GET <collection>?labelSelector=...&limit=500[&continue=...]``, page after
  page until the server returns no ``continue`` token (:data:`PAGE_SIZE` objects a page);
* apply: ``PATCH <object path>?fieldManager=meshbridge[&force=true][&dryRun=All]`` with
  ``Content-Type: application/apply-patch+yaml`` (server-side apply; the body is JSON, which is YAML);
* delete: ``DELETE <object path>[?dryRun=All]`` with ``DeleteOptions`` whose ``preconditions.uid`` is the
  object that was listed, so a same-named object created meanwhile is never deleted;
* exec: ``GET .../pods/<pod>/exec?command=...`` (WebSocket);
* port-forward: ``GET .../pods/<pod>/portforward?ports=15000`` (WebSocket), then a plain
  HTTP/1.1 request (``http.client``) to Envoy's admin port through the tunnel.

How it behaves toward the server:

* an answer 429 (API Priority and Fairness, a busy server), 502/503/504, or another 5xx that says when to
  come back, is retried, at most :data:`RETRIES` times, after the ``Retry-After`` the server asked for
  (capped at :data:`RETRY_AFTER_CAP` seconds) or a doubling pause; each retry is announced through
  ``notify``; an answer still transient after the last retry is the error, which counts the attempts. Every
  request meshbridge sends is idempotent (reads, server-side apply, uid-guarded deletes), so a retry never does
  a thing twice. These are the only retries of an answer: the official client's ``urllib3`` pool would resend a
  GET or DELETE answered 429 or 503 with ``Retry-After`` up to 3 times itself, unannounced, inside each of ours
  (:data:`TRANSPORT_RETRIES`);
* the server's ``Warning:`` headers (a deprecated API version, istiod's validation warnings) are passed to
  ``notify``, naming the cluster and the object, and kept in :attr:`KubeClient.warnings`;
* the WebSocket handshake of exec and port-forward is bounded by the request timeout (the official client
  sets none: a server that accepts the connection and never answers would hang the command).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward, stream, ws_client
from urllib3.util.retry import Retry

from meshbridge.errors import KubeError
from meshbridge.kube.errors import KubeApiError, http_error, parse_status, translate
from meshbridge.kube.kubeconfig import KubeconfigFiles, one_line
from meshbridge.kube.ownership import FIELD_MANAGER, takeover_patch
from meshbridge.kube.resources import ResourceRef, ResourceType

APPLY_PATCH = "application/apply-patch+yaml"
ENVOY_ADMIN_PORT = 15000
TWIN_ENVOY_ADMIN = "meshbridge.io/twin-envoy-admin"
"""The annotation by which the local twin on the real control plane records, on each pod it represents (no kubelet
runs them: no port-forward reaches them), its Envoy admin's ``127.0.0.1:<port>``; :func:`fetch_config_dump` reads
there in place of the port-forward when the API server is on this machine (docs/fidelity.md)."""
TWIN_APP_VIEW = "meshbridge.io/twin-app-view"
"""The annotation by which the local twin on the real control plane records, on each app pod it represents, how to
send as that app (its sidecar's address and outbound listeners, its agent's names: :func:`meshbridge.local.curl.
view_doc`); 'verify --context' sends its request so, as 'local curl' does, where no kubelet serves exec."""
PAGE_SIZE = 500
"""Objects asked for per list request (``limit``); the server says with a ``continue`` token that more follow."""
RETRIES = 4
"""How many times a request answered 429 or 500/502/503/504 is sent again before the answer is the error."""
RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers retried: the server is busy (429: API Priority and Fairness, max in flight) or a gateway in front of it
is (502/503/504: a cloud load balancer, the API server's own timeout). A 500 is retried only when the server
says when (``Retry-After``): a real API server answers 500 for deterministic failures too (an apply whose field
the CRD's schema does not declare), which a retry would only repeat."""
RETRY_AFTER_CAP = 10.0
"""The longest pause between two attempts, whatever ``Retry-After`` asks (seconds)."""
_FIRST_PAUSE = 0.5
TRANSPORT_RETRIES = Retry.DEFAULT.new(status=0, status_forcelist=(), respect_retry_after_header=False)
"""``urllib3``'s retries in the official client's pool: as its default (3, for a refused connection or a dropped
read) but never for an answer, which :meth:`KubeClient.request` alone retries (as the client's own client-go mode
sets them for its reads)."""
_HANDSHAKE_LOCK = threading.Lock()

Document = dict[str, Any]


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a pod produced.

    Attributes:
        stdout: its standard output (UTF-8, undecodable bytes replaced).
        stderr: its standard error.
        exit_code: its exit status; ``None`` when it did not finish within the timeout.
        failure: the API server's message when the command could not run at all (no such executable,
            no such container), else ``""``.
    """

    stdout: str
    stderr: str
    exit_code: int | None
    failure: str = ""


class KubeClient:
    """One cluster, reached through one kubeconfig context (or an explicit ``Configuration``).

    Args:
        api_client: the official client's ``ApiClient`` for this cluster.
        context: the name used in messages (the kubeconfig context).
        request_timeout: seconds one API request (and one stream handshake) may take before it fails with a
            timeout.
        notify: receives one line per ``Warning:`` header the server sends and per retry (default: nothing is
            printed; :attr:`warnings` keeps the warnings either way).
        retries: how many times a 429 or 5xx answer is retried (:data:`RETRIES`).
        sleep: waits between attempts (tests pass a fake).
        page_size: objects per list request (:data:`PAGE_SIZE`; tests pass a small one to make the server page).

    Attributes:
        warnings: every warning the server sent, as announced (``cluster 'eks': apply Gateway ...: ...``).
    """

    def __init__(
        self,
        api_client: ApiClient,
        context: str,
        *,
        request_timeout: float = 30.0,
        notify: Callable[[str], None] | None = None,
        retries: int = RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._api = api_client
        self.context = context
        self.request_timeout = request_timeout
        self.notify = notify
        self.retries = retries
        self.sleep = sleep
        self.page_size = page_size
        self.warnings: list[str] = []

    # -- construction ------------------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls,
        context: str,
        *,
        kubeconfig: Path | None = None,
        request_timeout: float = 30.0,
        notify: Callable[[str], None] | None = None,
    ) -> KubeClient:
        """A client for ``context`` of the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config`` by default).

        Refreshed tokens are never written back into the kubeconfig (``persist_config=False``).

        Raises:
            KubeError: the kubeconfig does not exist or cannot be read, has no such context (the message lists
                those it has), or the context's cluster or credentials cannot be loaded.
        """
        files = KubeconfigFiles.locate(kubeconfig)
        known = files.contexts()
        if context not in known:
            raise files.missing_contexts([(context, "")], known)
        configuration = Configuration()
        try:
            kube_config.load_kube_config(
                config_file=files.loader_arg,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except Exception as e:  # the loader raises ConfigException, OSError, ValueError, exec-plugin errors
            raise KubeError(
                f"{files.describe()}: context {context!r} cannot be used: {one_line(e)}. Fix: correct its cluster, "
                f"user and credentials plugin, then check 'kubectl --context {context} get --raw /version'"
            ) from e
        return cls(_api_client(configuration), context, request_timeout=request_timeout, notify=notify)

    @classmethod
    def from_configuration(
        cls,
        configuration: Configuration,
        context: str,
        *,
        request_timeout: float = 30.0,
        notify: Callable[[str], None] | None = None,
        retries: int = RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_SIZE,
    ) -> KubeClient:
        """A client for an explicit ``kubernetes.client.Configuration`` (tests point it at a local server)."""
        return cls(
            _api_client(configuration),
            context,
            request_timeout=request_timeout,
            notify=notify,
            retries=retries,
            sleep=sleep,
            page_size=page_size,
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def host(self) -> str:
        """The API server URL."""
        return str(self._api.configuration.host)

    # -- REST --------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str | None = None,
        what: str,
        verb: str,
    ) -> Any:
        """One API call; the parsed JSON answer.

        Args:
            method: ``GET``, ``PATCH``, ``DELETE`` ...
            path: the REST path, e.g. ``/api/v1/namespaces/istio-ingress/secrets/mtls-credential``.
            query: query parameters, in order.
            body: a JSON-serialisable body.
            content_type: the body's content type (default ``application/json``).
            what: the object, for messages.
            verb: the attempted action, for messages.

        Raises:
            KubeApiError: the server answered ≥ 400 (a transient answer, see :data:`RETRY_STATUSES`, only once
                :attr:`retries` retries were answered the same way; the message then counts the attempts), or did
                not answer (timeout, connection, TLS).
        """
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        attempt = 0
        while True:
            try:
                req = self._api.param_serialize(
                    method=method,
                    resource_path=path,
                    query_params=query or [],
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                )
                resp = self._api.call_api(*req, _request_timeout=self.request_timeout)
                raw = resp.read()
            except Exception as e:
                raise translate(e, context=self.context, what=what, verb=verb) from e
            self._warnings(resp.headers, what, verb)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
            if 200 <= resp.status <= 299:
                break
            reason, message = parse_status(text, str(resp.reason or ""))
            retry_after = resp.headers.get("Retry-After") or _retry_after_seconds(text)
            if _transient(resp.status, retry_after) and attempt < self.retries:
                attempt += 1
                pause = retry_pause(retry_after, attempt)
                self._notify(
                    f"cluster {self.context!r}: {verb} {what}: {resp.status} {reason or 'Error'}"
                    f"{': ' + message if message else ''}; retrying in {pause:g} s "
                    f"(retry {attempt} of {self.retries})"
                )
                self.sleep(pause)
                continue
            raise http_error(resp.status, reason, message, context=self.context, what=what, verb=verb, retries=attempt)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as e:
            raise KubeError(
                f"cluster {self.context!r}: {verb} {what}: the API server answered something that is not JSON "
                f"({text[:120]!r}). Fix: check that {self.host} is a Kubernetes API server"
            ) from e

    def _notify(self, line: str) -> None:
        if self.notify is not None:
            self.notify(line)

    def _warnings(self, headers: Any, what: str, verb: str) -> None:
        """Announce each ``Warning:`` header of an answer (RFC 7234 ``299 - "text"``, as the API server sends)."""
        values = headers.getlist("Warning") if hasattr(headers, "getlist") else []
        for value in values:
            for text in warning_texts(str(value)):
                line = f"cluster {self.context!r}: {verb} {what}: warning: {text}"
                self.warnings.append(line)
                self._notify(line)

    def version(self) -> Document:
        """``GET /version``: the server's version; the cheapest proof that the context answers.

        Raises:
            KubeApiError: the cluster does not answer or refuses the credentials.
        """
        out = self.request("GET", "/version", what="the API server version (/version)", verb="get")
        return out if isinstance(out, dict) else {}

    def get(self, ref: ResourceRef) -> Document | None:
        """The live object, or ``None`` when it does not exist (404).

        Raises:
            KubeApiError: any other failure (403, timeout ...).
        """
        try:
            doc = self.request("GET", ref.path, what=str(ref), verb="get")
        except KubeApiError as e:
            if e.status == 404:
                return None
            raise
        return _typed(doc, ref.api_version, ref.kind)

    def list_objects(
        self, rtype: ResourceType, *, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Document]:
        """Every object of ``rtype`` (in ``namespace``, or cluster-wide): :attr:`page_size` a request, following
        ``continue`` tokens until the server sends none.

        Raises:
            KubeApiError: the list failed (403 when the user may not list here; 404 when the API is not served).
        """
        where = f"in namespace {namespace}" if namespace else "in all namespaces"
        sel = f" labelled {label_selector}" if label_selector else ""
        what = f"{rtype.plural}.{rtype.group or 'core'}{sel} {where}"
        items: list[Document] = []
        token = ""
        while True:
            query = [("limit", str(self.page_size))]
            if label_selector:
                query.insert(0, ("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = self.request("GET", rtype.collection_path(namespace), query=query, what=what, verb="list")
            page = page if isinstance(page, dict) else {}
            items += [_typed(i, rtype.api_version, rtype.kind) for i in page.get("items") or []]
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                return items

    def apply(self, doc: Document, *, dry_run: bool = False, force: bool = False) -> Document:
        """Server-side apply of ``doc`` with field manager ``meshbridge``; the object as the server stored it.

        Args:
            doc: the full desired object (apiVersion, kind, metadata, spec/data).
            dry_run: ``dryRun=All``: validate, admit and default, but persist nothing.
            force: take over fields that another field manager owns (``force=true``); off by default.

        Raises:
            KubeApiError: 403, 404 (the namespace or the CRD is missing), 409 (another manager owns a field),
                422 (invalid), timeouts.
        """
        ref = ResourceRef.of(doc)
        query = [("fieldManager", FIELD_MANAGER)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        out = self.request(
            "PATCH",
            ref.path,
            query=query,
            body=doc,
            content_type=APPLY_PATCH,
            what=str(ref),
            verb="apply (dry run)" if dry_run else "apply",
        )
        return _typed(out, ref.api_version, ref.kind)

    def json_patch(self, ref: ResourceRef, operations: list[Document], *, verb: str = "patch") -> Document:
        """``PATCH`` ``ref`` with a JSON patch (``application/json-patch+json``, field manager ``meshbridge``).

        Raises:
            KubeApiError: 403; 409 when a ``test`` operation fails (the object changed meanwhile); 422.
        """
        out = self.request(
            "PATCH",
            ref.path,
            query=[("fieldManager", FIELD_MANAGER)],
            body=operations,
            content_type="application/json-patch+json",
            what=str(ref),
            verb=verb,
        )
        return _typed(out, ref.api_version, ref.kind)

    def take_over(self, ref: ResourceRef) -> bool:
        """Move a client-side ``kubectl apply``'s ownership of ``ref`` to meshbridge (see
        :mod:`meshbridge.kube.ownership`); ``True`` if there was any to move.

        Raises:
            KubeApiError: reading or patching failed (409: the object changed between the two; re-run).
        """
        live = self.get(ref)
        ops = takeover_patch(live) if live is not None else []
        if not ops:
            return False
        self.json_patch(ref, ops, verb="take over (from a client-side kubectl apply)")
        return True

    def delete(self, ref: ResourceRef, *, uid: str | None = None, dry_run: bool = False) -> bool:
        """Delete one object; ``True`` if it was deleted, ``False`` if it was already gone.

        Args:
            ref: the object.
            uid: when given, delete only if the live object still has this uid (``preconditions.uid``).
            dry_run: a server-side dry run (``dryRun: [All]``): admission and the preconditions are checked,
                nothing is removed. It goes in the DeleteOptions body: an API server that is sent a body reads
                every option from it and ignores the query string, so ``?dryRun=All`` beside a body deletes for real.

        Raises:
            KubeApiError: 403; 409 when the uid precondition fails (the object was replaced meanwhile).
        """
        body: Document = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        if dry_run:
            body["dryRun"] = ["All"]
        try:
            self.request("DELETE", ref.path, body=body, what=str(ref), verb="delete")
        except KubeApiError as e:
            if e.status == 404:
                return False
            raise
        return True

    # -- streams -----------------------------------------------------------------------------------------

    def exec(
        self, namespace: str, pod: str, command: list[str], *, container: str | None = None, timeout: float = 30.0
    ) -> ExecResult:
        """Run ``command`` in a container of ``pod`` (no stdin, no TTY), like ``kubectl exec``.

        Args:
            namespace: the pod's namespace.
            pod: the pod's name.
            command: argv (not run through a shell).
            container: the container; ``None`` lets the API server pick (only valid for one container).
            timeout: seconds to wait for the command to finish; on expiry ``exit_code`` is ``None``.

        Raises:
            KubeApiError: exec was refused (403: no ``pods/exec`` permission; 404: no such pod) or the
                stream failed.
        """
        what = f"pod {namespace}/{pod}" + (f" container {container}" if container else "")
        core = CoreV1Api(self._api)
        try:
            with handshake_timeout(self.request_timeout):
                ws = stream(
                    core.connect_get_namespaced_pod_exec,
                    pod,
                    namespace,
                    command=command,
                    container=container,
                    stderr=True,
                    stdin=False,
                    stdout=True,
                    tty=False,
                    _preload_content=False,
                )
        except Exception as e:
            raise self._stream_error(e, what, "exec into", "pods/exec") from e
        try:
            ws.run_forever(timeout=timeout)
            finished = not ws.is_open()
            stdout = str(ws.read_channel(1))
            stderr = str(ws.read_channel(2))
            status_text = str(ws.read_channel(3))
        except Exception as e:
            raise translate(e, context=self.context, what=what, verb="exec into") from e
        finally:
            ws.close()
        if not finished:
            return ExecResult(stdout, stderr, None)
        code, failure = _exec_status(status_text)
        return ExecResult(stdout, stderr, code, failure)

    def http_get(self, namespace: str, pod: str, port: int, path: str, *, timeout: float = 30.0) -> tuple[int, bytes]:
        """``GET path`` on ``port`` inside ``pod`` through the API server's port-forward; ``(status, body)``.

        The pod's localhost is reached (Envoy's admin listens on 127.0.0.1:15000), so nothing is exposed.

        Raises:
            KubeApiError: the port-forward was refused (403: no ``pods/portforward`` permission; 404: no such
                pod), nothing listens on ``port``, or no answer came within ``timeout`` seconds.
        """
        what = f"port {port} of pod {namespace}/{pod}"
        core = CoreV1Api(self._api)
        try:
            with handshake_timeout(self.request_timeout):
                pf = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
        except Exception as e:
            raise self._stream_error(e, what, "port-forward to", "pods/portforward") from e
        conn = http.client.HTTPConnection("localhost", port, timeout=timeout)
        try:
            sock = pf.socket(port)
            sock.settimeout(timeout)
            conn.sock = sock
            conn.request("GET", path, headers={"Connection": "close", "Accept": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except Exception as e:
            detail = pf.error(port) if isinstance(e, http.client.HTTPException | OSError) else None
            if detail:
                raise KubeApiError(
                    f"cluster {self.context!r}: port-forward to {what} failed: {detail.strip()}; Fix: check that "
                    "the container listens on that port (is this an Envoy-based Istio gateway?)",
                    context=self.context,
                    object=what,
                    status=0,
                    reason="PortForwardFailed",
                    server_message=detail.strip(),
                ) from e
            raise translate(e, context=self.context, what=what, verb=f"GET {path} through a port-forward to") from e
        finally:
            conn.close()
            pf.close()

    def _stream_error(self, e: Exception, what: str, verb: str, resource: str) -> KubeError:
        """Exec / port-forward handshakes fail as ``ApiException(status=0)`` wrapping the HTTP status; unwrap it.

        A 403 names the permission: the client opens the stream with a GET, and the API server (1.35+) also
        checks ``create``, whose refusal comes with an empty reason (``pods "x" is forbidden: ``).
        """
        if isinstance(e, ApiException) and not e.status:
            m = re.search(r"Handshake status (\d{3}) ?([^-]*)", str(e.reason or ""))
            if m:
                body = str(e.reason).rsplit(" -+-+- ", 1)[-1]
                reason, message = parse_status(body, m.group(2).strip())
                if m.group(1) == "403":
                    message = f"{message.rstrip(': ')} (the stream needs both get and create on {resource})"
                return http_error(int(m.group(1)), reason, message, context=self.context, what=what, verb=verb)
            if "timed out" in str(e.reason or "").lower():  # the handshake's bound (handshake_timeout)
                return translate(
                    TimeoutError(f"no answer to the WebSocket handshake within {self.request_timeout:g} s"),
                    context=self.context,
                    what=what,
                    verb=verb,
                )
        return translate(e, context=self.context, what=what, verb=verb)


def apply_raw(client: KubeClient, path: str, doc: Mapping[str, Any], *, manager: str) -> Any:
    """Server-side apply of ``doc`` at ``path`` (any kind, no :class:`ResourceType` needed) with field manager
    ``manager``, forcing conflicts: how the test clusters write what a cluster's other owners would."""
    return client.request(
        "PATCH",
        path,
        query=[("fieldManager", manager), ("force", "true")],
        body=dict(doc),
        content_type=APPLY_PATCH,
        what=f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}",
        verb="apply",
    )


def fetch_config_dump(
    cluster: KubeClient | str,
    namespace: str,
    pod: str,
    *,
    mask: str | None = None,
    include_eds: bool = False,
    timeout: float = 30.0,
) -> Document:
    """Envoy's ``/config_dump`` of a gateway pod, read through the API server's port-forward to port 15000.

    This is the one place meshbridge reads a proxy's configuration on a real cluster; ``proxy-config`` and
    ``verify`` print what it returns.

    Args:
        cluster: a :class:`KubeClient`, or a kubeconfig context name.
        namespace: the pod's namespace.
        pod: the pod's name.
        mask: an Envoy field mask applied to each top-level dump, e.g. ``dynamic_route_configs``.
        include_eds: also dump endpoints (``include_eds``).
        timeout: seconds for the whole fetch.

    Returns:
        The parsed JSON: ``{"configs": [{"@type": "...BootstrapConfigDump", ...}, ...]}``.

    Raises:
        KubeError: the pod cannot be reached, Envoy's admin answered an error, or the answer is not JSON.
    """
    client = KubeClient.from_kubeconfig(cluster) if isinstance(cluster, str) else cluster
    query = [f"mask={mask}"] if mask else []
    if include_eds:
        query.append("include_eds")
    path = "/config_dump" + ("?" + "&".join(query) if query else "")
    try:
        status, body = client.http_get(namespace, pod, ENVOY_ADMIN_PORT, path, timeout=timeout)
    except KubeApiError as e:
        admin = _twin_admin(client, namespace, pod) if e.status == 404 else None
        if admin is None:
            raise
        status, body = _twin_admin_get(admin, path, f"pod {namespace}/{pod}", timeout)
    finally:
        if isinstance(cluster, str):
            client.close()
    where = f"cluster {client.context!r}: Envoy admin {path} of pod {namespace}/{pod}"
    if status != 200:
        raise KubeError(f"{where} answered {status}: {body[:200]!r}. Fix: check the istio-proxy container's logs")
    try:
        dump = json.loads(body)
    except ValueError as e:
        raise KubeError(f"{where} is not JSON ({body[:80]!r}). Fix: is port 15000 Envoy's admin port?") from e
    if not isinstance(dump, dict):
        raise KubeError(f"{where} is not a config dump (a JSON {type(dump).__name__})")
    return dump


def _twin_admin(client: KubeClient, namespace: str, pod: str) -> str | None:
    """The Envoy admin address the local twin recorded on ``pod`` (:data:`TWIN_ENVOY_ADMIN`), when ``client``'s API
    server is on this machine (a loopback address: the twin's own); ``None`` otherwise or when it cannot be read."""
    if not on_this_machine(client):
        return None
    try:  # listed, as gateway_pods lists them: render --rbac grants list on pods, not get
        found = client.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query=[("fieldSelector", f"metadata.name={pod}")],
            what=f"pod {namespace}/{pod}",
            verb="list",
        )
    except KubeError:
        return None
    for doc in found.get("items") or []:
        admin = (doc.get("metadata", {}).get("annotations") or {}).get(TWIN_ENVOY_ADMIN)
        if admin:
            return str(admin)
    return None


def on_this_machine(client: KubeClient) -> bool:
    """Whether ``client``'s API server is on a loopback address (the local twin's own, not a cluster's)."""
    host = urlparse(client.host).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _twin_admin_get(admin: str, path: str, what: str, timeout: float) -> tuple[int, bytes]:
    """``GET path`` of the Envoy admin at ``admin`` (``host:port``) that the twin recorded for ``what``."""
    host, _, port = admin.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close", "Accept": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except OSError as e:
        raise KubeError(
            f"{what}: its Envoy admin at {admin} (recorded by the local twin, which runs the pod without a kubelet) "
            f"did not answer: {e}. Fix: is the twin up? 'meshbridge local status'"
        ) from e
    finally:
        conn.close()


# -- helpers ---------------------------------------------------------------------------------------------


def _api_client(configuration: Configuration) -> ApiClient:
    """The official client for ``configuration``, its pool set to retry no answer (:data:`TRANSPORT_RETRIES`)."""
    configuration.retries = TRANSPORT_RETRIES
    return ApiClient(configuration)


def _transient(status: int, retry_after: str | None) -> bool:
    """Whether an answer is worth retrying (see :data:`RETRY_STATUSES`)."""
    return status in RETRY_STATUSES or (status >= 500 and bool(retry_after))


def _retry_after_seconds(body: str) -> str | None:
    """``details.retryAfterSeconds`` of a ``Status`` body, as text (the API server also writes it there)."""
    try:
        status = json.loads(body)
    except ValueError:
        return None
    seconds = ((status.get("details") or {}).get("retryAfterSeconds")) if isinstance(status, dict) else None
    return str(seconds) if isinstance(seconds, int) and seconds > 0 else None


def retry_pause(retry_after: str | None, attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): the server's ``Retry-After`` in seconds when
    it gave one (an HTTP date, or nothing, falls back to a doubling pause from 0.5 s), at most
    :data:`RETRY_AFTER_CAP`."""
    pause = _FIRST_PAUSE * (1 << max(0, attempt - 1))
    if retry_after:
        with contextlib.suppress(ValueError):
            pause = max(0.0, float(retry_after.strip()))
    return min(pause, RETRY_AFTER_CAP)


_WARNING = re.compile(r'\s*(\d{3})\s+(\S+)\s+"((?:[^"\\]|\\.)*)"(?:\s+"[^"]*")?\s*(?:,|$)')


def warning_texts(header: str) -> list[str]:
    """The texts of a ``Warning:`` header value (``299 - "unknown field \\"spec.x\\""``, possibly several,
    comma-separated); a value not in that form is returned whole."""
    texts: list[str] = []
    pos = 0
    while pos < len(header):
        m = _WARNING.match(header, pos)
        if not m:
            rest = header[pos:].strip().strip(",").strip()
            return [*texts, rest] if rest else texts
        texts.append(re.sub(r"\\(.)", r"\1", m.group(3)))
        pos = m.end()
    return texts


@contextlib.contextmanager
def handshake_timeout(seconds: float) -> Iterator[None]:
    """Bound the WebSocket handshakes begun in the block (connect, TLS, HTTP upgrade) to ``seconds``.

    The official client's ``create_websocket`` connects a ``websocket.WebSocket`` without a timeout, and
    ``websocket-client`` then waits forever on a server that accepts the connection and never answers (its
    global default timeout is not used by ``WebSocket.connect``). For the block, the client's module sees a
    ``WebSocket`` whose ``connect`` passes ``timeout`` (under a lock: the name is process-wide); the socket
    keeps that timeout afterwards, which the stream's own polling never reaches.
    """
    with _HANDSHAKE_LOCK:
        names = vars(ws_client)  # the module's globals: create_websocket looks the class up there
        original: Any = names["WebSocket"]

        class _Bounded(original):  # type: ignore[misc]
            def connect(self, url: str, **options: Any) -> Any:
                options.setdefault("timeout", seconds)
                return super().connect(url, **options)

        names["WebSocket"] = _Bounded
        try:
            yield
        finally:
            names["WebSocket"] = original


def _typed(doc: Any, api_version: str, kind: str) -> Document:
    """List items (and some answers) lack ``apiVersion``/``kind``; put them back."""
    if not isinstance(doc, dict):
        return {}
    doc.setdefault("apiVersion", api_version)
    doc.setdefault("kind", kind)
    return doc


def _exec_status(text: str) -> tuple[int | None, str]:
    """``(exit code, failure)`` from the exec error channel (a ``Status`` object)."""
    if not text.strip():
        return 0, ""
    try:
        status = json.loads(text)
    except ValueError:
        return None, text.strip()
    if not isinstance(status, dict) or status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", "")), ""
            except ValueError:
                break
    return None, str(status.get("message") or text.strip())
