"""The Lambda Runtime API (2018-06-01) a runtime process calls: ``invocation/next``, ``…/response``,
``…/error`` and ``init/error``, on the runtime's own endpoint.

Status codes and bodies as RIE ``rapi/handler/*.go`` and ``model/errorresponse.go``; headers as the Lambda
developer guide's "Using the Lambda runtime API for custom runtimes" (LDG runtimes-api). What an answer means
for the invocation (finished, failed, the runtime reset) is the pool's (:class:`Scheduler`,
:mod:`meshbridge.alb.lambda_runtime`). ``awslambdaric`` 4.2.2 needs three things of this API:

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
import json
import random
import re
import time
from functools import partial
from typing import Protocol

from aiohttp import web

from meshbridge.alb.function import MAX_PAYLOAD_BYTES, Outcome
from meshbridge.alb.runtime_process import EXIT_GRACE_S, Call, Runtime

RUNTIME_API_VERSION = "2018-06-01"
RUNTIME_API_MAX_HEADER_BYTES = 1 << 20
"""One header line; the runtime's error posts carry stack traces."""

_PREFIX = f"/{RUNTIME_API_VERSION}/runtime/"
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')  # a stackTrace entry (traceback format)


class Scheduler(Protocol):
    """What the Runtime API asks of the pool that hands invocations to runtimes."""

    def arm(self, call: Call, seconds: float) -> None:
        """Start (or restart) ``call``'s function timeout: ``seconds`` from now."""

    def finish(
        self,
        call: Call,
        outcome: Outcome,
        payload: bytes,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """End ``call`` with what the runtime posted."""

    def fail(self, call: Call, error_type: str, message: str) -> None:
        """End ``call`` with a platform-made function error."""

    def kill(self, runtime: Runtime, status: str, *, fail_calls: bool = True, grace_s: float = 0.0) -> None:
        """Reset ``runtime``: out of service, its process group killed (after ``grace_s``)."""


class RuntimeApi:
    """The Runtime API of every runtime of one function.

    Args:
        scheduler: the pool that hands invocations to the runtimes.
        arn: the function's ARN (``Lambda-Runtime-Invoked-Function-Arn``).
        timeout_s: the function timeout, started when an on-demand init ends.
    """

    def __init__(self, scheduler: Scheduler, arn: str, timeout_s: float) -> None:
        self._scheduler = scheduler
        self._arn = arn
        self._timeout_s = timeout_s

    def endpoint(self, runtime: Runtime) -> web.Server:
        """The HTTP server of ``runtime``'s endpoint (to be bound to a loopback port)."""
        return web.Server(
            partial(self.serve, runtime),
            auto_decompress=False,
            access_log=None,
            # awslambdaric posts an error's stack trace in the Lambda-Runtime-Function-XRay-Error-Cause header:
            # a deep recursion makes it far longer than aiohttp's 8 KiB default, and the Runtime API takes it
            max_field_size=RUNTIME_API_MAX_HEADER_BYTES,
        )

    async def serve(self, runtime: Runtime, request: web.BaseRequest) -> web.StreamResponse:
        """One request of ``runtime`` to its Runtime API (LDG runtimes-api; status codes and bodies as RIE ``rapi``)."""
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

    async def _next(self, runtime: Runtime) -> web.StreamResponse:
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
                self._scheduler.arm(call, self._timeout_s)  # on-demand init: the timeout starts now
        assert call.deadline is not None
        deadline_ms = int(time.time() * 1000 + (call.deadline - now) * 1000)
        return web.Response(
            body=call.event,
            headers={
                "Content-Type": "application/json",  # exactly this value: 1. of the module docstring
                "Lambda-Runtime-Aws-Request-Id": call.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": self._arn,
                "Lambda-Runtime-Trace-Id": call.trace_id,
            },
        )

    async def _result(
        self, runtime: Runtime, request: web.BaseRequest, request_id: str, action: str
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
            # awslambdaric exits 1 after a non-2xx (3. of the module docstring): out of service now, so it is
            # not handed out.
            self._scheduler.kill(runtime, "exit status 1", fail_calls=False, grace_s=EXIT_GRACE_S)
            self._scheduler.fail(call, "Function.ResponseSizeTooLarge", message)
            return _api_error(
                413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."
            )
        if action == "response":
            self._scheduler.finish(call, "Success", body)
        else:
            error_type, error_message = _error_fields(body, request.headers.get("Lambda-Runtime-Function-Error-Type"))
            self._scheduler.finish(call, "Unhandled", body, error_type, error_message)
        # Let the invoker (the ALB's request) answer its client before the runtime gets its 202: the 202
        # wakes the runtime, which would otherwise take the CPU first on a busy machine.
        await asyncio.sleep(0)
        return _accepted()

    async def _init_error(self, runtime: Runtime, request: web.BaseRequest) -> web.StreamResponse:
        # awslambdaric posts this with http.client and no Content-Type (2. of the module docstring); it expects
        # 202, then exits 1.
        if runtime.initialized:
            return _api_error(403, "InvalidStateTransition", "init/error after the runtime finished its init")
        body = await read_body_capped(request, MAX_PAYLOAD_BYTES) or b""
        error_type, message = _error_fields(body, request.headers.get("Lambda-Runtime-Function-Error-Type"))
        runtime.init_error = (error_type, message, body)
        call = runtime.pending
        self._scheduler.kill(runtime, "exit status 1", fail_calls=False, grace_s=EXIT_GRACE_S)
        if call is not None:
            self._scheduler.finish(call, "Unhandled", body, error_type, message)
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


def lambda_trace_header(root: str | None) -> str:
    """``Root=…;Parent=<16 hex>;Sampled=0``: the ``Lambda-Runtime-Trace-Id`` shape (LDG runtimes-api).

    Args:
        root: the trace root the ALB put in ``X-Amzn-Trace-Id`` (``1-<8 hex>-<24 hex>``); ``None`` for a
            fresh one.
    """
    if root is None:
        root = f"1-{int(time.time()):08x}-{random.getrandbits(96):024x}"
    return f"Root={root};Parent={random.getrandbits(64):016x};Sampled=0"


def raised_at(body: bytes) -> str:
    """`` (at FILE line N)``: the innermost frame of an ``/init/error`` body's ``stackTrace``, or ``""``."""
    with contextlib.suppress(ValueError):
        doc = json.loads(body)
        frames = doc.get("stackTrace") if isinstance(doc, dict) else None
        if isinstance(frames, list) and frames and isinstance(frames[-1], str):
            found = _FRAME.search(frames[-1])
            if found:
                return f" (at {found['file']} line {found['line']})"
    return ""


def _accepted() -> web.Response:
    """``202 {"status":"OK"}``: the Runtime API's answer to a response or an error (RIE ``rapi``)."""
    return web.Response(status=202, body=b'{"status":"OK"}', content_type="application/json")


def _api_error(status: int, error_type: str, message: str) -> web.Response:
    """A Runtime API error body, as RIE's ``model/errorresponse.go``: ``{"errorMessage", "errorType"}``."""
    return web.json_response({"errorMessage": message, "errorType": error_type}, status=status)


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
