"""``render --install --format helm``: each mesh's values for Istio's Helm charts and the commands, in order (pure).

Istio recommends Helm: the ``base`` chart (CRDs, the default validation webhook), the ``istiod`` chart (the
control plane) and one ``gateway`` chart release per gateway, installed apart from the control plane. Per
mesh, the same settings as the IstioOperator form (:mod:`meshbridge.render.install`) on the charts' keys:

* ``base``: ``defaultRevision`` = the spec's revision, so the default validation webhook calls that
  revision's istiod (the IstioOperator form renders a revision-less ``istiod`` Service for it instead);
* ``istiod``: ``revision``, ``meshConfig`` (:func:`~meshbridge.render.install.mesh_config`) and
  ``pilot.env`` (the spec's ``pilotEnv``; every istiod chart reads ``pilot.env``: older ones as their own key,
  newer ones copy ``.pilot`` to the top level in ``templates/zzy_descope_legacy.yaml``);
* ``gateway``, one release per gateway workload, named after it: ``name``, ``revision``, ``labels`` (the pod
  labels the rendered ``Gateway`` selects), ``serviceAccount.name`` (the chart's default is the release name;
  the spec's ServiceAccount is the SPIFFE identity the other mesh checks), ``service.type`` (``LoadBalancer``
  for an ingress gateway, ``ClusterIP`` for an egress gateway) and ``service.ports``.

An ambient mesh (``dataplane: ambient``) gets Istio's ambient install: ``profile: ambient`` on the istiod
chart, then the ``cni`` chart (release ``istio-cni``, ``profile: ambient``) and the ``ztunnel`` chart, after
istiod and before the gateways, as Istio's *Install with Helm* (ambient) orders them; its waypoint is no
release (istiod deploys it from the rendered ``Gateway``), and waypoints need the Gateway API CRDs installed.
Apps resolve the imported host (a made-up name such as ``lambda.external``) through ztunnel's DNS proxy, on
by default from 1.25; before, Istio's *DNS Proxying* page has it turned on at install: the cni chart's
``ambient.dnsCapture`` and istiod's ``PILOT_ENABLE_IP_AUTOALLOCATE`` (the ServiceEntry's VIP).

meshbridge never runs helm: :meth:`HelmInstall.script` is the ``helm upgrade --install`` commands, base
first, then istiod (both with ``--wait``: the gateways' injection needs istiod's webhook), then the gateways,
each pinned to the mesh's Istio version with ``--version``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshbridge.fsutil import Pruned, prune_written, write_atomic
from meshbridge.istio.changes import CHANGES
from meshbridge.render.install import gateways, mesh_config
from meshbridge.render.manifests import to_yaml
from meshbridge.spec.models import Bridge, GatewayWorkload, Mesh

REPO_NAME = "istio"
REPO_URL = "https://blob.istio.io/istio-release/charts"
"""Istio's Helm repository. From Istio 1.31 the charts are published here, no longer on
istio-release.storage.googleapis.com, which Istio switches off after its scream tests (the last on 8-9 December
2026): https://istio.io/latest/news/releases/1.31.x/announcing-1.31/upgrade-notes/ (GCP-hosted artifacts)."""
ISTIO_NAMESPACE = "istio-system"

Values = dict[str, Any]


@dataclass(frozen=True)
class HelmRelease:
    """One ``helm upgrade --install``: a release of one of Istio's charts, in a namespace, with its values."""

    release: str
    chart: str  # base, istiod, cni, ztunnel or gateway (in the repository REPO_NAME)
    namespace: str
    values: Values
    wait: bool = False  # --wait: the next release needs this one running

    @property
    def values_file(self) -> str:
        """The values file's name: ``values-base.yaml``, ``values-istiod.yaml``, ``values-gateway-<ns>-<name>.yaml``."""
        if self.chart == "gateway":
            return f"values-gateway-{self.namespace}-{self.release}.yaml"
        return f"values-{self.chart}.yaml"

    def command(self, version: str) -> str:
        """The ``helm upgrade --install`` command line (the script appends ``"$@"``)."""
        words = ["helm", "upgrade", "--install", self.release, f"{REPO_NAME}/{self.chart}", "--version", version]
        words += ["--namespace", self.namespace, "--create-namespace", "--values", self.values_file]
        if self.wait:
            words.append("--wait")
        return shlex.join(words)

    def values_text(self, mesh: str, version: str) -> str:
        """The values as YAML after a comment naming the mesh, the chart, the release and its namespace."""
        header = f"# mesh {mesh}: chart {REPO_NAME}/{self.chart} {version}, release {self.release} in {self.namespace}"
        return f"{header}\n{to_yaml([self.values]).removeprefix('---').lstrip()}"


@dataclass(frozen=True)
class HelmInstall:
    """The Helm releases of one mesh, in install order (base, istiod, then the gateways)."""

    mesh: str
    version: str  # the Istio version, which is also the charts' version
    releases: tuple[HelmRelease, ...]

    def __iter__(self) -> Iterator[HelmRelease]:
        return iter(self.releases)

    def to_yaml(self) -> str:
        """Every release's values as one multi-document YAML text, each document after a comment naming its chart."""
        return "".join(f"---\n{r.values_text(self.mesh, self.version)}" for r in self.releases)

    def script(self) -> str:
        """``install.sh``: the ``helm`` commands in order; its arguments go to each (``--kube-context eks``)."""
        lines = [
            "#!/bin/sh",
            f"# Istio {self.version} for mesh {self.mesh} with Helm, rendered by meshbridge: the base chart, istiod,",
            "# then the gateways. Arguments go to every helm command, e.g.: sh install.sh --kube-context <context>",
            "set -eu",
            'cd "$(dirname "$0")"',
            f"helm repo add {REPO_NAME} {REPO_URL} --force-update",
            *(f'{r.command(self.version)} "$@"' for r in self.releases),
        ]
        return "\n".join(lines) + "\n"

    def write_dir(self, directory: Path) -> tuple[list[Path], Pruned]:
        """Write ``directory/<mesh>/helm/``: one values file per release, then ``install.sh`` (executable).

        Values files an earlier render wrote that this one does not (a gateway since removed from the spec)
        are removed, so that the folder holds no release the script does not install; values files meshbridge
        did not write are left alone (see :func:`~meshbridge.fsutil.prune_written`).

        Returns:
            The paths written (``install.sh`` last), and what was removed and left alone.
        """
        folder = directory / self.mesh / "helm"
        written: list[Path] = []
        for r in self.releases:
            path = folder / r.values_file
            write_atomic(path, r.values_text(self.mesh, self.version))
            written.append(path)
        script = folder / "install.sh"
        write_atomic(script, self.script(), mode=0o755)
        written.append(script)
        return written, prune_written(folder, "values-*.yaml", written)


def render_helm(bridge: Bridge) -> dict[str, HelmInstall]:
    """The Helm releases of every mesh, by mesh name."""
    return {name: _mesh_releases(name, mesh) for name, mesh in bridge.spec.meshes.items()}


def _mesh_releases(name: str, mesh: Mesh) -> HelmInstall:
    istio = mesh.istio
    revision: Values = {"revision": istio.revision} if istio.revision else {}
    base: Values = {"defaultRevision": istio.revision} if istio.revision else {}
    profile: Values = {"profile": "ambient"} if mesh.dataplane == "ambient" else {}
    dns: Values = (
        {"ambient": {"dnsCapture": True}} if profile and not CHANGES["ambient-dns-proxy"].on(istio.minor) else {}
    )
    env = dict(istio.pilot_env) | ({"PILOT_ENABLE_IP_AUTOALLOCATE": "true"} if dns else {})
    istiod: Values = {**revision, **profile, "meshConfig": mesh_config(mesh), "pilot": {"env": env}}
    istiod_release = f"istiod-{istio.revision}" if istio.revision else "istiod"
    releases = [
        HelmRelease("istio-base", "base", ISTIO_NAMESPACE, base, wait=True),
        HelmRelease(istiod_release, "istiod", ISTIO_NAMESPACE, istiod, wait=True),
    ]
    if profile:  # the node agents that capture the apps' traffic, before anything runs in the mesh
        releases += [
            HelmRelease("istio-cni", "cni", ISTIO_NAMESPACE, {**revision, **profile, **dns}, wait=True),
            HelmRelease("ztunnel", "ztunnel", ISTIO_NAMESPACE, dict(revision), wait=True),
        ]
    releases += [
        _gateway_release(gw, revision, "LoadBalancer" if role == "ingress" else "ClusterIP")
        for role, gw in gateways(mesh)
    ]
    return HelmInstall(name, istio.version, tuple(releases))


def _gateway_release(gw: GatewayWorkload, revision: Values, service_type: str) -> HelmRelease:
    values: Values = {
        "name": gw.name,
        **revision,
        "labels": dict(gw.labels),
        "serviceAccount": {"name": gw.sa},
        "service": {
            "type": service_type,
            "ports": [
                {"name": p.name, "port": p.port, "protocol": "TCP", "targetPort": p.target_port} for p in gw.ports
            ],
        },
    }
    return HelmRelease(gw.name, "gateway", gw.namespace, values)
