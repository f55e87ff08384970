"""Helpers of the cluster suite: the CLI in process against the target, and the admin's view of the local servers."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.kube import connect
from meshbridge.kube.client import KubeClient
from meshbridge.kube.envtest import Clusters
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.resources import ResourceRef
from meshbridge.pki import PkiStore
from meshbridge.spec import Bridge, load_bridge
from tests.builders import SEED
from tests.cluster.conftest import Target

NAME = "meshbridge-e2e"
Doc = dict[str, Any]


def spec_on_ports(source: Path, folder: Path, ingress: tuple[int, int], egress: tuple[int, int]) -> Path:
    """A copy of the spec ``source`` (with its ``handler.py``) in ``folder`` whose gateways' Service ports 80 and 443
    target the given (http, https) ports: a gateway binds them on the wildcard address, as in a pod, so each module
    of the control-plane twin takes ports of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source.parent / "handler.py", folder / "handler.py")
    data = yaml.safe_load(source.read_text())
    for gateway, (http, https) in (("ingressGateway", ingress), ("egressGateway", egress)):
        for mesh in data["spec"]["meshes"].values():
            if gateway in mesh:
                mesh[gateway]["ports"] = [
                    {"name": "status-port", "port": 15021, "targetPort": 15021},
                    {"name": "http2", "port": 80, "targetPort": http},
                    {"name": "https", "port": 443, "targetPort": https},
                ]
    (folder / "bridge.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "bridge.yaml"


def bridge_data(change: Callable[[Doc], None] | None = None) -> Doc:
    """The bridge under test: ``$MESHBRIDGE_BRIDGE`` or the seed, named ``meshbridge-e2e``, the exporter's address
    discovered from its Service (or ``$MESHBRIDGE_EXPORTER_ADDRESS``), no AWS section."""
    data = yaml.safe_load(Path(os.environ.get("MESHBRIDGE_BRIDGE", str(SEED))).read_text())
    address = os.environ.get("MESHBRIDGE_EXPORTER_ADDRESS")
    for mesh in data["spec"]["meshes"].values():
        ig = mesh.get("ingressGateway")
        if ig is not None:
            ig.pop("address", None)
            if address:
                ig["address"] = address
    data["metadata"]["name"] = NAME
    data["spec"].pop("aws", None)
    if change is not None:
        change(data)
    return data


class Cli:
    """The CLI in process against the target, with its bridge file and certificate store in a folder of the test."""

    def __init__(self, target: Target, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.target, self.folder, self.capsys = target, folder, capsys
        self.file = folder / "bridge.yaml"
        self.state = folder / "state"
        self.write()
        PkiStore(self.state).issue(self.bridge)

    def write(self, change: Callable[[Doc], None] | None = None) -> None:
        """(Re)write the bridge file, ``change`` applied to the default bridge."""
        self.file.write_text(yaml.safe_dump(bridge_data(change)))

    @property
    def bridge(self) -> Bridge:
        return load_bridge(self.file)

    def __call__(self, *command: str, state: bool = True) -> tuple[int, str, str]:
        self.capsys.readouterr()
        extra = ["--state-dir", str(self.state)] if state else []
        code = main([*command, "-f", str(self.file), *self.target.args(), *extra])
        shown = self.capsys.readouterr()
        return code, shown.out, shown.err

    def json(self, *command: str, state: bool = True) -> tuple[int, Any]:
        code, out, err = self(*command, "--json", state=state)
        assert out.strip(), err
        return code, json.loads(out)

    def clients(self) -> dict[str, KubeClient]:
        return connect(self.bridge, self.target.contexts, kubeconfig=self.target.kubeconfig)


def admin(local: Clusters, mesh: str) -> KubeClient:
    return local[mesh].client()


def get(local: Clusters, mesh: str, path: str) -> Doc | None:
    with admin(local, mesh) as a:
        try:
            out: Doc = a.request("GET", path, what=path, verb="get")
        except KubeApiError as e:
            if e.status == 404:
                return None
            raise
    return out


def managers(doc: Doc) -> dict[str, str]:
    """manager → operation of an object's managedFields."""
    return {m["manager"]: m["operation"] for m in doc["metadata"].get("managedFields") or []}


def paths(cli: Cli, mesh: str) -> list[str]:
    """The REST paths of every object the bridge renders for ``mesh`` but Namespaces, through the v1 API."""
    from meshbridge.render import render_bridge

    address = {"eks": "x.invalid"}
    docs = render_bridge(cli.bridge, PkiStore(cli.state).credentials(cli.bridge), addresses=address)[mesh]
    return [ResourceRef.of(d).path for d in docs if d["kind"] != "Namespace"]


def assert_healthy(code: int, status: Doc) -> None:
    """``status --json`` (exit ``code``) says the bridge is healthy; on this suite's own servers, where no kubelet
    runs the stand-in's gateway pods (Ready, on no node), it is unhealthy for that alone: exit 1, every gateway
    with its pods unscheduled and nothing else wrong (a real cluster's pods are on nodes: healthy, exit 0)."""
    if not any("on no node (spec.nodeName empty)" in n for m in status["meshes"] for n in m["notes"]):
        assert code == 0 and status["healthy"] is True, status
        return
    assert code == 1, status
    for m in status["meshes"]:
        assert m["error"] is None and m["missing_crds"] == [], m
        assert all(o["state"] in ("present", "unmanaged") for o in m["objects"]), m
        unscheduled = [n for n in m["notes"] if "on no node (spec.nodeName empty)" in n]
        assert all(g["ready"] == 0 for g in m["gateways"]) and len(unscheduled) == len(m["gateways"]), m
        assert all(x["days_left"] is not None and x["days_left"] > 0 for x in m["secrets"]), m
