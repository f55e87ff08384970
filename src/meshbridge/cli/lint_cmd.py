"""``meshbridge lint``: both meshes' configuration and certificates checked as one graph."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from meshbridge.cli.common import (
    CERT_KEYS,
    DEFAULT_BRIDGE,
    Kubeconfig,
    StateDir,
    err,
    error_message,
    out,
    parse_cert,
    read_bridge,
    store_for,
)
from meshbridge.errors import IstioConfigError, MeshbridgeError, PkiError
from meshbridge.istio.files import MountedFile
from meshbridge.istio.parse import load_documents
from meshbridge.lint import LintInput, LintReport, SecretFile, from_bridge, from_manifests
from meshbridge.lint import lint as run_lint
from meshbridge.lint.inputs import EXPIRY_HORIZON_DAYS, Documents
from meshbridge.spec.loader import read_backend_cas

LintFile = Annotated[
    Path | None,
    typer.Option(
        "-f",
        "--file",
        help="The bridge spec. Alone: lint what it renders (certificates from the state dir). With --mesh: the "
        "world the manifests run in (gateway Services and labels, apps, mesh settings, gateway addresses). "
        "Default: bridge.yaml when no --mesh is given.",
    ),
]
MeshManifests = Annotated[
    list[str] | None,
    typer.Option(
        "--mesh",
        "--manifests",
        metavar="NAME=PATH",
        help="NAME=PATH: a mesh's manifests (a YAML file or a folder of them); repeat per mesh and per path. "
        "$VAR and ${VAR} are expanded from the environment, as the shell expands the article's heredocs. "
        "--manifests is the same option, as 'local up' and 'translate' name it.",
    ),
]
LintCerts = Annotated[
    list[str] | None,
    typer.Option(
        "--cert",
        metavar="MESH:KEY=FILE|PATH=FILE",
        help="MESH\\[/NAMESPACE/NAME]:KEY=FILE: a PEM file placed in a gateway Secret, like kubectl create "
        f"secret generic --from-file=KEY=FILE (KEY: {', '.join(CERT_KEYS)}); without NAMESPACE/NAME: the "
        "only credentialName the mesh's gateways use. \\[MESH:]PATH=FILE: the file a Gateway or "
        "DestinationRule names by its path in the pod (serverCertificate, clientCertificate, privateKey, "
        "caCertificates, caCrl), checked as a Secret is; MESH when several meshes name the path.",
    ),
]
LiveContexts = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        metavar="MESH=CONTEXT",
        help="Read a mesh's configuration from its cluster instead of files: the Istio resources, Services, the "
        "Secrets the Gateways and DestinationRules name, and the running istiod's mesh config and environment "
        "(read only). Repeat per mesh; combines with --mesh for the other meshes and -f for the world.",
    ),
]
LintJson = Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")]
Wide = Annotated[
    bool,
    typer.Option(
        "--wide", "-w", help="One finding per line, however wide (for grep), with the SYMPTOM and FIX columns."
    ),
]
Ignore = Annotated[
    list[str] | None,
    typer.Option("--ignore", metavar="CODE", help="Leave a code out of the report (repeatable), e.g. MB202."),
]
ExpiryDays = Annotated[
    int,
    typer.Option(
        "--expiry-days",
        min=0,
        metavar="DAYS",
        help="Warn (MB404) about certificates expiring within this many days.",
    ),
]


def lint(
    file: LintFile = None,
    mesh: MeshManifests = None,
    cert: LintCerts = None,
    json_output: LintJson = False,
    wide: Wide = False,
    ignore: Ignore = None,
    expiry_days: ExpiryDays = EXPIRY_HORIZON_DAYS,
    state_dir: StateDir = None,
    context: LiveContexts = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Check both meshes' configuration and certificates as one graph, the way istiod and Envoy would see them.

    Follows every link from the importer's egress gateway to the exporter's ingress gateway: ServiceEntry
    address and port, SNI against the Gateway hosts, mutual TLS, the route for the Host, and each side's
    certificate against the other side's CA and SAN pins. Per mesh: DNS for made-up hosts, gateway
    references, exportTo, subsets, clusters, secrets, and the security posture. Every finding has a stable
    code (MB###, see docs/lint.md), the objects and fields involved, the symptom at run time and the fix.

    Exit code: 1 when there is an error finding, 0 otherwise (warnings and info do not fail), 2 for bad input.

    Examples:

      meshbridge lint   # what bridge.yaml renders, with its certificates

      meshbridge lint --mesh eks=eks/ --mesh gke=gke/   # manifests, chart defaults

      meshbridge lint -f bridge.yaml --mesh eks=eks.yaml --mesh gke=gke.yaml

      meshbridge lint --mesh gke=gke.yaml --cert gke:cert=client.crt

      meshbridge lint --mesh gke=gke.yaml --cert /etc/istio/egressgateway-certs/tls.crt=client.crt

      meshbridge lint --json | jq '.findings[] | select(.severity=="error")'

      meshbridge lint -f bridge.yaml --context eks=EKS_CONTEXT --context gke=GKE_CONTEXT   # the live meshes
    """
    if context and file is None and mesh is None and DEFAULT_BRIDGE.is_file():
        file = DEFAULT_BRIDGE  # the live meshes run in the spec's world, as plain 'lint' reads it
        err.print(f"note: the world of the live meshes is {DEFAULT_BRIDGE} (-f chooses another)")
    if mesh and file is None and not context and DEFAULT_BRIDGE.is_file():
        err.print(
            f"note: {DEFAULT_BRIDGE} is in this folder but --mesh without -f does not read it: lint assumes a world "
            f"for the manifests (MB001). To lint them in its world: add -f {DEFAULT_BRIDGE}",
            markup=False,
            highlight=False,
        )
    try:
        live = _live_documents(context or [], kubeconfig, file)
        inp = _input(file, mesh or [], cert or [], expiry_days, state_dir, live)
        report = run_lint(inp, ignore=ignore or [])
    except (MeshbridgeError, OSError) as e:
        if json_output:  # stdout is a JSON document whatever happens: a script without pipefail sees the error
            out.print(LintReport((), input_error=error_message(e)).to_json())
        raise  # the error line on stderr, exit code 2
    if json_output:
        out.print(report.to_json())
    elif report.findings:
        out.print(report.table(wide=wide))
        if not wide:  # on stderr: stdout holds only the table
            err.print("fixes: add --wide (one finding per line, SYMPTOM and FIX columns) or --json")
    linted = ", ".join(m.name for m in inp.meshes if not m.stand_in)
    stand_ins = [m.name for m in inp.meshes if m.stand_in]
    walked = f"; {', '.join(stand_ins)} as the spec renders it, for the cross-mesh walk" if stand_ins else ""
    err.print(f"{report.summary()} ({linted}{walked})")
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _input(
    file: Path | None,
    meshes: list[str],
    certs: list[str],
    expiry_days: int,
    state_dir: Path | None,
    live: dict[str, Documents] | None = None,
) -> LintInput:
    live = live or {}
    given = [parse_cert(c) for c in certs]
    secret_files = [c for c in given if isinstance(c, SecretFile)]
    mounted_files = [c for c in given if isinstance(c, MountedFile)]
    if not meshes and not live:
        path = file or DEFAULT_BRIDGE
        if given:
            raise IstioConfigError("--cert goes with --mesh; when linting a spec, certificates come from its state dir")
        bridge = read_bridge(path)
        unrendered = ""
        try:
            credentials = store_for(path, state_dir).credentials(bridge)
        except PkiError as e:
            credentials, unrendered = None, str(e)  # MB208 says which Secrets were not rendered, and why
        return from_bridge(
            bridge,
            credentials,
            backend_cas=read_backend_cas(bridge, path.resolve().parent),
            horizon_days=expiry_days,
            unrendered=unrendered,
        )
    world = read_bridge(file) if file is not None else None
    documents: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for value in meshes:
        name, sep, where = value.partition("=")
        if not sep or not name or not where:
            raise IstioConfigError(f"--mesh {value!r}: expected NAME=PATH, e.g. --mesh eks=manifests/eks/")
        _check_folder(value, Path(where))
        documents.setdefault(name, []).extend(load_documents([Path(where)], os.environ))
    clash = sorted(set(documents) & set(live))
    if clash:
        raise IstioConfigError(f"mesh {clash[0]!r} is given both by --mesh and by --context: choose one")
    docs: dict[str, Documents] = {**documents, **live}
    return from_manifests(
        docs, bridge=world, secret_files=secret_files, mounted_files=mounted_files, horizon_days=expiry_days
    )


def _check_folder(value: str, path: Path) -> None:
    """A folder given to ``--mesh`` must hold a manifest: an empty one would lint as an empty mesh.

    Raises:
        IstioConfigError: ``path`` is a folder without ``*.yaml``/``*.yml`` files.
    """
    if path.is_dir() and not any(p.suffix in (".yaml", ".yml") and p.is_file() for p in path.rglob("*")):
        raise IstioConfigError(
            f"--mesh {value!r}: the folder {path} holds no *.yaml or *.yml file. Fix: point it at the mesh's "
            "manifests (a YAML file or a folder of them), e.g. the output of 'meshbridge render -o out' (out/eks)"
        )


def _live_documents(values: list[str], kubeconfig: Path | None, file: Path | None) -> dict[str, Documents]:
    """Each ``--context`` mesh's live configuration (:func:`meshbridge.kube.snapshot.snapshot`); the notes on what
    could not be read go to stderr. With a spec (``-f``), its API version, revision and namespaces are used."""
    if not values:
        return {}
    from meshbridge.kube.client import KubeClient
    from meshbridge.kube.clusters import parse_context_overrides
    from meshbridge.kube.routes import gateway_workloads, waypoint_namespaces
    from meshbridge.kube.snapshot import snapshot

    world = read_bridge(file) if file is not None else None
    out: dict[str, Documents] = {}
    for mesh, ctx in parse_context_overrides(values).items():
        spec = world.spec.meshes.get(mesh) if world is not None else None
        if world is not None and spec is None:
            raise IstioConfigError(
                f"--context {mesh}={ctx}: {file} has no mesh {mesh!r} (meshes: {', '.join(world.spec.meshes)})"
            )
        namespaces = ["istio-system", "istio-ingress", "istio-egress"]
        gateways: list[str] = []
        if world is not None and spec is not None:
            gateways = sorted({gw.namespace for _, gw in gateway_workloads(world, mesh)})
            namespaces = sorted(
                {
                    "istio-system",
                    *(gw.namespace for _, gw in gateway_workloads(world, mesh)),
                    *waypoint_namespaces(world, mesh),
                    *(a.namespace for a in spec.apps),
                }
            )
        with KubeClient.from_kubeconfig(ctx, kubeconfig=kubeconfig, notify=lambda line: err.print(line)) as client:
            shot = snapshot(
                client,
                api_version=spec.istio.networking_api_version if spec is not None else "networking.istio.io/v1",
                namespaces=namespaces,
                gateway_namespaces=gateways,
                revision=spec.istio.revision if spec is not None else None,
            )
        for note in shot.notes:
            err.print(f"note: {note}", markup=False, highlight=False)
        if shot.notes:
            err.print(
                f"note: {mesh}: lint read only part of the cluster ({len(shot.notes)} note(s) above), so a finding "
                "may be missing; a user who may list the Istio resources and Services cluster-wide sees it all",
                markup=False,
                highlight=False,
            )
        out[mesh] = shot.documents
    return out
