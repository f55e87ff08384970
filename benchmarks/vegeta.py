"""vegeta, the benchmarks' native load generator (``tools/vegeta``, Go), and the choice between it and the
Python generator (:mod:`benchmarks.loadgen`).

``tools/vegeta`` is a Go module of ours whose ``main.go`` drives vegeta's attack library
(``github.com/tsenart/vegeta/v12``, pinned in its ``go.mod``): open loop at a constant rate, every latency from
the request's intended send time (coordinated omission corrected), the generator's own CPU time reported. It is
built once and cached by the hash of its sources like every Go tool of the project
(:mod:`meshbridge.gotools`); ``$MESHBRIDGE_VEGETA`` names a prebuilt binary instead. Where it cannot be built
(no Go, nothing cached), :func:`generator` says so in one line and the benchmarks use the Python generator.

    python -m benchmarks.vegeta      # build it (make vegeta) and print where it is
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.loadgen import LoadResult, run_sync
from meshbridge import gotools
from meshbridge.gotools import GoBinary, GoTool, ToolUnavailable, require_module

VEGETA = GoTool(
    module="vegeta",
    title="vegeta",
    purpose="the benchmarks' load generator",
    make_target="vegeta",
    binaries=(GoBinary("vegeta", ".", "MESHBRIDGE_VEGETA"),),
    cold="about a minute",
    label=lambda d: f"vegeta {require_module(d, 'github.com/tsenart/vegeta/v12')}",
)
"""vegeta as a :class:`~meshbridge.gotools.GoTool` (``tools/vegeta``)."""

Generator = Callable[..., LoadResult]
"""``(url, rate, seconds, *, headers=, connections=, cafile=, server_hostname=, expect=) -> LoadResult``."""


def run_vegeta(
    binary: Path,
    url: str,
    rate: float,
    seconds: float,
    *,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    cafile: str | None = None,
    server_hostname: str | None = None,
    expect: int = 200,
) -> LoadResult:
    """One constant-rate run of the vegeta tool: its latencies (of responses with status ``expect``), errors, own
    CPU time and context switches as a :class:`LoadResult`."""
    command = [str(binary), "-url", url, "-rate", str(round(rate)), "-duration", f"{seconds}s"]
    command += ["-connections", str(connections), "-expect", str(expect)]
    for name, value in (headers or {}).items():
        command += ["-header", f"{name}: {value}"]
    if cafile:
        command += ["-cacert", cafile]
    if server_hostname:
        command += ["-servername", server_hostname]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"vegeta failed ({done.returncode}): {done.stderr.strip()}")
    data: dict[str, Any] = json.loads(done.stdout)
    result = LoadResult(rate, seconds, sent=data["sent"], ok=data["ok"], errors=data["errors"])
    result.latencies_ms = data["latencies_ms"]
    result.achieved_rps = data["sent"] / max(data["seconds"], 1e-9)
    result.generator_cpu_s = data["cpu_seconds"]
    result.generator_switches = data["context_switches"]
    return result


def run_python(
    url: str,
    rate: float,
    seconds: float,
    *,
    cafile: str | None = None,
    server_hostname: str | None = None,
    **kw: Any,
) -> LoadResult:
    """The Python generator with the same arguments as :func:`run_vegeta` (its CPU is this process's)."""
    import ssl

    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    before = time.process_time()
    result = run_sync(url, rate, seconds, ssl_context=ctx, server_hostname=server_hostname, **kw)
    result.generator_cpu_s = time.process_time() - before
    return result


def generator(name: str = "auto") -> tuple[str, Generator]:
    """The load generator to use: ``vegeta`` (built or cached now), ``python``, or ``auto`` (vegeta, else Python
    with one line on stderr saying why).

    Raises:
        ToolUnavailable: ``vegeta`` was asked for and cannot be built here.
    """
    if name == "python":
        return "python", run_python
    try:
        binary = gotools.ensure_tool(VEGETA, lambda line: print(line, file=sys.stderr, flush=True))["vegeta"]
    except ToolUnavailable as e:
        if name == "vegeta":
            raise
        print(f"load generator: Python (aiohttp), not vegeta: {e}", file=sys.stderr)
        return "python", run_python
    return "vegeta", partial(run_vegeta, binary)


def _main() -> int:
    start = time.monotonic()
    try:
        found = gotools.ensure_tool(VEGETA, lambda line: print(line, file=sys.stderr, flush=True))
    except ToolUnavailable as e:
        print(str(e), file=sys.stderr)
        return 2
    print(f"{found['vegeta']} ({VEGETA.label(VEGETA.directory)}; {time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
