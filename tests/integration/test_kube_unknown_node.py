"""Gateway pods bound to a node the API server does not know (``spec.nodeName`` without a Node, as the twin's pods on
the real control plane): the port-forward's 404 names the node. ``certs push`` and ``apply`` say at once what they
did and that serving cannot be checked, as for a pod on no node, instead of a pod that "does not exist" (push) or a
wait until the timeout (apply)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main
from tests.integration.conftest import INGRESS_POD, World
from tests.integration.test_kube_cli import args, files

pytestmark = pytest.mark.integration
__all__ = ["files"]  # the fixture of test_kube_cli, used here by name

NO_NODE = 'pods "twin" not found'  # kube-apiserver's 404 when the pod's spec.nodeName has no Node


def test_a_pod_on_a_node_the_server_does_not_know_is_not_checked_and_says_why(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(world.tmp / "state")]
    assert main(["certs", "issue", "-f", str(files[0]), *state]) == 0
    world.eks.fail("GET", r"/portforward$", 404, reason="NotFound", message=NO_NODE)
    assert main(["certs", "push", *args(files, world), *state]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"port-forward to port 15000 of pod {INGRESS_POD[0]}/{INGRESS_POD[1]} failed: 404 NotFound" in err
    assert "bound to node 'twin', which this API server does not know: no kubelet serves the pod" in err
    assert "The gateway Secrets were written to kind-eks, kind-gke, but whether the gateway pods serve them" in err
    assert "it does not exist" not in err
    assert main(["apply", *args(files, world), *state, "--timeout", "600"]) == 2  # at once, not after 600 s
    err = " ".join(capsys.readouterr().err.split())
    assert "the gateways' routes cannot be checked" in err and "bound to node 'twin'" in err


def test_a_gateway_pod_that_is_gone_is_still_a_pod_not_found(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The twin of the test above: the 404 names the pod asked for; no node is blamed."""
    state = ["--state-dir", str(world.tmp / "state")]
    assert main(["certs", "issue", "-f", str(files[0]), *state]) == 0
    world.eks.fail("GET", r"/portforward$", 404, reason="NotFound", message=f'pods "{INGRESS_POD[1]}" not found')
    assert main(["certs", "push", *args(files, world), *state, "--timeout", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "bound to node" not in err and "The gateway Secrets were written" not in err
