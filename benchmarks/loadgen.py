"""An open-loop, constant-rate HTTP load generator (fortio/wrk2 style) on aiohttp.

Requests are scheduled at fixed intended times ``t0 + i / rate``; each latency is measured from its
intended send time, not from when a connection happened to be free, so queueing shows up in the tail
instead of being hidden (coordinated omission corrected). Connections are kept alive and pooled.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import time
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadResult:
    """Outcome of one constant-rate run: latencies in milliseconds, counts, and errors by kind."""

    rate: float
    seconds: float
    sent: int = 0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    achieved_rps: float = 0.0
    generator_cpu_s: float = 0.0
    """CPU seconds the load generator itself spent on the run (filled by the caller that measured it)."""
    generator_switches: int | None = None
    """Context switches of the load generator's threads during the run (vegeta's; ``None``: not measured)."""

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0–100) of successful requests' latency, in ms (nan when none)."""
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        k = min(len(data) - 1, max(0, round(p / 100 * (len(data) - 1))))
        return data[k]

    def summary(self) -> dict[str, float | int | dict[str, int]]:
        """p50/p90/p99/mean (ms), sent, ok, errors and the achieved rate."""
        return {
            "rate": self.rate,
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "achieved_rps": round(self.achieved_rps, 1),
            "p50_ms": round(self.percentile(50), 3),
            "p90_ms": round(self.percentile(90), 3),
            "p99_ms": round(self.percentile(99), 3),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 3) if self.latencies_ms else float("nan"),
        }


async def run(
    url: str,
    rate: float,
    seconds: float,
    *,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    expect: int = 200,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> LoadResult:
    """Send ``rate`` requests per second to ``url`` for ``seconds``; never more than ``connections`` at once
    per connection pool, but always on schedule (late requests count their wait)."""
    result = LoadResult(rate, seconds)
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False, enable_cleanup_closed=True)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout, headers=headers or {}) as session:
        clock = time.perf_counter  # not loop.time(): uvloop's clock ticks in whole milliseconds
        t0 = clock() + 0.05

        async def one(i: int) -> None:
            intended = t0 + i / rate
            delay = intended - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.get(url, ssl=ssl_context or True, server_hostname=server_hostname) as r:
                    await r.read()
                    status = r.status
            except (TimeoutError, aiohttp.ClientError) as e:
                result.errors[type(e).__name__] = result.errors.get(type(e).__name__, 0) + 1
                return
            if status == expect:
                result.ok += 1
                result.latencies_ms.append((clock() - intended) * 1000)
            else:
                result.errors[f"HTTP {status}"] = result.errors.get(f"HTTP {status}", 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(total)))
        result.sent = total
        result.achieved_rps = total / max(time.monotonic() - started, 1e-9)
    return result


def run_sync(url: str, rate: float, seconds: float, **kw: object) -> LoadResult:
    """:func:`run` from synchronous code, on uvloop when installed (the generator's own CPU is part of the
    machine's budget: uvloop roughly halves it)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(url, rate, seconds, **kw))  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(url, rate, seconds, **kw))  # type: ignore[arg-type]
