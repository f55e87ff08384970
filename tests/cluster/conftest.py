"""The clusters the cluster suite runs against: the contexts of ``MESHBRIDGE_CONTEXTS`` when it is set (kind or
cloud clusters, see docs/clusters.md), else two real API servers started here for the session.

The local pair (:mod:`meshbridge.kube.envtest`): per mesh of the seed bridge (eks, gke), an etcd and a
kube-apiserver built from ``tools/kube``, on loopback ports with TLS, RBAC, service-account keys; Istio's CRDs
from the Istio module ``tools/istio-oracle`` pins, and what Istio's installation leaves that meshbridge reads
(:mod:`meshbridge.kube.istio_standin`). meshbridge talks to them as user ``meshbridge`` (token; or the
``-cert`` contexts' client certificate) with exactly the permissions ``meshbridge render --rbac`` prints. There
is no kubelet: port-forward and exec, and so the route checks, run on the fake API server only
(tests/integration).

Without Go and without cached binaries the suite skips, with the one line that says what is missing. The
servers are stopped, and their folder (keys, etcd's data) removed, when the session ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meshbridge.gotools import ToolUnavailable
from meshbridge.kube.envtest import Clusters, grant_permissions, permissions, start_clusters
from meshbridge.kube.istio_standin import install_bridge
from meshbridge.spec import Bridge
from tests.builders import seed_bridge
from tests.cluster.admission import Webhook


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build kube-apiserver and etcd (once; cached after) before the first test when cluster tests will run on the
    local servers: a cold build takes minutes, longer than pytest-timeout gives a test and its fixtures."""
    if os.environ.get("MESHBRIDGE_CONTEXTS") or not any(i.get_closest_marker("cluster") for i in session.items):
        return
    from meshbridge.kube.binaries import ensure_binaries

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    with contextlib.suppress(ToolUnavailable):  # the session fixture skips with the line
        ensure_binaries(lambda line: reporter.write_line(line) if reporter is not None else None)
    if any("test_controlplane" in getattr(getattr(i, "module", None), "__name__", "") for i in session.items):
        from meshbridge.istiod.pilot import ensure_pilot

        with contextlib.suppress(ToolUnavailable):  # istiod's fixture skips with the line
            ensure_pilot(lambda line: reporter.write_line(line) if reporter is not None else None)


@dataclass
class Target:
    """Where the suite runs.

    Attributes:
        kubeconfig: the kubeconfig file (``None``: ``$KUBECONFIG`` / ``~/.kube/config``).
        contexts: the context of each mesh.
        local: the servers started here (no kubelet: no port-forward, no exec, no routes to wait for).
        run: the local servers (``None`` for given contexts).
    """

    kubeconfig: Path | None
    contexts: dict[str, str]
    local: bool
    run: Clusters | None = None

    def args(self) -> list[str]:
        """``--kubeconfig`` and ``--context`` options of the CLI for this target."""
        out = ["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []
        for mesh, ctx in self.contexts.items():
            out += ["--context", f"{mesh}={ctx}"]
        return out


def start_local(bridge: Bridge, root: Path) -> Clusters:
    """Start a cluster per mesh of ``bridge`` under ``root`` with Istio's CRDs and its stand-in; skip without Go."""
    try:
        run = start_clusters(list(bridge.spec.meshes), root)
    except ToolUnavailable as e:
        pytest.skip(str(e))
    try:
        for mesh, c in run.clusters.items():
            with c.client() as admin:
                install_bridge(bridge, mesh, admin)
                grant_permissions(admin, permissions(bridge, mesh))
    except ToolUnavailable as e:
        run.stop()
        pytest.skip(str(e))
    except BaseException:
        run.stop()
        raise
    return run


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    given = os.environ.get("MESHBRIDGE_CONTEXTS")
    if given:
        from meshbridge.kube import parse_context_overrides

        yield Target(None, parse_context_overrides(given.split(",")), local=False)
        return
    run = start_local(seed_bridge(), tmp_path_factory.mktemp("clusters"))
    try:
        yield Target(run.kubeconfig, run.contexts(), local=True, run=run)
    finally:
        run.stop()


@pytest.fixture
def cli(target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """The CLI (:class:`tests.cluster.support.Cli`) on a clean slate: the bridge's objects are deleted before and
    after the test."""
    from meshbridge.kube import delete_bridge
    from tests.cluster.support import Cli

    c = Cli(target, tmp_path, capsys)
    clients = c.clients()
    try:
        delete_bridge(c.bridge, clients)
        yield c
        delete_bridge(c.bridge, clients)
    finally:
        for client in clients.values():
            client.close()


@pytest.fixture
def local(target: Target) -> Clusters:
    """The local servers; the test is skipped on given contexts (it needs the admin's hand on the cluster)."""
    if target.run is None:
        pytest.skip("needs the clusters this suite starts (MESHBRIDGE_CONTEXTS is set)")
    return target.run


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    """The test's own HTTPS admission webhook (tests/cluster/admission.py), one per module that asks for it."""
    hook = Webhook(tmp_path_factory.mktemp("webhook"))
    try:
        yield hook
    finally:
        hook.stop()
