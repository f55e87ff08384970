"""Lambda execution environments: a pool of real ``awslambdaric`` processes that invocations are handed to.

The pool schedules: it hands each invocation to one idle environment, creating environments on demand up to
the reserved concurrency; beyond it the invoke is throttled (Lambda's 429), never queued. It runs the function
timeout and the Init limit, and resets an environment that fails. Each environment runs one runtime process
(:mod:`meshbridge.alb.runtime_process`: started as AWS starts it, output captured, exit watched) that calls
its own Runtime API endpoint (:mod:`meshbridge.alb.runtime_api`). The function and what an invoke returns
are :mod:`meshbridge.alb.function`.

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
…) only on the first invoke (LDG lambda-runtime-environment; RIE ``rapidcore/server.go`` ``awaitInitialized``),
and ``invoke`` still does exactly that; the check lets a server refuse to start instead.

A new version of the code is a new deployment: when the handler's file changes (its modification time or
size), the pool does what Lambda does after ``UpdateFunctionCode``: the environments of the old code take no
further invoke (an idle one is stopped; a busy one finishes its invocation on the old code, then stops), and the
next invokes start fresh environments with on-demand inits of the new code. Only the handler's own file is
watched (one ``stat`` per invoke), not the other files of the task root.

Errors: only ``meshbridge.errors.LambdaError`` leaves this module (``FunctionInitError`` is one). A
function's own failures are not errors of the emulator: they come back as an ``Invocation`` with
``outcome="Unhandled"`` and the error JSON, as the Lambda ``Invoke`` API returns them.

Sources: LDG is the AWS Lambda Developer Guide, by page (runtimes-api, configuration-envvars,
lambda-runtime-environment, API_Invoke); RIE is the Lambda Runtime Interface Emulator
(github.com/aws/aws-lambda-runtime-interface-emulator: ``rapi/handler/*.go``, ``interop/model.go``,
``fatalerror.go``); and awslambdaric 4.2.2 as it runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence

from meshbridge.alb.function import MAX_PAYLOAD_BYTES, FunctionConfig, FunctionInitError, Invocation, Outcome
from meshbridge.alb.runtime_api import RuntimeApi, lambda_trace_header, raised_at
from meshbridge.alb.runtime_process import Call, Environment, Processes, Runtime, StartFailed, exit_status
from meshbridge.errors import LambdaError

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
        command = [*(runtime_command or [config.python, "-m", "awslambdaric"]), config.aws_handler]
        api = RuntimeApi(self, config.arn, config.timeout_s)
        self._processes = Processes(config, command, host, api.endpoint, self._exited)
        self._envs: list[Environment] = []
        self._warm: list[Environment] = []  # idle with a live runtime; used last-in first-out
        self._cold: list[Environment] = []  # idle without a runtime (after a reset)
        self._code_file = config.file.resolve()
        self._code = self._code_version()
        self._started = False
        self._stopped = False

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
        return [r.proc.pid for r in self._processes.runtimes if r.proc is not None and not r.dead]

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
        call = Call(str(uuid.uuid4()), event, trace_id or lambda_trace_header(None), env)
        runtime = env.runtime
        if runtime is None or runtime.dead:
            call.cold = True
            call.suppressed = env.ran_before
            try:
                runtime = await self._processes.spawn(env)
            except StartFailed as e:
                self._fail_start(call, str(e))
                return await call.future
            if call.suppressed:
                self.arm(call, self.config.timeout_s)
            else:
                self.arm(call, self.config.init_timeout_s, init=True)
        else:
            self.arm(call, self.config.timeout_s)
        self._assign(runtime, call)
        return await call.future

    async def check_init(self, *, timeout_s: float | None = None) -> float | None:
        """Run one init, exactly as a cold start does, to find a function that cannot initialize before any
        traffic; then kill that environment, so the first invoke is still an on-demand cold start.

        The environment (same command, cwd, variables and Runtime API as ``invoke``'s) is outside the pool:
        ``environments`` stays 0 and its output is not handed to any invocation. The module's top-level code
        therefore runs once more than on AWS. AWS itself has no such check: it reports the failure on the
        first invoke (LDG lambda-runtime-environment), which ``invoke`` still does. Call
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
            runtime = await self._processes.spawn(Environment(-1))
        except StartFailed as e:
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
                self.kill(runtime, "signal: killed", fail_calls=False)
            await exited  # reaped: the check leaves no process behind
        finally:
            if not runtime.dead:  # cancelled
                self.kill(runtime, "signal: killed", fail_calls=False)
        if polled.done():
            init_done: float = polled.result()
            return (init_done - runtime.spawned) * 1000
        if self._stopped:
            raise LambdaError("the Lambda environment pool was stopped during the init check")
        self._processes.read_output(runtime)
        output = runtime.stash.decode("utf-8", "replace")
        if runtime.init_error is not None:
            error_type, message, body = runtime.init_error
            where = "" if error_type.startswith("Runtime.") else raised_at(body)
            raise FunctionInitError(self.config, error_type, message or "", where=where, output=output)
        if timed_out:
            message = f"the init did not reach invocation/next within {bound:g} s"
            raise FunctionInitError(self.config, "Sandbox.Timedout", message, output=output)
        status = exit_status(exited.result())
        raise FunctionInitError(self.config, "Runtime.ExitError", f"Runtime exited with error: {status}", output=output)

    async def reset(self) -> None:
        """Kill every environment's runtime; each one re-runs init on its next invoke (a cold start).

        Invocations in flight end as ``Runtime.ExitError`` (``signal: killed``).
        """
        for env in self._envs:
            if env.runtime is not None and not env.runtime.dead:
                self.kill(env.runtime, "signal: killed")
        await self._processes.settle()

    async def stop(self) -> None:
        """Kill every runtime (process group, SIGKILL), close every Runtime API endpoint, reap every child.

        Idempotent. Invocations in flight end as ``Runtime.ExitError``. No process is left behind.

        Raises:
            LambdaError: a runtime did not exit within 10 s of SIGKILL (it is stuck in the kernel).
        """
        if self._stopped:
            return
        self._stopped = True
        self._processes.stopped = True
        for runtime in list(self._processes.runtimes):
            self.kill(runtime, "signal: killed")
            self._processes.signal_group(runtime)  # also those given a grace period to exit by themselves
        await self._processes.settle()
        for runtime in list(self._processes.runtimes):  # output pipes still held open by an escaped grandchild
            self._processes.close_output(runtime)
        self._processes.runtimes.clear()

    # -- scheduling ---------------------------------------------------------------------------------------------

    def _acquire(self) -> Environment | None:
        self._redeploy_if_changed()
        if self._warm:
            return self._warm.pop()
        env = self._cold.pop() if self._cold else None
        if env is None and len(self._envs) < self.config.concurrency:
            env = Environment(len(self._envs))
            self._envs.append(env)
        if env is not None:
            env.code = self._code  # the runtime it starts loads the code as it is now
        return env

    def _release(self, env: Environment) -> None:
        runtime = env.runtime
        if runtime is not None and not runtime.dead and not self._stopped and env.code == self._code:
            self._warm.append(env)
            return
        if runtime is not None and not runtime.dead:  # it ran the old code: stopped, as after a deployment
            self.kill(runtime, "signal: killed", fail_calls=False)
            env.ran_before = False
        self._cold.append(env)

    def _code_version(self) -> tuple[int, int] | None:
        """The handler file's modification time and size (``None`` while it cannot be read)."""
        try:
            st = self._code_file.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _redeploy_if_changed(self) -> None:
        """When the handler's file changed since the last invoke, stop the idle environments of the old code and
        make every environment's next init an on-demand one (the module docstring: a new deployment)."""
        version = self._code_version()
        if version == self._code:
            return
        self._code = version
        for env in list(self._warm):
            assert env.runtime is not None
            self.kill(env.runtime, "signal: killed", fail_calls=False)
        self._cold += self._warm
        self._warm.clear()
        for env in self._envs:
            env.ran_before = False  # a new version's first init in it is on demand, not a suppressed one

    def arm(self, call: Call, seconds: float, *, init: bool = False) -> None:
        """Start ``call``'s function timeout (or, with ``init``, its Init limit): ``seconds`` from now."""
        if call.timer is not None:
            call.timer.cancel()
        if not init:
            call.deadline = time.monotonic() + seconds
        call.timer = asyncio.get_running_loop().call_later(seconds, self._on_timer, call, init)

    def _on_timer(self, call: Call, init: bool) -> None:
        runtime = call.env.runtime
        if call.future.done() or runtime is None:
            return
        if init:
            # LDG lambda-runtime-environment: an Init over 10 s is retried during the first invoke, bounded
            # by the function timeout (a suppressed init).
            runtime.pending = None
            self.kill(runtime, "init timed out")
            call.suppressed = True
            self.arm(call, self.config.timeout_s)
            self._processes.track(self._respawn(call))
            return
        message = f"Task timed out after {self.config.timeout_s:.2f} seconds"
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.kill(runtime, "timed out", fail_calls=False)
        call.output += f"{stamp} {call.request_id} {message}\n".encode()
        self.fail(call, "Sandbox.Timedout", f"RequestId: {call.request_id} Error: {message}")

    async def _respawn(self, call: Call) -> None:
        try:
            runtime = await self._processes.spawn(call.env)
        except StartFailed as e:
            self._fail_start(call, str(e))
            return
        if call.future.done():  # it timed out while the runtime was starting: nothing to run
            self.kill(runtime, "signal: killed")
        else:
            self._assign(runtime, call)

    def _assign(self, runtime: Runtime, call: Call) -> None:
        if runtime.stash:
            call.output[:0] = runtime.stash
            runtime.stash.clear()
        runtime.pending = call
        if runtime.waiter is not None and not runtime.waiter.done():
            runtime.waiter.set_result(None)

    def finish(
        self,
        call: Call,
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
            self._processes.read_output(runtime)  # what it wrote before posting is in the pipe already
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

    def fail(self, call: Call, error_type: str, message: str) -> None:
        """End ``call`` with a platform-made function error (``{"errorMessage", "errorType"}``)."""
        self.finish(call, "Unhandled", _error_json(message, error_type), error_type, message)

    def _fail_start(self, call: Call, detail: str) -> None:
        self.fail(call, "Runtime.InvalidEntrypoint", f"RequestId: {call.request_id} Error: {detail}")

    def kill(self, runtime: Runtime, status: str, *, fail_calls: bool = True, grace_s: float = 0.0) -> None:
        """Reset: take the runtime out of service (its process group killed); its environment's next invoke is
        a cold start.

        Args:
            runtime: the runtime.
            status: how its end is reported to an invocation it fails (``exit status 3``, ``signal: killed``).
            fail_calls: fail the invocation it holds, if any, as ``Runtime.ExitError``.
            grace_s: let it exit by itself for this long before SIGKILL (see ``Processes.take_down``).
        """
        if self._processes.take_down(runtime, grace_s=grace_s):
            env = runtime.env
            if env in self._warm:  # it died while idle: its next invoke is a cold start
                self._warm.remove(env)
                self._cold.append(env)
        if fail_calls:
            for call in (runtime.current, runtime.pending):
                if call is not None and not call.future.done():
                    message = f"RequestId: {call.request_id} Error: Runtime exited with error: {status}"
                    self.fail(call, "Runtime.ExitError", message)

    def _exited(self, runtime: Runtime, status: str) -> None:
        """The runtime's process ended by itself (or was killed): reset, failing what it held."""
        self.kill(runtime, status)


def _error_json(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()
