"""A small in-process Kubernetes API server that records what the official client sends.

It answers like the API server for the calls meshbridge makes, and no more: ``/version``; get, list
(label selectors, ``limit``/``continue``), server-side apply (``PATCH`` with ``application/apply-patch+yaml``,
``dryRun=All``) and delete (``preconditions.uid``) of objects kept in memory; exec and port-forward over
WebSockets (``v4.channel.k8s.io``). A port-forward is a real tunnel to a real HTTP server per pod, which
plays Envoy's admin and serves a configurable ``/config_dump``. Faults (any status, or a delay for
timeouts) are injected per method and path.

Paths are computed here from a table of its own, not from meshbridge's, so a wrong path in meshbridge
shows up as a 404 rather than agreeing with itself.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from kubernetes.client import Configuration

from meshbridge.kube.client import KubeClient

Doc = dict[str, Any]

PLURALS = {
    "Namespace": "namespaces",
    "Secret": "secrets",
    "Service": "services",
    "Pod": "pods",
    "ConfigMap": "configmaps",
    "Deployment": "deployments",
    "Gateway": "gateways",
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "ServiceEntry": "serviceentries",
    "EnvoyFilter": "envoyfilters",
    "AuthorizationPolicy": "authorizationpolicies",
}
CLUSTER_SCOPED = {"namespaces"}


def object_path(doc: Doc) -> str:
    """The REST path of ``doc``, by this module's own table."""
    api = doc["apiVersion"]
    plural = PLURALS[doc["kind"]]
    root = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    md = doc["metadata"]
    if plural in CLUSTER_SCOPED:
        return f"{root}/{plural}/{md['name']}"
    return f"{root}/namespaces/{md['namespace']}/{plural}/{md['name']}"


_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>exec|portforward))?$"
)


@dataclass
class Call:
    """One recorded request."""

    method: str
    path: str
    query: list[tuple[str, str]]
    content_type: str
    body: Any
    headers: dict[str, str]

    def q(self, key: str) -> str | None:
        """The first value of query parameter ``key``."""
        return next((v for k, v in self.query if k == key), None)

    def qs(self, key: str) -> list[str]:
        """Every value of query parameter ``key``."""
        return [v for k, v in self.query if k == key]


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    reason: str
    message: str
    delay: float
    times: int | None
    causes: list[dict[str, str]] = field(default_factory=list)
    dry_run: bool | None = None  # None: both; False: only real writes; True: only dry runs
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ExecAnswer:
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


class FakeApiServer:
    """One fake cluster. Start with :meth:`start`; ``client()`` gives a :class:`KubeClient` pointed at it."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.calls: list[Call] = []
        self.objects: dict[str, Doc] = {}
        self.faults: list[Fault] = []
        self.pauses: list[float] = []  # what clients of this server would have slept between retries
        self.warnings: list[str] = []  # Warning: header values added to every answer (as the API server sends them)
        self.config_dumps: dict[tuple[str, str], Doc] = {}
        self.admin_requests: list[tuple[str, str, str]] = []  # (namespace, pod, path_qs)
        self.exec_handler: Callable[[str, str, list[str], str | None], ExecAnswer] = lambda *_: ExecAnswer()
        self._rv = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"fakeapi-{name}")
        self._runners: list[web.AppRunner] = []
        self._admin_ports: dict[tuple[str, str], int] = {}
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        self._thread.start()
        port = self._run(self._serve(self._app(), 0))
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        async def cleanup() -> None:
            for r in self._runners:
                await r.cleanup()

        self._run(cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def client(
        self, context: str | None = None, *, request_timeout: float = 5.0, notify: Callable[[str], None] | None = None
    ) -> KubeClient:
        """A client of this server; its pauses between retries are recorded in :attr:`pauses`, not slept."""
        cfg = Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": "Bearer test-token"}
        return KubeClient.from_configuration(
            cfg, context or self.name, request_timeout=request_timeout, notify=notify, sleep=self.pauses.append
        )

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self._runners.append(runner)
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    # -- state -------------------------------------------------------------------------------------------

    def seed(self, *docs: Doc) -> None:
        """Store objects as if they existed (uid and resourceVersion are added)."""
        for doc in docs:
            d = copy.deepcopy(doc)
            md = d.setdefault("metadata", {})
            md.setdefault("uid", str(uuid.uuid4()))
            md.setdefault("resourceVersion", str(next(self._rv)))
            self.objects[object_path(d)] = d

    def get(self, doc_or_path: Doc | str) -> Doc | None:
        path = doc_or_path if isinstance(doc_or_path, str) else object_path(doc_or_path)
        return self.objects.get(path)

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        reason: str = "",
        message: str = "injected",
        delay: float = 0.0,
        times: int | None = None,
        causes: list[dict[str, str]] | None = None,
        dry_run: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``method`` on paths matching the regex ``path`` with ``status`` (after ``delay`` seconds).

        ``dry_run=False`` fails only real writes (the dry run of plan passes), ``True`` only dry runs;
        ``headers`` are added to the answer (``Retry-After``).
        """
        self.faults.append(
            Fault(
                method.upper(),
                re.compile(path),
                status,
                reason,
                message,
                delay,
                times,
                causes or [],
                dry_run,
                dict(headers or {}),
            )
        )

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("PATCH", "POST", "PUT", "DELETE")]

    # -- the app -----------------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024, middlewares=[self._warn])
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    @web.middleware
    async def _warn(self, request: web.Request, handler: Any) -> web.StreamResponse:
        answer: web.StreamResponse = await handler(request)
        if not answer.prepared:  # a WebSocket's headers are gone already
            for value in self.warnings:
                answer.headers.add("Warning", value)
        return answer

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        call = Call(
            request.method,
            request.path,
            list(request.query.items()),
            request.content_type if raw else "",
            body,
            {k.lower(): v for k, v in request.headers.items()},
        )
        self.calls.append(call)
        for f in self.faults:
            is_dry = request.query.get("dryRun") == "All"
            if f.dry_run is not None and f.dry_run != is_dry:
                continue
            if f.method == request.method and f.path.search(request.path) and (f.times is None or f.times > 0):
                if f.times is not None:
                    f.times -= 1
                if f.delay:
                    await asyncio.sleep(f.delay)
                answer = _status(f.status, f.reason or _REASONS.get(f.status, "Error"), f.message, f.causes)
                answer.headers.update(f.headers)
                return answer
        if request.path == "/version":
            return web.json_response({"major": "1", "minor": "30", "gitVersion": "v1.30.0"})
        m = _PATH.match(request.path)
        if not m:
            return _status(404, "NotFound", f"the server could not find the requested resource {request.path}")
        if m["sub"] == "exec":
            return await self._exec(request, m["ns"], m["name"])
        if m["sub"] == "portforward":
            return await self._portforward(request, m["ns"], m["name"])
        if m["plural"] not in PLURALS.values():
            return _status(404, "NotFound", f"the server could not find the requested resource {request.path}")
        if m["name"] is None:
            if request.method != "GET":
                return _status(405, "MethodNotAllowed", "collection writes are not supported here")
            return self._list(request, m)
        path = request.path
        if request.method == "GET":
            obj = self.objects.get(path)
            return web.json_response(obj) if obj else _status(404, "NotFound", f'{m["plural"]} "{m["name"]}" not found')
        if request.method == "PATCH":
            return self._apply(request, call, path, m)
        if request.method == "DELETE":
            return self._delete(call, path, m)
        return _status(405, "MethodNotAllowed", request.method)

    def _list(self, request: web.Request, m: re.Match[str]) -> web.Response:
        api = m["core"] or f"{m['group']}/{m['version']}"
        group = "" if m["core"] else m["group"]
        selector = dict(kv.split("=", 1) for kv in (request.query.get("labelSelector") or "").split(",") if "=" in kv)
        items = []
        for obj in self.objects.values():
            obj_group = obj["apiVersion"].rpartition("/")[0]
            if obj_group != group or PLURALS.get(obj["kind"]) != m["plural"]:
                continue
            if m["ns"] and obj["metadata"].get("namespace") != m["ns"]:
                continue
            labels = obj["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            item = copy.deepcopy(obj)
            item["apiVersion"] = api
            items.append(item)
        start = int(request.query.get("continue") or 0)
        limit = int(request.query.get("limit") or 0) or len(items) or 1
        page = items[start : start + limit]
        token = str(start + limit) if start + limit < len(items) else ""
        return web.json_response({"kind": "List", "apiVersion": api, "metadata": {"continue": token}, "items": page})

    def _apply(self, request: web.Request, call: Call, path: str, m: re.Match[str]) -> web.Response:
        if request.content_type != "application/apply-patch+yaml":
            return _status(415, "UnsupportedMediaType", f"{request.content_type} is not apply")
        if not call.q("fieldManager"):
            return _status(422, "Invalid", "fieldManager is required for apply patch")
        desired = copy.deepcopy(call.body)
        if not isinstance(desired, dict) or desired.get("metadata", {}).get("name") != m["name"]:
            return _status(400, "BadRequest", "the name of the object does not match the URL")
        existing = self.objects.get(path)
        md = desired.setdefault("metadata", {})
        if existing:
            for k in ("uid", "creationTimestamp"):
                md[k] = existing["metadata"].get(k)
        else:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = "2024-01-01T00:00:00Z"
        md["managedFields"] = [{"manager": call.q("fieldManager"), "operation": "Apply"}]
        if existing and _same(existing, desired):
            md["resourceVersion"] = existing["metadata"]["resourceVersion"]
        else:
            md["resourceVersion"] = str(next(self._rv))
        if m["plural"] == "namespaces":
            desired.setdefault("status", {"phase": "Active"})
        if call.q("dryRun") != "All":
            self.objects[path] = desired
        return web.json_response(desired, status=200 if existing else 201)

    def _delete(self, call: Call, path: str, m: re.Match[str]) -> web.Response:
        obj = self.objects.get(path)
        if obj is None:
            return _status(404, "NotFound", f'{m["plural"]} "{m["name"]}" not found')
        # as kube-apiserver: a DeleteOptions body is read whole and the query string is then ignored
        options = call.body if isinstance(call.body, dict) else {"dryRun": [call.q("dryRun")]}
        uid = (options.get("preconditions") or {}).get("uid")
        if uid and uid != obj["metadata"]["uid"]:
            return _status(409, "Conflict", f"Precondition failed: UID in precondition: {uid}, UID in object meta: x")
        if "All" not in (options.get("dryRun") or []):
            del self.objects[path]
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})

    # -- streams -----------------------------------------------------------------------------------------

    async def _exec(self, request: web.Request, ns: str, pod: str) -> web.StreamResponse:
        if f"/api/v1/namespaces/{ns}/pods/{pod}" not in self.objects:
            return _status(404, "NotFound", f'pods "{pod}" not found')
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        answer = self.exec_handler(ns, pod, request.query.getall("command", []), request.query.get("container"))
        if answer.stdout:
            await ws.send_bytes(b"\x01" + answer.stdout.encode())
        if answer.stderr:
            await ws.send_bytes(b"\x02" + answer.stderr.encode())
        if answer.exit_code == 0:
            status: Doc = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: exit status {answer.exit_code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(answer.exit_code)}]},
            }
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()
        return ws

    async def _portforward(self, request: web.Request, ns: str, pod: str) -> web.StreamResponse:
        if f"/api/v1/namespaces/{ns}/pods/{pod}" not in self.objects:
            return _status(404, "NotFound", f'pods "{pod}" not found')
        port = int(request.query.get("ports", "0"))
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        head = port.to_bytes(2, "little")
        await ws.send_bytes(b"\x00" + head)
        await ws.send_bytes(b"\x01" + head)
        if (ns, pod) not in self.config_dumps:
            await ws.send_bytes(b"\x01" + f"error forwarding port {port} to pod {pod}: connection refused".encode())
            await ws.close()
            return ws
        admin = await self._admin(ns, pod)
        reader, writer = await asyncio.open_connection("127.0.0.1", admin)

        async def upstream() -> None:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY and msg.data[:1] == b"\x00":
                    writer.write(msg.data[1:])
                    await writer.drain()
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
            writer.close()

        async def downstream() -> None:
            while data := await reader.read(65536):
                await ws.send_bytes(b"\x00" + data)
            await ws.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)
        return ws

    async def _admin(self, ns: str, pod: str) -> int:
        if (ns, pod) not in self._admin_ports:

            async def config_dump(request: web.Request) -> web.Response:
                self.admin_requests.append((ns, pod, request.path_qs))
                return web.json_response(self.config_dumps[(ns, pod)])

            app = web.Application()
            app.router.add_get("/config_dump", config_dump)
            self._admin_ports[(ns, pod)] = await self._serve(app, 0)
        return self._admin_ports[(ns, pod)]


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
}


def _status(code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None) -> web.Response:
    body: Doc = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason}
    body["code"] = code
    if causes:
        body["details"] = {"causes": causes}
    return web.json_response(body, status=code)


def _same(a: Doc, b: Doc) -> bool:
    strip = ("uid", "resourceVersion", "creationTimestamp", "managedFields")

    def clean(d: Doc) -> Doc:
        d = copy.deepcopy(d)
        for k in strip:
            d.get("metadata", {}).pop(k, None)
        d.pop("status", None)
        return d

    return clean(a) == clean(b)
