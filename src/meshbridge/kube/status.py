"""Status of a bridge on its clusters, read-only: objects present, drifted or missing; gateway pods;
load-balancer address; the expiry of the certificates in the gateway Secrets.

Drift is judged without writing anything (not even a dry run, so a read-only user can run it): an object
is ``present`` when every field meshbridge renders has the same value live (:func:`~meshbridge.kube.plan.contains`)
and no other field manager owns one of them (:func:`~meshbridge.kube.ownership.taken_fields`: a value someone
*added* inside a field meshbridge sets, such as ``timeout`` in a route of ``.spec.http``, leaves the rendered
values equal but moves the field to the editor, which ``plan`` meets as a conflict), ``drifted`` otherwise.
``meshbridge plan`` shows the exact diff.

A kind whose API the cluster does not serve (Istio's CRDs are not installed, or are older than the spec's
Istio) is one :class:`MissingCrd` per kind, asked once per kind as preflight asks
(:func:`~meshbridge.kube.preflight.unserved_types`); its objects are not looked for (each would read as
``missing``, an object the next apply could create, which it cannot).

A Namespace the bridge uses that is being deleted (``status.phase: Terminating`` or a ``deletionTimestamp``) is
``terminating``, whoever owns it, and the mesh is not healthy: the objects in it go with it and no write there
passes (the same fix as the 403 of such a write, :func:`~meshbridge.kube.errors.namespace_terminating`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from meshbridge.errors import KubeError, PkiError
from meshbridge.kube.apply import list_owned, mesh_order, owned_types
from meshbridge.kube.client import Document, KubeClient
from meshbridge.kube.errors import crd_not_served, namespace_terminating
from meshbridge.kube.ownership import owners_text, taken_fields
from meshbridge.kube.plan import contains, is_ours, why_not_ours
from meshbridge.kube.preflight import (
    PODS,
    load_balancer_address,
    on_node,
    pod_ready,
    probe_namespace,
    unserved_types,
)
from meshbridge.kube.resources import ResourceRef
from meshbridge.kube.routes import Role, gateway_selector, gateway_workloads, selector_text
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.pki.x509 import CertBundle, utcnow
from meshbridge.render import ManifestSet, render_bridge
from meshbridge.render.ambient import GATEWAY_NAME_LABEL
from meshbridge.spec.models import Bridge

State = Literal["present", "drifted", "missing", "conflict", "stale", "unknown", "unmanaged", "terminating"]
PENDING_ADDRESS = "pending.meshbridge.invalid"


@dataclass(frozen=True)
class ObjectStatus:
    """One object's state.

    Attributes:
        ref: the object.
        state: ``present`` (matches), ``drifted`` (differs), ``missing``, ``conflict`` (exists, not this
            bridge's), ``stale`` (this bridge's, no longer rendered: apply prunes it), ``unknown`` (cannot be
            judged yet), ``unmanaged`` (a Namespace meshbridge uses but does not own) or ``terminating`` (a
            Namespace meshbridge uses that is being deleted, whoever owns it: the objects in it go with it).
        detail: why, for every state but ``present``.
    """

    ref: ResourceRef
    state: State
    detail: str = ""


@dataclass(frozen=True)
class GatewayStatus:
    """A gateway workload's pods and, for an exporter's ingress gateway, its load-balancer address.

    Attributes:
        role: ``ingress`` or ``egress``.
        namespace: the pods' namespace.
        name: the Deployment / Service name.
        selector: the label selector of the rendered Gateway.
        ready: Ready pods bound to a node (:func:`~meshbridge.kube.preflight.on_node`): the ones that can serve.
        total: pods selected.
        address: the address importers dial (ingress only; ``None`` while pending or for egress).
    """

    role: Role
    namespace: str
    name: str
    selector: str
    ready: int
    total: int
    address: str | None = None


@dataclass(frozen=True)
class SecretStatus:
    """The certificate in a gateway Secret.

    Attributes:
        namespace: the Secret's namespace.
        name: its name.
        not_after: the certificate's expiry (UTC), ``None`` when there is no readable certificate.
        days_left: whole days until ``not_after`` (negative once expired).
        detail: a problem reading it, else ``""``.
    """

    namespace: str
    name: str
    not_after: dt.datetime | None
    days_left: int | None
    detail: str = ""


@dataclass(frozen=True)
class MissingCrd:
    """A kind the bridge renders for a mesh whose API the mesh's cluster does not serve.

    Attributes:
        crd: the CRD's name, e.g. ``gateways.networking.istio.io``.
        api_version: the API version the kind is rendered at.
        kind: the kind.
        message: the problem and its fix (:func:`~meshbridge.kube.errors.crd_not_served`).
    """

    crd: str
    api_version: str
    kind: str
    message: str


@dataclass
class MeshStatus:
    """Everything status found on one mesh; ``error`` is set when the cluster could not be read.

    ``missing_crds`` lists the rendered kinds whose API is not served; ``objects`` then holds none of theirs.
    """

    mesh: str
    context: str
    error: str = ""
    objects: list[ObjectStatus] = field(default_factory=list)
    gateways: list[GatewayStatus] = field(default_factory=list)
    secrets: list[SecretStatus] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_crds: list[MissingCrd] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """No error, no missing CRD, every object present (or unmanaged; a Namespace being deleted is not),
        every gateway with a Ready pod, no expired certificate."""
        return (
            not self.error
            and not self.missing_crds
            and all(o.state in ("present", "unmanaged") for o in self.objects)
            and all(g.ready > 0 for g in self.gateways)
            and all(s.days_left is not None and s.days_left > 0 for s in self.secrets)
        )


def cluster_status(
    bridge: Bridge,
    clients: Mapping[str, KubeClient],
    *,
    credentials: dict[str, MeshCredentials] | None,
    backend_cas: dict[str, bytes] | None = None,
    now: dt.datetime | None = None,
) -> list[MeshStatus]:
    """Read every mesh and compare it with what the bridge renders; nothing is written.

    A cluster that cannot be read is reported in its :class:`MeshStatus` (``error``), not raised, so one
    unreachable cluster does not hide the other.

    Args:
        bridge: the spec.
        clients: one client per mesh.
        credentials: the certificates (to compare Secrets); ``None`` skips the Secrets' content.
        backend_cas: PEM of each export's ``backend.tls.caFile`` by export name.
        now: the time expiry is measured against (default: now, UTC).

    Returns:
        One :class:`MeshStatus` per mesh, exporters first.

    Raises:
        RenderError: the bridge cannot be rendered (e.g. certificates missing).
    """
    now = now or utcnow()
    statuses = {m: MeshStatus(m, clients[m].context) for m in mesh_order(bridge)}
    addresses: dict[str, str] = {}
    for mesh in set(bridge.spec.meshes) - set(statuses):  # a peer's exporter: the address its offer gave
        peer_ig = bridge.spec.meshes[mesh].ingress_gateway
        if bridge.exports_from(mesh) and peer_ig is not None and peer_ig.address:
            addresses[mesh] = peer_ig.address
    for mesh, st in statuses.items():
        try:
            clients[mesh].version()
        except KubeError as e:
            st.error = str(e)
            continue
        ig = bridge.spec.meshes[mesh].ingress_gateway
        if bridge.exports_from(mesh) and ig is not None:
            if ig.address:
                addresses[mesh] = ig.address
            else:
                try:
                    svc = clients[mesh].get(ResourceRef("v1", "Service", ig.namespace, ig.name))
                except KubeError as e:
                    st.notes.append(str(e))
                    svc = None
                found = load_balancer_address(svc) if svc else None
                if found:
                    addresses[mesh] = found
    pending = {m for m in bridge.spec.meshes if bridge.exports_from(m) and m not in addresses}
    manifests = render_bridge(
        bridge,
        credentials,
        backend_cas=backend_cas,
        addresses={**{m: PENDING_ADDRESS for m in pending}, **addresses},
    )
    for mesh, st in statuses.items():
        if st.error:
            continue
        try:
            _mesh_status(bridge, mesh, clients[mesh], manifests[mesh], st, addresses.get(mesh), pending, now)
        except KubeError as e:
            st.error = str(e)
    return list(statuses.values())


def _mesh_status(
    bridge: Bridge,
    mesh: str,
    client: KubeClient,
    manifests: ManifestSet,
    st: MeshStatus,
    address: str | None,
    pending: set[str],
    now: dt.datetime,
) -> None:
    name = bridge.metadata.name
    spec_mesh = bridge.spec.meshes[mesh]
    rendered = list(dict.fromkeys(ResourceRef.of(doc).type for doc in manifests))
    types = owned_types(bridge, mesh)
    where = probe_namespace(bridge, mesh)
    unserved = set(unserved_types(client, list(dict.fromkeys([*rendered, *types])), where))
    st.missing_crds += [
        MissingCrd(
            f"{t.plural}.{t.group}",
            t.api_version,
            t.kind,
            crd_not_served(t, context=client.context, mesh=mesh, istio_version=spec_mesh.istio.version),
        )
        for t in rendered
        if t in unserved
    ]
    wanted = set()
    for doc in manifests:
        ref = ResourceRef.of(doc)
        if ref.type in unserved:
            continue
        wanted.add(ref.key)
        live = client.get(ref)
        st.objects.append(_object_status(ref, doc, live, name, pending, client.context))
        if ref.kind == "Secret" and live is not None:
            st.secrets.append(secret_expiry(live, now))
    owned, notes = list_owned(bridge, mesh, client, [t for t in types if t not in unserved], manifests)
    st.notes += notes
    for obj in owned:
        ref = ResourceRef.of(obj)
        if ref.key not in wanted and is_ours(obj, name):
            st.objects.append(ObjectStatus(ref, "stale", "this bridge's, no longer rendered: apply prunes it"))
    workloads = [
        (role, gw, selector_text(gateway_selector(spec_mesh, gw))) for role, gw in gateway_workloads(bridge, mesh)
    ]
    eg = spec_mesh.egress_gateway
    if spec_mesh.dataplane == "ambient" and eg is not None and bridge.exports_to(mesh):  # the waypoint istiod deployed
        workloads.append(("egress", eg, selector_text({GATEWAY_NAME_LABEL: eg.name})))
    for role, gw, sel in workloads:
        pods = client.list_objects(PODS, namespace=gw.namespace, label_selector=sel)
        nowhere = [p["metadata"]["name"] for p in pods if pod_ready(p) and not on_node(p)]
        ready = sum(pod_ready(p) for p in pods) - len(nowhere)
        st.gateways.append(
            GatewayStatus(role, gw.namespace, gw.name, sel, ready, len(pods), address if role == "ingress" else None)
        )
        if nowhere:
            st.notes.append(
                f"the {role} gateway's pod(s) {', '.join(nowhere)} in {gw.namespace} are marked Ready but on no node "
                "(spec.nodeName empty): no kubelet runs them, so they serve nothing and are not counted as READY "
                "(apply and verify find them not scheduled). Fix: schedule them on a node of a cluster that has "
                "nodes; on 'make clusters-up' servers (no kubelet) this is expected: apply there with --no-wait"
            )


def _object_status(
    ref: ResourceRef, doc: Document, live: Document | None, bridge: str, pending: set[str], context: str
) -> ObjectStatus:
    """How the live object of one rendered document compares with it (``live``: ``None`` when absent)."""
    if live is None:
        return ObjectStatus(ref, "missing", "run 'meshbridge apply'")
    if ref.kind == "Namespace" and is_terminating(live):
        return ObjectStatus(ref, "terminating", namespace_terminating(ref.name, context=context))
    if not is_ours(live, bridge):
        if ref.kind == "Namespace":
            return ObjectStatus(ref, "unmanaged", "exists; meshbridge uses it as it is")
        return ObjectStatus(ref, "conflict", why_not_ours(live, bridge))
    if PENDING_ADDRESS in json.dumps(doc):
        return ObjectStatus(
            ref,
            "unknown",
            f"exporter {', '.join(sorted(pending))} has no load-balancer address yet, so the endpoint "
            "cannot be compared",
        )
    if taken := taken_fields(live, doc):
        return ObjectStatus(
            ref,
            "drifted",
            f"{owners_text(taken)} (changed since meshbridge applied it); 'meshbridge plan' shows how, "
            "'meshbridge apply --force-conflicts' restores it",
        )
    if contains(live, doc):
        return ObjectStatus(ref, "present")
    return ObjectStatus(ref, "drifted", "differs from the spec; 'meshbridge plan' shows how")


def is_terminating(namespace: Document) -> bool:
    """A live Namespace is being deleted: ``status.phase: Terminating`` or a ``metadata.deletionTimestamp`` (pure)."""
    phase = (namespace.get("status") or {}).get("phase")
    return phase == "Terminating" or bool((namespace.get("metadata") or {}).get("deletionTimestamp"))


def secret_expiry(secret: Document, now: dt.datetime) -> SecretStatus:
    """The expiry of the certificate under ``cert`` (or ``tls.crt``) of a live Secret (pure)."""
    md = secret.get("metadata") or {}
    ns, name = str(md.get("namespace", "")), str(md.get("name", ""))
    data = secret.get("data") or {}
    encoded = data.get("cert") or data.get("tls.crt")
    if not encoded:
        keys = ", ".join(sorted(data)) or "none"
        return SecretStatus(ns, name, None, None, f"no 'cert' or 'tls.crt' key (keys: {keys})")
    try:
        pem = base64.b64decode(encoded, validate=True)
        not_after = CertBundle(pem).not_after
    except (binascii.Error, ValueError, PkiError) as e:
        return SecretStatus(ns, name, None, None, f"the certificate cannot be read: {e}")
    days = (not_after - now).days
    detail = "expired: run 'meshbridge certs issue' then 'meshbridge apply'" if days < 0 else ""
    if 0 <= days < 30:
        detail = "expires within 30 days: run 'meshbridge certs issue' then 'meshbridge apply'"
    return SecretStatus(ns, name, not_after, days, detail)
