"""``meshbridge plan | apply | delete | status``: the bridge on real clusters, through the Kubernetes API."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshbridge.cli.certs_cmd import StateDir, store_for
from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    BridgeFile,
    Kubeconfig,
    ProxyConfigFormat,
    ProxyConfigKind,
    ProxyConfigOutput,
    err,
    out,
    read_bridge,
    table,
)
from meshbridge.envoy.proxyconfig import format_proxy_config
from meshbridge.errors import KubeError
from meshbridge.pki.store import MeshCredentials
from meshbridge.spec.loader import read_backend_cas
from meshbridge.spec.models import Bridge
from meshbridge.world import find_proxy

if TYPE_CHECKING:
    from meshbridge.kube import (
        KubeClient,
        PreflightReport,
    )
    from meshbridge.kube.plan import MeshPlan

EXIT_CLUSTER_UNREAD = 2
"""Exit status of every cluster command when a cluster cannot be reached or read (the kubeconfig, the context,
the API server, the credentials, a request that failed): the command could not do its job, as for any other
``MeshbridgeError``. 1 is kept for a cluster that was read and is not as it should be."""

Contexts = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        metavar="MESH=CONTEXT",
        help="kubeconfig context of a mesh, overriding spec.meshes.<mesh>.context. Repeat for each mesh.",
    ),
]
RequestTimeout = Annotated[
    float, typer.Option("--request-timeout", min=1, help="Seconds one API request may take.", show_default=True)
]
NoSecrets = Annotated[
    bool,
    typer.Option(
        "--no-secrets",
        help="Leave the gateway Secrets alone: neither written nor pruned (e.g. when a vault provides them).",
    ),
]
ForceConflicts = Annotated[
    bool,
    typer.Option(
        "--force-conflicts",
        help=(
            "Take over objects that exist without this bridge's labels (or with another bridge's), and fields "
            "another field manager owns. Off by default: meshbridge refuses and lists them."
        ),
    ),
]


def _progress(line: str) -> None:
    err.print(line, markup=False, highlight=False)


@contextmanager
def _clusters(
    bridge: Bridge,
    contexts: list[str] | None,
    kubeconfig: Path | None,
    request_timeout: float,
    meshes: list[str] | None = None,
) -> Iterator[dict[str, KubeClient]]:
    """Clients for ``meshes`` (default: every mesh); the other meshes' contexts are not looked up."""
    from meshbridge.kube import connect, parse_context_overrides

    overrides = parse_context_overrides(contexts or [])
    clients = connect(bridge, overrides, meshes=meshes, kubeconfig=kubeconfig, request_timeout=request_timeout)
    try:
        yield clients
    finally:
        for c in clients.values():
            c.close()


def _credentials(
    bridge: Bridge, file: Path, state_dir: Path | None, no_secrets: bool
) -> dict[str, MeshCredentials] | None:
    return None if no_secrets else store_for(file, state_dir).credentials(bridge)


def _backend_cas(bridge: Bridge, file: Path) -> dict[str, bytes]:
    return read_backend_cas(bridge, file.resolve().parent)


def _print_preflight(report: PreflightReport, verbose: bool) -> None:
    shown = [f for f in report.findings if verbose or not f.ok]
    if shown:
        err.print(
            table(
                ["MESH", "CHECK", "RESULT", "MESSAGE"],
                [(f.mesh, f.check, "ok" if f.ok else f.severity, f.message) for f in shown],
            ),
            markup=False,
            highlight=False,
        )


def _print_plans(plans: list[MeshPlan], show_diff: bool) -> None:
    rows = [
        (p.mesh, p.context, c.action, c.ref.kind, c.ref.namespace or "-", c.ref.name, c.reason or "-")
        for p in plans
        for c in p.changes
    ]
    out.print(table(["MESH", "CONTEXT", "ACTION", "KIND", "NAMESPACE", "NAME", "REASON"], rows))
    for p in plans:
        for note in p.notes:
            out.print(f"note: {p.mesh}: {note}")
    if show_diff:
        for p in plans:
            for c in p.changes:
                if c.diff and c.action in ("create", "update", "conflict"):
                    out.print(f"\n# {p.mesh} ({p.context}): {c.action} {c.ref}")
                    out.print(c.diff.rstrip("\n"))
    totals = {a: sum(p.count(a) for p in plans) for a in ("create", "update", "prune", "unchanged", "conflict", "keep")}
    out.print(
        f"\nPlan: {totals['create']} to create, {totals['update']} to update, {totals['prune']} to prune, "
        f"{totals['unchanged']} unchanged, {totals['keep']} kept, {totals['conflict']} conflict(s)."
    )


def plan(
    file: BridgeFile = DEFAULT_BRIDGE,
    context: Contexts = None,
    kubeconfig: Kubeconfig = None,
    state_dir: StateDir = None,
    no_secrets: NoSecrets = False,
    force_conflicts: ForceConflicts = False,
    no_diff: Annotated[bool, typer.Option("--no-diff", help="Print the table only, no per-object diffs.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Also list preflight checks that passed.")] = False,
    request_timeout: RequestTimeout = 30.0,
) -> None:
    """Show what 'apply' would change on each cluster; nothing is written.

    Runs the preflight checks (contexts answer, Istio CRDs and revision, gateway pods and Service ports,
    Secret namespaces, DNS capture), discovers the exporter's load-balancer address, renders, then asks
    each API server for a server-side dry run of every object and prints one line per object (create,
    update, unchanged, prune, conflict, keep) and a diff of each change. Secret values are never printed.

    Exits 1 when an object exists that this bridge does not own (a conflict 'apply' would refuse).

    Example: meshbridge plan --context eks=arn:aws:eks:us-east-1:111122223333:cluster/eks --context gke=gke_p_z_c
    """
    from meshbridge.kube import plan_bridge

    bridge = read_bridge(file)
    with _clusters(bridge, context, kubeconfig, request_timeout) as clients:
        outcome = plan_bridge(
            bridge,
            clients,
            credentials=_credentials(bridge, file, state_dir, no_secrets),
            backend_cas=_backend_cas(bridge, file),
            force_conflicts=force_conflicts,
            progress=_progress,
        )
    _print_preflight(outcome.report, verbose)
    _print_plans(outcome.plans, not no_diff)
    if outcome.conflicts:
        raise typer.Exit(1)


def apply(
    file: BridgeFile = DEFAULT_BRIDGE,
    context: Contexts = None,
    kubeconfig: Kubeconfig = None,
    state_dir: StateDir = None,
    no_secrets: NoSecrets = False,
    force_conflicts: ForceConflicts = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until every gateway pod serves the new routes.")
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for the gateways' routes.", show_default=True)
    ] = 120.0,
    request_timeout: RequestTimeout = 30.0,
) -> None:
    """Apply the bridge to every cluster with server-side apply (field manager 'meshbridge'), and prune.

    Preflight and a server-side dry run of every object come first: nothing is written if a check fails
    or an object exists that this bridge does not own (see --force-conflicts). Then each mesh, exporters
    first, gets its objects in apply order; objects labelled for this bridge that are no longer rendered
    are deleted (Namespaces never are). Finally it polls each gateway pod's Envoy config (through the API
    server's port-forward) until the new routes appear.

    If a cluster fails part-way, the error says what landed on each cluster; re-running converges.
    """
    from meshbridge.kube import apply_bridge

    bridge = read_bridge(file)
    with _clusters(bridge, context, kubeconfig, request_timeout) as clients:
        outcome = apply_bridge(
            bridge,
            clients,
            credentials=_credentials(bridge, file, state_dir, no_secrets),
            backend_cas=_backend_cas(bridge, file),
            force_conflicts=force_conflicts,
            wait=wait,
            timeout=timeout,
            progress=_progress,
        )
    _print_preflight(outcome.plan.report, False)
    out.print(
        table(
            ["MESH", "CONTEXT", "CREATED", "CONFIGURED", "PRUNED", "UNCHANGED", "KEPT"],
            [
                (
                    r.mesh,
                    r.context,
                    r.count("created"),
                    r.count("configured"),
                    r.count("pruned"),
                    r.count("unchanged"),
                    r.count("kept"),
                )
                for r in outcome.results
            ],
        )
    )


def delete(
    file: BridgeFile = DEFAULT_BRIDGE,
    context: Contexts = None,
    kubeconfig: Kubeconfig = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Send the deletes as server-side dry runs: list, check, remove nothing.")
    ] = False,
    request_timeout: RequestTimeout = 30.0,
) -> None:
    """Delete every object labelled for this bridge, on every cluster; Namespaces are kept.

    Selects only on both labels app.kubernetes.io/managed-by=meshbridge and meshbridge.io/bridge=<name>
    (Secrets and Istio Gateways, VirtualServices, DestinationRules, ServiceEntries), importers first, each
    delete guarded by the object's uid. Namespaces are never deleted: they hold the gateways and other
    workloads. Needs no certificates.
    """
    from meshbridge.kube import delete_bridge

    bridge = read_bridge(file)
    with _clusters(bridge, context, kubeconfig, request_timeout) as clients:
        results = delete_bridge(bridge, clients, dry_run=dry_run, progress=_progress)
    rows = [(r.mesh, r.context, ref.kind, ref.namespace or "-", ref.name) for r in results for _, ref in r.done]
    if rows:
        out.print(table(["MESH", "CONTEXT", "KIND", "NAMESPACE", "DELETED" + (" (DRY RUN)" if dry_run else "")], rows))
    else:
        out.print(f"no object labelled for bridge {bridge.metadata.name!r} on any cluster")
    out.print("Namespaces are never deleted (they hold the gateways and other workloads).")


def status(
    file: BridgeFile = DEFAULT_BRIDGE,
    context: Contexts = None,
    kubeconfig: Kubeconfig = None,
    state_dir: StateDir = None,
    no_secrets: NoSecrets = False,
    request_timeout: RequestTimeout = 30.0,
) -> None:
    """Per cluster: the bridge's objects (present, drifted, missing, conflict, stale), the gateway pods,
    the exporter's load-balancer address and the expiry of the certificates in the gateway Secrets.

    Read-only (no dry runs either, so a read-only user can run it). Exits 2 when a cluster cannot be
    reached or read (every other cluster is still shown), like every cluster command; 1 when an object is not
    as rendered, a gateway has no Ready pod, or a certificate has expired.
    """
    from meshbridge.kube import cluster_status

    bridge = read_bridge(file)
    with _clusters(bridge, context, kubeconfig, request_timeout) as clients:
        statuses = cluster_status(
            bridge,
            clients,
            credentials=_credentials(bridge, file, state_dir, no_secrets),
            backend_cas=_backend_cas(bridge, file),
        )
    for st in statuses:
        out.print(f"== mesh {st.mesh} (context {st.context})")
        if st.error:
            out.print(f"error: {st.error}\n")
            continue
        out.print(
            table(
                ["KIND", "NAMESPACE", "NAME", "STATE", "DETAIL"],
                [(o.ref.kind, o.ref.namespace or "-", o.ref.name, o.state, o.detail or "-") for o in st.objects],
            )
        )
        if st.gateways:
            out.print(
                table(
                    ["GATEWAY", "NAMESPACE", "NAME", "READY", "ADDRESS"],
                    [
                        (
                            g.role,
                            g.namespace,
                            g.name,
                            f"{g.ready}/{g.total}",
                            g.address or ("<pending>" if g.role == "ingress" else "-"),
                        )
                        for g in st.gateways
                    ],
                )
            )
        if st.secrets:
            out.print(
                table(
                    ["SECRET", "NAMESPACE", "NOT AFTER", "DAYS LEFT", "DETAIL"],
                    [
                        (
                            s.name,
                            s.namespace,
                            f"{s.not_after:%Y-%m-%dT%H:%M:%SZ}" if s.not_after else "-",
                            s.days_left if s.days_left is not None else "-",
                            s.detail or "-",
                        )
                        for s in st.secrets
                    ],
                )
            )
        for note in st.notes:
            out.print(f"note: {note}")
        out.print("")
    unread = [st for st in statuses if st.error]
    if unread:
        err.print(
            "error: could not read "
            + ", ".join(f"mesh {st.mesh} (context {st.context})" for st in unread)
            + ": this status is incomplete. Fix: see the error under each such mesh above",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_CLUSTER_UNREAD)
    if not all(st.healthy for st in statuses):
        raise typer.Exit(1)


def proxy_config(
    kind: ProxyConfigKind,
    proxy: Annotated[
        str, typer.Argument(help="A gateway of the bridge: eks/istio-ingressgateway, gke/istio-egressgateway.")
    ],
    output: ProxyConfigOutput = ProxyConfigFormat.short,
    file: BridgeFile = DEFAULT_BRIDGE,
    contexts: Contexts = None,
    kubeconfig: Kubeconfig = None,
    request_timeout: RequestTimeout = 30.0,
) -> None:
    """istioctl proxy-config for a real gateway: its /config_dump read through the API server's port-forward.

    The same printer as 'meshbridge local proxy-config', so local and real gateways read alike.
    """
    from meshbridge.kube import fetch_config_dump, gateway_pods

    bridge = read_bridge(file)
    try:
        spec = find_proxy(bridge, proxy)
    except KeyError as e:
        raise KubeError(str(e.args[0])) from None
    if spec.role not in ("ingress", "egress"):
        raise KubeError(
            f"{spec.name} is an app's sidecar; proxy-config on clusters reads gateways only (use istioctl for pods)"
        )
    with _clusters(bridge, contexts, kubeconfig, request_timeout, meshes=[spec.mesh]) as clients:
        client = clients[spec.mesh]
        pods = gateway_pods(bridge, spec.mesh, spec.role, client)  # type: ignore[arg-type]
        if not pods:
            raise KubeError(
                f"{client.context}: no ready pod of {spec.proxy.namespace}/{spec.proxy.name}. "
                "Fix: check the gateway deployment"
            )
        pod = pods[0]["metadata"]
        dump = fetch_config_dump(client, pod["namespace"], pod["name"], include_eds=kind == "clusters")
    if output is ProxyConfigFormat.json:
        out.print(json.dumps(dump, indent=2))
        return
    sys.stdout.write(format_proxy_config(kind, dump))
