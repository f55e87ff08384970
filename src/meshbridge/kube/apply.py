"""Plan, apply and delete a bridge on real clusters; wait until the gateways serve the new routes.

The order of a run, so that nothing is written unless everything can be:

1. preflight every mesh (:mod:`meshbridge.kube.preflight`); a blocking finding stops the run;
2. the exporters' load-balancer addresses (spec, else the Service status) feed the importers' ServiceEntry;
3. render; plan every mesh with server-side dry runs (:mod:`meshbridge.kube.plan`); a conflict (an object
   that exists and is not this bridge's, or a field another manager owns) stops the run unless
   ``force_conflicts``;
4. apply mesh by mesh, exporters first, each in apply order (Namespaces, Secrets, ServiceEntries,
   DestinationRules, Gateways, VirtualServices, EnvoyFilters), then prune what this bridge owns and no longer renders;
5. poll each gateway pod's Envoy ``/config_dump`` until the expected routes appear.

A failure in step 4 raises :class:`~meshbridge.kube.errors.ApplyError` listing, per mesh, what landed and
what did not; nothing is rolled back, and re-running converges (server-side apply is idempotent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from meshbridge.envoy.view import EnvoyView
from meshbridge.errors import KubeError
from meshbridge.kube.client import Document, KubeClient, fetch_config_dump
from meshbridge.kube.errors import ApplyError, ConflictError, KubeApiError, unscheduled
from meshbridge.kube.plan import Key, MeshPlan, PlannedChange, is_ours, label_selector, plan_mesh, why_not_ours
from meshbridge.kube.preflight import PODS, MeshFacts, PreflightReport, pod_ready, preflight
from meshbridge.kube.resources import (
    CERT_MANAGER_API,
    GATEWAY_API,
    TRUST_MANAGER_API,
    ResourceRef,
    ResourceType,
    authorization_policy_type,
    envoy_filter_type,
    istio_types,
    resource_type,
)
from meshbridge.kube.routes import ExpectedRoute, expected_routes, gateway_workloads, missing
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.render import ManifestSet, render_bridge
from meshbridge.render.manifests import apply_rank
from meshbridge.render.owned import WAYPOINT, owned_kinds
from meshbridge.spec.models import Bridge

Progress = Callable[[str], None]
Done = Literal["created", "configured", "pruned", "deleted", "unchanged", "kept"]
SECRETS = resource_type("v1", "Secret")


def _quiet(_: str) -> None:
    """The default progress sink: print nothing."""


@dataclass
class MeshResult:
    """What a run did on one mesh.

    Attributes:
        mesh: the mesh.
        context: its kubeconfig context.
        done: ``(what, object)`` for every object handled, in order (``created``, ``configured``,
            ``pruned``, ``deleted``, ``unchanged``, ``kept``).
        not_done: objects the run meant to write or delete but did not reach, because it stopped.
        failed: the object whose call failed, if any.
    """

    mesh: str
    context: str
    done: list[tuple[Done, ResourceRef]] = field(default_factory=list)
    not_done: list[ResourceRef] = field(default_factory=list)
    failed: ResourceRef | None = None

    def count(self, what: Done) -> int:
        """How many objects were ``what``."""
        return sum(d == what for d, _ in self.done)

    def summary(self) -> str:
        """One line: counts by outcome; on failure, which objects landed and which did not."""
        counts = [
            f"{n} {w}"
            for w in ("created", "configured", "pruned", "deleted", "unchanged", "kept")
            if (n := self.count(w))
        ]
        text = ", ".join(counts) or "nothing to do"
        if self.failed is None and not self.not_done:
            return text
        landed = [str(r) for d, r in self.done if d in ("created", "configured", "pruned", "deleted")]
        parts = [f"landed: {', '.join(landed) or 'nothing'}"]
        if self.failed is not None:
            parts.append(f"FAILED at {self.failed}")
        if self.not_done:
            parts.append(f"not reached: {', '.join(map(str, self.not_done))}")
        return "; ".join(parts)


@dataclass
class PlanOutcome:
    """A plan run: the preflight report, the rendered documents and the per-mesh plans (exporters first)."""

    report: PreflightReport
    manifests: dict[str, ManifestSet]
    plans: list[MeshPlan]

    @property
    def conflicts(self) -> list[PlannedChange]:
        """Every conflict, all meshes."""
        return [c for p in self.plans for c in p.conflicts]


@dataclass
class ApplyOutcome:
    """An apply run: the plan it executed and what landed, per mesh."""

    plan: PlanOutcome
    results: list[MeshResult]


# -- the run ---------------------------------------------------------------------------------------------


def mesh_order(bridge: Bridge) -> list[str]:
    """The meshes this spec's owner holds, in the order apply visits them: exporters first (importers point at
    them), then spec order."""
    names = bridge.own_meshes
    return sorted(names, key=lambda m: (0 if bridge.exports_from(m) else 1, names.index(m)))


def render_for_clusters(
    bridge: Bridge,
    report: PreflightReport,
    credentials: dict[str, MeshCredentials] | None,
    backend_cas: dict[str, bytes] | None = None,
) -> dict[str, ManifestSet]:
    """Render with the load-balancer addresses preflight discovered.

    Raises:
        RenderError: an importer needs an exporter address that is still unknown.
    """
    addresses = {m: f.address for m, f in report.facts.items() if f.address}
    return render_bridge(bridge, credentials, backend_cas=backend_cas, addresses=addresses)


def plan_bridge(
    bridge: Bridge,
    clients: Mapping[str, KubeClient],
    *,
    credentials: dict[str, MeshCredentials] | None,
    backend_cas: dict[str, bytes] | None = None,
    force_conflicts: bool = False,
    progress: Progress = _quiet,
) -> PlanOutcome:
    """Preflight, discover addresses, render and plan every mesh; nothing is written.

    Args:
        bridge: the spec.
        clients: one client per mesh.
        credentials: the gateways' certificates (``PkiStore.credentials``), or ``None`` to leave Secrets
            out (then no Secret is pruned either).
        backend_cas: PEM of each export's ``backend.tls.caFile`` by export name.
        force_conflicts: plan to take over objects that are not this bridge's and fields other managers own.
        progress: receives one line per step.

    Returns:
        The preflight report, the rendered documents and one :class:`MeshPlan` per mesh (exporters first).

    Raises:
        PreflightError: a preflight check failed (the message lists each, with its fix).
        RenderError: certificates or addresses are missing.
        KubeApiError: a read or dry run failed (e.g. 403, or 422 when a rendered object is invalid).
    """
    progress("preflight: " + ", ".join(f"{m} ({c.context})" for m, c in clients.items()))
    report = preflight(bridge, clients)
    report.require()
    manifests = render_for_clusters(bridge, report, credentials, backend_cas)
    owned = frozenset(k.kind for m in bridge.spec.meshes.values() for k in owned_kinds(m))  # one list: owned.py
    prunable = owned if credentials is not None else owned - {"Secret"}
    plans = []
    for mesh in mesh_order(bridge):
        progress(f"plan: {mesh} ({clients[mesh].context}): {len(manifests[mesh])} object(s), server-side dry run")
        plans.append(
            plan_one(
                bridge,
                mesh,
                clients[mesh],
                manifests[mesh],
                force_conflicts=force_conflicts,
                prunable_kinds=prunable,
            )
        )
    return PlanOutcome(report, manifests, plans)


def plan_one(
    bridge: Bridge,
    mesh: str,
    client: KubeClient,
    manifests: ManifestSet,
    *,
    force_conflicts: bool = False,
    prunable_kinds: frozenset[str] | None = None,
) -> MeshPlan:
    """Plan one mesh: read each desired object, dry-run the apply, list what the bridge owns.

    Raises:
        KubeApiError: a read, list or dry run failed (other than the 404 of an absent object and the 409 of
            a field conflict, which are part of the plan).
    """
    name = bridge.metadata.name
    live: dict[Key, Document | None] = {}
    dry: dict[Key, Document] = {}
    field_conflicts: dict[Key, str] = {}
    new_namespaces: set[str] = set()
    for doc in manifests:
        ref = ResourceRef.of(doc)
        cur = client.get(ref)
        live[ref.key] = cur
        if ref.kind == "Namespace":
            if cur is None:
                new_namespaces.add(ref.name)
            continue  # existing Namespaces that are not ours are kept as they are; ours are plain labels
        if ref.namespace in new_namespaces:
            continue  # its namespace does not exist yet: the dry run would 404; the desired doc is the diff
        if cur is not None and not is_ours(cur, name) and not force_conflicts:
            continue
        try:
            dry[ref.key] = client.apply(doc, dry_run=True, force=force_conflicts)
        except KubeApiError as e:
            if e.status != 409:
                raise
            field_conflicts[ref.key] = e.server_message
    owned, notes = list_owned(bridge, mesh, client, owned_types(bridge, mesh), manifests)
    return plan_mesh(
        mesh,
        client.context,
        name,
        list(manifests),
        live,
        dry,
        owned,
        field_conflicts=field_conflicts,
        force_conflicts=force_conflicts,
        prunable_kinds=prunable_kinds,
        notes=notes,
    )


def apply_bridge(
    bridge: Bridge,
    clients: Mapping[str, KubeClient],
    *,
    credentials: dict[str, MeshCredentials] | None,
    backend_cas: dict[str, bytes] | None = None,
    force_conflicts: bool = False,
    wait: bool = True,
    timeout: float = 120.0,
    progress: Progress = _quiet,
) -> ApplyOutcome:
    """Plan (see :func:`plan_bridge`), then apply every mesh, prune, and wait for the gateways' routes.

    Args:
        bridge: the spec.
        clients: one client per mesh.
        credentials: the gateways' certificates, or ``None`` to leave Secrets alone.
        backend_cas: PEM of each export's ``backend.tls.caFile`` by export name.
        force_conflicts: take over objects that are not this bridge's and fields other managers own.
        wait: poll the gateways' ``/config_dump`` until the new routes appear.
        timeout: seconds to wait for the routes.
        progress: receives one line per step.

    Returns:
        The plan and, per mesh, what was created, configured, pruned or left unchanged.

    Raises:
        PreflightError: nothing was written.
        ConflictError: objects exist that this bridge does not own; nothing was written.
        ApplyError: a write failed; the error lists, per mesh, what landed. Re-running converges.
        KubeError: the routes did not appear within ``timeout`` (everything was applied).
    """
    outcome = plan_bridge(
        bridge,
        clients,
        credentials=credentials,
        backend_cas=backend_cas,
        force_conflicts=force_conflicts,
        progress=progress,
    )
    if outcome.conflicts:
        raise ConflictError(outcome.conflicts, {m: c.context for m, c in clients.items()})
    results = apply_plans(clients, outcome.manifests, outcome.plans, force_conflicts=force_conflicts, progress=progress)
    if wait:
        wait_for_routes(bridge, clients, outcome.manifests, outcome.report.facts, timeout=timeout, progress=progress)
    return ApplyOutcome(outcome, results)


def apply_plans(
    clients: Mapping[str, KubeClient],
    manifests: Mapping[str, ManifestSet],
    plans: Sequence[MeshPlan],
    *,
    force_conflicts: bool = False,
    progress: Progress = _quiet,
) -> list[MeshResult]:
    """Execute plans in order: server-side apply of creates and updates, then prunes (uid-guarded deletes).

    Raises:
        ApplyError: a call failed; ``results`` holds what landed on every mesh, including the failing one.
    """
    results: list[MeshResult] = []
    for plan in plans:
        client = clients[plan.mesh]
        result = MeshResult(plan.mesh, client.context)
        results.append(result)
        docs = {ResourceRef.of(d).key: d for d in manifests[plan.mesh]}
        todo = [c for c in plan.changes if c.writes or c.action == "prune"]
        for i, change in enumerate(todo):
            try:
                if change.action == "prune":
                    client.delete(change.ref, uid=change.uid or None)
                    result.done.append(("pruned", change.ref))
                else:
                    if change.takeover:
                        client.take_over(change.ref)
                    client.apply(docs[change.ref.key], force=force_conflicts)
                    result.done.append(("created" if change.action == "create" else "configured", change.ref))
            except KubeError as e:
                result.failed = change.ref
                result.not_done = [c.ref for c in todo[i + 1 :]]
                for later in plans[len(results) :]:
                    results.append(
                        MeshResult(
                            later.mesh,
                            clients[later.mesh].context,
                            not_done=[c.ref for c in later.changes if c.writes or c.action == "prune"],
                        )
                    )
                raise ApplyError(results, e) from e
            progress(f"{plan.mesh} ({client.context}): {result.done[-1][0]} {change.ref}")
        result.done += [("unchanged", c.ref) for c in plan.changes if c.action == "unchanged"]
        result.done += [("kept", c.ref) for c in plan.changes if c.action == "keep"]
    return results


def delete_bridge(
    bridge: Bridge,
    clients: Mapping[str, KubeClient],
    *,
    dry_run: bool = False,
    progress: Progress = _quiet,
) -> list[MeshResult]:
    """Delete every object labelled for this bridge (both labels), importers first; Namespaces are kept.

    Only objects listed by the label selector are deleted, each with its uid as a precondition, so an
    object someone re-created meanwhile survives. Nothing is rendered: this works without certificates.

    Args:
        bridge: the spec (its name selects the objects; its meshes say where to look).
        clients: one client per mesh.
        dry_run: send the deletes with ``dryRun=All`` (proves permissions, removes nothing).
        progress: receives one line per object.

    Returns:
        What was deleted, per mesh (importers first).

    Raises:
        ApplyError: a delete failed; the error lists what was already deleted.
        KubeApiError: listing failed.
    """
    results: list[MeshResult] = []
    for mesh in reversed(mesh_order(bridge)):
        client = clients[mesh]
        result = MeshResult(mesh, client.context)
        results.append(result)
        owned, _ = list_owned(bridge, mesh, client, owned_types(bridge, mesh), None)
        owned = [o for o in owned if is_ours(o, bridge.metadata.name) and o.get("kind") != "Namespace"]
        owned.sort(key=lambda d: (-apply_rank(d), ResourceRef.of(d).key))
        for i, obj in enumerate(owned):
            ref = ResourceRef.of(obj)
            uid = str((obj.get("metadata") or {}).get("uid") or "") or None
            try:
                if client.delete(ref, uid=uid, dry_run=dry_run):
                    result.done.append(("deleted", ref))
                    progress(f"{mesh} ({client.context}): deleted {ref}{' (dry run)' if dry_run else ''}")
            except KubeError as e:
                result.failed = ref
                result.not_done = [ResourceRef.of(o) for o in owned[i + 1 :]]
                raise ApplyError(results, e, operation="delete") from e
    return results


def push_secrets(
    bridge: Bridge,
    clients: Mapping[str, KubeClient],
    credentials: dict[str, MeshCredentials],
    *,
    force_conflicts: bool = False,
    progress: Progress = _quiet,
) -> list[MeshResult]:
    """Apply every mesh's gateway Secrets (``certs push``, each step of ``certs rotate``, ``certs revoke``), mesh by
    mesh in the order of ``clients``, each with the ownership rules of :func:`apply_owned`.

    Returns:
        Per mesh, the Secrets written (``created`` or ``configured``; a Secret already current is ``configured``
        too, and the server leaves it as it is).

    Raises:
        ApplyError: a Secret could not be applied (operation ``push``): the message is the cause, then per mesh
            which Secrets hold the store's certificates now and which were not reached. Nothing is rolled back.
    """
    from meshbridge.render import render_secrets

    rendered = render_secrets(bridge, credentials)
    results: list[MeshResult] = []
    meshes = list(clients)
    for i, mesh in enumerate(meshes):
        client = clients[mesh]
        result = MeshResult(mesh, client.context)
        results.append(result)
        secrets = rendered[mesh]
        for j, doc in enumerate(secrets):
            ref = ResourceRef.of(doc)
            try:
                result.done.append(
                    (apply_owned(client, doc, bridge.metadata.name, force_conflicts=force_conflicts), ref)
                )
            except KubeError as e:
                result.failed = ref
                result.not_done = [ResourceRef.of(d) for d in secrets[j + 1 :]]
                later = meshes[i + 1 :]
                results += [
                    MeshResult(m, clients[m].context, not_done=[ResourceRef.of(d) for d in rendered[m]]) for m in later
                ]
                raise ApplyError(results, e, operation="push") from e
            progress(f"{mesh} ({client.context}): {result.done[-1][0]} {ref}")
    return results


def apply_owned(client: KubeClient, doc: Document, bridge: str, *, force_conflicts: bool = False) -> Done:
    """Server-side apply of one object outside a plan (``certs push`` sends the gateway Secrets this way), with the
    ownership rules of a plan: an object that exists and is not this bridge's is refused, a field another
    manager owns is a stated conflict, and ``force_conflicts`` takes either over (a client-side ``kubectl
    apply``'s ownership included).

    Returns:
        ``created`` or ``configured``.

    Raises:
        ConflictError: the object is not this bridge's, or another manager owns a field it sets (409); nothing
            was written to it. The message names the manager and the fields, and the fix (--force-conflicts).
        KubeApiError: any other failure.
    """
    from meshbridge.kube.ownership import client_side_managers, conflict_summary

    ref = ResourceRef.of(doc)
    live = client.get(ref)
    contexts = {"": client.context}
    if live is not None and not is_ours(live, bridge) and not force_conflicts:
        reason = why_not_ours(live, bridge)
        raise ConflictError([PlannedChange("", ref, "conflict", reason=reason)], contexts)
    if live is not None and force_conflicts and client_side_managers(live):
        client.take_over(ref)
    try:
        client.apply(doc, force=force_conflicts)
    except KubeApiError as e:
        if e.status != 409:
            raise
        reason = (
            f"fields meshbridge sets are owned by another field manager: {conflict_summary(e.server_message)}; "
            "--force-conflicts takes them over"
        )
        raise ConflictError([PlannedChange("", ref, "conflict", reason=reason)], contexts) from e
    return "created" if live is None else "configured"


# -- owned objects ---------------------------------------------------------------------------------------


def owned_types(bridge: Bridge, mesh: str) -> list[ResourceType]:
    """The kinds prune, delete and status look for (:func:`meshbridge.render.owned.owned_kinds`), at the API
    versions the mesh serves them (the Istio kinds at its networking version, EnvoyFilter at v1alpha3,
    AuthorizationPolicy at its security version, cert-manager's kinds at ``cert-manager.io/v1``)."""
    spec = bridge.spec.meshes[mesh]
    types = {t.kind: t for t in (SECRETS, *istio_types(spec.istio.networking_api_version), envoy_filter_type())}
    types["AuthorizationPolicy"] = authorization_policy_type(spec.istio.security_api_version)
    types |= {k: resource_type(CERT_MANAGER_API, k) for k in ("Certificate", "Issuer")}
    types["Bundle"] = resource_type(TRUST_MANAGER_API, "Bundle")
    types["ConfigMap"] = resource_type("v1", "ConfigMap")
    gateway_api = WAYPOINT.group
    return [resource_type(GATEWAY_API, k.kind) if k.group == gateway_api else types[k.kind] for k in owned_kinds(spec)]


def list_owned(
    bridge: Bridge,
    mesh: str,
    client: KubeClient,
    types: Sequence[ResourceType],
    manifests: ManifestSet | None,
) -> tuple[list[Document], list[str]]:
    """Objects of ``types`` labelled for this bridge (both labels), and notes on how far the search reached.

    Lists cluster-wide; when the user may not (403, as with the Roles ``render --rbac`` grants), lists in the
    namespaces the bridge uses (the gateway namespaces and those of the rendered documents) and says so in one
    note for all the kinds refused, e.g. ``looked in istio-ingress only: no permission to list its 7 kinds
    cluster-wide``.

    Raises:
        KubeApiError: a list failed for another reason than 403, or also per namespace.
    """
    selector = label_selector(bridge.metadata.name)
    out: list[Document] = []
    refused: list[str] = []
    namespaces = sorted(
        {gw.namespace for _, gw in gateway_workloads(bridge, mesh)}
        | {str(d["metadata"]["namespace"]) for d in manifests or () if d["metadata"].get("namespace")}
    )
    for rtype in types:
        try:
            out += client.list_objects(rtype, label_selector=selector)
        except KubeApiError as e:
            if e.status != 403 or not rtype.namespaced:  # a cluster-scoped kind has no namespace to fall back to
                raise
            for ns in namespaces:
                out += client.list_objects(rtype, namespace=ns, label_selector=selector)
            refused.append(rtype.plural)
    if not refused:
        return out, []
    what = f"its {len(refused)} kinds" if len(refused) == len(types) > 1 else ", ".join(refused)
    return out, [f"looked in {', '.join(namespaces)} only: no permission to list {what} cluster-wide"]


# -- waiting for the gateways ----------------------------------------------------------------------------


def wait_for_routes(
    bridge: Bridge,
    clients: Mapping[str, KubeClient],
    manifests: Mapping[str, ManifestSet],
    facts: Mapping[str, MeshFacts],
    *,
    timeout: float = 120.0,
    interval: float = 2.0,
    progress: Progress = _quiet,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll every Ready gateway pod's ``/config_dump?mask=dynamic_route_configs`` until its routes appear.

    Args:
        bridge: the spec.
        clients: one client per mesh.
        manifests: the applied documents per mesh (the Gateways say which routes to expect).
        facts: preflight's facts (the live Service targetPorts name the HTTP routes).
        timeout: seconds before giving up.
        interval: seconds between polls.
        progress: receives a line when what is still lacking changes (the same wait is not repeated each poll).
        clock: monotonic seconds (tests pass a fake).
        sleep: waits ``interval`` (tests pass a fake).

    Raises:
        KubeError: a route is still missing after ``timeout`` seconds (the message names the pod, the route
            and what to look at), or a gateway pod cannot be read at all (:func:`check_routes`: forbidden, or
            a port-forward the server refuses for good), at once: waiting would not change it.
    """
    groups: dict[tuple[str, str, str], list[ExpectedRoute]] = {}
    for mesh in mesh_order(bridge):
        targets = facts[mesh].target_ports if mesh in facts else {}
        for e in expected_routes(bridge, mesh, manifests[mesh], targets):
            groups.setdefault((mesh, e.namespace, e.selector_text), []).append(e)
    if not groups:
        return
    start = clock()
    shown: dict[str, list[str]] | None = None
    while True:
        try:
            problems = check_routes(clients, groups)
        except KubeApiError as e:
            raise KubeError(
                f"everything was applied, but the gateways' routes cannot be checked: {e}. Waiting would not "
                "change that; 'meshbridge apply --no-wait' applies without this check"
            ) from e
        elapsed = clock() - start
        if not problems:
            progress(f"routes: every gateway serves the new routes ({elapsed:.0f}s)")
            return
        if elapsed >= timeout:
            lines = "\n".join(f"  - {where}: {'; '.join(what)}" for where, what in problems.items())
            raise KubeError(
                f"everything was applied, but after {timeout:.0f}s the gateways still lack routes:\n{lines}\n"
                "Look at: 'istioctl --context <ctx> proxy-status' (is the gateway SYNCED?), the istiod logs "
                "(was the config rejected?), 'meshbridge status' (are the Gateway's selector labels on the "
                "pods?) and 'meshbridge verify --context ...'. Re-run with a longer --timeout if istiod is slow"
            )
        if problems != shown:
            first = next(iter(problems.items()))
            progress(f"routes: waiting ({elapsed:.0f}s/{timeout:.0f}s): {first[0]}: {first[1][0]}")
            shown = problems
        sleep(interval)


def check_routes(
    clients: Mapping[str, KubeClient], groups: Mapping[tuple[str, str, str], Sequence[ExpectedRoute]]
) -> dict[str, list[str]]:
    """One poll: what each Ready gateway pod still lacks, by ``"<mesh> (<context>) pod <ns>/<pod>"``.

    A pod that went away (404) or a server that did not answer is something to wait for; another refusal is not.

    Raises:
        KubeApiError: reading a pod is refused for good: forbidden (401/403), or the port-forward is refused
            (400: the pod has no host assigned; 404 for its node: the API server has no such Node; no kubelet
            serves it): waiting would not help.
    """
    problems: dict[str, list[str]] = {}
    for (mesh, ns, sel), expected in groups.items():
        client = clients[mesh]
        pods = [p for p in client.list_objects(PODS, namespace=ns, label_selector=sel) if pod_ready(p)]
        if not pods:
            problems[f"{mesh} ({client.context}) {ns}"] = [f"no Ready gateway pod selected by {sel}"]
            continue
        for pod in pods:
            name = str(pod["metadata"]["name"])
            where = f"{mesh} ({client.context}) pod {ns}/{name}"
            try:
                dump = fetch_config_dump(client, ns, name, mask="dynamic_route_configs")
            except KubeApiError as e:
                if (400 <= e.status < 500 and e.status not in (404, 429)) or unscheduled(e):  # its node's 404 too
                    raise
                problems[where] = [str(e)]
                continue
            except KubeError as e:
                problems[where] = [str(e)]
                continue
            lacking = missing(expected, EnvoyView.from_config_dump(dump))
            if lacking:
                problems[where] = lacking
    return problems
