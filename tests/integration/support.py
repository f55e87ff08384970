"""Helpers shared by the ALB and Lambda runtime integration tests (real awslambdaric processes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from meshbridge.alb.function import FunctionConfig, Invocation
from meshbridge.alb.lambda_runtime import EnvironmentPool

T = TypeVar("T")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HANDLERS = FIXTURES / "handlers"
FAKE_RUNTIME = FIXTURES / "fake_runtime.py"
SEED_HANDLER = Path(__file__).resolve().parents[2] / "examples" / "seed" / "handler.py"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a test scenario on a fresh event loop. The bound only keeps a broken test from hanging the
    suite; nothing is asserted about time."""
    return asyncio.run(asyncio.wait_for(coro, 120))


def function(handler: str = "behaviours.py:handler", **settings: Any) -> FunctionConfig:
    """A function whose code is in ``tests/fixtures/handlers``."""
    return FunctionConfig(handler=handler, task_root=HANDLERS, **settings)


async def invoke(pool: EnvironmentPool, event: dict[str, Any], **kw: Any) -> Invocation:
    return await pool.invoke(json.dumps(event).encode(), **kw)


def doc(invocation: Invocation) -> Any:
    """The invocation's payload as JSON."""
    return json.loads(invocation.payload)


def gone(pid: int) -> bool:
    """True when process ``pid`` no longer runs (absent, or a zombie waiting for a parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def wait_gone(pid: int) -> bool:
    """Poll until ``pid`` is gone; a SIGKILLed grandchild is reaped by init, not by us, a moment later."""
    for _ in range(200):
        if gone(pid):
            return True
        await asyncio.sleep(0.01)
    return gone(pid)


@dataclass(frozen=True)
class Reply:
    """An HTTP/1.1 response as read off the wire."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    target: str = "/",
    headers: Sequence[tuple[str, str]] = (),
    *,
    method: str = "GET",
    body: bytes = b"",
    host: str = "alb.test",
) -> bytes:
    """Request bytes exactly as written: the target is not normalized, repeated headers stay repeated."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{n}: {v}" for n, v in headers)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def send(
    port: int,
    request: bytes,
    *,
    host: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Reply:
    """Send one request on a new connection and read the response until the server closes it."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls, server_hostname=server_hostname)
    try:
        writer.write(request)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, code, reason = (status_line + " ").split(" ", 2)
    headers = [(n, v.strip()) for n, _, v in (line.partition(":") for line in header_lines)]
    return Reply(int(code), reason.strip(), headers, body)


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found
