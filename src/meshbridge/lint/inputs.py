"""What lint reads: every mesh's configuration and world, and the links between meshes (pure).

Two ways in:

* :func:`from_bridge`: lint what a bridge spec renders (its certificates included, when issued);
* :func:`from_manifests`: lint Istio/Kubernetes YAML per mesh (the user's own, or the article's), in the
  world of a bridge spec when one is given, else in a world of Istio's chart defaults (``MB001`` says so).

A :class:`Link` says which exporter gateway an importer's ServiceEntry reaches: from the spec's exports
when there is a spec (and from the ServiceEntry endpoint address matching an exporter's
``ingressGateway.address``), else by host or SNI against the other meshes' Gateway servers.

Every question about what istiod does is answered by :mod:`meshbridge.istio` and
:func:`meshbridge.envoy.translate.translate`; :class:`MeshInput` only caches their answers.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from meshbridge.envoy.names import parse_sds_name
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.errors import IstioConfigError, RenderError
from meshbridge.inputs import mesh_documents
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.files import FileReference, MountedFile, file_references, place_files
from meshbridge.istio.parse import build_config, is_istiod_values
from meshbridge.istio.resources import ClientTLSSettings, DestinationRule, Secret, ServiceEntry
from meshbridge.istio.visibility import (
    MeshService,
    Proxy,
    Workload,
    destination_rule,
    gateways_for,
    host_matches,
    qualify_host,
    service_finder,
    services,
    tls_settings,
    visible_services,
)
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.lint.paths import tls_for_port, tls_path
from meshbridge.lint.view import ProxyView
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.pki.x509 import utcnow
from meshbridge.spec.models import Bridge
from meshbridge.world import ProxySpec, assumed_world, mesh_config
from meshbridge.world import proxies as spec_proxies

Documents = Sequence[tuple[str, dict[str, Any]]]
EXPIRY_HORIZON_DAYS = 30
HELM_VALUES = "HelmValues"  # the kind lint names the istiod chart's values by (values files have none)
_PLACEMENT = Placement("192.0.2.1", Path("/nonexistent/meshbridge-lint"))  # translate is pure; nothing is written


@dataclass(frozen=True)
class SecretFile:
    """One ``--cert`` value: a PEM file that goes into a gateway Secret, like ``kubectl create secret generic
    --from-file=KEY=FILE``.

    Attributes:
        mesh: the mesh whose gateway holds it.
        key: the Secret key: ``cert``, ``key``, ``cacert``, ``crl`` (generic) or ``tls.crt``, ``tls.key``,
            ``ca.crt``, ``ca.crl`` (kubernetes.io/tls).
        data: the file's bytes.
        namespace, name: the Secret; ``None`` means the only credentialName the mesh's gateways use.
        source: where it came from (the file name), for findings.
    """

    mesh: str
    key: str
    data: bytes
    namespace: str | None = None
    name: str | None = None
    source: str = "--cert"


@dataclass(frozen=True)
class Link:
    """An importer's ServiceEntry and the exporter mesh it reaches.

    Attributes:
        importer: the importing mesh.
        exporter: the exporting mesh.
        host: the exported host (the importer's ServiceEntry host).
        service_entry: the importer's ServiceEntry for ``host``.
        export: the spec export's name; empty when the link was found from manifests alone.
        expected_address: the exporter gateway's load-balancer address, when a spec says it.
        exporter_proxy: the exporter's ingress gateway, when a spec names it.
        matched_by: ``spec`` (an export of the spec), ``address`` (the endpoint address is an exporter's
            ``ingressGateway.address``) or ``host`` (the host or SNI is a server host of the exporter).
    """

    importer: str
    exporter: str
    host: str
    service_entry: ServiceEntry
    export: str = ""
    expected_address: str | None = None
    exporter_proxy: Proxy | None = None
    matched_by: Literal["spec", "address", "host"] = "spec"


@dataclass(eq=False)
class MeshInput:
    """One mesh as lint sees it, with istiod's answers cached (registry, visibility, translations).

    Attributes:
        name: the mesh's name.
        config: its modelled resources and settings.
        proxies: the world's proxies (gateways, app sidecars).
        workloads: their pods (so Kubernetes Services have endpoints).
        settings_ref: where the mesh settings are declared (spec, IstioOperator, istiod Helm values, or assumed).
        sources: (kind, namespace, name) → where each object was read from.
        assumed: the world was guessed from chart defaults (no spec).
        rendered: the documents are what the spec renders (Secrets come from the PKI store).
        unrendered: with ``rendered``, why the gateway Secrets were not rendered and its fix (``PROBLEM. Fix:
            FIX``, the PKI store's own words); empty when they were, or for the default (never issued).
        files: the files given for paths in the pods (``--cert PATH=FILE``), by path.
        stand_in: the spec's own rendering of a mesh whose manifests were not given, read only so the cross-mesh
            walk reaches a given exporter (as ``local up --manifests`` runs it); findings on it alone are not
            reported.
    """

    name: str
    config: ConfigSet
    proxies: tuple[ProxySpec, ...]
    workloads: tuple[Workload, ...]
    settings_ref: ObjectRef
    sources: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
    assumed: bool = False
    rendered: bool = False
    unrendered: str = ""
    files: dict[str, MountedFile] = field(default_factory=dict)
    stand_in: bool = False
    _registry: list[MeshService] | None = field(default=None, repr=False)
    _references: list[FileReference] | None = field(default=None, repr=False)
    _visible: dict[str, list[MeshService]] = field(default_factory=dict, repr=False)
    _translations: dict[str, ProxyConfig] = field(default_factory=dict, repr=False)
    _views: dict[str, ProxyView] = field(default_factory=dict, repr=False)
    _finders: dict[str, Callable[[str], MeshService | None]] = field(default_factory=dict, repr=False)
    _rules: tuple[dict[str, list[DestinationRule]], list[DestinationRule]] | None = field(default=None, repr=False)
    _rules_memo: dict[str, list[DestinationRule]] = field(default_factory=dict, repr=False)
    _tls_memo: dict[tuple[str, int], list[tuple[DestinationRule, ClientTLSSettings]]] = field(
        default_factory=dict, repr=False
    )
    _blocks: dict[int, list[tuple[str, ClientTLSSettings, int | None, str | None]]] = field(
        default_factory=dict, repr=False
    )

    @property
    def routers(self) -> list[Proxy]:
        """The gateway proxies."""
        return [p.proxy for p in self.proxies if p.proxy.kind == "router"]

    @property
    def sidecars(self) -> list[Proxy]:
        """The apps' sidecars."""
        return [p.proxy for p in self.proxies if p.proxy.kind == "sidecar"]

    @property
    def registry(self) -> list[MeshService]:
        """Every service of the mesh (ServiceEntry hosts, Kubernetes Services)."""
        if self._registry is None:
            self._registry = services(self.config, list(self.workloads))
        return self._registry

    def visible(self, proxy: Proxy) -> list[MeshService]:
        """The services ``proxy`` sees (exportTo against its namespace)."""
        key = _key(proxy)
        if key not in self._visible:
            self._visible[key] = visible_services(self.config, proxy, self.registry)
        return self._visible[key]

    def translation(self, proxy: Proxy) -> ProxyConfig:
        """What istiod would push to ``proxy``."""
        key = _key(proxy)
        if key not in self._translations:
            self._translations[key] = translate(self.config, proxy, _PLACEMENT, list(self.workloads))
        return self._translations[key]

    def find(self, proxy: Proxy, host: str) -> MeshService | None:
        """The service ``proxy`` sees for ``host`` (``istio.visibility.find_service``, indexed)."""
        key = _key(proxy)
        if key not in self._finders:
            self._finders[key] = service_finder(self.visible(proxy))
        return self._finders[key](host)

    def client_tls(self, proxy: Proxy, host: str, port: int, subset: str) -> tuple[ObjectRef, str | None] | None:
        """The ``tls`` block of the DestinationRule that applies to ``proxy``'s cluster for ``host``, ``port`` and
        ``subset`` (``""``: none), as an :class:`ObjectRef` to that block (:func:`~meshbridge.lint.paths.tls_path`),
        with the ``sni`` it sets (``None``: none); ``None`` when no DestinationRule applies."""
        svc = self.find(proxy, host)
        dr = destination_rule(self.config, proxy, svc) if svc is not None else None
        if dr is None:
            return None
        first = dr.first
        tls = dr.tls_for(port, subset or None)
        ref = self.ref(
            "DestinationRule", first.metadata.namespace, first.metadata.name, tls_path(first, port, subset or None)
        )
        return ref, tls.sni if tls is not None else None

    def rules_for(self, host: str) -> list[DestinationRule]:
        """Every DestinationRule of the mesh whose host matches ``host``, whatever its namespace or exportTo
        (to explain why a rule does *not* apply; what applies is ``istio.visibility.destination_rule``)."""
        if host.lower() in self._rules_memo:
            return self._rules_memo[host.lower()]
        if self._rules is None:
            exact: dict[str, list[DestinationRule]] = {}
            wild: list[DestinationRule] = []
            for d in self.config.destination_rules:
                qualified = qualify_host(d.spec.host, d.metadata.namespace)
                (wild if qualified.startswith("*") else exact.setdefault(qualified.lower(), [])).append(d)
            self._rules = (exact, wild)
        exact, wild = self._rules
        found = exact.get(host.lower(), []) + [
            d for d in wild if host_matches(qualify_host(d.spec.host, d.metadata.namespace), host)
        ]
        if found and wild:
            order = {id(d): i for i, d in enumerate(self.config.destination_rules)}
            found.sort(key=lambda d: order[id(d)])
        self._rules_memo[host.lower()] = found
        return found

    def tls_blocks(self, dr: DestinationRule) -> list[tuple[str, ClientTLSSettings, int | None, str | None]]:
        """:func:`meshbridge.istio.visibility.tls_settings` of a rule of this mesh, computed once."""
        if id(dr) not in self._blocks:
            self._blocks[id(dr)] = list(tls_settings(dr))
        return self._blocks[id(dr)]

    def tls_rules_for(self, host: str, port: int) -> list[tuple[DestinationRule, ClientTLSSettings]]:
        """:meth:`rules_for` ``host`` that set top-level (not subset) TLS other than DISABLE for ``port``, with it."""
        key = (host.lower(), port)
        if key not in self._tls_memo:
            found = []
            for d in self.rules_for(host):
                tls = tls_for_port(d, port)
                if tls is not None and tls.mode != "DISABLE":
                    found.append((d, tls))
            self._tls_memo[key] = found
        return self._tls_memo[key]

    @property
    def file_references(self) -> list[FileReference]:
        """Every field of the mesh's Gateways and DestinationRules that names a file in the pod."""
        if self._references is None:
            self._references = file_references(self.config)
        return self._references

    def file_ref(self, path: str, api_field: str = "") -> ObjectRef:
        """The first field that names ``path`` (``api_field``'s first, when given: a ``privateKey`` over the
        ``clientCertificate`` of the same file), with the file given for it as the source."""
        refs = [r for r in self.file_references if r.path == path]
        r = next((r for r in refs if r.api_field == api_field), refs[0] if refs else None)
        given = self.files.get(path)
        source = given.source if given is not None else ""
        if r is None:  # no Gateway or DestinationRule field names it: the file alone
            return ObjectRef(self.name, "File", "", path, "", source)
        return ObjectRef(self.name, r.kind, r.namespace, r.name, r.field, source)

    def view(self, proxy: Proxy) -> ProxyView:
        """The translation of ``proxy``, readable by checks."""
        key = _key(proxy)
        if key not in self._views:
            self._views[key] = ProxyView(self.name, self.translation(proxy))
        return self._views[key]

    def clear(self) -> None:
        """Forget cached answers (after the configuration changed)."""
        self._registry = None
        self._references = None
        self._visible.clear()
        self._translations.clear()
        self._views.clear()
        self._finders.clear()
        self._rules = None
        self._rules_memo.clear()
        self._tls_memo.clear()
        self._blocks.clear()

    def ref(self, kind: str, namespace: str, name: str, field: str = "") -> ObjectRef:
        """An :class:`ObjectRef` to an object of this mesh, with its source."""
        return ObjectRef(self.name, kind, namespace, name, field, self.sources.get((kind, namespace, name), ""))

    def settings_field(self, which: Literal["proxyMetadata", "pilotEnv"]) -> ObjectRef:
        """Where a mesh setting is declared (the spec's field, the IstioOperator's, or the assumed MeshConfig)."""
        base = self.settings_ref
        if base.kind == "Bridge":
            return base.at(f"spec.meshes.{self.name}.istio.{which}")
        if base.kind == "IstioOperator":
            path = (
                "spec.meshConfig.defaultConfig.proxyMetadata"
                if which == "proxyMetadata"
                else "spec.components.pilot.k8s.env"
            )
            return base.at(path)
        if base.kind == HELM_VALUES:
            return base.at("meshConfig.defaultConfig.proxyMetadata" if which == "proxyMetadata" else "pilot.env")
        return base.at("defaultConfig.proxyMetadata" if which == "proxyMetadata" else "istiod env")


@dataclass(frozen=True, eq=False)
class LintInput:
    """Everything lint checks, as one graph.

    Attributes:
        meshes: the meshes, in input order.
        links: the importer → exporter links found.
        notes: findings made while reading the input (``MB001``, ``MB301``).
        now: the time certificates are checked at.
        horizon_days: certificates expiring within this many days get ``MB404``.
        spec: the bridge spec, when there is one.
    """

    meshes: tuple[MeshInput, ...]
    links: tuple[Link, ...] = ()
    notes: tuple[Finding, ...] = ()
    now: dt.datetime = field(default_factory=utcnow)
    horizon_days: int = EXPIRY_HORIZON_DAYS
    spec: Bridge | None = None

    def mesh(self, name: str) -> MeshInput:
        """The mesh called ``name``; ``KeyError`` if absent."""
        for m in self.meshes:
            if m.name == name:
                return m
        raise KeyError(name)


# -- builders ------------------------------------------------------------------------------------------


def from_bridge(
    bridge: Bridge,
    credentials: Mapping[str, MeshCredentials] | None,
    *,
    backend_cas: Mapping[str, bytes] | None = None,
    now: dt.datetime | None = None,
    horizon_days: int = EXPIRY_HORIZON_DAYS,
    unrendered: str = "",
) -> LintInput:
    """Lint input for what ``bridge`` renders.

    Args:
        bridge: the validated spec.
        credentials: the meshes' certificates (``PkiStore.credentials``), or ``None`` when they cannot be read
            (``MB208`` then says which Secrets were not rendered and that their checks were skipped).
        unrendered: with ``credentials=None``, why (``PROBLEM. Fix: FIX``, the ``PkiError`` of
            ``PkiStore.credentials``: a peer's CA not admitted yet, say); empty: they were never issued.
        backend_cas: PEM of each export's ``backend.tls.caFile``, by export name.
        now: when certificates are checked; default: now.
        horizon_days: the expiry warning horizon.

    Raises:
        RenderError: the spec cannot be rendered (e.g. no ingress gateway address).
    """
    docs, _ = mesh_documents(bridge, credentials, backend_cas=backend_cas)
    own = bridge.own_meshes  # a 'peer: true' mesh is another owner's: its side is not in view (MB302 says so)
    meshes = [_spec_mesh(bridge, m, docs[m]) for m in own]
    for mesh in meshes:
        mesh.rendered = True
        mesh.unrendered = unrendered if credentials is None else ""
    links = _spec_links(bridge, meshes)
    notes = (*_peers_not_in_view(bridge), *_waypoints_not_walked(bridge))
    return LintInput(tuple(meshes), tuple(links), notes, now or utcnow(), horizon_days, bridge)


def _peers_not_in_view(bridge: Bridge) -> Iterator[Finding]:
    """MB302 on the exporter's side of a one-side spec: each export of an own mesh to a ``peer: true`` mesh, whose
    side (its ServiceEntry, DestinationRule, egress gateway and client certificate) its owner renders and lints."""
    for i, ex in enumerate(bridge.spec.exports):
        peers = [m for m in ex.to if bridge.spec.meshes[m].peer]
        if bridge.spec.meshes[ex.from_].peer or not peers:
            continue
        yield finding(
            "MB302",
            [ObjectRef(ex.from_, "Bridge", "", bridge.metadata.name, f"spec.exports[{i}].to", "bridge spec")],
            f"export {ex.name!r} ({ex.host}) is imported by {', '.join(repr(m) for m in peers)}, another owner's "
            "mesh (peer: true) whose side is not in view: its ServiceEntry, DestinationRule, egress gateway and "
            "client certificate were not checked here",
            f"its owner runs 'meshbridge lint -f bridge.yaml' on their side; to lint both sides together, pass both "
            f"meshes' rendered documents: --mesh {ex.from_}=PATH --mesh {peers[0]}=PATH",
        )


def _waypoints_not_walked(bridge: Bridge, linted: Collection[str] | None = None) -> Iterator[Finding]:
    """MB302 for each import of an own mesh with ``dataplane: ambient`` (of ``linted`` when given): its apps run no
    sidecar and its egress gateway is a waypoint, which meshbridge's model does not translate, so the cross-mesh
    walk does not follow it."""
    for i, ex in enumerate(bridge.spec.exports):
        ambient = [
            m
            for m in ex.to
            if bridge.spec.meshes[m].dataplane == "ambient"
            and not bridge.spec.meshes[m].peer
            and (linted is None or m in linted)
        ]
        if not ambient:
            continue
        yield finding(
            "MB302",
            [ObjectRef(ambient[0], "Bridge", "", bridge.metadata.name, f"spec.exports[{i}].to", "bridge spec")],
            f"export {ex.name!r} ({ex.host}) is imported by {', '.join(repr(m) for m in ambient)} on an ambient data "
            "plane, whose waypoint meshbridge's model does not translate: the path from its apps through the "
            "waypoint to the exporter was not walked here",
            "istiod's configuration of the waypoint is checked by the oracle tier (docs/ambient.md); the exporter's "
            "side and the Secrets are linted as usual",
        )


def from_manifests(
    documents: Mapping[str, Documents],
    *,
    bridge: Bridge | None = None,
    secret_files: Sequence[SecretFile] = (),
    mounted_files: Sequence[MountedFile] = (),
    now: dt.datetime | None = None,
    horizon_days: int = EXPIRY_HORIZON_DAYS,
) -> LintInput:
    """Lint input for Istio/Kubernetes documents per mesh.

    Args:
        documents: mesh name → (source, document) pairs (``istio.parse.load_documents``).
        bridge: the spec whose world (gateways, Services, apps, mesh settings, addresses) the meshes run
            in; every mesh name must be one of its meshes. ``None``: Istio's chart defaults (``MB001``).
        secret_files: PEM files to place in the gateways' Secrets (``--cert MESH:KEY=FILE``).
        mounted_files: PEM files for the paths the manifests name in the pods (``--cert [MESH:]PATH=FILE``),
            checked as the Secrets are.
        now: when certificates are checked; default: now.
        horizon_days: the expiry warning horizon.

    Raises:
        IstioConfigError: a document is malformed, a mesh is not in the spec, a ``--cert`` names no
            Secret unambiguously, or a ``--cert PATH=FILE`` names a path no manifest (of its mesh) names
            (:func:`meshbridge.istio.files.place_files`).
    """
    notes: list[Finding] = []
    meshes: list[MeshInput] = []
    for name, docs in documents.items():
        if bridge is not None:
            if name not in bridge.spec.meshes:
                known = ", ".join(bridge.spec.meshes)
                raise IstioConfigError(
                    f"--mesh {name}: not a mesh of bridge {bridge.metadata.name!r} (meshes: {known})"
                )
            meshes.append(_spec_mesh(bridge, name, docs))
        else:
            mesh, note = _assumed_mesh(name, docs)
            meshes.append(mesh)
            notes.append(note)
    for mesh in meshes:
        _add_secret_files(mesh, [s for s in secret_files if s.mesh == mesh.name])
    unknown = sorted({s.mesh for s in secret_files} - {m.name for m in meshes})
    if unknown:
        raise IstioConfigError(f"--cert {unknown[0]}:...: no mesh {unknown[0]!r} was given with --mesh")
    placed = place_files(mounted_files, {m.name: m.config for m in meshes})
    for mesh in meshes:
        mesh.files = placed.get(mesh.name, {})
    if bridge is not None:
        meshes += _stand_ins(bridge, meshes)
        links, missing = _manifest_links_with_spec(bridge, meshes)
        notes += [*missing, *_waypoints_not_walked(bridge, documents.keys())]
    else:
        links = _host_links(meshes)
    return LintInput(tuple(meshes), tuple(links), tuple(notes), now or utcnow(), horizon_days, bridge)


# -- meshes --------------------------------------------------------------------------------------------


def _sources(docs: Documents) -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for source, doc in docs:
        md = doc.get("metadata") or {}
        out.setdefault((str(doc.get("kind", "")), str(md.get("namespace", "default")), str(md.get("name", ""))), source)
    return out


def _operator_ref(mesh: str, docs: Documents) -> ObjectRef | None:
    """The install document the mesh settings come from: an IstioOperator, or the istiod chart's Helm values."""
    for source, doc in docs:
        if doc.get("kind") == "IstioOperator":
            md = doc.get("metadata") or {}
            return ObjectRef(
                mesh, "IstioOperator", str(md.get("namespace", "istio-system")), str(md.get("name", "")), "", source
            )
        if is_istiod_values(doc):
            return ObjectRef(mesh, HELM_VALUES, "istio-system", "istiod", "", source)
    return None


def _spec_mesh(bridge: Bridge, name: str, docs: Documents) -> MeshInput:
    cfg = mesh_config(bridge, name, docs)
    proxies = tuple(p for p in spec_proxies(bridge, name) if not _ambient_importer_side(bridge, name, p.role))
    settings_ref = _operator_ref(name, docs) or ObjectRef(name, "Bridge", "", bridge.metadata.name, "", "bridge spec")
    return MeshInput(name, cfg, proxies, _workloads(proxies), settings_ref, _sources(docs))


def _stand_ins(bridge: Bridge, given: Sequence[MeshInput]) -> list[MeshInput]:
    """The spec's own rendering of each of its meshes that imports from a given mesh, or exports to one, but was not
    given itself, as ``local up --manifests`` runs it beside the given ones: without it no link joins the given mesh
    to its peer, and neither the given exporter's gateway (its SNI, route, RBAC filter) is asked about the importer's
    request nor the given importer's ServiceEntry and DestinationRule about the exporter's gateway. A ``peer: true``
    mesh is not rendered (another owner's); nothing is when the spec cannot be rendered."""
    names = {m.name for m in given}
    importers = {dest for ex in bridge.spec.exports if ex.from_ in names for dest in ex.to}
    exporters = {ex.from_ for ex in bridge.spec.exports if names & set(ex.to)}
    wanted = {m for m in importers | exporters if m not in names and not bridge.spec.meshes[m].peer}
    if not wanted:
        return []
    try:
        docs, _ = mesh_documents(bridge, None)
    except RenderError:
        return []
    out = []
    for name in sorted(wanted):
        mesh = _spec_mesh(bridge, name, docs.get(name, []))
        mesh.rendered = mesh.stand_in = True
        out.append(mesh)
    return out


def _ambient_importer_side(bridge: Bridge, mesh: str, role: str) -> bool:
    """An ambient mesh's apps (no sidecar) and egress gateway (a waypoint), which the model does not translate."""
    return bridge.spec.meshes[mesh].dataplane == "ambient" and role in ("app", "egress")


def _assumed_mesh(name: str, docs: Documents) -> tuple[MeshInput, Finding]:
    cfg = build_config(docs)
    world = assumed_world(name, cfg)
    cfg.services += world.services
    proxies = tuple(world.proxies)
    op = _operator_ref(name, docs)
    settings_ref = op or ObjectRef(name, "MeshConfig", "istio-system", "istio", "", "assumed")
    assumptions = list(world.assumptions)
    if op is None:
        s = cfg.settings
        assumptions.append(
            f"mesh settings are Istio {s.istio_version}'s defaults (no ISTIO_META_DNS_CAPTURE, no "
            "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG), as no IstioOperator and no istiod Helm values are in the input"
        )
    note = finding(
        "MB001",
        [ObjectRef(name, "MeshConfig", "", name, "", "assumed")],
        f"no bridge spec: lint assumed that {'; '.join(assumptions)}",
        "pass -f bridge.yaml so lint uses the real gateway workloads, Services, apps and mesh settings, or add "
        "the gateway Services and the IstioOperator (or the istiod chart's values) to the manifests",
    )
    mesh = MeshInput(name, cfg, proxies, _workloads(proxies), settings_ref, _sources(docs), assumed=True)
    return mesh, note


def _workloads(proxies: Sequence[ProxySpec]) -> tuple[Workload, ...]:
    """Pods at made-up addresses (TEST-NET-1): only their existence, labels and service accounts matter to lint."""
    base = ipaddress.ip_address("192.0.2.10")
    return tuple(
        Workload(p.proxy.name, p.proxy.namespace, p.proxy.labels, str(base + i), p.proxy.service_account)
        for i, p in enumerate(proxies)
    )


def _add_secret_files(mesh: MeshInput, files: Sequence[SecretFile]) -> None:
    """Put ``--cert`` files into the Secrets they name (or the only credential the gateways use)."""
    if not files:
        return
    by_target: dict[tuple[str, str], dict[str, tuple[bytes, str]]] = {}
    for f in files:
        target = (f.namespace, f.name) if f.namespace and f.name else _only_credential(mesh, f)
        by_target.setdefault(target, {})[f.key] = (f.data, f.source)
    for (ns, name), values in by_target.items():
        if mesh.config.secret(ns, name) is not None:
            raise IstioConfigError(
                f"--cert {mesh.name}: Secret {ns}/{name} is already in the manifests. Fix: drop the --cert "
                "options or the Secret, not both"
            )
        secret = Secret.model_validate(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "type": "Opaque",
                "data": {k: base64.b64encode(v).decode("ascii") for k, (v, _) in values.items()},
            }
        )
        mesh.config.secrets.append(secret)
        mesh.sources = {**mesh.sources, ("Secret", ns, name): ", ".join(sorted({s for _, s in values.values()}))}
    mesh.clear()


def _only_credential(mesh: MeshInput, f: SecretFile) -> tuple[str, str]:
    creds: set[tuple[str, str]] = set()
    for proxy in mesh.routers:
        for sds in mesh.translation(proxy).secrets:
            parsed = parse_sds_name(sds)
            if parsed is not None and not parsed[1]:
                creds.add((proxy.namespace, parsed[0]))
    if len(creds) != 1:
        found = ", ".join(f"{ns}/{n}" for ns, n in sorted(creds)) or "none"
        raise IstioConfigError(
            f"--cert {f.mesh}:{f.key}={f.source}: the gateways of mesh {f.mesh!r} use "
            f"{'no credentialName' if not creds else 'several credentialNames'} ({found}). "
            f"Fix: name the Secret: --cert {f.mesh}/NAMESPACE/NAME:{f.key}=FILE"
        )
    return next(iter(creds))


# -- links -----------------------------------------------------------------------------------------------


def _entries_by_host(mesh: MeshInput) -> dict[str, list[ServiceEntry]]:
    out: dict[str, list[ServiceEntry]] = {}
    for se in mesh.config.service_entries:
        for h in dict.fromkeys(h.lower() for h in se.spec.hosts):
            out.setdefault(h, []).append(se)
    return out


def _spec_links(bridge: Bridge, meshes: Sequence[MeshInput]) -> list[Link]:
    links, _ = _manifest_links_with_spec(bridge, meshes)
    return links


def _manifest_links_with_spec(bridge: Bridge, meshes: Sequence[MeshInput]) -> tuple[list[Link], list[Finding]]:
    by_name = {m.name: m for m in meshes}
    entries_of = {m.name: _entries_by_host(m) for m in meshes}
    ingress = {
        name: next((p.proxy for p in spec_proxies(bridge, name) if p.role == "ingress"), None)
        for name in bridge.spec.meshes
    }
    links: list[Link] = []
    notes: list[Finding] = []
    covered: set[tuple[str, str]] = set()
    for i, ex in enumerate(bridge.spec.exports):
        exporter = bridge.spec.meshes[ex.from_]
        ig = exporter.ingress_gateway
        exporter_proxy = ingress[ex.from_]
        for dest in ex.to:
            mesh = by_name.get(dest)
            if mesh is None:
                continue
            entries = entries_of[dest].get(ex.host.lower(), [])
            if not entries:
                notes.append(
                    finding(
                        "MB301",
                        [ObjectRef(dest, "Bridge", "", bridge.metadata.name, f"spec.exports[{i}]", "bridge spec")],
                        f"export {ex.name!r} ({ex.host}) from mesh {ex.from_!r} is imported by {dest!r}, but the "
                        f"manifests of {dest!r} have no ServiceEntry with host {ex.host}",
                        f"add the importer's ServiceEntry for {ex.host} (see 'meshbridge render --mesh {dest}'), or "
                        f"remove {dest!r} from the export's 'to'",
                    )
                )
                continue
            covered.add((dest, ex.host.lower()))
            links.append(
                Link(
                    dest,
                    ex.from_,
                    ex.host,
                    entries[0],
                    ex.name,
                    ig.address if ig is not None else None,
                    exporter_proxy,
                    "spec",
                )
            )
    addresses = {
        m: spec.ingress_gateway.address
        for m, spec in bridge.spec.meshes.items()
        if spec.ingress_gateway is not None and spec.ingress_gateway.address
    }
    for mesh in meshes:
        for se in mesh.config.service_entries:
            for exp, address in addresses.items():
                if exp == mesh.name or not any(e.address == address for e in se.spec.endpoints):
                    continue
                proxy = ingress[exp]
                for host in se.spec.hosts:
                    if (mesh.name, host.lower()) not in covered:
                        covered.add((mesh.name, host.lower()))
                        links.append(Link(mesh.name, exp, host, se, "", address, proxy, "address"))
    return links, notes


def _host_links(meshes: Sequence[MeshInput]) -> list[Link]:
    """Links by host or SNI: an importer ServiceEntry whose host (or DestinationRule ``sni``) is a host of a
    TLS-terminating Gateway server in another mesh."""
    served: dict[str, list[str]] = {}
    for mesh in meshes:
        hosts: list[str] = []
        for proxy in mesh.routers:
            for gw in gateways_for(mesh.config, proxy):
                for server in gw.spec.servers:
                    if server.tls is not None and server.tls.mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
                        hosts += [h.split("/", 1)[-1] for h in server.hosts]
        served[mesh.name] = hosts
    links: list[Link] = []
    for mesh in meshes:
        snis: dict[str, set[str]] = {}
        for dr in mesh.config.destination_rules:
            for tls in _all_client_tls(dr):
                if tls.sni:
                    snis.setdefault(dr.spec.host.lower(), set()).add(tls.sni)
        for se in mesh.config.service_entries:
            if not se.spec.endpoints:
                continue  # dials the host itself: not a link to another mesh's gateway
            for host in se.spec.hosts:
                names = {host, *snis.get(host.lower(), set())}
                for other in meshes:
                    if other.name == mesh.name:
                        continue
                    if any(host_matches(h, n) for h in served[other.name] if h != "*" for n in names):
                        links.append(Link(mesh.name, other.name, host, se, matched_by="host"))
                        break
    return links


def _all_client_tls(dr: Any) -> list[Any]:
    out = []
    policies = [dr.spec.traffic_policy] + [s.traffic_policy for s in dr.spec.subsets]
    for p in policies:
        if p is None:
            continue
        if p.tls is not None:
            out.append(p.tls)
        out += [pl.tls for pl in p.port_level_settings if pl.tls is not None]
    return out


def _key(proxy: Proxy) -> str:
    return f"{proxy.kind}/{proxy.namespace}/{proxy.name}"
