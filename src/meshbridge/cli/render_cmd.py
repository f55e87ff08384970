"""``meshbridge render``: the Istio/Kubernetes documents of each mesh, for kubectl or GitOps; with ``--install``
the Istio installation (``--format helm``: the charts' values and ``install.sh``; ``--format istioctl``: the
IstioOperators), with ``--rbac`` the RBAC meshbridge itself needs."""

from __future__ import annotations

import io
import os
import stat
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    BridgeFile,
    StateDir,
    _parsed_by,
    err,
    print_json,
    read_bridge,
    store_for,
)
from meshbridge.errors import RenderError, SpecError
from meshbridge.fsutil import Pruned
from meshbridge.render import ManifestSet, render_bridge, render_install
from meshbridge.render.helm import render_helm
from meshbridge.render.manifests import ISTIOCTL_ONLY
from meshbridge.render.rbac import DEFAULT_SUBJECT, Subject, render_rbac
from meshbridge.spec.loader import read_backend_cas
from meshbridge.spec.models import Bridge


class InstallFormat(StrEnum):
    """The form of ``render --install``'s output."""

    helm = "helm"
    istioctl = "istioctl"


RenderJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="With -o: print what was written as one JSON document (each mesh's folder, files, removed and left "
        "files). Without -o, stdout holds the YAML documents, for kubectl.",
    ),
]
RenderMesh = Annotated[
    str | None,
    typer.Option("--mesh", help="Print this mesh's documents to stdout (pipe into 'kubectl apply -f -')."),
]
RenderOutput = Annotated[
    Path | None, typer.Option("-o", "--output", help="Write one folder per mesh, with a kustomization.yaml, here.")
]
NoSecrets = Annotated[
    bool, typer.Option("--no-secrets", help="Leave out the gateway Secrets (e.g. when a vault provides them).")
]
Install = Annotated[
    bool,
    typer.Option(
        "--install",
        help="Render the Istio installation instead, in the form --format says. Not for a cluster with a "
        "managed control plane (Cloud Service Mesh, OpenShift Service Mesh): plan and apply's preflight names "
        "one (check ControlPlane).",
    ),
]
Format = Annotated[
    InstallFormat | None,
    typer.Option(
        "--format",
        help="With --install: 'helm' (default, as Istio recommends): values for the base, istiod and gateway "
        "charts and install.sh with the 'helm upgrade --install' commands in order (-o DIR writes "
        "DIR/<mesh>/helm/); 'istioctl': the IstioOperators for 'istioctl install -f' and the istiod Service.",
    ),
]
Rbac = Annotated[
    bool,
    typer.Option(
        "--rbac",
        help="Render the RBAC meshbridge's cluster commands need instead: a ClusterRole (Namespaces) and a Role "
        "per namespace the bridge uses, bound to --subject. An administrator applies it.",
    ),
]
Subjects = Annotated[
    list[Subject] | None,
    typer.Option(
        "--subject",
        parser=_parsed_by(Subject.parse),
        metavar="KIND:NAME",
        help=f"With --rbac: who gets it: User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME; repeatable. "
        f"Default: {DEFAULT_SUBJECT}.",
    ),
]


def render(
    file: BridgeFile = DEFAULT_BRIDGE,
    mesh: RenderMesh = None,
    output: RenderOutput = None,
    no_secrets: NoSecrets = False,
    install: Install = False,
    install_format: Format = None,
    rbac: Rbac = False,
    subject: Subjects = None,
    state_dir: StateDir = None,
    as_json: RenderJson = False,
) -> None:
    """Render the documents each mesh needs, in apply order, labelled as meshbridge's.

    Exporter: ServiceEntry and DestinationRule for the backend, the MUTUAL Gateway, the VirtualService to
    the backend. Importer: ServiceEntry for the exported host pointing at the exporter gateway, the
    DestinationRule that originates mTLS, the egress Gateway, the subset DestinationRule, the two-leg
    VirtualService. Plus the namespaces and the gateway Secrets (key/cert/cacert).

    Examples:

      meshbridge render --mesh eks | kubectl --context eks apply -f -

      meshbridge render -o manifests/      # manifests/eks/, manifests/gke/ with kustomization.yaml

      meshbridge render --rbac --mesh eks --subject Group:mesh-operators | kubectl --context eks apply -f -

      meshbridge render --rbac             # every mesh's RBAC to stdout, a comment line per mesh naming its context

      meshbridge render --install -o install/   # install/eks/helm/install.sh and the charts' values files

      meshbridge render -o manifests/ --json    # {"meshes": [{mesh, folder, files, removed, left, ...}]}
    """
    written = _render_to(file, mesh, output, no_secrets, install, install_format, rbac, subject, state_dir, as_json)
    if as_json:
        print_json({"meshes": written})


def _render_to(
    file: Path,
    mesh: str | None,
    output: Path | None,
    no_secrets: bool,
    install: bool,
    install_format: InstallFormat | None,
    rbac: bool,
    subject: list[Subject] | None,
    state_dir: Path | None,
    as_json: bool,
) -> list[dict[str, object]]:
    """``render``: check the options, render, and write the documents to stdout or to ``output``'s folders;
    return what was written in each folder (empty when stdout took the documents).

    Raises:
        SpecError: options that do not go together, a mesh not in the bridge or a peer's, or ``as_json`` without
            ``output``.
    """
    if as_json and output is None:
        raise SpecError(
            "--json describes the folders -o writes; without -o, stdout holds the YAML documents (for kubectl). "
            "Fix: add -o DIR, or drop --json"
        )
    if mesh is None and output is None and not rbac:
        raise SpecError("say where the documents go: --mesh NAME prints one mesh to stdout, -o DIR writes folders")
    if install and rbac:
        raise SpecError("--install and --rbac render different documents; choose one per run")
    if subject and not rbac:
        raise SpecError("--subject says who gets the RBAC of --rbac; add --rbac (or drop --subject)")
    if install_format is not None and not install:
        raise SpecError("--format chooses the form of the Istio installation; add --install (or drop --format)")
    bridge = read_bridge(file)
    if mesh is not None and mesh not in bridge.spec.meshes:
        raise SpecError(f"--mesh {mesh!r}: not a mesh of {file} (meshes: {', '.join(bridge.spec.meshes)})")
    if mesh is not None and bridge.spec.meshes[mesh].peer:
        raise SpecError(
            f"--mesh {mesh!r} is marked 'peer: true' in {file}: another owner renders it from their own spec. "
            f"Fix: render your own mesh ({', '.join(bridge.own_meshes)})"
        )
    if install and install_format in (None, InstallFormat.helm):
        return _write_helm(bridge, mesh, output)
    if rbac:
        sets = render_rbac(bridge, subject or None)
    else:
        sets = render_install(bridge) if install else _render(bridge, file, state_dir, no_secrets)
    chosen = [sets[mesh]] if mesh is not None else [sets[m] for m in bridge.own_meshes]  # a peer's: its owner's
    if output is None and mesh is None:  # --rbac alone: no secrets, every mesh, each saying where it goes
        sys.stdout.write("".join(_apply_to(bridge, ms.mesh) + ms.to_yaml() for ms in chosen))
        return []
    if output is None:
        _print_mesh(chosen[0], keys=not bridge.issued_by_cert_manager)  # cert-manager: the Secrets hold CAs only
        return []
    return [_write_folder(ms, output) for ms in chosen]


def _write_folder(ms: ManifestSet, output: Path) -> dict[str, object]:
    """Write one mesh's folder under ``output``, say so on stderr (and which documents kustomize leaves out), and
    return what ``render --json`` says of it."""
    paths, pruned = ms.write_dir(output)
    err.print(f"{ms.mesh}: {len(ms)} documents → {paths[-1].parent}{_pruned(pruned)}", markup=False)
    istioctl = [path for path, doc in zip(paths, ms, strict=False) if doc["kind"] in ISTIOCTL_ONLY]
    for path in istioctl:
        err.print(
            f"  {path}: not in kustomization.yaml; install it with: istioctl install -f {path}",
            markup=False,
            highlight=False,
        )
    done = _written(ms.mesh, paths[-1].parent, paths, pruned)
    return {**done, "documents": len(ms), "istioctl_only": [str(p) for p in istioctl]}


def _written(mesh: str, folder: Path, paths: list[Path], pruned: Pruned) -> dict[str, object]:
    """A folder ``render -o`` wrote, as ``--json`` shows it: the mesh, the folder, the files written, the stale
    files removed and the files of the same pattern it did not write, left alone."""
    return {
        "mesh": mesh,
        "folder": str(folder),
        "files": [str(p) for p in paths],
        "removed": [str(p) for p in pruned.removed],
        "left": [str(p) for p in pruned.left],
    }


def _apply_to(bridge: Bridge, mesh: str) -> str:
    """The comment line above a mesh's documents in a stream of several: the context they are applied to."""
    context = bridge.spec.meshes[mesh].context
    where = f"context {context}" if context else f"mesh {mesh}'s cluster (spec.meshes.{mesh}.context is unset)"
    return (
        f"# mesh {mesh}: apply these to {where} as an administrator: meshbridge render --rbac --mesh {mesh} | "
        f"kubectl --context {context or '<context>'} apply -f -\n"
    )


def _write_helm(bridge: Bridge, mesh: str | None, output: Path | None) -> list[dict[str, object]]:
    installs = render_helm(bridge)
    chosen = [installs[mesh]] if mesh is not None else [installs[m] for m in bridge.own_meshes]
    if output is None:  # then --mesh is given
        sys.stdout.write(chosen[0].to_yaml())
        return []
    written: list[dict[str, object]] = []
    for hi in chosen:
        paths, pruned = hi.write_dir(output)
        err.print(f"{hi.mesh}: {len(hi.releases)} Helm releases → {paths[-1]}{_pruned(pruned)}", markup=False)
        written.append({**_written(hi.mesh, paths[-1].parent, paths, pruned), "releases": len(hi.releases)})
    return written


def _pruned(pruned: Pruned) -> str:
    """The end of a folder's line: the files an earlier render wrote that were removed, and the files of the
    same pattern meshbridge did not write, named, that were left alone."""
    removed = f"; removed {len(pruned.removed)} stale file(s) it had written" if pruned.removed else ""
    left = f"; left {len(pruned.left)} file(s) it did not write: " + ", ".join(p.name for p in pruned.left)
    return removed + (left if pruned.left else "")


def _render(bridge: Bridge, file: Path, state_dir: Path | None, no_secrets: bool) -> dict[str, ManifestSet]:
    credentials = None if no_secrets else store_for(file, state_dir).credentials(bridge)
    return render_bridge(bridge, credentials, backend_cas=read_backend_cas(bridge, file.resolve().parent))


def _print_mesh(ms: ManifestSet, *, keys: bool) -> None:
    """One mesh's documents on stdout: never to a terminal when its Secrets hold private keys (``keys``), and with
    a note when they go to a file.

    Raises:
        RenderError: stdout is a terminal and the Secrets hold keys.
    """
    secrets = keys and any(d["kind"] == "Secret" for d in ms)
    if secrets and sys.stdout.isatty():
        raise RenderError(
            "the documents hold private keys (the gateway Secrets) and meshbridge never prints keys to a "
            "terminal. Fix: pipe them ('| kubectl apply -f -'), write files with -o DIR (Secrets 0600), or "
            "pass --no-secrets"
        )
    if secrets and _is_file(sys.stdout):
        err.print(
            "note: this output holds private keys (the gateway Secrets) and goes to a file: keep it readable by "
            "you only (chmod 600, or umask 077 before the redirect), or write with -o DIR (Secrets 0600)"
        )
    sys.stdout.write(ms.to_yaml())


def _is_file(stream: TextIO) -> bool:
    """Whether ``stream`` is a regular file (a shell redirect), not a pipe or a terminal."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False  # no descriptor (a test's captured stream): not a file on disk
