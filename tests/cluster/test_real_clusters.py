"""Opt-in: the bridge on real clusters (kind or cloud). Run with ``-m cluster``; see docs/clusters.md.

Environment:

* ``MESHBRIDGE_CONTEXTS`` (required, else every test is skipped): ``eks=kind-a,gke=kind-b``, the kubeconfig
  context of each mesh of the bridge.
* ``MESHBRIDGE_BRIDGE``: the bridge file (default: ``examples/seed/bridge.yaml``).
* ``MESHBRIDGE_EXPORTER_ADDRESS``: the exporter gateway's address when its Service gets no load-balancer
  address (kind: a node IP with a NodePort, or MetalLB/cloud-provider-kind).
* ``MESHBRIDGE_VERIFY_CALL=1``: also require the app's call to succeed (needs a real backend).
* ``KUBECONFIG`` as usual.

The tests write to the clusters (under the bridge's labels) and delete what they wrote at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshbridge.kube import (
    apply_bridge,
    cluster_status,
    connect,
    delete_bridge,
    parse_context_overrides,
    plan_bridge,
    preflight,
    verify_clusters,
)
from meshbridge.kube.client import KubeClient
from meshbridge.pki import PkiStore
from meshbridge.spec import Bridge, parse_bridge
from tests.builders import SEED

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("MESHBRIDGE_CONTEXTS"), reason="MESHBRIDGE_CONTEXTS is not set"),
]


@pytest.fixture(scope="module")
def bridge() -> Bridge:
    path = Path(os.environ.get("MESHBRIDGE_BRIDGE", str(SEED)))
    data = yaml.safe_load(path.read_text())
    address = os.environ.get("MESHBRIDGE_EXPORTER_ADDRESS")
    for mesh in data["spec"]["meshes"].values():
        ig = mesh.get("ingressGateway")
        if ig is not None:
            ig.pop("address", None)
            if address:
                ig["address"] = address
    data["metadata"]["name"] = "meshbridge-e2e"
    data["spec"].pop("aws", None)
    return parse_bridge(yaml.safe_dump(data), source=str(path))


@pytest.fixture(scope="module")
def clients(bridge: Bridge) -> Iterator[dict[str, KubeClient]]:
    overrides = parse_context_overrides(os.environ["MESHBRIDGE_CONTEXTS"].split(","))
    live = connect(bridge, overrides)
    yield live
    delete_bridge(bridge, live)
    for c in live.values():
        c.close()


@pytest.fixture(scope="module")
def credentials(bridge: Bridge, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    store = PkiStore(tmp_path_factory.mktemp("state"))
    store.issue(bridge)
    return store.credentials(bridge)  # type: ignore[return-value]


def test_preflight_passes(bridge: Bridge, clients: dict[str, KubeClient]) -> None:
    report = preflight(bridge, clients)
    assert report.passed, "\n".join(f"{f.mesh} {f.check}: {f.message}" for f in report.findings if f.blocking)


def test_apply_then_converges(bridge: Bridge, clients: dict[str, KubeClient], credentials: dict[str, object]) -> None:
    first = apply_bridge(bridge, clients, credentials=credentials, timeout=180, progress=print)  # type: ignore[arg-type]
    assert sum(r.count("created") + r.count("configured") for r in first.results) > 0
    again = plan_bridge(bridge, clients, credentials=credentials)  # type: ignore[arg-type]
    assert all(c.action in ("unchanged", "keep") for p in again.plans for c in p.changes), [
        (c.ref, c.action, c.diff) for p in again.plans for c in p.changes if c.action not in ("unchanged", "keep")
    ]


def test_status_and_verify(bridge: Bridge, clients: dict[str, KubeClient], credentials: dict[str, object]) -> None:
    statuses = cluster_status(bridge, clients, credentials=credentials)  # type: ignore[arg-type]
    for st in statuses:
        assert not st.error and all(o.state in ("present", "unmanaged") for o in st.objects), st
    conditions = verify_clusters(bridge, clients=clients)
    routes = [c for c in conditions if c.check.endswith("GatewayRoutes")]
    assert routes and all(c.passed for c in routes), routes
    if os.environ.get("MESHBRIDGE_VERIFY_CALL") == "1":
        calls = [c for c in conditions if c.check == "AppReachesExport"]
        assert calls and all(c.passed for c in calls), calls


def test_delete_leaves_nothing_labelled(bridge: Bridge, clients: dict[str, KubeClient]) -> None:
    delete_bridge(bridge, clients)
    assert all(r.count("deleted") == 0 for r in delete_bridge(bridge, clients))
