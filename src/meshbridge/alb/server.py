"""The local Application Load Balancer: HTTP and HTTPS listeners forwarding to a Lambda target group.

Each listener is an aiohttp server; each request becomes the exact ALB event (``contract.build_event``),
is invoked in the ``EnvironmentPool`` (real awslambdaric processes), and the function's response is checked
against the ALB response contract (``contract.read_response``) before the client sees it. The known
differences from AWS are listed in ``docs/alb-lambda.md``.

Use it three ways:

* in a program: ``async with AlbServer(config, log=sink) as alb: ...`` (``alb.urls``, ``alb.ports``);
* blocking, until SIGINT/SIGTERM: ``run_alb(config, log=sink, ready=callback)``;
* as a process (the local twin runs it so): ``python -m meshbridge.alb.server CONFIG.json``, where the JSON
  is ``AlbConfig.to_json()``. It prints one JSON object per line on stdout: ``{"event": "ready", "urls":
  [...], "ports": [...]}`` once listening, then ``{"event": "invocation", ...}`` per request
  (``InvocationLog.to_dict()``), and exits 0 after SIGINT/SIGTERM with every runtime process reaped; a bad
  config or a port in use prints ``error: ...`` on stderr and exits 2; a function that cannot initialize
  (see below) prints ``error: handler ... cannot initialize: <errorType>: <errorMessage> ... Fix: ...`` on
  stderr and exits 3 without ever listening. Lines are flushed within 20 ms.
  Read its stdout continuously (or send it to a file): a full pipe blocks the ALB at its next log line; a
  closed one only stops the lines.

Start-up init check: before any listener is bound, ``AlbServer.start`` runs one init of the function
(``EnvironmentPool.check_init``: a real awslambdaric process, started as a cold start, killed once it reaches
``invocation/next``), so a handler that cannot initialize (missing function, syntax error, failing import)
stops the start with ``FunctionInitError`` instead of failing every request with 502. AWS has no such check:
a real ALB starts and the first invoke fails; a handler that breaks after the start
still gets that 502 ``LambdaUnhandled`` here. The first request after a successful check is a cold start.

Errors: only ``meshbridge.errors.LambdaError`` leaves this module (bad config, certificate, bind failure,
``FunctionInitError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pydantic
from aiohttp import web
from multidict import CIMultiDict

from meshbridge.alb.contract import (
    MAX_REQUEST_BODY_BYTES,
    MAX_REQUEST_HEADER_BYTES,
    AlbRequest,
    AlbResponse,
    ErrorReason,
    ListenerProtocol,
    TargetGroup,
    alb_error,
    build_event,
    function_error,
    new_trace_root,
    read_response,
    target_group_arn,
    trace_root_of,
)
from meshbridge.alb.function import FunctionConfig, FunctionInitError, Invocation
from meshbridge.alb.lambda_runtime import EnvironmentPool
from meshbridge.alb.runtime_api import lambda_trace_header, read_body_capped
from meshbridge.errors import LambdaError, PkiError
from meshbridge.pki.x509 import CertBundle, issue_ca, issue_leaf, key_matches, parse_certificate

__all__ = [
    "AlbConfig",
    "AlbServer",
    "FunctionConfig",
    "FunctionInitError",
    "InvocationLog",
    "ListenerConfig",
    "issue_listener_certificate",
    "run_alb",
]

KEEPALIVE_TIMEOUT_S = 60.0
"""Client connection idle timeout: the ALB attribute ``idle_timeout.timeout_seconds`` default (ELB-DOC)."""
_ALPN = ["http/1.1"]  # the emulator speaks HTTP/1.1 only (a real ALB also offers h2)


@dataclass(frozen=True)
class ListenerConfig:
    """One ALB listener.

    Attributes:
        host: address to bind, e.g. ``127.0.0.1`` or a topology's loopback address ``127.0.10.2``.
        port: port to bind; 0 picks a free one (read it back from ``AlbServer.ports``).
        protocol: ``HTTP`` or ``HTTPS``.
        advertised_port: the port clients of the real ALB dial (80, 443); it is what the event's
            ``x-forwarded-port`` says. Default: the bound port.
        cert_file: PEM certificate chain (leaf first) for ``HTTPS``; required for HTTPS, refused for HTTP.
        key_file: its PEM private key.
    """

    # from_json refuses unknown keys
    __pydantic_config__: ClassVar[pydantic.ConfigDict] = pydantic.ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8080
    protocol: ListenerProtocol = "HTTP"
    advertised_port: int | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if self.protocol not in ("HTTP", "HTTPS"):
            raise LambdaError(f"listener protocol {self.protocol!r} is not HTTP or HTTPS")
        if not 0 <= self.port <= 65535 or not 1 <= (self.advertised_port or 1) <= 65535:
            raise LambdaError(f"listener port {self.port} (advertised {self.advertised_port}) is not a TCP port")
        has_tls = self.cert_file is not None or self.key_file is not None
        if self.protocol == "HTTPS" and (self.cert_file is None or self.key_file is None):
            raise LambdaError(
                f"HTTPS listener {self.host}:{self.port} needs cert_file and key_file; "
                "issue them with issue_listener_certificate() or pass PEM files"
            )
        if self.protocol == "HTTP" and has_tls:
            raise LambdaError(f"HTTP listener {self.host}:{self.port} takes no certificate; use protocol HTTPS")


@dataclass(frozen=True)
class AlbConfig:
    """An ALB with its listeners and one Lambda target group.

    Attributes:
        listeners: one or more listeners, all forwarding to the target group (e.g. HTTP 80 and HTTPS 443
            of the seed article, bound to unprivileged ports).
        function: the Lambda function registered in the target group; ``None`` leaves the target group
            empty, and every request gets 503 as from a real ALB.
        load_balancer_name: the ALB's name (part of the target group ARN suffix here).
        target_group_name: the target group's name, in ``requestContext.elb.targetGroupArn``.
        multi_value_headers: the target group attribute ``lambda.multi_value_headers.enabled`` (default
            false, as AWS).
        idle_timeout_s: when set, a Lambda that has not answered after this many seconds gets the client a
            504 (``LambdaConnectionTimeout``) while the invoke runs on. Default ``None``: wait for the
            function's own timeout, as ELB-DOC describes ("waits until your Lambda function responds or
            times out"); whether the ALB idle timeout also applies is not documented [infer].
        runtime_host: loopback address of the Runtime API endpoints.
    """

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = pydantic.ConfigDict(extra="forbid")

    listeners: tuple[ListenerConfig, ...] = (ListenerConfig(),)
    function: FunctionConfig | None = None
    load_balancer_name: str = "meshbridge-alb"
    target_group_name: str = "meshbridge-tg"
    multi_value_headers: bool = False
    idle_timeout_s: float | None = None
    runtime_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if not self.listeners:
            raise LambdaError("an ALB needs at least one listener")
        if self.idle_timeout_s is not None and self.idle_timeout_s <= 0:
            raise LambdaError(f"idle timeout {self.idle_timeout_s} s must be over 0")

    @property
    def target_group_arn(self) -> str:
        """The target group ARN; its 16-hex suffix is derived from the names, so it is stable across runs."""
        region = self.function.region if self.function else "us-east-1"
        account = self.function.account_id if self.function else "012345678912"
        suffix = hashlib.sha256(f"{self.load_balancer_name}/{self.target_group_name}".encode()).hexdigest()[:16]
        return target_group_arn(region, account, self.target_group_name, suffix)

    def to_json(self) -> str:
        """This config as JSON (paths as strings), the input of ``python -m meshbridge.alb.server``."""
        return json.dumps(_ADAPTER.dump_python(self, mode="json"), indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> AlbConfig:
        """Parse ``to_json``'s output. Relative paths resolve against the current directory.

        Raises:
            LambdaError: not JSON, or a field is missing, unknown, of the wrong type or out of range.
        """
        try:
            return _ADAPTER.validate_json(text, strict=False)
        except pydantic.ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in e.errors())
            raise LambdaError(f"ALB config: {problems}") from None


_ADAPTER: pydantic.TypeAdapter[AlbConfig] = pydantic.TypeAdapter(AlbConfig)


@dataclass(frozen=True)
class InvocationLog:
    """What one request did, for the caller's log sink (the fields of an ALB access log entry, plus Lambda's).

    Attributes:
        listener: ``HTTP:80``-style protocol and advertised port.
        client_ip: the client's address.
        method: request method.
        target: raw request target (path and query).
        status: the status the client got.
        error_reason: the access log's ``error_reason`` when the ALB answered itself, else ``None``.
        request_id: the Lambda request id; ``None`` when nothing was invoked (413, 503, throttled, …).
        cold: whether the invoke ran an init; ``None`` when nothing ran.
        init_duration_ms: the on-demand Init phase, ms.
        duration_ms: Lambda's ``Duration`` (the invoke phase), ms.
        total_ms: the ALB's time from request received to response ready, ms.
        error_type: a function error's ``errorType`` (``Sandbox.Timedout``, ``ValueError``, …).
        detail: why the ALB answered as it did (not sent to the client).
        output: the function's stdout/stderr for this invoke.
    """

    listener: str
    client_ip: str
    method: str
    target: str
    status: int
    error_reason: ErrorReason | None
    request_id: str | None
    cold: bool | None
    init_duration_ms: float | None
    duration_ms: float | None
    total_ms: float
    error_type: str | None = None
    detail: str = ""
    output: str = ""

    def line(self) -> str:
        """One human line: ``200 GET /hello 1.9 ms warm req=<id>`` (+ error reason, error type, detail)."""
        start = "-" if self.cold is None else ("cold" if self.cold else "warm")
        if self.cold and self.init_duration_ms is not None:
            start += f" (init {self.init_duration_ms:.1f} ms)"
        parts = [str(self.status), self.method, self.target, f"{self.total_ms:.1f} ms", start]
        if self.error_reason:
            parts.append(self.error_reason)
        if self.error_type:
            parts.append(self.error_type)
        if self.request_id:
            parts.append(f"req={self.request_id}")
        if self.detail:
            parts.append(f"({self.detail})")
        return " ".join(parts)

    def lines(self, output: bool = True) -> list[str]:
        """How ``meshbridge lambda serve`` shows a request: :meth:`line`, then (with ``output``) what the function
        printed, each line under it after ``  | ``. A log record's own lines (awslambdaric joins a traceback's
        lines with ``\\r`` and indents them with no-break spaces) become lines of their own, indented further."""
        shown = [self.line()]
        if output and self.output:
            text = self.output.replace("\r", "\n    ").replace("\u00a0", " ")
            shown += [f"  | {line}" for line in text.splitlines()]
        return shown

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (a shallow copy: every field is a scalar)."""
        return {name: getattr(self, name) for name in _LOG_FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InvocationLog | None:
        """The entry :meth:`to_dict` wrote (other keys ignored), or ``None`` when ``d`` is not one."""
        try:
            return cls(**{name: d[name] for name in _LOG_FIELDS if name in d})
        except TypeError:
            return None


_LOG_FIELDS = tuple(f.name for f in fields(InvocationLog))
LogSink = Callable[[InvocationLog], None]


@dataclass
class _Listener:
    config: ListenerConfig
    runner: web.ServerRunner | None = None
    port: int = 0
    advertised_port: int = 0
    name: str = ""


class AlbServer:
    """The running ALB: listeners, target group, Lambda environments.

    Args:
        config: what to run.
        log: called once per request with its ``InvocationLog`` (on the event loop; keep it quick).
    """

    def __init__(self, config: AlbConfig, *, log: LogSink | None = None) -> None:
        self.config = config
        self._log = log
        self._target_group = TargetGroup(config.target_group_arn, config.multi_value_headers)
        self.pool: EnvironmentPool | None = (
            EnvironmentPool(config.function, host=config.runtime_host) if config.function else None
        )
        self._listeners: list[_Listener] = []
        self._random = random.Random()
        self.init_check_ms: float | None = None
        """How long the start-up init check's init took, in ms (after ``start``; ``None`` without one)."""

    async def __aenter__(self) -> AlbServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ports(self) -> list[int]:
        """The bound port of each listener, in config order (after ``start``)."""
        return [listener.port for listener in self._listeners]

    @property
    def urls(self) -> list[str]:
        """``http://host:port/`` for each listener, in config order (after ``start``)."""
        return [
            f"{listener.config.protocol.lower()}://{_url_host(listener.config.host)}:{listener.port}/"
            for listener in self._listeners
        ]

    async def start(self) -> None:
        """Start the Lambda environments' pool, check that the function initializes, and bind every listener.

        The init check (``EnvironmentPool.check_init``) runs before any listener is bound: a function that
        cannot initialize never gets an address that accepts connections. It costs one cold start (about
        70 ms for a small handler); none without a function or with reserved concurrency 0.

        Raises:
            FunctionInitError: the function's init fails (``Runtime.HandlerNotFound``,
                ``Runtime.ImportModuleError``, ``Runtime.UserCodeSyntaxError``, …); nothing is listening.
            LambdaError: a certificate or key cannot be loaded, or an address cannot be bound.
        """
        try:
            if self.pool is not None:
                await self.pool.start()
                self.init_check_ms = await self.pool.check_init()
            for config in self.config.listeners:
                await self._bind(config)
        except BaseException:
            await self.stop()
            raise

    async def _bind(self, config: ListenerConfig) -> None:
        ssl_context = _server_tls(config) if config.protocol == "HTTPS" else None
        listener = _Listener(config)
        handler = web.Server(
            partial(self._handle, listener),
            auto_decompress=False,  # the ALB passes a compressed body on, base64-encoded
            keepalive_timeout=KEEPALIVE_TIMEOUT_S,
            access_log=None,  # the InvocationLog sink is the access log
            # Well above the ALB's limits so that the contract answers them (400, as the ALB does), not aiohttp
            max_line_size=4 * MAX_REQUEST_HEADER_BYTES,
            max_field_size=4 * MAX_REQUEST_HEADER_BYTES,
            max_headers=MAX_REQUEST_HEADER_BYTES // 8,
        )
        runner = listener.runner = web.ServerRunner(handler, shutdown_timeout=2.0)
        await runner.setup()
        self._listeners.append(listener)
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            raise LambdaError(
                f"cannot listen on {config.host}:{config.port} ({config.protocol}): {e.strerror or e}; "
                "choose another --listen address or stop what uses it"
            ) from e
        listener.port = runner.addresses[0][1]
        listener.advertised_port = config.advertised_port or listener.port
        listener.name = f"{config.protocol}:{listener.advertised_port}"

    async def stop(self) -> None:
        """Stop accepting, end the invocations in flight (their clients get 502), kill and reap every runtime.

        Idempotent. No child process is left behind.

        Raises:
            LambdaError: a runtime process could not be reaped (see ``EnvironmentPool.stop``).
        """
        runners = [listener.runner for listener in self._listeners if listener.runner is not None]
        for runner in runners:
            for site in list(runner.sites):
                await site.stop()
        try:
            if self.pool is not None:
                await self.pool.stop()
        finally:
            for runner in runners:
                await runner.cleanup()
            self._listeners.clear()

    async def reset_environments(self) -> None:
        """Kill every Lambda environment; the next invokes are cold starts (benchmarks, tests)."""
        if self.pool is not None:
            await self.pool.reset()

    async def _handle(self, listener: _Listener, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        invocation: Invocation | None = None
        try:
            response, invocation = await self._answer(listener, request)
        except Exception as e:  # a bug of ours must not become aiohttp's 500 page
            response = alb_error(502, "LambdaServiceException", f"emulator error: {type(e).__name__}: {e}")
        total_ms = (time.perf_counter() - started) * 1000
        if self._log is not None:
            self._emit(
                InvocationLog(
                    listener=listener.name,
                    client_ip=request.remote or "",
                    method=request.method,
                    target=request.raw_path,
                    status=response.status,
                    error_reason=response.error_reason,
                    request_id=(invocation.request_id or None) if invocation else None,
                    cold=invocation.cold if invocation and invocation.outcome != "Throttled" else None,
                    init_duration_ms=invocation.init_duration_ms if invocation else None,
                    duration_ms=invocation.duration_ms if invocation and invocation.request_id else None,
                    total_ms=total_ms,
                    error_type=invocation.error_type if invocation else None,
                    detail=response.detail,
                    output=invocation.output if invocation else "",
                )
            )
        headers = CIMultiDict(response.headers)
        if request.keep_alive:  # the ALB says so on every kept connection
            headers["Connection"] = "keep-alive"
        return web.Response(status=response.status, reason=response.reason, headers=headers, body=response.body)

    def _emit(self, entry: InvocationLog) -> None:
        """Give ``entry`` to the caller's sink; a failing sink never changes what the client gets."""
        assert self._log is not None
        try:
            self._log(entry)
        except Exception as e:
            print(f"meshbridge: the ALB's log sink failed: {type(e).__name__}: {e}", file=sys.stderr)

    async def _answer(self, listener: _Listener, request: web.BaseRequest) -> tuple[AlbResponse, Invocation | None]:
        if self.pool is None:
            return alb_error(503, None, "the target group has no registered target"), None
        body = await read_body_capped(request, MAX_REQUEST_BODY_BYTES)
        if body is None:
            detail = f"body over {MAX_REQUEST_BODY_BYTES} bytes; the function is not invoked"
            return alb_error(413, "LambdaRequestTooLarge", detail), None
        raw = AlbRequest(request.method, request.raw_path, request.raw_headers, body, request.remote or "")
        trace_root = new_trace_root(int(time.time()), self._random.getrandbits(96))
        event = build_event(
            raw,
            protocol=listener.config.protocol,
            advertised_port=listener.advertised_port,
            target_group=self._target_group,
            trace_root=trace_root,
        )
        if isinstance(event, AlbResponse):
            return event, None
        headers = event.get("headers") or event["multiValueHeaders"]
        trace = headers["x-amzn-trace-id"]
        trace = trace if isinstance(trace, str) else trace[0]
        invoke = self.pool.invoke(json.dumps(event).encode(), trace_id=lambda_trace_header(trace_root_of(trace)))
        if self.config.idle_timeout_s is None:
            invocation = await invoke
        else:
            task = asyncio.ensure_future(invoke)
            done, _ = await asyncio.wait([task], timeout=self.config.idle_timeout_s)
            if not done:  # the invoke runs on; its environment frees itself when it ends
                detail = f"no answer from the function within the idle timeout ({self.config.idle_timeout_s} s)"
                return alb_error(504, "LambdaConnectionTimeout", detail), None
            invocation = task.result()
        if invocation.outcome == "Success":
            response = read_response(invocation.payload, multi_value_headers=self.config.multi_value_headers)
        elif invocation.outcome == "Throttled":
            response = function_error("Throttled", "reserved concurrency reached (TooManyRequestsException)")
        else:
            detail = invocation.error_message or invocation.payload.decode("utf-8", "replace")
            response = function_error(invocation.error_type or "Runtime.Unknown", detail)
        return response, invocation


def _server_tls(config: ListenerConfig) -> ssl.SSLContext:
    """The HTTPS listener's TLS: TLS 1.2 and 1.3 (the ALB default policy ELBSecurityPolicy-TLS13-1-2-2021-06)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(_ALPN)
    where = f"HTTPS listener {config.host}:{config.port}"
    if config.cert_file is None or config.key_file is None:
        raise LambdaError(f"{where}: needs a certificate and its key. Fix: pass --cert and --key")
    try:
        cert = parse_certificate(config.cert_file.read_bytes(), str(config.cert_file))
        if not key_matches(cert, config.key_file.read_bytes(), str(config.key_file)):
            raise LambdaError(
                f"{where}: {config.key_file} is not the private key of {config.cert_file} (their public keys "
                "differ). Fix: pass the key the certificate was issued for"
            )
        context.load_cert_chain(str(config.cert_file), str(config.key_file))
    except PkiError as e:
        raise LambdaError(
            f"{where}: cannot load certificate {config.cert_file} with key {config.key_file}: {e}"
        ) from None
    except (OSError, ssl.SSLError) as e:
        raise LambdaError(
            f"HTTPS listener {config.host}:{config.port}: cannot load certificate {config.cert_file} with key "
            f"{config.key_file}: {e}; pass a PEM chain and its unencrypted PEM key"
        ) from e
    return context


def issue_listener_certificate(host_names: Sequence[str], directory: Path) -> tuple[Path, Path, Path]:
    """Issue a fresh CA and an HTTPS server certificate for ``host_names``, and write them to ``directory``.

    What an ACM certificate is to a real ALB. The CA (``ca.crt``) is what clients pass to
    ``curl --cacert``; its key is not kept. Leaf: ECDSA P-256, EKU serverAuth, DNS SANs = ``host_names``
    (an IP address is written as a DNS SAN too, which curl does not accept for IPs: use a name).

    Args:
        host_names: the names clients dial, e.g. ``["alb.local"]``; the first is the CN.
        directory: where to write ``ca.crt``, ``server.crt`` and ``server.key`` (0600).

    Returns:
        The paths of the CA certificate, the server certificate and its key.

    Raises:
        LambdaError: no host name, or the files cannot be written.
    """
    if not host_names:
        raise LambdaError("an HTTPS listener certificate needs at least one host name")
    try:
        ca = issue_ca("meshbridge local ALB CA", days=30)
        leaf = issue_leaf(ca, "server", common_name=host_names[0], dns_names=list(host_names), days=30)
        ca_path, _ = CertBundle(ca.cert_pem).write_to(directory, "ca")  # the CA key is not kept
        cert_path, key_path = leaf.write_to(directory, "server")
    except (PkiError, OSError) as e:
        raise LambdaError(f"cannot issue the HTTPS listener certificate into {directory}: {e}") from e
    assert key_path is not None
    return ca_path, cert_path, key_path


def run_alb(config: AlbConfig, *, log: LogSink | None = None, ready: Callable[[AlbServer], None] | None = None) -> None:
    """Serve ``config`` until SIGINT or SIGTERM, then stop cleanly (every runtime killed and reaped).

    Blocking; runs its own event loop. Signal handling needs the main thread; elsewhere it serves until the
    loop is stopped by other means. A signal during the start (the init check waits up to the longer of the
    10 s Init limit and the function timeout) stops it there, without calling ``ready``.

    Args:
        config: what to run.
        log: per-request sink (``InvocationLog``).
        ready: called once every listener is bound (e.g. to print ``server.urls``).

    Raises:
        FunctionInitError: the function cannot initialize (``AlbServer.start``); nothing listened.
        LambdaError: the config cannot be served (certificate, address in use, …).
    """

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals = [signal.SIGINT, signal.SIGTERM] if threading.current_thread() is threading.main_thread() else []
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        server = AlbServer(config, log=log)
        starting = asyncio.ensure_future(server.start())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():  # a signal during the start: stop there
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            else:
                starting.result()  # the start's error, if any
            if not stopping.done():
                if ready is not None:
                    ready(server)
                await stopping
        finally:
            stopping.cancel()
            starting.cancel()
            await server.stop()
            for sig in signals:
                loop.remove_signal_handler(sig)

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve())


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (about twice the requests per CPU second), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m meshbridge.alb.server CONFIG.json``: serve, with JSON lines on stdout (module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m meshbridge.alb.server CONFIG.json   (AlbConfig.to_json())", file=sys.stderr)
        return 2

    lines = _JsonLines()
    try:
        config = AlbConfig.from_json(Path(args[0]).read_bytes())
        run_alb(
            config,
            log=lambda entry: lines.emit({"event": "invocation", **entry.to_dict()}),
            ready=lambda server: lines.emit({"event": "ready", "urls": server.urls, "ports": server.ports}, now=True),
        )
    except FunctionInitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except (LambdaError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        lines.flush()
    return 0


class _JsonLines:
    """JSON lines on stdout, flushed within ``FLUSH_S`` rather than per line: one pipe write per request
    cost about an eighth of the ALB's CPU under load."""

    FLUSH_S = 0.02

    def __init__(self) -> None:
        self._pending: asyncio.TimerHandle | None = None
        self._broken = False  # the reader went away: keep serving, stop writing

    def emit(self, record: dict[str, Any], *, now: bool = False) -> None:
        if self._broken:
            return
        try:
            sys.stdout.write(json.dumps(record) + "\n")
        except OSError:
            self._broken = True
            return
        if now:
            self.flush()
        elif self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)

    def flush(self) -> None:
        self._pending = None
        if not self._broken:
            try:
                sys.stdout.flush()
            except OSError:
                self._broken = True


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
