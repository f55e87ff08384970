"""'local up --no-access-log': the twin's Envoys as Istio's default profile runs them, without access logs
(what the benchmarks measure); by default each writes one, as with meshConfig.accessLogFile."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.cli.main import main

pytestmark = pytest.mark.integration
PROXIES = ("gke/sleep", "gke/istio-egressgateway", "eks/istio-ingressgateway")


def _seed(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SEED_FILES:
        (tmp / name).write_text(seed_text(name))
    monkeypatch.chdir(tmp)


def _configured_logs(state: Path, proxy: str) -> int:
    """How many access loggers the proxy's listeners configure (its xDS files, as Envoy reads them)."""
    text = "".join(p.read_text() for p in (state / "local" / proxy).glob("*.yaml"))
    return text.count("envoy.access_loggers.file")


def test_no_access_log_writes_none_and_logs_access_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(tmp_path, monkeypatch)
    try:
        assert main(["local", "up", "--no-access-log"]) == 0
        capsys.readouterr()
        assert main(["local", "curl", "-s", "-o", "/dev/null", "http://lambda.external/hello-world"]) == 0
        time.sleep(0.5)  # twice the flush interval an access log would have
        state = tmp_path / ".meshbridge"
        for proxy in PROXIES:
            assert _configured_logs(state, proxy) == 0
            assert not (state / "local" / proxy / "access.log").exists()
        capsys.readouterr()
        assert main(["local", "logs", "gke/sleep", "--access"]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "the twin was started with --no-access-log: gke/sleep writes no access log" in err
        assert "Fix: meshbridge local down, then meshbridge local up;" in err
        assert main(["local", "logs", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)["components"]
        assert all(c["access_log"] is None for c in listed)
    finally:
        assert main(["local", "down"]) == 0


def test_negative_twin_by_default_every_proxy_logs_each_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(tmp_path, monkeypatch)
    try:
        assert main(["local", "up"]) == 0
        assert main(["local", "curl", "-s", "-o", "/dev/null", "http://lambda.external/hello-world"]) == 0
        state = tmp_path / ".meshbridge"
        deadline = time.monotonic() + 5  # Envoy flushes its access log every 0.2 s
        logs = [state / "local" / p / "access.log" for p in PROXIES]
        while not all(p.exists() and p.stat().st_size for p in logs) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_configured_logs(state, p) > 0 for p in PROXIES)
        assert all('"GET /hello-world' in p.read_text() for p in logs)
        capsys.readouterr()
        assert main(["local", "logs", "gke/sleep", "--access"]) == 0
        assert "/hello-world" in capsys.readouterr().out
    finally:
        assert main(["local", "down"]) == 0
