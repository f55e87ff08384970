"""Preflight: read-only checks of every cluster before anything is written; each failure names the fix.

Per mesh, in order (a mesh whose context does not answer is not checked further):

==================  =========================================================================================
``ContextAnswers``  ``GET /version`` works with the context's credentials.
``IstioApi``        the Istio networking kinds are served at the API version the spec's Istio version implies
                    (``networking.istio.io/v1`` from 1.22, ``v1beta1`` before); one finding per kind whose CRD
                    is missing (:func:`unserved_types`, which status asks too).
``IstioRevision``   a Ready istiod of the spec's revision runs (``app=istiod``, ``istio.io/rev``).
``DnsCapture``      importers only (lint MB101): ``ISTIO_META_DNS_CAPTURE`` and ``ISTIO_META_DNS_AUTO_ALLOCATE``
                    are ``true`` in the mesh config's ``defaultConfig.proxyMetadata`` (or istiod runs with
                    ``PILOT_ENABLE_IP_AUTOALLOCATE=true``), so apps resolve a made-up host.
``GatewayPods``     pods exist in the gateway namespace with the labels the rendered Gateway selects.
``SecretNamespace`` lint MB207: the gateway Secrets go to the namespace where those pods run.
``GatewayService``  lint MB112: the gateway Service exists, selects the pods, and exposes every server port (a
                    Gateway server on a port the Service lacks makes the pod bind it directly, which an
                    unprivileged pod cannot do below 1024).
``LoadBalancer``    exporters: the address importers dial, from the spec or the Service's load-balancer status.
==================  =========================================================================================

The facts learned on the way (Service target ports, the load-balancer address) are returned for apply,
status and verify to reuse.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshbridge.errors import KubeError
from meshbridge.istio.changes import SUPPORTED_LINES, past_end_of_life
from meshbridge.kube.client import Document, KubeClient
from meshbridge.kube.errors import KubeApiError, PreflightError, crd_not_served
from meshbridge.kube.managed import ManagedControlPlane, managed_control_plane
from meshbridge.kube.resources import ResourceRef, ResourceType, envoy_filter_type, istio_types, resource_type
from meshbridge.kube.routes import Role, gateway_selector, gateway_workloads, selector_text, waypoint_namespaces
from meshbridge.severity import Severity
from meshbridge.spec.models import Bridge, GatewayWorkload, Mesh

PODS = resource_type("v1", "Pod")
SERVICES = resource_type("v1", "Service")
UNPRIVILEGED_SYSCTL = "net.ipv4.ip_unprivileged_port_start"


@dataclass(frozen=True)
class PreflightCheck:
    """The result of one preflight check.

    Attributes:
        mesh: the mesh.
        context: its kubeconfig context.
        check: the check's name (``GatewayService`` ...).
        ok: whether it passed.
        message: what was found; on failure, also the fix.
        severity: ``error`` blocks plan and apply; ``warning`` is shown and does not block.
    """

    mesh: str
    context: str
    check: str
    ok: bool
    message: str
    severity: Severity = "error"

    @property
    def blocking(self) -> bool:
        """True when this finding stops plan and apply."""
        return not self.ok and self.severity == "error"


@dataclass
class MeshFacts:
    """What preflight learned about one cluster.

    Attributes:
        target_ports: port → targetPort (numbers only) of each gateway Service, by ``(namespace, name)``.
        gateway_pods: the pods each gateway role's Gateway selects.
        address: the exporter ingress gateway's load-balancer address (spec or Service status), if any.
        istiod_namespace: where istiod runs (``istio-system`` usually).
        managed: the managed control plane that runs the mesh (Cloud Service Mesh, OpenShift Service Mesh), if any.
    """

    target_ports: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    gateway_pods: dict[Role, list[Document]] = field(default_factory=dict)
    address: str | None = None
    istiod_namespace: str | None = None
    managed: ManagedControlPlane | None = None


@dataclass
class PreflightReport:
    """Every finding of a preflight run and the facts learned, per mesh."""

    findings: list[PreflightCheck]
    facts: dict[str, MeshFacts]

    @property
    def passed(self) -> bool:
        """True when no finding blocks."""
        return not any(f.blocking for f in self.findings)

    def require(self) -> None:
        """Raise :class:`PreflightError` (listing every blocking finding) unless the run passed."""
        if not self.passed:
            raise PreflightError(self.findings)


def probe_namespace(bridge: Bridge, mesh: str) -> str:
    """Where :func:`unserved_types` lists for ``mesh``: its first gateway's namespace (where the user may list the
    bridge's kinds), else an ambient importer's waypoint namespace, else ``default``."""
    gateways = [gw.namespace for _, gw in gateway_workloads(bridge, mesh)]
    return next(iter([*gateways, *waypoint_namespaces(bridge, mesh)]), "default")


def unserved_types(client: KubeClient, types: Sequence[ResourceType], namespace: str) -> list[ResourceType]:
    """The types whose API the cluster does not serve: a list of one object in ``namespace`` answered 404 (the
    CRD is not installed, or serves other versions only). Core types are always served and not asked about.

    Args:
        client: the cluster.
        types: the types to look for.
        namespace: where to list (:func:`probe_namespace`: one the user may list in; it need not exist).

    Raises:
        KubeApiError: a list failed otherwise (403, a timeout ...).
    """
    missing = []
    for rtype in types:
        if not rtype.group:
            continue
        try:
            client.request(
                "GET",
                rtype.collection_path(namespace),
                query=[("limit", "1")],
                what=f"{rtype.plural}.{rtype.group}",
                verb="list",
            )
        except KubeApiError as e:
            if e.status != 404:
                raise
            missing.append(rtype)
    return missing


def preflight(bridge: Bridge, clients: Mapping[str, KubeClient]) -> PreflightReport:
    """Run every check on every mesh of ``bridge`` its owner holds (a ``peer: true`` mesh is another owner's
    cluster); nothing is written.

    Args:
        bridge: the spec.
        clients: one client per mesh name.

    Returns:
        The findings (passed ones too) and the facts learned, by mesh.

    Raises:
        KubeError: never for a failing check (that is a finding); only for a mesh without a client.
    """
    findings: list[PreflightCheck] = []
    facts: dict[str, MeshFacts] = {}
    for name in bridge.own_meshes:
        mesh = bridge.spec.meshes[name]
        if name not in clients:
            raise KubeError(f"mesh {name!r} has no cluster. Fix: pass --context {name}=CONTEXT")
        checker = _MeshChecker(bridge, name, mesh, clients[name])
        findings += checker.run()
        facts[name] = checker.facts
    return PreflightReport(findings, facts)


class _MeshChecker:
    def __init__(self, bridge: Bridge, name: str, mesh: Mesh, client: KubeClient) -> None:
        self.bridge = bridge
        self.name = name
        self.mesh = mesh
        self.client = client
        self.facts = MeshFacts()
        self.out: list[PreflightCheck] = []
        self.istiod_env: dict[str, str] = {}

    def add(self, check: str, ok: bool, message: str, severity: Severity = "error") -> None:
        self.out.append(PreflightCheck(self.name, self.client.context, check, ok, message, severity))

    def run(self) -> list[PreflightCheck]:
        try:
            version = self.client.version()
        except KubeError as e:
            self.add("ContextAnswers", False, str(e))
            return self.out
        self.add("ContextAnswers", True, f"Kubernetes {version.get('gitVersion', '?')} at {self.client.host}")
        roles = gateway_workloads(self.bridge, self.name)
        for check in (self.istio_api, self.control_plane, self.istio_revision):
            self._guard(check.__name__, check)
        if self.bridge.exports_to(self.name) and self.mesh.dataplane == "sidecar":  # ambient: ztunnel's DNS proxy
            self._guard("dns_capture", self.dns_capture)
        for role, gw in roles:
            self._guard("gateway", functools.partial(self.gateway, role, gw))
        return self.out

    def _guard(self, name: str, check: Callable[[], None]) -> None:
        """A check that cannot even read what it needs becomes a finding, not a crash."""
        try:
            check()
        except KubeError as e:
            self.add(_CHECK_NAMES.get(name, name), False, str(e))

    # -- Istio --------------------------------------------------------------------------------------------

    def istio_api(self) -> None:
        api = self.mesh.istio.networking_api_version
        types = istio_types(api)
        ig = self.mesh.ingress_gateway
        if ig is not None and ig.limits.enabled and self.bridge.exports_from(self.name):
            types.append(envoy_filter_type())  # the edge limits
        missing = unserved_types(self.client, types, probe_namespace(self.bridge, self.name))
        for rtype in missing:
            self.add(
                "IstioApi",
                False,
                crd_not_served(
                    rtype, context=self.client.context, mesh=self.name, istio_version=self.mesh.istio.version
                ),
            )
        if not missing:
            served = ", ".join(f"{t.kind}" + (f" ({t.api_version})" if t.api_version != api else "") for t in types)
            self.add("IstioApi", True, f"{api} serves {served}")

    def control_plane(self) -> None:
        managed = managed_control_plane(self.client)
        if managed is None:
            return
        self.facts.managed = managed
        self.add("ControlPlane", True, f"managed control plane: {managed.describe()}; {managed.advice()}")

    def _istiod_pods(self) -> list[Document]:
        try:
            return self.client.list_objects(PODS, label_selector="app=istiod")
        except KubeApiError as e:
            if e.status != 403:
                raise
            return self.client.list_objects(PODS, namespace="istio-system", label_selector="app=istiod")

    def istio_revision(self) -> None:
        rev = self.mesh.istio.revision
        pods = self._istiod_pods()
        wanted = rev or "default"
        mine = [p for p in pods if _labels(p).get("istio.io/rev", "default") == wanted]
        ready = [p for p in mine if pod_ready(p)]
        if not ready and self.facts.managed is not None and not pods:
            self.add(
                "IstioRevision", True, f"no istiod pod in the cluster: {self.facts.managed.provider.product} runs it"
            )
            return
        if not ready:
            found = sorted({_labels(p).get("istio.io/rev", "default") for p in pods})
            seen = f"istiod revisions found: {', '.join(found)}" if found else "no istiod pod found"
            fix = (
                f"install the control plane with 'istioctl install -r {rev}' (the article's step 2)"
                if rev
                else "install Istio"
            )
            self.add(
                "IstioRevision",
                False,
                f"no Ready istiod of revision {wanted!r} ({seen}). Fix: {fix}, or set "
                f"spec.meshes.{self.name}.istio.revision to a running revision",
            )
            return
        pod = ready[0]
        self.facts.istiod_namespace = str(pod["metadata"].get("namespace", "istio-system"))
        self.add("IstioRevision", True, f"istiod {self.facts.istiod_namespace}/{pod['metadata']['name']} is Ready")
        tag = _image_tag(pod)
        if tag and not _same_minor(tag, self.mesh.istio.version):
            self.add(
                "IstioRevision",
                False,
                f"istiod runs {tag} but the spec says istio.version {self.mesh.istio.version}; rendered API "
                f"versions follow the spec. Fix: set spec.meshes.{self.name}.istio.version: {tag!r}",
                "warning",
            )
        self.istio_supported(tag or self.mesh.istio.version)
        self.istiod_env = {
            str(e.get("name")): str(e.get("value", ""))
            for c in (pod.get("spec") or {}).get("containers") or []
            for e in c.get("env") or []
        }

    def istio_supported(self, version: str) -> None:
        """A warning when the running istiod (its image tag, else the spec's ``istio.version``) is of a line
        Istio no longer patches."""
        if not _VERSION.match(version) or not past_end_of_life(version):
            return
        self.add(
            "IstioSupported",
            False,
            f"Istio {version} is past its end of life: no security fixes (Istio patches "
            f"{', '.join(SUPPORTED_LINES)}). Fix: upgrade the control plane ('meshbridge render --install' writes "
            f"Helm values for it), then set spec.meshes.{self.name}.istio.version",
            "warning",
        )

    def dns_capture(self) -> None:
        rev = self.mesh.istio.revision
        ns = self.facts.istiod_namespace or "istio-system"
        name = f"istio-{rev}" if rev else "istio"
        cm = self.client.get(ResourceRef("v1", "ConfigMap", ns, name))
        if cm is None:
            self.add(
                "DnsCapture",
                False,
                f"cannot check DNS capture: ConfigMap {ns}/{name} (the mesh config) was not found",
                "warning",
            )
            return
        try:
            mesh_config = yaml.safe_load(str((cm.get("data") or {}).get("mesh", "")) or "{}") or {}
        except yaml.YAMLError:
            mesh_config = {}
        meta = (
            ((mesh_config.get("defaultConfig") or {}).get("proxyMetadata") or {})
            if isinstance(mesh_config, dict)
            else {}
        )
        capture = str(meta.get("ISTIO_META_DNS_CAPTURE", "")).lower() == "true"
        allocate = str(meta.get("ISTIO_META_DNS_AUTO_ALLOCATE", "")).lower() == "true" or (
            self.istiod_env.get("PILOT_ENABLE_IP_AUTOALLOCATE", "").lower() == "true"
        )
        if capture and allocate:
            self.add("DnsCapture", True, "DNS capture and address auto-allocation are on (mesh config)")
            return
        off = [
            flag
            for flag, on in (("ISTIO_META_DNS_CAPTURE", capture), ("ISTIO_META_DNS_AUTO_ALLOCATE", allocate))
            if not on
        ]
        hosts = ", ".join(ex.host for ex in self.bridge.exports_to(self.name))
        self.add(
            "DnsCapture",
            False,
            f"{' and '.join(off)} {'is' if len(off) == 1 else 'are'} not 'true' in ConfigMap {ns}/{name} "
            f"(meshConfig.defaultConfig.proxyMetadata): apps cannot resolve {hosts} (curl: could not resolve host; "
            f'lint MB101). Fix: set both to "true" in meshConfig (the istiod chart\'s values or the IstioOperator, '
            "as 'meshbridge render --install' writes them) and restart the app pods",
        )

    # -- gateways -----------------------------------------------------------------------------------------

    def gateway(self, role: Role, gw: GatewayWorkload) -> None:
        selector = gateway_selector(self.mesh, gw)
        sel = selector_text(selector)
        field_path = f"spec.meshes.{self.name}.{role}Gateway"
        pods = self.client.list_objects(PODS, namespace=gw.namespace, label_selector=sel)
        self.facts.gateway_pods[role] = pods
        if not pods:
            self._no_gateway_pods(role, gw, sel, field_path)
        else:
            ready = sum(pod_ready(p) for p in pods)
            nowhere = sum(pod_ready(p) and not on_node(p) for p in pods)
            self.add(
                "GatewayPods",
                ready > 0,
                f"{ready}/{len(pods)} {role} gateway pod(s) Ready in {gw.namespace} selected by {sel}"
                + ("" if ready else ". Fix: see 'kubectl describe pod' of those pods")
                + (
                    f"; {nowhere} of them on no node (spec.nodeName empty): no kubelet runs them, so they serve "
                    "nothing and status counts them not READY; apply cannot wait for them there (--no-wait)"
                    if nowhere
                    else ""
                ),
                "error" if ready == 0 else "warning",
            )
            self.add(
                "SecretNamespace",
                True,
                f"Secret {self.bridge.credential_name(self.name)} goes to {gw.namespace}, "
                f"where the {role} gateway pods run",
            )
        self._service(role, gw, pods, field_path)

    def _no_gateway_pods(self, role: Role, gw: GatewayWorkload, sel: str, field_path: str) -> None:
        try:
            elsewhere = self.client.list_objects(PODS, label_selector=sel)
        except KubeApiError as e:
            if e.status != 403:
                raise
            elsewhere = []
        if elsewhere:
            where = sorted({str(p["metadata"].get("namespace")) for p in elsewhere})
            self.add(
                "SecretNamespace",
                False,
                f"the pods the {role} Gateway selects ({sel}) run in {', '.join(where)}, not in {gw.namespace}: "
                f"istiod serves a gateway only the Secrets of its own namespace, so the handshake would fail "
                f"(lint MB207). Fix: set {field_path}.namespace: {where[0]}",
            )
            return
        candidates = [p for p in self.client.list_objects(PODS, namespace=gw.namespace) if "istio" in _labels(p)]
        keys = ("app", "istio", "istio.io/rev")
        seen = "; ".join(
            f"{p['metadata']['name']}: {selector_text({k: v for k, v in _labels(p).items() if k in keys})}"
            for p in candidates[:5]
        )
        self.add(
            "GatewayPods",
            False,
            f"no pod in namespace {gw.namespace} has the labels the {role} Gateway selects ({sel}), so it would "
            f"configure nothing. Fix: set {field_path}.labels (and istio.revision) to the gateway pods' labels"
            + (f"; pods found there: {seen}" if seen else f", or install the {role} gateway in {gw.namespace}"),
        )

    def _service(self, role: Role, gw: GatewayWorkload, pods: Sequence[Document], field_path: str) -> None:
        svc = self.client.get(ResourceRef("v1", "Service", gw.namespace, gw.name))
        if svc is None:
            self.add(
                "GatewayService",
                False,
                f"Service {gw.namespace}/{gw.name} does not exist. Fix: set {field_path}.name to the gateway "
                "Service's name (the Deployment and Service share it in Istio's charts)",
            )
            return
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        svc_selector = spec.get("selector") or {}
        if pods and svc_selector and not any(_matches(_labels(p), svc_selector) for p in pods):
            self.add(
                "GatewayService",
                False,
                f"Service {gw.namespace}/{gw.name} selects {selector_text(svc_selector)}, which matches none of the "
                f"gateway pods. Fix: point {field_path}.name at the Service of those pods",
            )
        mapping: dict[int, int] = {}
        for p in ports:
            target = p.get("targetPort", p.get("port"))
            resolved = _resolve_target(target, pods)
            if resolved is not None:
                mapping[int(p["port"])] = resolved
        self.facts.target_ports[(gw.namespace, gw.name)] = mapping
        needed = self._needed_ports(role)
        have = sorted(int(p["port"]) for p in ports)
        problems = []
        for port, why in needed:
            if port not in have:
                unbound = port < 1024 and bool(pods) and not _may_bind_privileged(pods[0])
                problems.append(
                    f"Service {gw.namespace}/{gw.name} exposes no port {port} (it has {', '.join(map(str, have))}), "
                    f"but {why} listens there: the load balancer does not forward it, and istiod has the pod listen "
                    f"on {port} itself"
                    + (
                        f", a privileged port the gateway pod (non-root, no {UNPRIVILEGED_SYSCTL}=0 sysctl) cannot "
                        "bind, so the whole listener update is rejected"
                        if unbound
                        else ""
                    )
                    + f" (lint MB112). Fix: add port {port} with an unprivileged targetPort (e.g. "
                    f"{port}→{8000 + port if port < 1024 else port}) to the gateway Service (IstioOperator "
                    "k8s.service.ports, or the gateway chart's service.ports)"
                )
                continue
            target = mapping.get(port)
            if target is not None and target < 1024 and pods and not _may_bind_privileged(pods[0]):
                problems.append(
                    f"Service {gw.namespace}/{gw.name} maps port {port} to targetPort {target}, a privileged port the "
                    f"gateway pod (non-root, no {UNPRIVILEGED_SYSCTL}=0 sysctl) cannot bind (lint MB112). Fix: map it "
                    "to an unprivileged targetPort (e.g. 8443), or set the sysctl on the gateway pods"
                )
            spec_target = gw.target_port(port)
            if target is not None and spec_target is not None and spec_target != target:
                self.add(
                    "GatewayService",
                    False,
                    f"Service {gw.namespace}/{gw.name} maps {port}→{target}, the spec says {port}→{spec_target}; "
                    f"the cluster's value is used. Fix: set {field_path}.ports to match (the local twin uses them)",
                    "warning",
                )
        if problems:
            for text in problems:
                self.add("GatewayService", False, text)
        else:
            listed = ", ".join(f"{p}→{mapping.get(p, '?')}" for p, _ in needed)
            self.add("GatewayService", True, f"Service {gw.namespace}/{gw.name} exposes {listed}")
        if role == "ingress":
            self._load_balancer(gw, svc, field_path)

    def _needed_ports(self, role: Role) -> list[tuple[int, str]]:
        if role == "ingress":
            return sorted(
                {
                    (ex.gateway_port, f"the MUTUAL server of export {ex.name!r}")
                    for ex in self.bridge.exports_from(self.name)
                }
            )
        return sorted(
            {(ex.egress_port, f"the HTTP server of import {ex.name!r}") for ex in self.bridge.exports_to(self.name)}
        )

    def _load_balancer(self, gw: GatewayWorkload, svc: Document, field_path: str) -> None:
        assert self.mesh.ingress_gateway is not None
        if self.mesh.ingress_gateway.address:
            self.facts.address = self.mesh.ingress_gateway.address
            self.add("LoadBalancer", True, f"importers dial {self.facts.address} (set in the spec)")
            return
        address = load_balancer_address(svc)
        if address:
            self.facts.address = address
            self.add("LoadBalancer", True, f"importers dial {address} (Service {gw.namespace}/{gw.name} status)")
            return
        self.add("LoadBalancer", False, no_address_message(self.name, gw, svc))


_CHECK_NAMES = {
    "istio_api": "IstioApi",
    "control_plane": "ControlPlane",
    "istio_revision": "IstioRevision",
    "dns_capture": "DnsCapture",
    "gateway": "GatewayPods",
}


# -- shared helpers --------------------------------------------------------------------------------------


def gateway_pods(
    bridge: Bridge, mesh: str, role: Role, client: KubeClient, *, ready_only: bool = True
) -> list[Document]:
    """The pods of ``mesh``'s ``role`` gateway that the rendered Gateway selects (for ``proxy-config``).

    Args:
        bridge: the spec.
        mesh: the mesh.
        role: ``ingress`` (an exporter's) or ``egress`` (an importer's).
        client: the mesh's cluster.
        ready_only: only pods whose ``Ready`` condition is true.

    Raises:
        KubeError: the mesh has no such gateway in the spec, or listing the pods failed.
    """
    for r, gw in gateway_workloads(bridge, mesh):
        if r == role:
            sel = selector_text(gateway_selector(bridge.spec.meshes[mesh], gw))
            pods = client.list_objects(PODS, namespace=gw.namespace, label_selector=sel)
            return [p for p in pods if pod_ready(p)] if ready_only else pods
    raise KubeError(
        f"mesh {mesh!r} has no {role} gateway in use (it does not {'export' if role == 'ingress' else 'import'})"
    )


def load_balancer_address(service: Document) -> str | None:
    """``status.loadBalancer.ingress[0].hostname`` or ``.ip`` of a Service; ``None`` while pending."""
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for entry in ingress:
        value = entry.get("hostname") or entry.get("ip")
        if value:
            return str(value)
    return None


def no_address_message(mesh: str, gw: GatewayWorkload, service: Document) -> str:
    """Why the exporter's address is unknown, and the two ways to fix it."""
    kind = (service.get("spec") or {}).get("type", "ClusterIP")
    why = (
        "its load balancer has no address yet (still provisioning?)"
        if kind == "LoadBalancer"
        else f"it is of type {kind}, so it gets no load-balancer address"
    )
    return (
        f"Service {gw.namespace}/{gw.name} of mesh {mesh!r} has no load-balancer address: {why}; the importers' "
        f"ServiceEntry would have nowhere to point. Fix: wait for 'kubectl -n {gw.namespace} get svc {gw.name}' to "
        f"show an EXTERNAL-IP, or set spec.meshes.{mesh}.ingressGateway.address to the host name or IP importers "
        "can reach (e.g. a NodePort address on kind)"
    )


def pod_ready(pod: Document) -> bool:
    """True when the pod's ``Ready`` condition is ``True``."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status")) == "True"
    return False


def on_node(pod: Document) -> bool:
    """True when the pod is bound to a node (``spec.nodeName``): only then can a kubelet run it and it serve. A
    real kubelet never marks an unbound pod Ready; a stand-in without kubelet (``make clusters-up``) does."""
    return bool((pod.get("spec") or {}).get("nodeName"))


def _labels(doc: Document) -> dict[str, str]:
    return dict((doc.get("metadata") or {}).get("labels") or {})


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _resolve_target(target: Any, pods: Sequence[Document]) -> int | None:
    """A numeric targetPort, or a named one resolved against the first pod's container ports."""
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for pod in pods[:1]:
        for c in (pod.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == target and p.get("containerPort"):
                    return int(p["containerPort"])
    return None


def _may_bind_privileged(pod: Document) -> bool:
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    for s in psc.get("sysctls") or []:
        if s.get("name") == UNPRIVILEGED_SYSCTL and str(s.get("value")) == "0":
            return True
    for c in spec.get("containers") or []:
        if c.get("name") != "istio-proxy":
            continue
        sc = c.get("securityContext") or {}
        user = sc.get("runAsUser", psc.get("runAsUser"))
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if user == 0 and not non_root:
            return True
        caps = (sc.get("capabilities") or {}).get("add") or []
        return "NET_BIND_SERVICE" in caps and user in (None, 0)
    return True  # no istio-proxy container to judge by: do not guess a failure


_VERSION = re.compile(r"\d+\.\d+(\.|$)")
"""A release (``1.17.2``) or a line (``1.17``): what an image tag must start with to be judged as one."""


def _image_tag(pod: Document) -> str | None:
    for c in (pod.get("spec") or {}).get("containers") or []:
        image = str(c.get("image", ""))
        if "pilot" in image and ":" in image.rsplit("/", 1)[-1]:
            return image.rsplit(":", 1)[-1].split("-", 1)[0]
    return None


def _same_minor(tag: str, version: str) -> bool:
    a = tag.split(".")[:2]
    b = version.split(".")[:2]
    return len(a) < 2 or a == b
