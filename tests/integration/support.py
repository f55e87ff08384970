"""Helpers shared by the ALB and Lambda runtime integration tests (real awslambdaric processes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from meshbridge.aws.lambda_runtime import EnvironmentPool, FunctionConfig, Invocation

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
