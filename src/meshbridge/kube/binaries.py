"""Kubernetes' API server and etcd, built from source by the Go toolchain (``tools/kube``; I/O).

``tools/kube`` is a Go module of ours with two main packages: ``kube-apiserver`` (upstream's command,
``k8s.io/kubernetes/cmd/kube-apiserver/app``, at the release its ``go.mod`` pins, every ``k8s.io`` staging
module replaced by the matching published release) and ``etcd`` (``etcdmain.Main`` of
``go.etcd.io/etcd/server/v3``). Nothing is copied from either project. Both are built together, once, and
cached by the hash of the module's sources like every Go tool of the project (:mod:`meshbridge.gotools`);
``$MESHBRIDGE_KUBE_APISERVER`` and ``$MESHBRIDGE_ETCD`` name prebuilt binaries instead.

Without Go (and nothing cached), :func:`ensure_binaries` raises :class:`KubeServersUnavailable` with one line
saying what is missing; the tests on real API servers skip with it. ``python -m meshbridge.kube.binaries``
builds them (``make kube``) and prints where they are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from meshbridge import gotools
from meshbridge.gotools import GoBinary, GoTool, ToolUnavailable, require_module


class KubeServersUnavailable(ToolUnavailable):
    """kube-apiserver and etcd cannot be built or started here; the message says what is missing."""


def _kube_ldflags(module_dir: Path) -> str:
    """The version variables Kubernetes' release build sets (hack/lib/version.sh), from the pinned release."""
    version = require_module(module_dir, "k8s.io/kubernetes")  # v1.37.2
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]  # as the release build (no symbol table, no DWARF): a smaller binary, a faster link
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}", f"-X {pkg}.gitMinor={minor}"]
        flags.append(f"-X {pkg}.gitTreeState=clean")
    return " ".join(flags)


KUBE = GoTool(
    module="kube",
    title="kube-apiserver and etcd",
    purpose="Kubernetes' API server and etcd",
    make_target="kube",
    binaries=(
        GoBinary("kube-apiserver", "./kube-apiserver", "MESHBRIDGE_KUBE_APISERVER"),
        GoBinary("etcd", "./etcd", "MESHBRIDGE_ETCD"),
    ),
    cold="5 to 10 minutes on 2 cores",
    ldflags=_kube_ldflags,
    label=lambda d: (
        f"Kubernetes {require_module(d, 'k8s.io/kubernetes')}, etcd {require_module(d, 'go.etcd.io/etcd/server/v3')}"
    ),
    error=KubeServersUnavailable,
)
"""Kubernetes' API server and etcd as a :class:`~meshbridge.gotools.GoTool` (``tools/kube``)."""


def ensure_binaries(progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """``kube-apiserver`` and ``etcd``: prebuilt (``$MESHBRIDGE_KUBE_APISERVER``, ``$MESHBRIDGE_ETCD``), cached, or
    built now.

    Raises:
        KubeServersUnavailable: no Go toolchain and nothing cached (one line), or the build failed.
    """
    return gotools.ensure_tool(KUBE, progress)


def kubernetes_version() -> str:
    """The pinned Kubernetes release (``v1.37.2``)."""
    return require_module(KUBE.directory, "k8s.io/kubernetes")


if __name__ == "__main__":
    raise SystemExit(gotools.build_main(KUBE))
