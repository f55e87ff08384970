"""istiod itself (``pilot-discovery``) and its agent (``pilot-agent``), built from the pinned Istio module (I/O).

``tools/istiod`` is a Go module of ours with no Go file: its ``go.mod`` names upstream's two commands as ``tool``
directives (``istio.io/istio/pilot/cmd/pilot-discovery`` and ``.../pilot-agent``) at the very ``istio.io/istio``
version ``tools/istio-oracle`` pins, so the control plane the twin runs and the oracle that judges translations
are the same Istio. Both are built together, once, and cached by the hash of the module's sources like every Go
tool of the project (:mod:`meshbridge.gotools`; the packages they share with the oracle come from Go's build
cache). ``$MESHBRIDGE_PILOT_DISCOVERY`` and ``$MESHBRIDGE_PILOT_AGENT`` name prebuilt binaries instead.

Without Go (and nothing cached), :func:`ensure_pilot` raises :class:`ControlPlaneUnavailable` with one line saying
what is missing; the tests that run istiod skip with it. ``python -m meshbridge.istiod.pilot`` builds them
(``make istiod``) and prints where they are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from meshbridge import gotools
from meshbridge.gotools import GoBinary, GoTool, ToolUnavailable, require_module
from meshbridge.istiod.oracle import istio_line

ISTIO_MODULE = "istio.io/istio"


class ControlPlaneUnavailable(ToolUnavailable):
    """istiod or its agent cannot be built or started here; the message says what is missing."""


def _version_ldflags(module_dir: Path) -> str:
    """Istio's version variables (``pkg/version``), as its release build sets them: the agent sends the version
    to istiod as node metadata ``ISTIO_VERSION`` (``<line>-dev``: the pin is a commit of that release line)."""
    commit = require_module(module_dir, ISTIO_MODULE).rsplit("-", 1)[-1]  # the pseudo-version's commit
    pkg = "istio.io/istio/pkg/version"
    flags = ["-s", "-w", f"-X {pkg}.buildVersion={istio_line(module_dir)}-dev"]
    flags += [f"-X {pkg}.buildGitRevision={commit}", f"-X {pkg}.buildStatus=Clean"]
    return " ".join(flags)


ISTIOD = GoTool(
    module="istiod",
    title="istiod and pilot-agent",
    purpose="Istio's control plane (pilot-discovery) and its agent (pilot-agent)",
    make_target="istiod",
    binaries=(
        GoBinary("pilot-discovery", f"{ISTIO_MODULE}/pilot/cmd/pilot-discovery", "MESHBRIDGE_PILOT_DISCOVERY"),
        GoBinary("pilot-agent", f"{ISTIO_MODULE}/pilot/cmd/pilot-agent", "MESHBRIDGE_PILOT_AGENT"),
    ),
    cold="several minutes; about a minute once the oracle is built",
    ldflags=_version_ldflags,
    label=lambda d: f"Istio {istio_line(d)}",
    error=ControlPlaneUnavailable,
)
"""istiod and its agent as a :class:`~meshbridge.gotools.GoTool` (``tools/istiod``)."""


def ensure_pilot(progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """``pilot-discovery`` and ``pilot-agent``: prebuilt (``$MESHBRIDGE_PILOT_DISCOVERY``,
    ``$MESHBRIDGE_PILOT_AGENT``), cached, or built now.

    Raises:
        ControlPlaneUnavailable: no Go toolchain and nothing cached (one line), or the build failed.
    """
    return gotools.ensure_tool(ISTIOD, progress)


if __name__ == "__main__":
    raise SystemExit(gotools.build_main(ISTIOD))
