"""The runtime processes of a Lambda function: started as AWS starts them, their output captured, their exit
watched, their process group killed and reaped.

Each runtime is one ``python -m awslambdaric <module>.<function>`` process (cwd = task root, the environment
variables of a Python managed runtime), in its own process group, with its own Runtime API endpoint on
loopback (``AWS_LAMBDA_RUNTIME_API``; the endpoint itself is :mod:`meshbridge.alb.runtime_api`). Which
invocation a runtime works on, and when it is reset, is the pool's (:mod:`meshbridge.alb.lambda_runtime`):
:class:`Processes` tells it when a runtime exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from meshbridge.alb.function import FunctionConfig, Invocation
from meshbridge.errors import LambdaError

MAX_OUTPUT_BYTES = 1_048_576
"""Captured stdout/stderr kept per invocation; beyond it the rest is dropped and the cut is marked."""
EXIT_GRACE_S = 2.0
"""LDG lambda-runtime-environment: the Shutdown phase is capped at 2 s, then SIGKILL."""


class StartFailed(Exception):
    """A runtime process could not be started; the message says why."""


class Call:
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

    def __init__(self, request_id: str, event: bytes, trace_id: str, env: Environment) -> None:
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


class Runtime:
    """One runtime process with its own Runtime API endpoint: the state the Runtime API serves from."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.server: asyncio.Server | None = None
        self.web: web.Server | None = None
        self.port = 0
        self.out_fd = -1
        self.spawned = 0.0
        self.initialized = False  # it has called /next once: its init is over
        self.waiter: asyncio.Future[None] | None = None  # wakes a /next long poll
        self.pending: Call | None = None  # an event no /next has taken yet
        self.current: Call | None = None  # the event the runtime is working on
        self.last_request_id: str | None = None
        self.stash = bytearray()  # output written while no invocation was running
        self.exited: asyncio.Future[int] | None = None
        self.dead = False
        self.polled: asyncio.Future[float] | None = None  # check_init: the time of the first /next
        self.init_error: tuple[str, str | None, bytes] | None = None  # (errorType, errorMessage, body) posted


class Environment:
    """A slot of the pool; holds at most one live runtime at a time."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.runtime: Runtime | None = None
        self.ran_before = False  # a runtime ran here: the next init is a suppressed init (after a reset)
        self.log_stream = ""
        self.code: object = None  # the version of the code its runtime loaded (EnvironmentPool's)


class Processes:
    """The runtime processes of one function: start, capture output, watch the exit, kill, reap.

    Args:
        config: the function.
        command: the command that starts a runtime, handler argument included.
        host: the loopback address of the Runtime API endpoints (one ephemeral port per runtime).
        endpoint: the Runtime API server of a runtime (:meth:`meshbridge.alb.runtime_api.RuntimeApi.endpoint`).
        exited: called when a runtime's process has exited, with how it ended (``exit status 3``,
            ``signal: killed``), before :attr:`Runtime.exited` is resolved.
    """

    def __init__(
        self,
        config: FunctionConfig,
        command: Sequence[str],
        host: str,
        endpoint: Callable[[Runtime], web.Server],
        exited: Callable[[Runtime, str], None],
    ) -> None:
        self.config = config
        self.command = list(command)
        self.host = host
        self.runtimes: set[Runtime] = set()
        self.stopped = False  # set by the pool's stop: start nothing more
        self._endpoint = endpoint
        self._exited = exited
        self._tasks: set[asyncio.Future[Any]] = set()
        self._base_env = runtime_environment(config)

    async def spawn(self, env: Environment) -> Runtime:
        """Start a runtime for ``env`` with a fresh Runtime API endpoint.

        A fresh endpoint per process means a request from a killed process can never reach its successor.

        Raises:
            StartFailed: no endpoint, the pool was stopped meanwhile, or the process cannot be started
                (an invoke reports it as ``Runtime.InvalidEntrypoint``).
        """
        loop = asyncio.get_running_loop()
        runtime = Runtime(env)
        runtime.web = self._endpoint(runtime)
        try:
            runtime.server = await loop.create_server(runtime.web, self.host, 0)
        except OSError as e:
            raise StartFailed(f"cannot listen on {self.host} for the Runtime API: {e}") from e
        if self.stopped:  # stop() ran meanwhile: start nothing more
            runtime.server.close()
            raise StartFailed("the environment pool was stopped")
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
                self.command,
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
            raise StartFailed(f"cannot start {self.command[0]}: {e}") from e
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        runtime.proc = proc
        runtime.spawned = time.monotonic()
        runtime.out_fd = read_fd
        runtime.exited = loop.create_future()
        loop.add_reader(read_fd, self.read_output, runtime)
        self._watch_exit(runtime)
        env.runtime = runtime
        env.ran_before = True
        self.runtimes.add(runtime)
        return runtime

    def take_down(self, runtime: Runtime, *, grace_s: float = 0.0) -> bool:
        """Take the runtime out of service: close its endpoint and kill its process group.

        Args:
            runtime: the runtime.
            grace_s: let it exit by itself for this long before SIGKILL (awslambdaric exits 1 right after
                the answer to ``/init/error`` or an oversized ``/response``, and must read that answer first).

        Returns:
            True when it was in service until now; False when it was taken down before.
        """
        if runtime.dead:
            return False
        runtime.dead = True
        if runtime.waiter is not None and not runtime.waiter.done():
            runtime.waiter.cancel()
        if runtime.server is not None:
            runtime.server.close()  # no new connections; a response being written still goes out
        if runtime.web is not None:
            self.track(runtime.web.shutdown(0.1 + grace_s))
        if grace_s > 0:
            asyncio.get_running_loop().call_later(grace_s, self.signal_group, runtime)
        else:
            self.signal_group(runtime)
        return True

    @staticmethod
    def signal_group(runtime: Runtime) -> None:
        """SIGKILL the runtime's process group, unless the process is reaped already."""
        if runtime.proc is not None and runtime.proc.returncode is None:
            _killpg(runtime.proc.pid)

    def read_output(self, runtime: Runtime) -> None:
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
                self.close_output(runtime)
                if runtime.exited is not None and runtime.exited.done():
                    self.runtimes.discard(runtime)
                return
            target = runtime.current or runtime.pending
            buf = target.output if target is not None else runtime.stash
            room = MAX_OUTPUT_BYTES - len(buf)
            if room > 0:
                buf += chunk[:room]
                if len(chunk) > room:
                    buf += b"\n[meshbridge: output over 1 MiB for this invocation was dropped]\n"

    def close_output(self, runtime: Runtime) -> None:
        """Stop reading the runtime's output pipe and close it."""
        if runtime.out_fd >= 0:
            asyncio.get_running_loop().remove_reader(runtime.out_fd)
            os.close(runtime.out_fd)
            runtime.out_fd = -1

    def track(self, aw: Awaitable[Any]) -> None:
        """Keep ``aw`` running until it is done; :meth:`settle` waits for it."""
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every killed runtime is reaped and every endpoint is closed.

        Raises:
            LambdaError: a runtime did not exit within 10 s of SIGKILL (it is stuck in the kernel).
        """
        while True:
            waits = [r.exited for r in self.runtimes if r.exited is not None and not r.exited.done()]
            tasks = [t for t in self._tasks if not t.done()]
            if not waits and not tasks:
                return
            await asyncio.wait([*waits, *tasks], timeout=10.0)
            if any(not w.done() for w in waits):
                raise LambdaError("a Lambda runtime process did not exit within 10 s of SIGKILL")

    def _watch_exit(self, runtime: Runtime) -> None:
        loop = asyncio.get_running_loop()
        proc = runtime.proc
        assert proc is not None
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # not Linux 5.3+: wait in a thread
            waiting = loop.run_in_executor(None, proc.wait)
            waiting.add_done_callback(lambda _: self._on_exit(runtime))
            self.track(waiting)
            return

        def readable() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._on_exit(runtime)

        loop.add_reader(pidfd, readable)

    def _on_exit(self, runtime: Runtime) -> None:
        proc = runtime.proc
        assert proc is not None
        code = proc.wait()  # reaps; immediate, the process has exited
        _killpg(proc.pid)  # the handler's own children, if any are left
        self.read_output(runtime)
        self._exited(runtime, exit_status(code))
        assert runtime.exited is not None
        runtime.exited.set_result(code)
        if runtime.out_fd < 0:
            self.runtimes.discard(runtime)


def runtime_environment(config: FunctionConfig) -> dict[str, str]:
    """The variables a Python managed runtime sees (LDG configuration-envvars; RIE env defaults).

    Nothing else of this process's environment is passed on: no credentials (Lambda would give the
    execution role's; set them in ``FunctionConfig.environment`` if the handler needs AWS calls).
    """
    c = config
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


def exit_status(code: int) -> str:
    """How a runtime's end reads in RIE's ``Runtime exited with error``: ``exit status 1``, ``signal: killed``
    (Go's wording for a signal)."""
    if code >= 0:
        return f"exit status {code}"
    try:
        return "signal: " + (signal.strsignal(signal.Signals(-code)) or str(-code)).lower()
    except ValueError:
        return f"signal: {-code}"


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
