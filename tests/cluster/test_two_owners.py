"""Two owners on real API servers (``-m cluster``, local servers only): each runs the cluster commands on their
own mesh's cluster with a spec of their own side and their own keys, after ``peer offer``/``accept``/``admit``.

The exporter's owner holds eks (gke is ``peer: true`` in their spec), the importer's owner gke. Neither passes
the other's context, and neither command touches the other's cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.kube.envtest import Clusters
from meshbridge.spec import load_bridge
from tests.cluster.conftest import Target
from tests.peer_support import Owners, exchange, two_owners

pytestmark = pytest.mark.cluster


@pytest.fixture
def owners(local: Clusters, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Owners]:
    """Both owners' folders after the exchange; whatever either applied is deleted afterwards."""
    o = two_owners(tmp_path)
    exchange(o, capsys)
    yield o
    for side, mesh in ((o.exporter, "eks"), (o.importer, "gke")):
        main(["delete", "-f", str(side), *_on(local, mesh)])


def _on(local: Clusters, mesh: str) -> list[str]:
    return ["--kubeconfig", str(local.kubeconfig), "--context", f"{mesh}={local.contexts()[mesh]}"]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    shown = capsys.readouterr()
    return code, shown.out + shown.err


def _ours(local: Clusters, mesh: str, bridge_name: str) -> list[str]:
    """The kinds/names of objects in ``mesh``'s cluster carrying the bridge's label."""
    found = []
    with local[mesh].client() as admin:
        for path in ("/api/v1/secrets", "/apis/networking.istio.io/v1beta1/gateways"):
            listed = admin.request(
                "GET", path, query=[("labelSelector", f"meshbridge.io/bridge={bridge_name}")], what=path, verb="list"
            )
            found += [f"{path.rsplit('/', 1)[-1]}/{i['metadata']['name']}" for i in listed["items"]]
    return found


def test_each_owner_applies_only_their_own_mesh(
    owners: Owners, local: Clusters, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    name = load_bridge(owners.exporter).metadata.name
    code, shown = _run(capsys, "apply", "-f", str(owners.exporter), "--no-wait", *_on(local, "eks"))
    assert code == 0, shown
    assert _ours(local, "eks", name) and not _ours(local, "gke", name)  # the importer's cluster is untouched
    code, shown = _run(capsys, "apply", "-f", str(owners.importer), "--no-wait", *_on(local, "gke"))
    assert code == 0, shown
    assert _ours(local, "gke", name)
    for side, mesh in ((owners.exporter, "eks"), (owners.importer, "gke")):
        code, shown = _run(capsys, "status", "-f", str(side), *_on(local, mesh))
        assert code == 1 and "mtls-credential" in shown, shown  # 1: the stand-in's gateway pods are on no node
        assert "on no node (spec.nodeName empty)" in shown
        assert ("eks" in shown) is (mesh == "eks") and ("gke " in shown) is (mesh == "gke")


def test_each_owner_pushes_only_their_own_gateway_secret(
    owners: Owners, local: Clusters, capsys: pytest.CaptureFixture[str]
) -> None:
    _, shown = _run(capsys, "certs", "push", "-f", str(owners.importer), *_on(local, "gke"), "--timeout", "1")
    assert "pushed: gke (gke: 1 Secret(s))" in shown, shown


def test_naming_the_peers_cluster_is_refused_with_the_fix(
    owners: Owners, local: Clusters, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown = _run(
        capsys, "plan", "-f", str(owners.exporter), *_on(local, "eks"), "--context", f"gke={local.contexts()['gke']}"
    )
    assert code == 2
    assert "'gke' are marked 'peer: true'" in shown and "name only your own mesh(es) (eks)" in shown
