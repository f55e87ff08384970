"""verify --context's error line for clusters it could not reach or read names meshes, never a hop."""

from __future__ import annotations

from meshbridge.kube.verify import unread_error
from meshbridge.verify import Condition
from tests.builders import seed_bridge


def _unknown(hop: str, reason: str = "CannotReadGateway") -> Condition:
    return Condition("GatewaysServeCurrentCerts", "Unknown", reason, "403", hop)


def test_the_served_check_of_hop_clusters_names_every_mesh_not_the_hop() -> None:
    line = unread_error(seed_bridge(), [_unknown("clusters"), _unknown("eks", "ClusterUnreachable")])
    assert line.startswith("error: could not reach or read the clusters of meshes eks, gke (")
    assert "clusters, " not in line and "mesh clusters" not in line
    assert "(CannotReadGateway, ClusterUnreachable)" in line


def test_one_mesh_named_by_its_hop_is_one_cluster() -> None:
    line = unread_error(seed_bridge(), [_unknown("gke: egress gateway"), _unknown("gke", "ClusterUnreachable")])
    assert line.startswith("error: could not reach or read the cluster of mesh gke (")
    # the negative twin: the other mesh, which was read, is not named
    assert "eks" not in line
