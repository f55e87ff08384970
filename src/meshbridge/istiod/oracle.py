"""Run istiod's own translation (``tools/istio-oracle``) and read what it would push to each proxy (I/O).

The oracle is a Go program of ours that drives Istio's in-process discovery server at one pinned Istio
commit (``tools/istio-oracle/go.mod``). It is built and cached as every Go tool of the project is
(:mod:`meshbridge.gotools`): once, under ``~/.cache/meshbridge/tools/`` by the hash of its sources
(``go.mod``, ``go.sum``, ``*.go``), so a new pin or a change to the program builds anew and nothing else
does. ``MESHBRIDGE_ISTIO_ORACLE`` names a prebuilt binary instead.

Where Go is absent, :func:`ensure_oracle` raises :class:`OracleUnavailable` with one line that says what is
missing and how to get it; the oracle's tests skip with that line.

``python -m meshbridge.istiod.oracle`` builds it (``make oracle``) and prints where it is.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshbridge import gotools
from meshbridge.errors import TranslateError
from meshbridge.gotools import GoBinary, GoTool
from meshbridge.istiod.request import OracleRequest

TOOL_DIR = gotools.TOOLS_DIR / "istio-oracle"
"""The oracle's Go module in a checkout of meshbridge."""

ENV_BINARY = "MESHBRIDGE_ISTIO_ORACLE"
RUN_TIMEOUT = 300.0
"""Seconds one oracle run may take (istiod's harness starts in about a second; a large input takes longer)."""


class OracleUnavailable(TranslateError):
    """The oracle cannot run here (no Go, no checkout of the tools, a failed build); the message says why."""


@dataclass(frozen=True)
class IstiodConfig:
    """What istiod would push to one proxy, as Envoy v3 JSON (proto field names in camelCase).

    Attributes:
        name: the proxy (``<mesh>/<workload>``).
        listeners, routes, clusters, endpoints, secrets: LDS, RDS, CDS, EDS and SDS resources.
    """

    name: str
    listeners: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    secrets: list[dict[str, Any]]


@dataclass(frozen=True)
class OracleAnswer:
    """One oracle run: the Istio release line it was built from, and each proxy's configuration."""

    istio: str
    proxies: dict[str, IstiodConfig]


ORACLE = GoTool(
    module="istio-oracle",
    title="istiod oracle",
    purpose="Istio's own translation",
    make_target="oracle",
    binaries=(GoBinary("istio-oracle", ".", ENV_BINARY),),
    cold="several minutes",
    ldflags=lambda d: f"-X main.IstioLine={istio_line(d)}",
    label=lambda d: f"Istio {istio_line(d)}",
    error=OracleUnavailable,
)
"""The oracle as a :class:`~meshbridge.gotools.GoTool`: built and cached like every Go tool of the project."""


def source_hash(tool_dir: Path = TOOL_DIR) -> str:
    """The first 16 hex digits of the SHA-256 of ``go.mod``, ``go.sum`` and every ``*.go`` file, in name order."""
    return gotools.source_hash(tool_dir)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/meshbridge/tools`` (``~/.cache/meshbridge/tools``)."""
    return gotools.cache_dir()


def istio_line(tool_dir: Path = TOOL_DIR) -> str:
    """The Istio release line of the pinned module (its ``VERSION`` file), read from ``go.mod``'s comment."""
    for line in (tool_dir / "go.mod").read_text().splitlines():
        if line.startswith("// istio-release-line:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def ensure_oracle(progress: Callable[[str], None] | None = None) -> Path:
    """The oracle's binary: ``$MESHBRIDGE_ISTIO_ORACLE``, the cached build, or a new build.

    Args:
        progress: called with one line before a build starts (a cold build takes minutes).

    Raises:
        OracleUnavailable: no Go toolchain, no ``tools/istio-oracle`` in this installation, or the build failed.
    """
    return gotools.ensure_tool(ORACLE, progress)["istio-oracle"]


def _refusal(stderr: str) -> str:
    """The harness's last message (from its ``istio-oracle:`` line to the end: a validation refusal lists each
    error on a line of its own), on one line; else stderr's last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    start = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("istio-oracle:")), None)
    if start is None:
        return lines[-1] if lines else ""
    return " ".join(lines[start:]).removeprefix("istio-oracle: ")


def run_oracle(request: OracleRequest, binary: Path | None = None) -> OracleAnswer:
    """istiod's configuration for every proxy of ``request``.

    Raises:
        OracleUnavailable: as :func:`ensure_oracle`.
        TranslateError: istiod's harness refused the input (its message, e.g. a validation error) or failed.
    """
    exe = binary or ensure_oracle()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PILOT_", "ISTIO_"))}
    env.update(request.env)
    try:
        done = subprocess.run(
            [str(exe)],
            input=json.dumps(request.payload()),
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise TranslateError(f"istiod oracle: no answer within {RUN_TIMEOUT:.0f} s") from e
    if done.returncode != 0:
        raise TranslateError(f"istiod refused or failed on this input: {_refusal(done.stderr)}")
    answer = json.loads(done.stdout)
    proxies = {
        p["name"]: IstiodConfig(
            p["name"],
            p.get("listeners") or [],
            p.get("routes") or [],
            p.get("clusters") or [],
            p.get("endpoints") or [],
            p.get("secrets") or [],
        )
        for p in answer.get("proxies") or []
    }
    return OracleAnswer(str(answer.get("istio", "unknown")), proxies)


if __name__ == "__main__":
    raise SystemExit(gotools.build_main(ORACLE))
