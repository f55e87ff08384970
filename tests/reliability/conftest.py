"""Shared pieces of the reliability suite: a running seed twin and a constant-rate load in the background."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.loadgen import LoadResult, run
from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.local.twin import LocalTwin
from meshbridge.spec import load_bridge

RATE = 50.0  # requests per second, open loop
FIGURES = "MESHBRIDGE_FIGURES"  # names a file: each scenario appends its figures there (benchmarks/reliability.py)


def record(scenario: str, **figures: object) -> None:
    """Append ``{"scenario": ..., **figures}`` as one JSON line to the file ``$MESHBRIDGE_FIGURES`` names;
    nothing when it is unset. Called at the end of a scenario, so a recorded row is a passing one's figures."""
    path = os.environ.get(FIGURES)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"scenario": scenario, **figures}) + "\n")


def p99_ms(result: LoadResult | None) -> float | None:
    """A load's p99 latency of successful requests, in ms to 0.1 (None when none succeeded)."""
    return round(result.percentile(99), 1) if result is not None and result.latencies_ms else None


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    folder = tmp_path_factory.mktemp("reliability")
    for name in SEED_FILES:
        (folder / name).write_text(seed_text(name))
    # Lambda throttling (reserved concurrency, 502 from the ALB) is not what this suite measures: lift the
    # seed's cap of 10 environments so a slow moment on a shared machine cannot turn into 502s.
    spec = (folder / "bridge.yaml").read_text()
    (folder / "bridge.yaml").write_text(spec.replace("memory: 128\n", "memory: 128\n          concurrency: 100\n", 1))
    t = LocalTwin(load_bridge(folder / "bridge.yaml"), folder / "bridge.yaml", folder / ".meshbridge")
    try:
        t.up()
        with Load(t, seconds=2):  # warm the Lambda environments: cold starts under load are throttled (502)
            pass
        yield t
    finally:
        t.down()


class Load:
    """A constant-rate load through the app's sidecar (the twin's, or the one at ``url``: the istiod-fed path of the
    cluster suite), running in a thread while the test acts."""

    def __init__(self, twin: LocalTwin | str, seconds: float, rate: float = RATE) -> None:
        if isinstance(twin, str):
            url = twin
        else:
            view = twin.app_view()
            url = f"http://{view.sidecar_address}:{80 + view.low_port_offset}/hello-world"
        self.result: LoadResult | None = None
        self._thread = threading.Thread(
            target=lambda: setattr(
                self, "result", asyncio.run(run(url, rate, seconds, headers={"Host": "lambda.external"}))
            ),
            daemon=True,
        )

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()


def envoy_pids(twin: LocalTwin) -> dict[str, int | None]:
    return {s.name: s.pid for s in twin.status() if s.kind == "envoy"}


def sds_updates(twin: LocalTwin, proxy: str) -> int:
    """How many times a proxy's TLS contexts were rebuilt from SDS (``ssl_context_update_by_sds``)."""
    return sum(v for k, v in twin.stats(proxy).items() if k.endswith("ssl_context_update_by_sds"))


def last_access_lines(twin: LocalTwin, proxy: str, n: int = 400) -> list[str]:
    log: Path = twin.root / proxy / "access.log"
    return log.read_text().splitlines()[-n:] if log.exists() else []


def sent_and_failed(load: Load) -> tuple[int, int]:
    """Requests a finished load sent, and how many of them did not get a 200."""
    r = load.result
    assert r is not None, "the load did not finish"
    return r.sent, r.sent - r.ok


def error_lines(twin: LocalTwin, n: int = 2000) -> list[str]:
    """The recent 5xx access-log lines of every proxy, ``proxy: code flags details`` (for assertion messages)."""
    out = []
    for log in sorted(twin.root.glob("*/*/access.log")):
        for line in log.read_text().splitlines()[-n:]:
            fields = line.split()
            if len(fields) > 6 and fields[4].startswith("5"):
                out.append(f"{log.parent.relative_to(twin.root)}: {fields[0]} {' '.join(fields[4:7])}")
    return out
