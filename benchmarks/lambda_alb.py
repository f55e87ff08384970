"""Benchmark: the local ALB + Lambda emulator (targets from the issue, on 2 cores).

* warm overhead through the ALB: client → ALB → Runtime API → awslambdaric → handler → back, minus the
  handler's own time (it reports it in a header): p50 ≤ 2 ms;
* throughput of the article's handler with 4 environments (reserved concurrency 4), 4 keep-alive client
  connections in a closed loop: ≥ 1000 invocations/s with 0 errors;
* cold start of one environment: the first request of a fresh ALB (process start of awslambdaric, import,
  first /next, invoke): ≤ 300 ms; the Init Duration the pool measured is reported beside it.

The ALB runs as its own process (``python -m meshbridge.alb.server CONFIG.json``, as the local twin runs it), so
the load generator does not share its event loop. The client is a raw HTTP/1.1 socket client, to keep its
own cost out of the figures.

    PYTHONPATH=src python benchmarks/lambda_alb.py [--requests N] [--seconds S] [--cold-starts N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from meshbridge.alb.function import FunctionConfig  # noqa: E402
from meshbridge.alb.server import AlbConfig, ListenerConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SEED = ROOT / "examples" / "seed" / "handler.py"
TIMED = Path(__file__).resolve().parent / "handlers" / "seed_timed.py"
REQUEST = b"GET /hello-world HTTP/1.1\r\nHost: alb.local\r\nUser-Agent: meshbridge-bench\r\nAccept: */*\r\n\r\n"
TARGETS = {"warm_overhead_p50_ms": 2.0, "throughput_4_envs_per_s": 1000.0, "cold_start_ms": 300.0}


def _ticks(pid: int | str) -> int:
    """utime + stime of a process, in clock ticks (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine, from /proc/stat (steal counts as busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


class CpuWatch:
    """Where the machine's CPU went during a run: the ALB, its runtimes, this client, and anything else
    ("foreign": other work on the machine, which makes the figures unreliable when it is large)."""

    def __init__(self, alb_pid: int) -> None:
        self.pids = [alb_pid, *_children(alb_pid)]
        self.start = {p: _ticks(p) for p in self.pids}
        self.me = _ticks("self")
        self.machine = _machine_ticks()

    def stop(self, invocations: int, seconds: float) -> dict[str, float]:
        hz = os.sysconf("SC_CLK_TCK")
        spent = {p: _ticks(p) - t for p, t in self.start.items() if Path(f"/proc/{p}").exists()}
        alb = spent.pop(self.pids[0], 0)
        client = _ticks("self") - self.me
        busy = _machine_ticks()[0] - self.machine[0]
        foreign = max(0, busy - alb - sum(spent.values()) - client)
        per = 1e6 / hz / max(1, invocations)
        return {
            "alb_us_per_invocation": alb * per,
            "runtimes_us_per_invocation": sum(spent.values()) * per,
            "client_us_per_invocation": client * per,
            "foreign_cpu_share": foreign / hz / seconds / (os.cpu_count() or 1),
        }


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


class AlbProcess:
    """``python -m meshbridge.alb.server`` serving one handler; stops with SIGTERM (every runtime reaped)."""

    def __init__(self, handler: str, concurrency: int, workdir: Path) -> None:
        config = AlbConfig(
            listeners=(ListenerConfig(port=0, advertised_port=80),),
            function=FunctionConfig(handler=handler, concurrency=concurrency, timeout_s=30),
        )
        path = workdir / f"alb-{time.monotonic_ns()}.json"
        path.write_text(config.to_json())
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshbridge.alb.server", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        ready = json.loads(self.proc.stdout.readline())
        self.port: int = ready["ports"][0]
        self.lines: queue.Queue[str] = queue.Queue()
        # Its stdout must be read: a full pipe would block the ALB on its next log line.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def log_line(self) -> dict[str, Any]:
        return dict(json.loads(self.lines.get(timeout=30)))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class Client:
    """One keep-alive HTTP/1.1 connection; no parsing beyond status, headers and Content-Length."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def get(self) -> tuple[int, dict[str, str], bytes]:
        self.sock.sendall(REQUEST)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buf = rest[length:]
        return int(lines[0].split()[1]), headers, rest[:length]

    def close(self) -> None:
        self.sock.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def warm_overhead(workdir: Path, requests: int) -> dict[str, Any]:
    alb = AlbProcess(f"{TIMED}:lambda_handler", 1, workdir)
    try:
        client = Client(alb.port)
        for _ in range(200):  # warm-up: cold start, JIT-free but caches and allocator warm
            client.get()
        overheads, handler_ms, errors = [], [], 0
        for _ in range(requests):
            started = time.perf_counter()
            status, headers, _ = client.get()
            elapsed = (time.perf_counter() - started) * 1000
            own = int(headers.get("x-handler-ns", "0")) / 1e6
            errors += status != 200
            overheads.append(elapsed - own)
            handler_ms.append(own)
        client.close()
    finally:
        alb.stop()
    return {
        "requests": requests,
        "errors": errors,
        "p50_ms": statistics.median(overheads),
        "p90_ms": percentile(overheads, 0.90),
        "p99_ms": percentile(overheads, 0.99),
        "handler_p50_ms": statistics.median(handler_ms),
    }


async def _worker(port: int, until: float, counts: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while time.perf_counter() < until:
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
        await reader.readexactly(length)
        counts["ok" if lines[0].split()[1] == "200" else "errors"] += 1
    writer.close()


def _run(coro: Any) -> Any:
    """Run the load generator on uvloop when installed: less of the 2 cores goes to the client."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def throughput(workdir: Path, seconds: float, environments: int = 4) -> dict[str, Any]:
    alb = AlbProcess(f"{SEED}:lambda_handler", environments, workdir)
    try:

        async def load(duration: float) -> dict[str, int]:
            counts = {"ok": 0, "errors": 0}
            until = time.perf_counter() + duration
            await asyncio.gather(*[_worker(alb.port, until, counts) for _ in range(environments)])
            return counts

        _run(load(1.0))  # warm-up: every environment's cold start
        watch = CpuWatch(alb.proc.pid)
        started = time.perf_counter()
        counts = _run(load(seconds))
        elapsed = time.perf_counter() - started
        cpu = watch.stop(counts["ok"] + counts["errors"], elapsed)
    finally:
        alb.stop()
    return {
        **cpu,
        "environments": environments,
        "connections": environments,
        "seconds": elapsed,
        "invocations": counts["ok"] + counts["errors"],
        "errors": counts["errors"],
        "per_s": counts["ok"] / elapsed,
    }


def cold_start(workdir: Path, runs: int) -> dict[str, Any]:
    first_request, init = [], []
    for _ in range(runs):
        alb = AlbProcess(f"{SEED}:lambda_handler", 1, workdir)
        try:
            client = Client(alb.port)
            started = time.perf_counter()
            status, _, _ = client.get()
            first_request.append((time.perf_counter() - started) * 1000)
            assert status == 200
            logged = alb.log_line()
            assert logged["cold"] is True
            init.append(logged["init_duration_ms"])
            client.close()
        finally:
            alb.stop()
    return {
        "runs": runs,
        "first_request_p50_ms": statistics.median(first_request),
        "first_request_max_ms": max(first_request),
        "init_duration_p50_ms": statistics.median(init),
        "init_duration_max_ms": max(init),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="sequential warm requests (default 3000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length (default 10 s)")
    parser.add_argument("--cold-starts", type=int, default=10, help="fresh ALBs to time (default 10)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        warm = warm_overhead(workdir, args.requests)
        rate = throughput(workdir, args.seconds)
        cold = cold_start(workdir, args.cold_starts)

    rows = [
        ("warm overhead p50", f"{warm['p50_ms']:.2f} ms", "<= 2 ms", warm["p50_ms"] <= TARGETS["warm_overhead_p50_ms"]),
        ("warm overhead p90 / p99", f"{warm['p90_ms']:.2f} / {warm['p99_ms']:.2f} ms", "-", True),
        (
            "throughput, 4 environments",
            f"{rate['per_s']:.0f} inv/s, {rate['errors']} errors / {rate['invocations']}",
            ">= 1000/s, 0 errors",
            rate["per_s"] >= TARGETS["throughput_4_envs_per_s"] and rate["errors"] == 0,
        ),
        (
            "  CPU per invocation: ALB / runtimes / client",
            f"{rate['alb_us_per_invocation']:.0f} / {rate['runtimes_us_per_invocation']:.0f} / "
            f"{rate['client_us_per_invocation']:.0f} us",
            "-",
            True,
        ),
        (
            "  other work on the machine meanwhile",
            f"{rate['foreign_cpu_share'] * 100:.0f}% of the CPUs",
            "~0%",
            rate["foreign_cpu_share"] < 0.05,
        ),
        (
            "cold start, first request p50 (max)",
            f"{cold['first_request_p50_ms']:.0f} ({cold['first_request_max_ms']:.0f}) ms",
            "<= 300 ms",
            cold["first_request_max_ms"] <= TARGETS["cold_start_ms"],
        ),
        (
            "  of which Init Duration p50 (max)",
            f"{cold['init_duration_p50_ms']:.0f} ({cold['init_duration_max_ms']:.0f}) ms",
            "-",
            True,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'METRIC':<{width}}  {'MEASURED':<36}  {'TARGET':<20}  OK")
    for name, measured, target, ok in rows:
        print(f"{name:<{width}}  {measured:<36}  {target:<20}  {'yes' if ok else 'NO'}")

    RESULTS.mkdir(exist_ok=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "targets": TARGETS,
        "warm_overhead": warm,
        "throughput": rate,
        "cold_start": cold,
    }
    path = RESULTS / "lambda_alb.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
