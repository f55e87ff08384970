"""``lint --context`` on real API servers (``-m cluster``, local servers only): both meshes linted as they run.

What apply wrote is read back from each cluster (the Istio resources, the Secrets the gateways name, the running
istiod's mesh config and Deployment) and linted as one graph; a change made in the cluster behind meshbridge's
back shows as the finding it causes.
"""

from __future__ import annotations

import json

import pytest

from meshbridge.kube.client import apply_raw
from meshbridge.kube.envtest import Clusters
from tests.cluster.support import Cli, admin, get

pytestmark = pytest.mark.cluster


def _findings(cli: Cli) -> tuple[int, list[dict[str, object]], str]:
    code, out, err = cli("lint", "--json")
    return code, json.loads(out)["findings"], err


def test_the_applied_bridge_lints_clean_from_the_clusters(cli: Cli, local: Clusters) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    code, findings, err = _findings(cli)
    assert code == 0 and not [f for f in findings if f["severity"] == "error"], findings
    # the bridge's user may not list cluster-wide: lint says where it read
    assert "no permission to list gateways cluster-wide; read in" in err


def test_a_live_sni_changed_behind_meshbridges_back_is_an_error(cli: Cli, local: Clusters) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    path = next(p for p in _paths(local, "gke", "destinationrules") if "egressgateway" not in p)
    live = get(local, "gke", path)
    assert live is not None
    for setting in _tls_settings(live["spec"]):
        setting["sni"] = "elsewhere.example"
    with admin(local, "gke") as a:
        apply_raw(
            a,
            path,
            {"apiVersion": live["apiVersion"], "kind": live["kind"], "metadata": _meta(live), "spec": live["spec"]},
            manager="someone",
        )
    code, findings, _ = _findings(cli)
    assert code == 1 and "MB303" in {f["code"] for f in findings}, findings


def test_the_running_istiods_mesh_config_is_read(cli: Cli, local: Clusters) -> None:
    """The stand-in's mesh config turns DNS capture off: the importer's app cannot resolve the export (MB101),
    which only the live ConfigMap says (the spec turns it on)."""
    assert cli("apply", "--no-wait")[0] == 0
    path = "/api/v1/namespaces/istio-system/configmaps/istio-1-17"
    live = get(local, "gke", path)
    assert live is not None
    before = dict(live["data"])
    try:
        with admin(local, "gke") as a:
            mesh = "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: 'false'\n"
            apply_raw(
                a,
                path,
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(live), "data": {"mesh": mesh}},
                manager="someone",
            )
        code, findings, _ = _findings(cli)
        assert code == 1 and "MB101" in {f["code"] for f in findings}, findings
    finally:
        with admin(local, "gke") as a:
            apply_raw(
                a,
                path,
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(live), "data": before},
                manager="someone",
            )


def _meta(live: dict[str, object]) -> dict[str, object]:
    md = live["metadata"]
    assert isinstance(md, dict)
    return {"name": md["name"], "namespace": md["namespace"]}


def _paths(local: Clusters, mesh: str, plural: str) -> list[str]:
    with admin(local, mesh) as a:
        listed = a.request("GET", f"/apis/networking.istio.io/v1beta1/{plural}", what=plural, verb="list")
    return [
        f"/apis/networking.istio.io/v1beta1/namespaces/{i['metadata']['namespace']}/{plural}/{i['metadata']['name']}"
        for i in listed["items"]
        if i["metadata"].get("labels", {}).get("meshbridge.io/bridge")
    ]


def _tls_settings(spec: dict[str, object]) -> list[dict[str, object]]:
    policy = spec.get("trafficPolicy") or {}
    assert isinstance(policy, dict)
    found = [policy.get("tls")] + [p.get("tls") for p in policy.get("portLevelSettings") or []]
    return [t for t in found if isinstance(t, dict) and t.get("mode") == "MUTUAL"]
