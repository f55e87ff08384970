"""Lambda execution environments: the Runtime API (2018-06-01) and a pool of real ``awslambdaric`` processes.

Each environment runs one ``python -m awslambdaric <module>.<function>`` process, started as AWS starts it
(cwd = task root, the environment variables of a Python managed runtime), in its own process group, with its
own Runtime API endpoint on loopback (``AWS_LAMBDA_RUNTIME_API``). The pool hands each invocation to one idle
environment, creating environments on demand up to the reserved concurrency; beyond it the invoke is
throttled (Lambda's 429), never queued.

Lifecycle of one environment (LDG lambda-runtime-environment; RIE ``rapidcore/server.go``)::

    (none) ──invoke──▶ init ──first /next──▶ invoke ──/response or /error──▶ warm (idle) ──invoke──▶ invoke …
                        │                      │
                        │ init/error, exit,    │ timeout, exit, crash,
                        │ init over 10 s       │ response over 6 MB
                        ▼                      ▼
                      reset: the process group is killed; the next invoke re-runs init ("suppressed init",
                      counted against the function timeout: AWS behaviour since 2024-10)

Start-up init check (meshbridge's own; AWS has none): ``EnvironmentPool.check_init`` runs one environment
exactly as a cold start does, until its first ``/next`` (init succeeded) or its ``/init/error`` or exit (init
failed), then kills it, so the first real invoke is still an on-demand cold start. AWS reports a handler that
cannot initialize (``Runtime.HandlerNotFound``, ``Runtime.ImportModuleError``, ``Runtime.UserCodeSyntaxError``,
…) only on the first invoke (LDG lambda-runtime-environment; RIE ``rapidcore/server.go`` ``awaitInitialized``;
research notes D5), and ``invoke`` still does exactly that; the check lets a server refuse to start instead.

Errors: only ``meshbridge.errors.LambdaError`` leaves this module (``FunctionInitError`` is one). A
function's own failures are not errors of the emulator: they come back as an ``Invocation`` with
``outcome="Unhandled"`` and the error JSON, as the Lambda ``Invoke`` API returns them.

Sources: research notes ``shared/research/lambda-alb.md`` §C-D (LDG runtimes-api, configuration-envvars,
lambda-runtime-environment; RIE ``rapi/handler/*.go``, ``interop/model.go``, ``fatalerror.go``; awslambdaric
4.2.2 behaviour observed). The three awslambdaric traps of §C are handled here:

1. ``/next`` answers ``Content-Type: application/json`` exactly: with ``; charset=utf-8`` the handler would
   get ``bytes``, and with no Content-Type at all awslambdaric 4.2.2 segfaults.
2. ``/init/error`` is posted by ``http.client`` with **no** Content-Type and must get 202, or awslambdaric
   raises; ``/error`` carries no ``Lambda-Runtime-Function-Error-Type`` header and is accepted without it.
3. A non-2xx answer to ``/response`` (413 over 6 MB) makes awslambdaric exit 1: the invocation fails with
   ``Function.ResponseSizeTooLarge`` and the environment is reset, not reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

from aiohttp import web
from pydantic import ConfigDict

from meshbridge.errors import LambdaError

RUNTIME_API_VERSION = "2018-06-01"
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 + 100
"""RIE ``interop/model.go`` ``MaxPayloadSize``: the synchronous invoke request and response limit (6 MB)."""
INIT_TIMEOUT_S = 10.0
RUNTIME_API_MAX_HEADER_BYTES = 1 << 20  # one header line; the runtime's error posts carry stack traces
"""LDG lambda-runtime-environment: the Init phase of an on-demand environment is limited to 10 seconds."""
MAX_OUTPUT_BYTES = 1_048_576
"""Captured stdout/stderr kept per invocation; beyond it the rest is dropped and the cut is marked."""

Outcome = Literal["Success", "Unhandled", "Throttled"]
"""How an invoke ended, in Lambda's words: a response, a function error (``X-Amz-Function-Error: Unhandled``),
or a 429 ``TooManyRequestsException`` (reserved concurrency reached)."""

_PREFIX = f"/{RUNTIME_API_VERSION}/runtime/"
_EXIT_GRACE_S = 2.0  # LDG lambda-runtime-environment: the Shutdown phase is capped at 2 s, then SIGKILL
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')  # a stackTrace entry (traceback format)
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)  # LDG configuration-envvars "Reserved environment variables": Lambda refuses to let a function set these.


@dataclass(frozen=True)
class FunctionConfig:
    """One Lambda function: its code, its settings, and the identity the runtime reports.

    Attributes:
        handler: ``FILE.py:FUNCTION``, e.g. ``handler.py:lambda_handler``; ``FILE`` is relative to
            ``task_root`` when that is given, else to the current directory. A file in a sub-folder
            (``pkg/app.py:main``) becomes AWS's ``pkg/app.main``.
        task_root: the code folder (AWS's ``/var/task``; ``LAMBDA_TASK_ROOT`` and the runtime's cwd).
            Default: the folder of ``FILE``.
        function_name: ``AWS_LAMBDA_FUNCTION_NAME`` (1-64 letters, digits, ``-``, ``_``). Default: the
            stem of ``FILE``.
        memory_mb: memory size in MB, 128-10240 (AWS default 128); reported to the handler
            (``context.memory_limit_in_mb``), **not enforced**.
        timeout_s: function timeout in seconds, over 0 and at most 900 (AWS default 3). On expiry the
            environment is killed and reset.
        concurrency: reserved concurrency: environments at most, 0-1000; 0 throttles every invoke.
        region: ``AWS_REGION``; also in the function ARN. Default ``us-east-1`` (RIE's default).
        account_id: the 12-digit account in the function ARN. Default ``012345678912`` (RIE's default).
        environment: the function's own environment variables. Reserved names (``AWS_REGION``,
            ``_HANDLER``, credentials, …) are refused, as Lambda refuses them.
        init_timeout_s: limit of an on-demand Init phase (AWS: 10 s). Past it the init is retried once during
            the invoke, bounded by the function timeout, as AWS does.
        python: the interpreter that runs ``-m awslambdaric``; it must have ``awslambdaric`` installed.
            Default: the current interpreter.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")  # AlbConfig.from_json: no unknown keys

    handler: str
    task_root: Path | None = None
    function_name: str | None = None
    memory_mb: int = 128
    timeout_s: float = 3.0
    concurrency: int = 10
    region: str = "us-east-1"
    account_id: str = "012345678912"
    environment: Mapping[str, str] = field(default_factory=dict)
    init_timeout_s: float = INIT_TIMEOUT_S
    python: str = sys.executable

    def __post_init__(self) -> None:
        file, sep, func = self.handler.rpartition(":")
        if not sep or not file.endswith(".py") or not func.isidentifier():
            raise LambdaError(
                f"handler {self.handler!r} is not FILE.py:FUNCTION; write e.g. 'handler.py:lambda_handler'"
            )
        if self.function_name is not None and not _FUNCTION_NAME.match(self.function_name):
            raise LambdaError(f"function name {self.function_name!r} is invalid; use 1-64 letters, digits, '-' or '_'")
        if not 128 <= self.memory_mb <= 10240:
            raise LambdaError(f"memory {self.memory_mb} MB is out of range; Lambda takes 128-10240 MB")
        if not 0 < self.timeout_s <= 900:
            raise LambdaError(f"timeout {self.timeout_s} s is out of range; Lambda takes over 0 and up to 900 s")
        if not 0 <= self.concurrency <= 1000:
            raise LambdaError(f"concurrency {self.concurrency} is out of range; use 0-1000 (0 throttles all)")
        if self.init_timeout_s <= 0:
            raise LambdaError(f"init timeout {self.init_timeout_s} s must be over 0")
        if not (len(self.account_id) == 12 and self.account_id.isdigit()):
            raise LambdaError(f"account id {self.account_id!r} must be 12 digits")
        reserved = sorted(set(self.environment) & _RESERVED_ENV)
        if reserved:
            raise LambdaError(
                f"environment sets reserved Lambda variable(s) {', '.join(reserved)}; Lambda sets these itself, "
                "remove them"
            )

    @property
    def file(self) -> Path:
        """The handler's file, as resolved from ``handler`` and ``task_root`` (it may not exist)."""
        file = Path(self.handler.rpartition(":")[0])
        return (self.task_root / file) if self.task_root is not None and not file.is_absolute() else file

    @property
    def resolved_task_root(self) -> Path:
        """The absolute task root."""
        return (self.task_root or self.file.parent).resolve()

    @property
    def aws_handler(self) -> str:
        """The handler string AWS stores and awslambdaric takes as argv[1], e.g. ``handler.lambda_handler``.

        Raises:
            LambdaError: the file is not inside the task root.
        """
        try:
            module = self.file.resolve().relative_to(self.resolved_task_root).with_suffix("")
        except ValueError:
            raise LambdaError(
                f"handler file {self.file} is outside the task root {self.resolved_task_root}; "
                "put it inside or choose another task root"
            ) from None
        return f"{module.as_posix()}.{self.handler.rpartition(':')[2]}"

    @property
    def name(self) -> str:
        """The function name (explicit, or the handler file's stem with other characters replaced by ``-``)."""
        return self.function_name or (re.sub(r"[^A-Za-z0-9_-]", "-", self.file.stem)[:64] or "function")

    @property
    def arn(self) -> str:
        """``arn:aws:lambda:<region>:<account>:function:<name>`` (the unqualified ARN ALB invokes)."""
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    def check(self) -> None:
        """Check that the code and the interpreter exist, before any process is started.

        Raises:
            LambdaError: the handler file or the task root is missing, or ``python`` is not executable.
        """
        if not self.file.is_file():
            raise LambdaError(f"handler file {self.file} does not exist")
        if not self.resolved_task_root.is_dir():
            raise LambdaError(f"task root {self.resolved_task_root} is not a folder")
        self.aws_handler  # noqa: B018 - raises when the file lies outside the task root
        if not os.access(self.python, os.X_OK):
            raise LambdaError(f"python interpreter {self.python} is not executable")


@dataclass(frozen=True)
class Invocation:
    """The result of one invoke, as the Lambda ``Invoke`` API gives it, plus what the platform measured.

    Attributes:
        request_id: the invocation's ``aws_request_id`` (a UUID); empty for a throttled invoke.
        outcome: ``Success``, ``Unhandled`` (a function error) or ``Throttled``.
        payload: the function's response bytes for ``Success``; the error JSON
            (``{"errorMessage", "errorType", …}``) for ``Unhandled``; Lambda's 429 body for ``Throttled``.
        error_type: ``errorType`` of a function error (``ValueError``, ``Sandbox.Timedout``,
            ``Runtime.ExitError``, ``Runtime.ImportModuleError``, ``Function.ResponseSizeTooLarge``, …), or
            ``TooManyRequestsException``; ``None`` on success.
        error_message: the error's message, when there is one.
        cold: an init ran for this invoke (first use of an environment, or the first after a reset).
        init_duration_ms: the on-demand Init phase (process start to its first ``/next``), in ms; ``None``
            when warm or for a suppressed init (whose time is inside ``duration_ms``, as in AWS's REPORT).
        duration_ms: the invoke phase in ms (event handed over to response posted), as REPORT ``Duration``.
        output: what the runtime wrote to stdout and stderr during this invoke (and its init), as one
            stream like a CloudWatch log stream; awslambdaric joins a traceback's lines with ``\\r``.
        environment: index of the environment that ran it (``-1`` when throttled).
    """

    request_id: str
    outcome: Outcome
    payload: bytes
    error_type: str | None
    error_message: str | None
    cold: bool
    init_duration_ms: float | None
    duration_ms: float
    output: str
    environment: int


class FunctionInitError(LambdaError):
    """The function's code cannot initialize, so every invoke would fail: found by ``check_init``.

    ``str()`` is one line: the handler, the ``errorType``, the ``errorMessage`` and the fix, e.g.
    ``handler h.py:nope cannot initialize: Runtime.HandlerNotFound: Handler 'nope' missing on module 'h'
    (every request would get 502 LambdaUnhandled). Fix: define nope(event, context) in h.py, …``.

    Attributes:
        handler: the handler as configured (``FILE.py:FUNCTION``).
        error_type: what awslambdaric posted to ``/init/error`` (``Runtime.HandlerNotFound``,
            ``Runtime.ImportModuleError``, ``Runtime.UserCodeSyntaxError``, ``Runtime.MalformedHandlerName``,
            ``Runtime.BuiltInModuleConflict``, or the class name of what the module raised, e.g.
            ``RuntimeError``); or the platform's ``Runtime.ExitError`` (the process ended during init),
            ``Sandbox.Timedout`` (no verdict within the bound) or ``Runtime.InvalidEntrypoint`` (the
            runtime could not be started).
        error_message: the ``errorMessage`` (newlines folded to spaces).
        output: what the runtime wrote during the init (awslambdaric's warning and traceback).
    """

    def __init__(
        self, config: FunctionConfig, error_type: str, error_message: str, *, where: str = "", output: str = ""
    ) -> None:
        self.handler = config.handler
        self.error_type = error_type
        self.error_message = " ".join(error_message.split())[:1000]
        self.output = output
        super().__init__(
            f"handler {config.handler} cannot initialize: {error_type}: {self.error_message}{where} "
            f"(every request would get 502 LambdaUnhandled). Fix: {_init_fix(config, error_type)}"
        )


def _init_fix(config: FunctionConfig, error_type: str) -> str:
    """The fix for an init failure of ``error_type`` (awslambdaric ``bootstrap._get_handler`` raises the
    ``Runtime.*`` ones; anything else is the module's own exception at import)."""
    file = config.file
    function = config.handler.rpartition(":")[2]
    fixes = {
        "Runtime.HandlerNotFound": f"define {function}(event, context) in {file}, or name a function it defines",
        "Runtime.ImportModuleError": (
            f"install the missing module into {config.python} or put it in the task root {config.resolved_task_root}"
        ),
        "Runtime.UserCodeSyntaxError": "correct the syntax at the file and line the message names",
        "Runtime.MalformedHandlerName": "write the handler as FILE.py:FUNCTION",
        "Runtime.BuiltInModuleConflict": f"rename {file}: a built-in Python module has its name",
        "Runtime.ExitError": "remove what ends the process (sys.exit, os._exit, a crash) from the code run at import",
        "Sandbox.Timedout": (
            "make the code run at import finish sooner: the Init phase may take "
            f"{max(config.init_timeout_s, config.timeout_s):g} s (AWS: 10 s, or the function timeout when longer)"
        ),
        "Runtime.InvalidEntrypoint": f"check that {config.python} runs and has awslambdaric installed",
    }
    return fixes.get(error_type, f"the code {file} runs at import raised it; correct it, or catch the error there")


class _StartFailed(Exception):
    """A runtime process could not be started; the message says why."""


class _Call:
    """One invocation in flight."""

    __slots__ = (
        "cold",
        "deadline",
        "delivered",
        "env",
        "event",
        "future",
        "init_ms",
        "output",
        "request_id",
        "started",
        "suppressed",
        "timer",
        "trace_id",
    )

    def __init__(self, request_id: str, event: bytes, trace_id: str, env: _Environment) -> None:
        self.request_id = request_id
        self.event = event
        self.trace_id = trace_id
        self.env = env
        self.future: asyncio.Future[Invocation] = asyncio.get_running_loop().create_future()
        self.started = time.monotonic()
        self.delivered: float | None = None
        self.deadline: float | None = None  # monotonic; set when the function timeout starts
        self.timer: asyncio.TimerHandle | None = None
        self.cold = False
        self.suppressed = False  # a cold start after a reset: init time counts against the timeout
        self.init_ms: float | None = None
        self.output = bytearray()


class _Runtime:
    """One runtime process with its own Runtime API endpoint: the state the Runtime API serves from."""

    def __init__(self, env: _Environment) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.server: asyncio.Server | None = None
        self.web: web.Server | None = None
        self.port = 0
        self.out_fd = -1
        self.spawned = 0.0
        self.initialized = False  # it has called /next once: its init is over
        self.waiter: asyncio.Future[None] | None = None  # wakes a /next long poll
        self.pending: _Call | None = None  # an event no /next has taken yet
        self.current: _Call | None = None  # the event the runtime is working on
        self.last_request_id: str | None = None
        self.stash = bytearray()  # output written while no invocation was running
        self.exited: asyncio.Future[int] | None = None
        self.dead = False
        self.polled: asyncio.Future[float] | None = None  # check_init: the time of the first /next
        self.init_error: tuple[str, str | None, bytes] | None = None  # (errorType, errorMessage, body) posted


class _Environment:
    """A slot of the pool; holds at most one live runtime at a time."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.runtime: _Runtime | None = None
        self.ran_before = False  # a runtime ran here: the next init is a suppressed init (after a reset)
        self.log_stream = ""


_THROTTLED = Invocation(
    request_id="",
    outcome="Throttled",
    payload=b'{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}',
    error_type="TooManyRequestsException",
    error_message="Rate Exceeded.",
    cold=False,
    init_duration_ms=None,
    duration_ms=0.0,
    output="",
    environment=-1,
)
"""Lambda's answer when reserved concurrency is reached (LDG API_Invoke: 429 TooManyRequestsException)."""


class EnvironmentPool:
    """Lambda execution environments for one function, each a real awslambdaric process.

    Use ``async with EnvironmentPool(config) as pool`` or ``start()``/``stop()``; ``invoke`` from the same
    event loop. All state lives on that loop: no locks.

    Args:
        config: the function.
        host: loopback address the Runtime API endpoints listen on (one ephemeral port per runtime).
        runtime_command: the command that starts a runtime, before the handler argument; default
            ``[config.python, "-m", "awslambdaric"]``. Tests pass a scripted runtime to probe the Runtime API.
    """

    def __init__(
        self, config: FunctionConfig, *, host: str = "127.0.0.1", runtime_command: Sequence[str] | None = None
    ) -> None:
        config.check()
        self.config = config
        self.host = host
        self._command = [*(runtime_command or [config.python, "-m", "awslambdaric"]), config.aws_handler]
        self._arn = config.arn
        self._envs: list[_Environment] = []
        self._warm: list[_Environment] = []  # idle with a live runtime; used last-in first-out
        self._cold: list[_Environment] = []  # idle without a runtime (after a reset)
        self._runtimes: set[_Runtime] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._started = False
        self._stopped = False
        self._base_env = self._runtime_environment()

    async def __aenter__(self) -> EnvironmentPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Get ready to invoke. Environments start lazily, on the invokes that need them (on-demand init)."""
        self._started = True

    @property
    def environments(self) -> int:
        """How many environments exist (warm, busy, or reset and waiting for their next init)."""
        return len(self._envs)

    @property
    def pids(self) -> list[int]:
        """Process ids of the runtimes in service (each the leader of its own process group); a runtime being
        reset is not listed, even before it is reaped."""
        return [r.proc.pid for r in self._runtimes if r.proc is not None and not r.dead]

    @property
    def busy(self) -> int:
        """How many environments are working on an invocation (or initializing for one)."""
        return len(self._envs) - len(self._warm) - len(self._cold)

    async def invoke(self, event: bytes, *, trace_id: str | None = None) -> Invocation:
        """Run one invocation in an idle environment, as a synchronous (``RequestResponse``) invoke.

        The function timeout runs from the invoke for a warm environment and for a suppressed init (after
        a reset), and from the end of the Init phase for an on-demand init (LDG lambda-runtime-environment).

        Args:
            event: the event, JSON bytes (the ALB event, for instance); at most 6 MB.
            trace_id: the X-Ray trace header for ``Lambda-Runtime-Trace-Id``
                (``Root=1-…;Parent=…;Sampled=0``); default: a fresh one.

        Returns:
            The invocation's result. Function errors, timeouts, crashes and throttling are results, not
            exceptions.

        Raises:
            LambdaError: the pool is not started or already stopped, or the event is over 6 MB.
        """
        if not self._started or self._stopped:
            raise LambdaError("the Lambda environment pool is not running; start it before invoking")
        if len(event) > MAX_PAYLOAD_BYTES:
            raise LambdaError(f"event of {len(event)} bytes is over the 6 MB invoke limit ({MAX_PAYLOAD_BYTES})")
        env = self._acquire()
        if env is None:
            return _THROTTLED
        call = _Call(str(uuid.uuid4()), event, trace_id or lambda_trace_header(None), env)
        runtime = env.runtime
        if runtime is None or runtime.dead:
            call.cold = True
            call.suppressed = env.ran_before
            try:
                runtime = await self._spawn(env)
            except _StartFailed as e:
                self._fail_start(call, str(e))
                return await call.future
            if call.suppressed:
                self._arm(call, self.config.timeout_s)
            else:
                self._arm(call, self.config.init_timeout_s, init=True)
        else:
            self._arm(call, self.config.timeout_s)
        self._assign(runtime, call)
        return await call.future

    async def check_init(self, *, timeout_s: float | None = None) -> float | None:
        """Run one init, exactly as a cold start does, to find a function that cannot initialize before any
        traffic; then kill that environment, so the first invoke is still an on-demand cold start.

        The environment (same command, cwd, variables and Runtime API as ``invoke``'s) is outside the pool:
        ``environments`` stays 0 and its output is not handed to any invocation. The module's top-level code
        therefore runs once more than on AWS. AWS itself has no such check: it reports the failure on the
        first invoke (LDG lambda-runtime-environment; research notes D5), which ``invoke`` still does. Call
        it before serving invokes.

        Args:
            timeout_s: how long to wait for a verdict. Default: the longer of the Init limit
                (``init_timeout_s``, 10 s) and the function timeout: AWS lets an on-demand init take the
                former, then retries it within the latter, so an init still running then would fail the
                first invoke on AWS too.

        Returns:
            The init's duration in ms (process start to its first ``/next``), or ``None`` when reserved
            concurrency is 0 (no environment would ever run, so none is started).

        Raises:
            FunctionInitError: the runtime posted ``/init/error``, exited, could not be started, or did not
                reach ``/next`` within ``timeout_s``.
            LambdaError: the pool is not running, or was stopped during the check.
        """
        if not self._started or self._stopped:
            raise LambdaError("the Lambda environment pool is not running; start it before the init check")
        if self.config.concurrency == 0:
            return None
        bound = timeout_s if timeout_s is not None else max(self.config.init_timeout_s, self.config.timeout_s)
        try:
            runtime = await self._spawn(_Environment(-1))
        except _StartFailed as e:
            if self._stopped:
                raise LambdaError("the Lambda environment pool was stopped during the init check") from None
            raise FunctionInitError(self.config, "Runtime.InvalidEntrypoint", str(e)) from None
        assert runtime.exited is not None
        exited = runtime.exited
        polled = runtime.polled = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait([polled, exited], timeout=bound, return_when=asyncio.FIRST_COMPLETED)
            timed_out = not polled.done() and not exited.done()
            if not runtime.dead:  # init succeeded (or timed out): stop it; the pool stays without environment
                self._kill(runtime, "signal: killed", fail_calls=False)
            await exited  # reaped: the check leaves no process behind
        finally:
            if not runtime.dead:  # cancelled
                self._kill(runtime, "signal: killed", fail_calls=False)
        if polled.done():
            init_done: float = polled.result()
            return (init_done - runtime.spawned) * 1000
        if self._stopped:
            raise LambdaError("the Lambda environment pool was stopped during the init check")
        self._read_output(runtime)
        output = runtime.stash.decode("utf-8", "replace")
        if runtime.init_error is not None:
            error_type, message, body = runtime.init_error
            where = "" if error_type.startswith("Runtime.") else _raised_at(body)
            raise FunctionInitError(self.config, error_type, message or "", where=where, output=output)
        if timed_out:
            message = f"the init did not reach invocation/next within {bound:g} s"
            raise FunctionInitError(self.config, "Sandbox.Timedout", message, output=output)
        code = exited.result()
        status = f"exit status {code}" if code >= 0 else f"signal: {_signal_name(-code)}"
        raise FunctionInitError(self.config, "Runtime.ExitError", f"Runtime exited with error: {status}", output=output)

    async def reset(self) -> None:
        """Kill every environment's runtime; each one re-runs init on its next invoke (a cold start).

        Invocations in flight end as ``Runtime.ExitError`` (``signal: killed``).
        """
        for env in self._envs:
            if env.runtime is not None and not env.runtime.dead:
                self._kill(env.runtime, "signal: killed")
        await self._settle()

    async def stop(self) -> None:
        """Kill every runtime (process group, SIGKILL), close every Runtime API endpoint, reap every child.

        Idempotent. Invocations in flight end as ``Runtime.ExitError``. No process is left behind.

        Raises:
            LambdaError: a runtime did not exit within 10 s of SIGKILL (it is stuck in the kernel).
        """
        if self._stopped:
            return
        self._stopped = True
        for runtime in list(self._runtimes):
            self._kill(runtime, "signal: killed")
            self._signal_group(runtime)  # also those given a grace period to exit by themselves
        await self._settle()
        for runtime in list(self._runtimes):  # output pipes still held open by an escaped grandchild
            self._close_output(runtime)
        self._runtimes.clear()

    # -- pool ---------------------------------------------------------------------------------------------

    def _acquire(self) -> _Environment | None:
        if self._warm:
            return self._warm.pop()
        if self._cold:
            return self._cold.pop()
        if len(self._envs) < self.config.concurrency:
            env = _Environment(len(self._envs))
            self._envs.append(env)
            return env
        return None

    def _release(self, env: _Environment) -> None:
        runtime = env.runtime
        if runtime is not None and not runtime.dead and not self._stopped:
            self._warm.append(env)
        else:
            self._cold.append(env)

    def _arm(self, call: _Call, seconds: float, *, init: bool = False) -> None:
        if call.timer is not None:
            call.timer.cancel()
        if not init:
            call.deadline = time.monotonic() + seconds
        call.timer = asyncio.get_running_loop().call_later(seconds, self._on_timer, call, init)

    def _on_timer(self, call: _Call, init: bool) -> None:
        runtime = call.env.runtime
        if call.future.done() or runtime is None:
            return
        if init:
            # LDG lambda-runtime-environment: an Init over 10 s is retried during the first invoke, bounded
            # by the function timeout (a suppressed init).
            runtime.pending = None
            self._kill(runtime, "init timed out")
            call.suppressed = True
            self._arm(call, self.config.timeout_s)
            self._track(self._respawn(call))
            return
        message = f"Task timed out after {self.config.timeout_s:.2f} seconds"
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self._kill(runtime, "timed out", fail_calls=False)
        call.output += f"{stamp} {call.request_id} {message}\n".encode()
        self._fail(call, "Sandbox.Timedout", f"RequestId: {call.request_id} Error: {message}")

    async def _respawn(self, call: _Call) -> None:
        try:
            runtime = await self._spawn(call.env)
        except _StartFailed as e:
            self._fail_start(call, str(e))
            return
        if call.future.done():  # it timed out while the runtime was starting: nothing to run
            self._kill(runtime, "signal: killed")
        else:
            self._assign(runtime, call)

    def _assign(self, runtime: _Runtime, call: _Call) -> None:
        if runtime.stash:
            call.output[:0] = runtime.stash
            runtime.stash.clear()
        runtime.pending = call
        if runtime.waiter is not None and not runtime.waiter.done():
            runtime.waiter.set_result(None)

    def _finish(
        self,
        call: _Call,
        outcome: Outcome,
        payload: bytes,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """End ``call``: collect its output, free its environment, then wake its invoker."""
        if call.future.done():
            return
        if call.timer is not None:
            call.timer.cancel()
        env = call.env
        runtime = env.runtime
        if runtime is not None:
            self._read_output(runtime)  # what it wrote before posting is in the pipe already
            if runtime.current is call:
                runtime.current = None
                runtime.last_request_id = call.request_id
            if runtime.pending is call:
                runtime.pending = None
        now = time.monotonic()
        begin = call.delivered if call.delivered is not None and not call.suppressed else call.started
        self._release(env)
        call.future.set_result(
            Invocation(
                request_id=call.request_id,
                outcome=outcome,
                payload=payload,
                error_type=error_type,
                error_message=error_message,
                cold=call.cold,
                init_duration_ms=call.init_ms,
                duration_ms=(now - begin) * 1000,
                output=call.output.decode("utf-8", "replace"),
                environment=env.index,
            )
        )

    # -- processes ----------------------------------------------------------------------------------------

    def _runtime_environment(self) -> dict[str, str]:
        """The variables a Python managed runtime sees (LDG configuration-envvars; RIE env defaults).

        Nothing else of this process's environment is passed on: no credentials (Lambda would give the
        execution role's; set them in ``FunctionConfig.environment`` if the handler needs AWS calls).
        """
        c = self.config
        return {
            **c.environment,
            "_HANDLER": c.aws_handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
            "AWS_LAMBDA_FUNCTION_NAME": c.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(c.memory_mb),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{c.name}",
            "AWS_REGION": c.region,
            "AWS_DEFAULT_REGION": c.region,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
            "LAMBDA_TASK_ROOT": str(c.resolved_task_root),
            "LAMBDA_RUNTIME_DIR": _runtime_dir(),
            "LANG": "en_US.UTF-8",
            "PATH": f"{Path(c.python).parent}:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "TZ": ":UTC",
        }

    async def _spawn(self, env: _Environment) -> _Runtime:
        """Start a runtime for ``env`` with a fresh Runtime API endpoint.

        A fresh endpoint per process means a request from a killed process can never reach its successor.

        Raises:
            _StartFailed: no endpoint, the pool was stopped meanwhile, or the process cannot be started
                (an invoke reports it as ``Runtime.InvalidEntrypoint``).
        """
        loop = asyncio.get_running_loop()
        runtime = _Runtime(env)
        runtime.web = web.Server(
            partial(self._serve, runtime),
            auto_decompress=False,
            access_log=None,
            # awslambdaric posts an error's stack trace in the Lambda-Runtime-Function-XRay-Error-Cause header:
            # a deep recursion makes it far longer than aiohttp's 8 KiB default, and the Runtime API takes it
            max_field_size=RUNTIME_API_MAX_HEADER_BYTES,
        )
        try:
            runtime.server = await loop.create_server(runtime.web, self.host, 0)
        except OSError as e:
            raise _StartFailed(f"cannot listen on {self.host} for the Runtime API: {e}") from e
        if self._stopped:  # stop() ran meanwhile: start nothing more
            runtime.server.close()
            raise _StartFailed("the environment pool was stopped")
        runtime.port = runtime.server.sockets[0].getsockname()[1]
        if not env.log_stream:
            day = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
            env.log_stream = f"{day}/[$LATEST]{uuid.uuid4().hex}"
        variables = {
            **self._base_env,
            "AWS_LAMBDA_RUNTIME_API": f"{self.host}:{runtime.port}",
            "AWS_LAMBDA_LOG_STREAM_NAME": env.log_stream,
        }
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                self._command,
                cwd=self.config.resolved_task_root,
                env=variables,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,  # its own process group: a reset kills the handler's children too
            )
        except OSError as e:
            os.close(read_fd)
            runtime.server.close()
            raise _StartFailed(f"cannot start {self._command[0]}: {e}") from e
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        runtime.proc = proc
        runtime.spawned = time.monotonic()
        runtime.out_fd = read_fd
        runtime.exited = loop.create_future()
        loop.add_reader(read_fd, self._read_output, runtime)
        self._watch_exit(runtime)
        env.runtime = runtime
        env.ran_before = True
        self._runtimes.add(runtime)
        return runtime

    def _fail(self, call: _Call, error_type: str, message: str) -> None:
        """End ``call`` with a platform-made function error (``{"errorMessage", "errorType"}``)."""
        self._finish(call, "Unhandled", _error_json(message, error_type), error_type, message)

    def _fail_start(self, call: _Call, detail: str) -> None:
        self._fail(call, "Runtime.InvalidEntrypoint", f"RequestId: {call.request_id} Error: {detail}")

    def _watch_exit(self, runtime: _Runtime) -> None:
        loop = asyncio.get_running_loop()
        proc = runtime.proc
        assert proc is not None
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # not Linux 5.3+: wait in a thread
            waiting = loop.run_in_executor(None, proc.wait)
            waiting.add_done_callback(lambda _: self._on_exit(runtime))
            self._track(waiting)
            return

        def readable() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._on_exit(runtime)

        loop.add_reader(pidfd, readable)

    def _on_exit(self, runtime: _Runtime) -> None:
        proc = runtime.proc
        assert proc is not None
        code = proc.wait()  # reaps; immediate, the process has exited
        _killpg(proc.pid)  # the handler's own children, if any are left
        self._read_output(runtime)
        self._kill(runtime, f"exit status {code}" if code >= 0 else f"signal: {_signal_name(-code)}")
        assert runtime.exited is not None
        runtime.exited.set_result(code)
        if runtime.out_fd < 0:
            self._runtimes.discard(runtime)

    def _kill(self, runtime: _Runtime, status: str, *, fail_calls: bool = True, grace_s: float = 0.0) -> None:
        """Reset: take the runtime out of service, close its endpoint and kill its process group.

        Args:
            runtime: the runtime.
            status: how its end is reported to an invocation it fails (``exit status 3``, ``signal: killed``).
            fail_calls: fail the invocation it holds, if any, as ``Runtime.ExitError``.
            grace_s: let it exit by itself for this long before SIGKILL (awslambdaric exits 1 right after
                the answer to ``/init/error`` or an oversized ``/response``, and must read that answer first).
        """
        if not runtime.dead:
            runtime.dead = True
            if runtime.waiter is not None and not runtime.waiter.done():
                runtime.waiter.cancel()
            if runtime.server is not None:
                runtime.server.close()  # no new connections; a response being written still goes out
            if runtime.web is not None:
                self._track(runtime.web.shutdown(0.1 + grace_s))
            if grace_s > 0:
                asyncio.get_running_loop().call_later(grace_s, self._signal_group, runtime)
            else:
                self._signal_group(runtime)
            env = runtime.env
            if env in self._warm:  # it died while idle: its next invoke is a cold start
                self._warm.remove(env)
                self._cold.append(env)
        if fail_calls:
            for call in (runtime.current, runtime.pending):
                if call is not None and not call.future.done():
                    message = f"RequestId: {call.request_id} Error: Runtime exited with error: {status}"
                    self._fail(call, "Runtime.ExitError", message)

    @staticmethod
    def _signal_group(runtime: _Runtime) -> None:
        if runtime.proc is not None and runtime.proc.returncode is None:
            _killpg(runtime.proc.pid)

    def _read_output(self, runtime: _Runtime) -> None:
        """Move what the runtime wrote to stdout/stderr to its invocation (or aside, while idle).

        Reads until the pipe is empty, at most 4 MiB per call so a chatty handler cannot starve the loop.
        """
        fd = runtime.out_fd
        for _ in range(64):
            if fd < 0:
                return
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self._close_output(runtime)
                if runtime.exited is not None and runtime.exited.done():
                    self._runtimes.discard(runtime)
                return
            target = runtime.current or runtime.pending
            buf = target.output if target is not None else runtime.stash
            room = MAX_OUTPUT_BYTES - len(buf)
            if room > 0:
                buf += chunk[:room]
                if len(chunk) > room:
                    buf += b"\n[meshbridge: output over 1 MiB for this invocation was dropped]\n"

    def _close_output(self, runtime: _Runtime) -> None:
        if runtime.out_fd >= 0:
            asyncio.get_running_loop().remove_reader(runtime.out_fd)
            os.close(runtime.out_fd)
            runtime.out_fd = -1

    def _track(self, aw: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self) -> None:
        """Wait until every killed runtime is reaped and every endpoint is closed."""
        while True:
            waits = [r.exited for r in self._runtimes if r.exited is not None and not r.exited.done()]
            tasks = [t for t in self._tasks if not t.done()]
            if not waits and not tasks:
                return
            await asyncio.wait([*waits, *tasks], timeout=10.0)
            if any(not w.done() for w in waits):
                raise LambdaError("a Lambda runtime process did not exit within 10 s of SIGKILL")

    # -- Runtime API --------------------------------------------------------------------------------------

    async def _serve(self, runtime: _Runtime, request: web.BaseRequest) -> web.StreamResponse:
        """The Runtime API of one runtime (LDG runtimes-api; status codes and bodies as RIE ``rapi``)."""
        path = request.path
        if not path.startswith(_PREFIX):
            return _api_error(404, "NotFound", f"unknown Runtime API path {path}")
        route = path[len(_PREFIX) :]
        if route == "invocation/next":
            if request.method != "GET":
                return _api_error(405, "MethodNotAllowed", "use GET for invocation/next")
            return await self._next(runtime)
        if request.method != "POST":
            return _api_error(405, "MethodNotAllowed", f"use POST for {route}")
        if route == "init/error":
            return await self._init_error(runtime, request)
        kind, _, rest = route.partition("/")
        request_id, _, action = rest.partition("/")
        if kind == "invocation" and action in ("response", "error"):
            return await self._result(runtime, request, request_id, action)
        return _api_error(404, "NotFound", f"unknown Runtime API path {path}")

    async def _next(self, runtime: _Runtime) -> web.StreamResponse:
        if runtime.polled is not None and not runtime.polled.done():
            runtime.polled.set_result(time.monotonic())  # check_init: the init is over
        if runtime.current is not None:
            return _api_error(
                403, "InvalidStateTransition", "invocation/next called before the current invocation was answered"
            )
        while runtime.pending is None:  # a long poll: awslambdaric sets no client timeout
            runtime.waiter = asyncio.get_running_loop().create_future()
            await runtime.waiter
        call = runtime.pending
        runtime.pending = None
        runtime.current = call
        now = time.monotonic()
        call.delivered = now
        if not runtime.initialized:
            runtime.initialized = True
            if call.cold and not call.suppressed:
                call.init_ms = (now - runtime.spawned) * 1000
                self._arm(call, self.config.timeout_s)  # on-demand init: the timeout starts now
        assert call.deadline is not None
        deadline_ms = int(time.time() * 1000 + (call.deadline - now) * 1000)
        return web.Response(
            body=call.event,
            headers={
                "Content-Type": "application/json",  # exactly this value: trap 1 of the module docstring
                "Lambda-Runtime-Aws-Request-Id": call.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": self._arn,
                "Lambda-Runtime-Trace-Id": call.trace_id,
            },
        )

    async def _result(
        self, runtime: _Runtime, request: web.BaseRequest, request_id: str, action: str
    ) -> web.StreamResponse:
        call = runtime.current
        if call is None or call.request_id != request_id:
            if request_id == runtime.last_request_id:
                return _api_error(403, "InvalidStateTransition", f"invocation {request_id} was already answered")
            return _api_error(400, "InvalidRequestID", f"invalid request id {request_id!r}")
        body = await read_body_capped(request, MAX_PAYLOAD_BYTES)
        if call.future.done():  # timed out while the body was arriving
            return _api_error(403, "InvalidStateTransition", f"invocation {request_id} has already ended")
        if body is None:
            size = f" ({request.content_length} bytes)" if request.content_length is not None else ""
            message = f"Response payload size{size} exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."
            # awslambdaric exits 1 after a non-2xx (trap 3): out of service now, so it is not handed out.
            self._kill(runtime, "exit status 1", fail_calls=False, grace_s=_EXIT_GRACE_S)
            self._fail(call, "Function.ResponseSizeTooLarge", message)
            return _api_error(
                413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."
            )
        if action == "response":
            self._finish(call, "Success", body)
        else:
            error_type, error_message = _error_fields(body, request.headers.get("Lambda-Runtime-Function-Error-Type"))
            self._finish(call, "Unhandled", body, error_type, error_message)
        # Let the invoker (the ALB's request) answer its client before the runtime gets its 202: the 202
        # wakes the runtime, which would otherwise take the CPU first on a busy machine.
        await asyncio.sleep(0)
        return _accepted()

    async def _init_error(self, runtime: _Runtime, request: web.BaseRequest) -> web.StreamResponse:
        # awslambdaric posts this with http.client and no Content-Type (trap 2); it expects 202, then exits 1.
        if runtime.initialized:
            return _api_error(403, "InvalidStateTransition", "init/error after the runtime finished its init")
        body = await read_body_capped(request, MAX_PAYLOAD_BYTES) or b""
        error_type, message = _error_fields(body, request.headers.get("Lambda-Runtime-Function-Error-Type"))
        runtime.init_error = (error_type, message, body)
        call = runtime.pending
        self._kill(runtime, "exit status 1", fail_calls=False, grace_s=_EXIT_GRACE_S)
        if call is not None:
            self._finish(call, "Unhandled", body, error_type, message)
        return _accepted()


async def read_body_capped(request: web.BaseRequest, limit: int) -> bytes | None:
    """The request body, or ``None`` when it is longer than ``limit`` bytes (not read further then).

    Used by the Runtime API (6 MB) and the ALB listeners (1 MB). A declared ``Content-Length`` over the
    limit is refused without reading; a chunked body is read until it passes the limit.
    """
    if not request.body_exists:
        return b""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _accepted() -> web.Response:
    """``202 {"status":"OK"}``: the Runtime API's answer to a response or an error (RIE ``rapi``)."""
    return web.Response(status=202, body=b'{"status":"OK"}', content_type="application/json")


def _runtime_dir() -> str:
    """Where awslambdaric is installed (AWS: ``/var/runtime``, the runtime's code), or ``""`` if unknown."""
    spec = importlib.util.find_spec("awslambdaric")
    if spec is None or spec.origin is None:
        return ""
    return str(Path(spec.origin).parent.parent)


def _killpg(pgid: int) -> None:
    """SIGKILL a runtime's process group (its pid: it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _api_error(status: int, error_type: str, message: str) -> web.Response:
    """A Runtime API error body, as RIE's ``model/errorresponse.go``: ``{"errorMessage", "errorType"}``."""
    return web.json_response({"errorMessage": message, "errorType": error_type}, status=status)


def _error_json(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _error_fields(body: bytes, header_type: str | None) -> tuple[str, str | None]:
    """``(errorType, errorMessage)`` of an error a runtime posted; the header wins over the body."""
    error_type = header_type
    message = None
    with contextlib.suppress(ValueError):
        doc = json.loads(body)
        if isinstance(doc, dict):
            if not error_type and isinstance(doc.get("errorType"), str):
                error_type = doc["errorType"]
            if isinstance(doc.get("errorMessage"), str):
                message = doc["errorMessage"]
    return error_type or "Runtime.Unknown", message


def _raised_at(body: bytes) -> str:
    """`` (at FILE line N)``: the innermost frame of an ``/init/error`` body's ``stackTrace``, or ``""``."""
    with contextlib.suppress(ValueError):
        doc = json.loads(body)
        frames = doc.get("stackTrace") if isinstance(doc, dict) else None
        if isinstance(frames, list) and frames and isinstance(frames[-1], str):
            found = _FRAME.search(frames[-1])
            if found:
                return f" (at {found['file']} line {found['line']})"
    return ""


def _signal_name(number: int) -> str:
    """Go's wording for a signal (``signal: killed``), as RIE's ``Runtime exited with error`` shows it."""
    try:
        return (signal.strsignal(signal.Signals(number)) or str(number)).lower()
    except ValueError:
        return str(number)


def lambda_trace_header(root: str | None) -> str:
    """``Root=…;Parent=<16 hex>;Sampled=0``: the ``Lambda-Runtime-Trace-Id`` shape (research notes C9).

    Args:
        root: the trace root the ALB put in ``X-Amzn-Trace-Id`` (``1-<8 hex>-<24 hex>``); ``None`` for a
            fresh one.
    """
    if root is None:
        root = f"1-{int(time.time()):08x}-{random.getrandbits(96):024x}"
    return f"Root={root};Parent={random.getrandbits(64):016x};Sampled=0"
