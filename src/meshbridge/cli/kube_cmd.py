"""``meshbridge plan | apply | delete | status``: the bridge on real clusters, through the Kubernetes API."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    EXIT_CLUSTER_UNREAD,
    BridgeFile,
    Contexts,
    JsonDocument,
    Kubeconfig,
    ProxyConfigFormat,
    ProxyConfigKind,
    ProxyConfigOutput,
    StateDir,
    err,
    out,
    read_bridge,
    store_for,
)
from meshbridge.envoy.proxyconfig import format_proxy_config
from meshbridge.errors import KubeError
from meshbridge.hints import with_options
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.spec.loader import read_backend_cas
from meshbridge.spec.models import Bridge
from meshbridge.tabwriter import fit_table, format_table
from meshbridge.world import find_proxy

if TYPE_CHECKING:
    from meshbridge.kube import (
        KubeClient,
        PreflightReport,
    )
    from meshbridge.kube.apply import Done, MeshResult
    from meshbridge.kube.plan import MeshPlan
    from meshbridge.kube.preflight import PreflightCheck
    from meshbridge.kube.resources import ResourceRef
    from meshbridge.kube.status import MeshStatus

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


WIDTH = 100
"""Every table of the cluster commands fits this many columns: long cells (contexts, reasons) wrap."""


def _progress(line: str) -> None:
    err.print(line, markup=False, highlight=False)


def _fit(columns: list[str], rows: list[tuple[object, ...]], wrap: list[int]) -> str:
    """A table within :data:`WIDTH` columns, the ``wrap`` columns wrapping onto the lines below."""
    return fit_table([columns, *rows], WIDTH, wrap=wrap).rstrip("\n")


def _rows_with_reasons(columns: list[str], rows: list[tuple[object, ...]], reasons: list[str]) -> str:
    """A table whose rows each may carry a sentence (why, what to do), printed on the lines under the row,
    wrapped within :data:`WIDTH`: the columns keep their natural width and the sentence its length."""
    lines = format_table([columns, *rows]).rstrip("\n").split("\n")
    shown = [lines[0].rstrip()]
    for line, reason in zip(lines[1:], reasons, strict=True):
        shown.append(line.rstrip())
        if reason:
            shown += textwrap.wrap(with_options(reason), WIDTH, initial_indent="  ↳ ", subsequent_indent="    ")
    return "\n".join(shown)


def _print_json(document: object) -> None:
    out.print(json.dumps(document, indent=2), markup=False, highlight=False)


def _ref(ref: ResourceRef) -> dict[str, object]:
    return {"apiVersion": ref.api_version, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name}


def _finding(f: PreflightCheck) -> dict[str, object]:
    return {
        "mesh": f.mesh,
        "context": f.context,
        "check": f.check,
        "ok": f.ok,
        "severity": f.severity,
        "message": f.message,
    }


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
    clients = connect(
        bridge, overrides, meshes=meshes, kubeconfig=kubeconfig, request_timeout=request_timeout, notify=_progress
    )
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
            _fit(
                ["MESH", "CHECK", "RESULT", "MESSAGE"],
                [(f.mesh, f.check, "ok" if f.ok else f.severity, f.message) for f in shown],
                wrap=[3],
            ),
            markup=False,
            highlight=False,
        )


def _plan_totals(plans: list[MeshPlan]) -> dict[str, int]:
    return {a: sum(p.count(a) for p in plans) for a in ("create", "update", "prune", "unchanged", "conflict", "keep")}


def _plans_json(outcome_report: PreflightReport, plans: list[MeshPlan]) -> dict[str, object]:
    return {
        "preflight": [_finding(f) for f in outcome_report.findings],
        "meshes": [
            {
                "mesh": p.mesh,
                "context": p.context,
                "changes": [
                    {"action": c.action, **_ref(c.ref), "reason": c.reason or None, "diff": c.diff or None}
                    for c in p.changes
                ],
                "notes": list(p.notes),
            }
            for p in plans
        ],
        "totals": _plan_totals(plans),
    }


def _print_notes(mesh: str, notes: Sequence[str]) -> None:
    """A mesh's notes (how far a search reached ...): on stderr, as progress, since they are not the output."""
    for note in notes:
        err.print(f"note: {mesh}: {note}", markup=False, highlight=False)


def _print_plans(plans: list[MeshPlan], show_diff: bool) -> None:
    """Per mesh, a table of its objects (the reason of a keep, update, prune or conflict under its row),
    its notes on stderr; then the diffs and the totals."""
    for p in plans:
        out.print(f"== mesh {p.mesh} (context {p.context})")
        rows: list[tuple[object, ...]] = [(c.action, c.ref.kind, c.ref.namespace or "-", c.ref.name) for c in p.changes]
        out.print(_rows_with_reasons(["ACTION", "KIND", "NAMESPACE", "NAME"], rows, [c.reason for c in p.changes]))
        _print_notes(p.mesh, p.notes)
        out.print("")
    diffs = [(p, c) for p in plans for c in p.changes if c.diff and c.action in ("create", "update", "conflict")]
    for p, c in diffs if show_diff else []:
        out.print(f"# {p.mesh} ({p.context}): {c.action} {c.ref}")
        out.print(c.diff.rstrip("\n") + "\n")
    n = _plan_totals(plans)
    out.print(
        f"Plan: {n['create']} to create, {n['update']} to update, {n['prune']} to prune, {n['unchanged']} unchanged, "
        f"{n['keep']} kept, {n['conflict']} conflict(s)."
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
    as_json: JsonDocument = False,
) -> None:
    """Show what 'apply' would change on each cluster; nothing is written.

    Runs the preflight checks (contexts answer, Istio CRDs and revision, gateway pods and Service ports,
    Secret namespaces, DNS capture), discovers the exporter's load-balancer address, renders, then asks
    each API server for a server-side dry run of every object and prints one line per object (create,
    update, unchanged, prune, conflict, keep) and a diff of each change. Secret values are never printed.

    Exits 1 when an object exists that this bridge does not own (a conflict 'apply' would refuse). --json
    prints the preflight findings, every change (with its diff, secrets redacted) and the totals.

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
    if as_json:
        _print_json(_plans_json(outcome.report, outcome.plans))
    else:
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
    as_json: JsonDocument = False,
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
    outcomes: tuple[Done, ...] = ("created", "configured", "pruned", "unchanged", "kept")
    if as_json:
        _print_json(
            {
                "preflight": [_finding(f) for f in outcome.plan.report.findings],
                "meshes": [_result_json(r, outcomes) for r in outcome.results],
            }
        )
        return
    _print_preflight(outcome.plan.report, False)
    for p in outcome.plan.plans:
        _print_notes(p.mesh, p.notes)
    rows: list[tuple[object, ...]] = [(r.mesh, r.context, *(r.count(o) for o in outcomes)) for r in outcome.results]
    out.print(_fit(["MESH", "CONTEXT", *(o.upper() for o in outcomes)], rows, wrap=[1]))


def _result_json(r: MeshResult, outcomes: tuple[Done, ...]) -> dict[str, object]:
    """One mesh's run: every object handled, in order, with its outcome; and the counts."""
    return {
        "mesh": r.mesh,
        "context": r.context,
        "objects": [{"outcome": what, **_ref(ref)} for what, ref in r.done],
        "counts": {o: r.count(o) for o in outcomes},
    }


def delete(
    file: BridgeFile = DEFAULT_BRIDGE,
    context: Contexts = None,
    kubeconfig: Kubeconfig = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Send the deletes as server-side dry runs: list, check, remove nothing.")
    ] = False,
    request_timeout: RequestTimeout = 30.0,
    as_json: JsonDocument = False,
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
    never = "Namespaces are never deleted (they hold the gateways and other workloads)."
    if as_json:
        _print_json(
            {
                "dry_run": dry_run,
                "meshes": [
                    {"mesh": r.mesh, "context": r.context, "deleted": [_ref(ref) for _, ref in r.done]} for r in results
                ],
            }
        )
        err.print(never, markup=False, highlight=False)
        return
    rows: list[tuple[object, ...]] = [
        (r.mesh, r.context, ref.kind, ref.namespace or "-", ref.name) for r in results for _, ref in r.done
    ]
    if rows:
        deleted = "DELETED" + (" (DRY RUN)" if dry_run else "")
        out.print(_fit(["MESH", "CONTEXT", "KIND", "NAMESPACE", deleted], rows, wrap=[1, 4]))
    else:
        out.print(f"no object labelled for bridge {bridge.metadata.name!r} on any cluster")
    out.print(never)


def status(
    file: BridgeFile = DEFAULT_BRIDGE,
    context: Contexts = None,
    kubeconfig: Kubeconfig = None,
    state_dir: StateDir = None,
    no_secrets: NoSecrets = False,
    request_timeout: RequestTimeout = 30.0,
    as_json: JsonDocument = False,
) -> None:
    """Per cluster: the bridge's objects (present, drifted, missing, conflict, stale, terminating), the gateway
    pods, the exporter's load-balancer address and the expiry of the certificates in the gateway Secrets.

    Read-only (no dry runs either, so a read-only user can run it). Exits 2 when a cluster cannot be
    reached or read (every other cluster is still shown), like every cluster command; 1 when an object is not
    as rendered, a Namespace it uses is being deleted (Terminating), a gateway has no Ready pod, or a
    certificate has expired. The tables fit 100 columns (a long detail wraps); --json prints every mesh's
    objects, gateways, Secrets and notes (a mesh that could not be read with its error), with the same exit
    codes.
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
    if as_json:
        _print_json({"healthy": all(st.healthy for st in statuses), "meshes": [_status_json(st) for st in statuses]})
    else:
        for st in statuses:
            _print_mesh_status(st)
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


def _status_json(st: MeshStatus) -> dict[str, object]:
    return {
        "mesh": st.mesh,
        "context": st.context,
        "error": st.error or None,
        "healthy": st.healthy,
        "objects": [{**_ref(o.ref), "state": o.state, "detail": o.detail or None} for o in st.objects],
        "gateways": [
            {
                "role": g.role,
                "namespace": g.namespace,
                "name": g.name,
                "selector": g.selector,
                "ready": g.ready,
                "total": g.total,
                "address": g.address,
            }
            for g in st.gateways
        ],
        "secrets": [
            {
                "namespace": x.namespace,
                "name": x.name,
                "not_after": f"{x.not_after:%Y-%m-%dT%H:%M:%SZ}" if x.not_after else None,
                "days_left": x.days_left,
                "detail": x.detail or None,
            }
            for x in st.secrets
        ],
        "notes": list(st.notes),
        "missing_crds": [
            {"crd": m.crd, "apiVersion": m.api_version, "kind": m.kind, "message": m.message} for m in st.missing_crds
        ],
    }


def _print_mesh_status(st: MeshStatus) -> None:
    """One mesh's status as tables within 100 columns: objects, gateways, Secrets; its notes on stderr."""
    out.print(f"== mesh {st.mesh} (context {st.context})")
    if st.error:
        out.print(f"error: {st.error}\n")
        return
    rows: list[tuple[object, ...]] = [(o.ref.kind, o.ref.namespace or "-", o.ref.name, o.state) for o in st.objects]
    out.print(_rows_with_reasons(["KIND", "NAMESPACE", "NAME", "STATE"], rows, [o.detail for o in st.objects]))
    for m in st.missing_crds:
        message = with_options(f"error: {m.message}")
        out.print(textwrap.fill(message, WIDTH, subsequent_indent="  "), markup=False, highlight=False)
    if st.gateways:
        rows = [
            (
                g.role,
                g.namespace,
                g.name,
                f"{g.ready}/{g.total}",
                g.address or ("<pending>" if g.role == "ingress" else "-"),
            )
            for g in st.gateways
        ]
        out.print(_fit(["GATEWAY", "NAMESPACE", "NAME", "READY", "ADDRESS"], rows, wrap=[4]))
    if st.secrets:
        rows = [
            (
                x.name,
                x.namespace,
                f"{x.not_after:%Y-%m-%dT%H:%M:%SZ}" if x.not_after else "-",
                x.days_left if x.days_left is not None else "-",
                x.detail or "-",
            )
            for x in st.secrets
        ]
        out.print(_fit(["SECRET", "NAMESPACE", "NOT AFTER", "DAYS LEFT", "DETAIL"], rows, wrap=[4]))
    _print_notes(st.mesh, st.notes)
    out.print("")


def proxy_config(
    kind: ProxyConfigKind,
    proxy: Annotated[
        str,
        typer.Argument(
            metavar="MESH/NAME",
            help="A gateway of the bridge: a mesh of the spec and its ingressGateway's or egressGateway's name.",
        ),
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
    from meshbridge.kube.errors import KubeApiError, unscheduled

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
        try:
            dump = fetch_config_dump(client, pod["namespace"], pod["name"], include_eds=kind == "clusters")
        except KubeApiError as e:
            if not unscheduled(e):
                raise
            raise KubeError(
                f"{e}\nproxy-config reads the gateway's Envoy through its pod's kubelet; on no node nothing serves "
                f"it, and no flag changes that. What Envoy builds from the bridge: 'meshbridge local up', then "
                f"'meshbridge local proxy-config {kind} {proxy}'"
            ) from e
    if output is ProxyConfigFormat.json:
        out.print(json.dumps(dump, indent=2))
        return
    sys.stdout.write(format_proxy_config(kind, dump, wide=output is ProxyConfigFormat.wide))
