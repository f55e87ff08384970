"""``meshbridge verify`` against the local twin: one condition per hop and per security property.

The checks follow the article:

* step 1's backend, asked directly on the exporter's side: the answer every check through the bridge must
  give back (same status; the Lambda's own page, whatever the function);
* step 4's curl: the exporter's gateway, dialled at its load-balancer name with the importer's client
  certificate, key and the exporter's CA, SNI = the exported host → the backend's answer, ``server: istio-envoy``;
* the same without a client certificate, with one from a foreign CA, with an expired one, and with the
  wrong SNI → refused (TLS alert or reset, never a page);
* the importer's own certificate asking for a host it does not import (another export's on that gateway, or
  none) → 403 ``RBAC: access denied``, the exporter's AuthorizationPolicy (``ExporterAuthorizes``);
* step 6: the importer's app calls ``http://<host>/...`` in plain HTTP → the backend's answer;
* step 1's point: the private ALB is unreachable from the importer's side — its name does not resolve
  there and no importer proxy has a route or cluster for it;
* every certificate's expiry horizon, and its revocation on the CRLs the peers check (``certs check``'s rule).

A failed check explains itself: the hop, the status and Envoy response flags from the proxies' access
logs, or the TLS alert, and the configuration field to look at.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from meshbridge.envoy.names import FILE_ROOT, SDS_CA_SUFFIX, parse_cluster_name, sds_ca_name, sds_name
from meshbridge.envoy.passthrough import PASSTHROUGH
from meshbridge.envoy.pathsim import Hop
from meshbridge.envoy.secrets import sds_resource
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import EnvoyView, inline
from meshbridge.errors import LocalError, MeshbridgeError, PkiError
from meshbridge.istio.parse import load_documents
from meshbridge.local.certmanager import twin_credentials, twin_store
from meshbridge.local.curl import AppView, CurlError, curl, resolve
from meshbridge.local.exportpath import (
    DEFAULT_PATH,
    ExportPath,
    backend_hop,
    export_paths,
    findings,
    gateway_files,
    gateway_secrets,
    running_config,
    secret_credentials,
)
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin, export_url, mesh_configs
from meshbridge.local.waypoint import ambient_importers
from meshbridge.pki import CertBundle, MeshCredentials, PkiStore, issue_ca, issue_leaf
from meshbridge.pki.checks import EXPIRY_WARNING_DAYS, check_validity, duration_text
from meshbridge.pki.identities import LeafSpec, client_leaf, server_leaf
from meshbridge.pki.store import SLOTS, Slot
from meshbridge.pki.x509 import parse_certificates, utcnow
from meshbridge.render.authz import authorization_policy_name
from meshbridge.spec.models import Bridge, Export
from meshbridge.verify.report import Condition, Status, not_run
from meshbridge.verify.served import Role, holds_credential, served_problems

Headers = tuple[tuple[str, str], ...]
"""Request headers the checks send beside their own (``verify --header``), as ``(name, value)`` pairs."""


@dataclass(frozen=True)
class BackendAnswer:
    """What the export's backend answers for the check's path when asked directly, on the exporter's side."""

    status: int
    body: bytes

    def matches(self, status: int, body: bytes) -> str | None:
        """``None`` when an answer through the bridge is the backend's (same status, below 400); else why not."""
        if self.status >= 400:
            return f"the backend itself answers {self.status} for this path"
        if status != self.status:
            return f"the backend answers {self.status} directly, the bridge gave {status}"
        return None

    def describe(self, body: bytes) -> str:
        same = "the same body as" if body == self.body else f"{len(self.body)} bytes from"
        return f"{self.status}, {len(body)} bytes ({same} the backend directly)"


EXPORTER_CHECKS = (
    "ExporterAcceptsImporterCert",
    "ExporterRefusesNoClientCert",
    "ExporterRefusesForeignCA",
    "ExporterRefusesExpiredCert",
    "ExporterRefusesWrongSNI",
    "ExporterAuthorizes",
)
"""The article's step 4 curl and its refusals, in the order they run for each export and importer."""


def verify_local(twin: LocalTwin, path: str | None = None, headers: Headers = ()) -> list[Condition]:
    """Run every check against the running local twin.

    Every check is in the result, once per export and importing mesh where it applies (``subject``), whether
    it ran or not: a check that needs one that did not pass is ``Unknown``, ``NotRunWithout<Check>``. The
    checks that need the backend's own answer (the importer's certificate accepted, the app's call) need
    ``BackendAnswers``; every check through the twin needs ``LocalTwinRunning``, which is only reported when it
    fails. The store's certificates' expiry and revocation read the store alone, so they always run; the
    served certificates' expiry (``ServedCertificateExpiry``, per gateway) reads what the gateways hold.

    What runs decides what is checked: each export is asked on ``path``, or, without it, on the path its
    routes serve on every hop (:mod:`meshbridge.local.exportpath`, read from the running Envoys), and each
    gateway is judged on the Secret it really reads (its ``kubernetes://`` secret for the export, whatever
    ``credentialName`` the manifests gave it). A check that cannot run (a mesh without an app to call from) is
    ``Unknown`` with the reason, never left out. ``headers`` go with every request the checks send (an
    AuthorizationPolicy or a route that wants one), beside the ``Host`` and ``User-Agent`` the checks set.
    """
    store = twin_store(twin.bridge, twin.state_dir)
    if not twin.running():
        down = Condition(
            "LocalTwinRunning",
            "False",
            "NotRunning",
            "the local twin is not running, so nothing that goes through it was checked. Fix: 'meshbridge local "
            "up' (or 'meshbridge demo')",
            "local",
        )
        planned = [not_run(check, down, hop, subject) for check, hop, subject in planned_checks(twin.bridge)]
        return [down, *planned, *_expiry(twin, store)]
    running = read_running(twin)
    paths = export_paths(twin.bridge, running.configs)
    own = manifest_secrets(twin, running.credentials)
    out: list[Condition] = [components_ready(twin), served_certificates(twin, timeout=2.0, running=running)]
    for ex in twin.bridge.spec.exports:
        asked, why = (path, "--path") if path else _export_path(twin, ex, paths)
        hop = backend_hop(twin.bridge, running.configs, ex, asked, headers)
        answer = _routed_elsewhere(ex, hop) or _backend_answer(twin, ex, asked, headers)
        if isinstance(answer, Condition):
            backend: BackendAnswer | Condition = replace(answer, subject=ex.name)
        else:
            backend = answer
            answer = Condition(
                "BackendAnswers",
                "True",
                f"HTTP{backend.status}",
                f"GET {asked} ({why}) straight to {ex.backend.host}: {backend.status}, {len(backend.body)} bytes; "
                "the checks through the bridge expect this answer",
                f"{ex.from_} → {ex.backend.host} (directly)",
                subject=ex.name,
            )
        out.append(replace(answer, subject=ex.name))
        for importer in ex.to:
            subject = f"{ex.name} → {importer}"
            try:
                view = twin.app_view(mesh=importer)
            except LocalError as e:
                out += [replace(c, subject=subject) for c in _cannot_run(twin.bridge, ex, importer, "NoApp", str(e))]
                continue
            found = _exporter_checks(
                twin, store, view, ex, importer, asked, backend, own, running.credentials, headers=headers
            )
            if isinstance(backend, Condition):
                found.append(not_run("AppReachesExport", backend, _app_hop(twin.bridge, view.name, ex)))
            else:
                found.append(_timed(_app_check, twin, view, ex, asked, backend, headers=headers))
            found.append(_timed(_alb_unreachable, twin, view, ex, importer))
            out += [replace(c, subject=subject) for c in found]
    out += _expiry(twin, store)
    out += served_expiry(twin, running)
    return out


@dataclass(frozen=True)
class Running:
    """What the running proxies hold, read once per verify.

    Attributes:
        dumps: each proxy's ``/config_dump`` (by ``<mesh>/<workload>``) that could be read.
        configs: the same as :class:`ProxyConfig` s, for the path simulation.
        unread: each proxy whose dump could not be read, and why.
        credentials: each gateway's credentials on the exports' paths (``credentialName`` values, without
            ``kubernetes://`` and ``-cacert``), as its listeners and clusters use them.
        files: each gateway's SDS names of certificate files in its pod on the exports' paths
            (``file-cert:<cert>~<key>``, ``file-root:<ca>``: :func:`~meshbridge.local.exportpath.gateway_files`),
            as its listeners and clusters use them; a gateway reading none is absent.
    """

    dumps: dict[str, dict[str, Any]]
    configs: dict[str, ProxyConfig]
    unread: dict[str, str]
    credentials: dict[str, list[str]]
    files: dict[str, list[str]] = field(default_factory=dict)

    def files_only(self, proxy: str) -> list[str]:
        """The file SDS names ``proxy`` reads when it reads files and no ``credentialName`` on the exports'
        paths (a Gateway with ``serverCertificate``, a DestinationRule with ``clientCertificate``, given with
        ``--cert``): the store's Secret is not what it serves; ``[]`` otherwise."""
        return [] if proxy in self.credentials else list(self.files.get(proxy, []))


def read_running(twin: LocalTwin) -> Running:
    """Read every proxy's ``/config_dump`` once, and what verify needs of them (:class:`Running`)."""
    dumps: dict[str, dict[str, Any]] = {}
    configs: dict[str, ProxyConfig] = {}
    unread: dict[str, str] = {}
    for name, spec in twin.plan()["proxies"].items():
        if not spec.get("sidecar", True):
            continue  # an ambient importer's app: no proxy of its own (its requests go to the waypoint)
        try:
            dumps[name] = twin.config_dump(name)
            configs[name] = running_config(twin.bridge, name, spec["address"], dumps[name])
        except (LocalError, KeyError) as e:
            unread[name] = str(e)
    secrets = gateway_secrets(twin.bridge, configs)
    return Running(dumps, configs, unread, secret_credentials(secrets), gateway_files(secrets))


def _export_path(twin: LocalTwin, ex: Export, paths: dict[str, ExportPath]) -> tuple[str, str]:
    """The path ``ex`` is asked on, and why: one its running routes serve on every hop; else the one 'local up'
    recorded (a proxy could not be read); else the first its exporter's route declares."""
    found = paths.get(ex.name)
    if found is not None and found.routed:
        return found.path, found.why
    recorded = twin.export_path(ex.name)
    if found is None or recorded != DEFAULT_PATH:
        return recorded, "the path 'local up' found its routes serve"
    return found.path, found.why


def _cannot_run(bridge: Bridge, ex: Export, importer: str, reason: str, why: str) -> list[Condition]:
    """The checks of one export and importer, each ``Unknown`` with ``reason``: they could not run."""
    hops = {check: hop for check, hop, subject in planned_checks(bridge) if subject == f"{ex.name} → {importer}"}
    return [Condition(check, "Unknown", reason, f"could not run: {why}", hop) for check, hop in hops.items()]


def components_ready(twin: LocalTwin) -> Condition:
    """Every component of the twin is ready: its process runs and, for an Envoy, it took every listener,
    cluster, route configuration and secret it was given (:mod:`meshbridge.local.readiness`). A proxy that
    rejected one, or waits for a secret, runs something other than what the bridge says: the checks after it
    judge what it runs."""
    hop = "local"
    waiting = [s for s in twin.status() if not s.ready]
    if not waiting:
        return Condition(
            "ComponentsReady",
            "True",
            "AllReady",
            "every component runs; every proxy took every listener, cluster, route configuration and secret it "
            "was given",
            hop,
        )
    parts = []
    for s in waiting:
        if s.problems:
            parts.append(f"{s.name}: " + "; ".join(map(str, s.problems)))
        elif s.pid is None:
            parts.append(f"{s.name}: not running (see '{twin.command(f'local logs {s.name}')}')")
        else:
            parts.append(f"{s.name}: its probe does not answer (see '{twin.command(f'local logs {s.name}')}')")
    refused = any(s.problems for s in waiting)
    fix = (
        f". Fix: a rejected or missing resource stays until its file changes: '{twin.command('certs push')}' "
        f"writes the store's secrets again; for the rest fix the Istio resources ('meshbridge lint'), then "
        f"'{twin.command('local down')} && {twin.up_command()}'"
    )
    return Condition(
        "ComponentsReady",
        "False",
        "ConfigurationNotTaken" if refused else "NotReady",
        "; ".join(parts) + (fix if refused else ""),
        hop,
    )


def planned_checks(bridge: Bridge) -> list[tuple[str, str, str]]:
    """``(check, hop, subject)`` of every check :func:`verify_local` makes through the twin, in its order
    (the store's certificates' own checks, which read the store only, are not in it)."""
    out = [("ComponentsReady", "local", ""), ("GatewaysServeCurrentCerts", "pki", "")]
    for ex in bridge.spec.exports:
        out.append(("BackendAnswers", f"{ex.from_} → {ex.backend.host} (directly)", ex.name))
        for importer in ex.to:
            subject = f"{ex.name} → {importer}"
            out += [(check, _exporter_hop(ex, importer), subject) for check in EXPORTER_CHECKS]
            app = f"{importer}/{bridge.spec.meshes[importer].callers()[0].name}"
            out.append(("AppReachesExport", _app_hop(bridge, app, ex), subject))
            out.append(("PrivateALBUnreachable", f"{importer} → private backend", subject))
    out += [("ServedCertificateExpiry", "pki", name) for name, _ in _gateways(bridge)]
    return out


def _gateways(bridge: Bridge) -> list[tuple[str, Role]]:
    """Every gateway on an export's path, ``(<mesh>/<workload>, role)``: the exporters', then the importers'."""
    out: list[tuple[str, Role]] = []
    for ex in bridge.spec.exports:
        ig = bridge.spec.meshes[ex.from_].ingress_gateway
        if ig is not None and (f"{ex.from_}/{ig.name}", "ingress") not in out:
            out.append((f"{ex.from_}/{ig.name}", "ingress"))
    for ex in bridge.spec.exports:
        for importer in ex.to:
            eg = bridge.spec.meshes[importer].egress_gateway
            if eg is not None and (f"{importer}/{eg.name}", "egress") not in out:
                out.append((f"{importer}/{eg.name}", "egress"))
    return out


def _exporter_hop(ex: Export, importer: str) -> str:
    return f"{importer} → {ex.from_} gateway"


def _app_hop(bridge: Bridge, app: str, ex: Export) -> str:
    if app.split("/", 1)[0] in ambient_importers(bridge):  # no sidecar; the twin does not run ztunnel
        return f"{app} → (ztunnel, not run) → waypoint → {ex.from_} gateway → backend"
    return f"{app} → sidecar → egress → {ex.from_} gateway → backend"


def _timed(check: Callable[..., Condition], *args: Any, **kwargs: Any) -> Condition:
    t0 = time.monotonic()
    c = check(*args, **kwargs)
    return replace(c, duration_ms=(time.monotonic() - t0) * 1000)


# -- the exporter gateway, dialled directly (step 4) ------------------------------------------------------


def _exporter_checks(
    twin: LocalTwin,
    store: PkiStore,
    view: AppView,
    ex: Export,
    importer: str,
    path: str,
    backend: BackendAnswer | Condition,
    own: dict[tuple[str, str], str] | None = None,
    credentials: Mapping[str, list[str]] | None = None,
    *,
    headers: Headers = (),
) -> list[Condition]:
    """The article's step 4 curl and its refusals (:data:`EXPORTER_CHECKS`), with the credentials the importer's
    egress gateway runs with: the store's, or, when the user's manifests hold its Secret (``own``, see
    :func:`manifest_secrets`), that Secret's.

    ``backend`` is the backend's own answer, or the ``BackendAnswers`` condition that did not pass: then the
    importer's certificate is not tried (there is no answer to compare with) and the refusals still are.
    """
    hop = _exporter_hop(ex, importer)
    own = own or {}
    theirs = [own[k] for k in ((importer, "egress"), (ex.from_, "ingress")) if k in own]
    dial = _dial_credentials(twin, store, ex, importer, theirs, credentials or {})
    if isinstance(dial, _CannotDial):
        return [Condition(check, "Unknown", dial.reason, dial.message, hop) for check in EXPORTER_CHECKS]
    client, exporter_cas, importer_ca = dial
    spec = client_leaf(twin.bridge, importer)
    assert spec is not None
    expired = _expired_client(importer, importer_ca, spec, theirs, hop)
    foreign_ca = issue_ca("verify: a foreign CA")
    foreign = issue_leaf(foreign_ca, "client", common_name=spec.common_name, uris=spec.uris)
    cases: list[tuple[str, CertBundle | Condition | None, str, bool, str]] = [
        ("ExporterAcceptsImporterCert", client, ex.host, True, ""),
        ("ExporterRefusesNoClientCert", None, ex.host, False, "a client without a certificate"),
        ("ExporterRefusesForeignCA", foreign, ex.host, False, "a certificate from a foreign CA"),
        ("ExporterRefusesExpiredCert", expired, ex.host, False, "an expired certificate from the importer's CA"),
        ("ExporterRefusesWrongSNI", client, f"wrong-sni.{ex.host}", False, "the wrong SNI"),
    ]
    fix = (
        f"Check the Secrets the twin runs ({'; '.join(theirs)})"
        if theirs
        else "Check the exporter Gateway's tls.credentialName Secret (the importer's CA in cacert; no CRL revoking "
        "it) and tls.subjectAltNames (the importer's SPIFFE ID), and that the running twin serves the current "
        "certificates ('meshbridge certs rotate --leaf' pushes them)"
    )
    out = []
    for name, cert, sni, accept, what in cases:
        if isinstance(cert, Condition):
            out.append(cert)
            continue
        answer = backend if isinstance(backend, BackendAnswer) else None
        t0 = time.monotonic()
        c = _gateway_call(
            twin, view, ex, path, answer, cert, exporter_cas, sni, name, accept, what, hop, fix, headers=headers
        )
        if accept and isinstance(backend, Condition) and c.reason != HANDSHAKE_PASSED:
            c = not_run(name, backend, hop)  # no HTTP answer came back: nothing to judge the handshake by
        out.append(replace(c, duration_ms=(time.monotonic() - t0) * 1000))
    authorization = _timed(
        _authorization_check, twin, view, ex, importer, path, client, exporter_cas, hop, headers=headers
    )
    out.append(authorization)
    return out


@dataclass(frozen=True)
class _CannotDial:
    """Why a group of checks cannot run: the reason of their ``Unknown`` conditions and its message."""

    reason: str
    message: str


def _dial_credentials(
    twin: LocalTwin,
    store: PkiStore,
    ex: Export,
    importer: str,
    theirs: list[str],
    credentials: Mapping[str, list[str]],
) -> tuple[CertBundle, bytes, CertBundle] | _CannotDial:
    """The importer's client certificate, the exporter's CAs it trusts, and the importer's CA: the store's,
    or the ones the twin runs when its Secrets come from the user's manifests (``theirs``); or why the
    gateway cannot be dialled with them."""
    client = store.load(importer, "client")
    exporter_cas = store.trusted(ex.from_)  # the exporter's CA, and its next one during a rollover
    importer_ca = store.signing_ca(importer) if store.load(importer, "ca") else None
    if theirs:
        running = _running_client(twin, store, importer, credentials)
        if isinstance(running, str):
            return _CannotDial(
                "SecretsFromManifests",
                f"the twin runs {'; '.join(theirs)}, and {running}, so the gateway cannot be dialled with the "
                "credentials the twin runs with",
            )
        client, exporter_cas = running
    if client is None or not exporter_cas or importer_ca is None:
        needed: list[tuple[str, Slot, object]] = [
            (importer, "client", client),
            (ex.from_, "ca", exporter_cas),
            (importer, "ca", importer_ca),
        ]
        missing = [str(store.path(mesh, slot)) for mesh, slot, held in needed if not held]
        return _CannotDial(
            "CertificatesMissing",
            f"the store lacks {', '.join(missing)}, so the exporter's gateway cannot be dialled as the importer's "
            "egress gateway. Fix: run 'meshbridge certs issue' ('meshbridge certs check' says what is wrong)",
        )
    return client, exporter_cas, importer_ca


def _expired_client(
    importer: str, importer_ca: CertBundle, spec: LeafSpec, theirs: list[str], hop: str
) -> CertBundle | Condition:
    """An expired client certificate from the importer's CA, or why none can be forged (the twin runs the
    user's Secrets, or the CA's key is not held)."""
    if theirs:
        return Condition(
            "ExporterRefusesExpiredCert",
            "Unknown",
            "SecretsFromManifests",
            f"the twin runs {'; '.join(theirs)}, not the store's certificates: an expired certificate can only be "
            f"forged with the key of a CA the exporter trusts, and meshbridge holds none of the user's, so this "
            "refusal is not tested (the other checks use the Secrets' own certificates)",
            hop,
        )
    if importer_ca.key_pem is None:
        return Condition(
            "ExporterRefusesExpiredCert",
            "Unknown",
            "NoCAKey",
            f"an expired certificate from {importer}'s CA ({importer_ca.subject}) cannot be forged: the CA's key is "
            "not held, it was imported without it ('certs import --slot ca' without --key), so this refusal is "
            "not tested. To test it, import the CA with its --key, or check the refusal where the key lives",
            hop,
        )
    return issue_leaf(
        importer_ca,
        "client",
        common_name=spec.common_name,
        uris=spec.uris,
        not_before=utcnow() - dt.timedelta(days=10),
        days=1,
    )


def manifest_secrets(twin: LocalTwin, credentials: Mapping[str, list[str]] | None = None) -> dict[tuple[str, str], str]:
    """The gateway Secrets the twin runs from the user's ``--manifests`` instead of the store's certificates.

    Args:
        credentials: the credentials each gateway really reads (:func:`meshbridge.local.exportpath.
            gateway_credentials`, by proxy name); a gateway absent from it is taken to read its mesh's
            credentialName.

    Returns:
        ``(mesh, role)`` (role ``ingress`` or ``egress``) → ``Secret NS/NAME from FILE``, for each gateway
        one of whose credential Secrets (or its ``-cacert``) the manifests recorded by ``local up`` hold.
    """
    plan = twin.plan()
    env = plan.get("manifest_env", {})
    out: dict[tuple[str, str], str] = {}
    for mesh, paths in plan.get("manifests", {}).items():
        m = twin.bridge.spec.meshes.get(mesh)
        if m is None:
            continue
        try:
            docs = load_documents([Path(p) for p in paths], env=env)
        except MeshbridgeError as e:
            for role in ("ingress", "egress"):
                out[(mesh, role)] = f"the Secrets of {', '.join(paths)} (unreadable now: {e})"
            continue
        for role, gw in (("ingress", m.ingress_gateway), ("egress", m.egress_gateway)):
            if gw is None:
                continue
            names = _credentials_of(twin, credentials, f"{mesh}/{gw.name}")
            wanted = {n for name in names for n in (name, name + SDS_CA_SUFFIX)}
            for source, d in docs:
                md = d.get("metadata") or {}
                if (
                    d.get("kind") == "Secret"
                    and md.get("namespace", "default") == gw.namespace
                    and md.get("name") in wanted
                ):
                    out[(mesh, role)] = f"Secret {gw.namespace}/{md['name']} from {source}"
                    break
    return out


def _credentials_of(twin: LocalTwin, credentials: Mapping[str, list[str]] | None, proxy: str) -> list[str]:
    """The credentials ``proxy`` (``<mesh>/<workload>``) reads: as its running configuration says, else its mesh's
    credentialName (:meth:`Bridge.credential_name`)."""
    return list((credentials or {}).get(proxy) or [twin.bridge.credential_name(proxy.split("/", 1)[0])])


def _running_client(
    twin: LocalTwin, store: PkiStore, importer: str, credentials: Mapping[str, list[str]]
) -> tuple[CertBundle, bytes] | str:
    """The client certificate, key and trusted CAs the importer's egress gateway runs with (as the twin
    serves them over SDS, from the manifests' Secrets or the store's, under the credential it really reads),
    or why they cannot be had."""
    plan = twin.plan()
    manifests = {m: [Path(p) for p in paths] for m, paths in plan.get("manifests", {}).items()}
    gw = twin.bridge.spec.meshes[importer].egress_gateway
    if gw is None:
        return f"mesh {importer} has no egress gateway"
    try:
        configs, _ = mesh_configs(twin.bridge, twin.bridge_dir, store, manifests, plan.get("manifest_env", {}))
    except MeshbridgeError as e:
        return f"its configuration cannot be read now ({e})"
    credential = _credentials_of(twin, credentials, f"{importer}/{gw.name}")[0]
    name = sds_name(credential)
    leaf = sds_resource(configs[importer], gw.namespace, name, None)
    trust = sds_resource(configs[importer], gw.namespace, sds_ca_name(credential), None)
    if leaf is None or trust is None:
        return f"{importer}'s egress gateway holds no {'certificate and key' if leaf is None else 'CA'} for {name}"
    tls = leaf["tls_certificate"]
    return (
        CertBundle(inline(tls["certificate_chain"]), inline(tls["private_key"])),
        inline(trust["validation_context"]["trusted_ca"]),
    )


def _gateway_call(
    twin: LocalTwin,
    view: AppView,
    ex: Export,
    path: str,
    backend: BackendAnswer | None,
    cert: CertBundle | None,
    ca_pem: bytes,
    sni: str,
    name: str,
    accept: bool,
    what: str,
    hop: str,
    fix: str,
    *,
    headers: Headers = (),
) -> Condition:
    exporter = twin.bridge.spec.meshes[ex.from_].ingress_gateway
    assert exporter is not None
    lb = lb_address(twin.bridge, ex.from_)
    try:
        url = _gateway_url(view, lb, ex, path)
    except CurlError as e:
        return Condition(name, "Unknown", "NoDNS", f"{lb} does not resolve on the importer's side: {e}", hop)
    gateway = f"{ex.from_}/{exporter.name}"
    tag = _request_tag()
    before = _refusals(twin.stats(gateway))
    r = _get(url, ca_pem, cert, ex.host, sni, tag, headers)
    if isinstance(r, httpx.HTTPError):
        detail = _tls_detail(r)
        refused = {k: v - before.get(k, 0) for k, v in _refusals(twin.stats(gateway)).items() if v > before.get(k, 0)}
        if not refused:
            # the gateway counted no refusal: the failure is on this side (or the network), not the gateway's
            return Condition(
                name,
                "Unknown",
                "ClientSideFailure",
                f"the request failed before the gateway judged it ({detail}); the check's own client could not "
                f"complete it, so nothing is proved. Is the exporter serving a certificate its CA "
                f"(pki/{ex.from_}/ca.crt, or ca-next during a rollover) signed? 'meshbridge certs check'"
                + _predicted_stop(twin, ex, gateway, passthrough=True),
                hop,
            )
        counters = ", ".join(f"{k} +{v}" for k, v in sorted(refused.items()))
        if accept:
            return Condition(
                name,
                "False",
                "HandshakeRefused",
                f"the gateway refused the importer's own certificate ({detail}; {counters}). {fix}",
                hop,
            )
        return Condition(name, "True", "Refused", f"{what} is refused by the gateway ({counters}): {detail}", hop)
    if not accept:
        return Condition(
            name,
            "False",
            "Accepted",
            f"{what} got HTTP {r.status_code}: the gateway must refuse it. Check the exporter Gateway's "
            "tls.mode (MUTUAL, not OPTIONAL_MUTUAL), its hosts (no '*') and its cacert",
            hop,
        )
    if backend is None:  # the backend's own answer is unknown (BackendAnswers did not pass): nothing to compare
        return _handshake_passed(r, ex, path, name, hop)
    return _accepted_answer(twin, r, backend, ex, path, (lb, gateway, tag), name, hop)


HANDSHAKE_PASSED = "HandshakePassed"
"""The reason of an accepted call judged by the HTTP answer alone, the backend's own answer being unknown."""


def _handshake_passed(r: httpx.Response, ex: Export, path: str, name: str, hop: str) -> Condition:
    """The importer's accepted call when the backend could not be asked (``BackendAnswers`` did not pass): any HTTP
    answer ``r`` (a 503 UH of the exporter's gateway for a backend the twin does not run) came through the mutual
    TLS connection opened with the importer's certificate, so the gateway accepted it; the page is not judged."""
    server = r.headers.get("server", "-")
    said = r.text.strip().splitlines()[0][:80] if r.text.strip() else ""
    return Condition(
        name,
        "True",
        HANDSHAKE_PASSED,
        f"https://{ex.host}{path} with the importer's certificate: the gateway answered HTTP {r.status_code} "
        f"(server: {server}{f', {said!r}' if said else ''}) through the mutual TLS connection, so the handshake "
        "passed; the answer is not compared with the backend's, which BackendAnswers could not get",
        hop,
    )


def _accepted_answer(
    twin: LocalTwin,
    r: httpx.Response,
    backend: BackendAnswer,
    ex: Export,
    path: str,
    where: tuple[str, str, str],
    name: str,
    hop: str,
) -> Condition:
    """The importer's accepted call judged by its answer: the backend's page from the exporter's gateway, a 403 of
    the gateway's AuthorizationPolicy (the certificate was accepted), or something else (diagnosed). ``where``:
    the load balancer's name, the gateway and the request's tag."""
    lb, gateway, tag = where
    server = r.headers.get("server", "")
    problem = backend.matches(r.status_code, r.content)
    if problem is None and server == "istio-envoy":
        return Condition(
            name,
            "True",
            "PageServed",
            f"https://{ex.host}{path} via {lb}:{ex.gateway_port} with the importer's certificate: "
            f"{backend.describe(r.content)}, server: {server}",
            hop,
        )
    if r.status_code == 403 and RBAC_DENIED in r.content and server == "istio-envoy":
        return Condition(
            name,
            "False",
            "RBACDenied",
            f"the handshake passed (the gateway accepts the importer's certificate), but its AuthorizationPolicy "
            f"refused GET {path} for Host {ex.host}: 403 RBAC: access denied. If the policy admits only some paths, "
            "methods or headers, verify on a path it admits (--path); 'meshbridge lint' names those it admits "
            "(MB313) or why none is (MB312)",
            hop,
        )
    return Condition(
        name,
        "False",
        f"HTTP{r.status_code}",
        f"{problem or 'the answer did not come from the exporter gateway'} (server: {server or '-'}); "
        + _diagnose(twin, [gateway], tag),
        hop,
    )


def _predicted_stop(
    twin: LocalTwin, ex: Export, gateway: str | None = None, app: str | None = None, passthrough: bool = False
) -> str:
    """``; the running configuration predicts why: <hop>`` when the path check (as 'local up' runs it, on what the
    proxies run now) stops ``ex``'s request at ``gateway`` (any proxy: ``None``; with ``passthrough``, also the
    importer's hop stopped because that gateway passes the TLS through to its backend), of ``app`` (any: ``None``);
    else ``""``."""
    running = read_running(twin)
    stops = findings(twin.bridge, running.configs, export_paths(twin.bridge, running.configs))
    hop = next(
        (
            h
            for h in stops
            if h.export == ex.name
            and (gateway in (None, h.proxy) or (passthrough and h.result.error == PASSTHROUGH))
            and app in (None, h.app)
        ),
        None,
    )
    return f"; the running configuration predicts why: {hop}" if hop is not None else ""


def _gateway_url(view: AppView, lb: str, ex: Export, path: str) -> str:
    """``https://<ip>:<port><path>`` of the exporter's gateway, its load-balancer name resolved as the importer
    resolves it, and a load balancer's IP address taken to the twin's address that plays it, as the egress
    gateway's endpoint is (never the real network's host of that address). Raises :class:`CurlError` when the
    name does not resolve."""
    ip, _ = resolve(view, lb, [])
    port = view.endpoint_ports.get((lb, ex.gateway_port), ex.gateway_port)
    return f"https://{view.endpoint_addresses.get(ip, ip)}:{port}{path}"


def _get(
    url: str, ca_pem: bytes, cert: CertBundle | None, host: str, sni: str, tag: str, headers: Headers = ()
) -> httpx.Response | httpx.HTTPError:
    """GET ``url`` over TLS trusting ``ca_pem``, with ``cert`` as the client certificate (none: ``None``), the
    SNI ``sni``, the ``Host`` header ``host``, ``tag`` as the User-Agent and ``headers``; the answer, or httpx's
    error."""
    sent = [("Host", host), ("User-Agent", tag), *headers]
    with _tls_context(ca_pem, cert) as ctx:
        try:
            with httpx.Client(verify=ctx, timeout=10.0) as http:
                return http.get(url, headers=sent, extensions={"sni_hostname": sni})
        except httpx.HTTPError as e:
            return e


RBAC_DENIED = b"RBAC: access denied"
"""The body of Envoy's RBAC filter's 403."""


def _authorization_check(
    twin: LocalTwin,
    view: AppView,
    ex: Export,
    importer: str,
    path: str,
    client: CertBundle,
    exporter_cas: bytes,
    hop: str,
    *,
    headers: Headers = (),
) -> Condition:
    """``ExporterAuthorizes``: the importer's own certificate, with the export's SNI (so the handshake passes, as in
    ``ExporterAcceptsImporterCert``, the allowed call), asking for a host it may not call (:func:`forbidden_host`)
    → 403 ``RBAC: access denied`` from the exporter's AuthorizationPolicy. A 404 (no route for that host) is not an
    authorization failure (nothing is reached) but proves no policy either: ``Unknown``; any other answer came from
    past the policy (a route's backend): ``False``."""
    name = "ExporterAuthorizes"
    ig = twin.bridge.spec.meshes[ex.from_].ingress_gateway
    assert ig is not None
    if not ig.authorize_importers:
        return Condition(
            name,
            "Unknown",
            "AuthorizationOff",
            f"spec.meshes.{ex.from_}.ingressGateway.authorizeImporters is false: no AuthorizationPolicy, so a peer "
            "whose certificate passes the handshake may call any host exported there; nothing to check",
            hop,
        )
    rendered = f"AuthorizationPolicy {ig.namespace}/{authorization_policy_name(ig)}"
    theirs = _manifest_policies(twin, ex.from_)
    if theirs == []:
        paths = ", ".join(twin.plan()["manifests"][ex.from_])
        return Condition(
            name,
            "Unknown",
            "NoPolicyInManifests",
            f"the twin runs {ex.from_}'s manifests ({paths}), which hold no AuthorizationPolicy, so a peer whose "
            "certificate passes the handshake may call any host exported there; nothing to check. Fix: add the "
            f"{rendered} that 'meshbridge render --mesh {ex.from_}' prints",
            hop,
        )
    policy = ", ".join(theirs) if theirs else rendered
    host = forbidden_host(twin.bridge, ex, importer)
    what = f"{importer}'s certificate (SNI {ex.host}) asking for Host {host}"
    lb = lb_address(twin.bridge, ex.from_)
    try:
        url = _gateway_url(view, lb, ex, path)
    except CurlError as e:
        return Condition(name, "Unknown", "NoDNS", f"{lb} does not resolve on the importer's side: {e}", hop)
    tag = _request_tag()
    r = _get(url, exporter_cas, client, host, ex.host, tag, headers)
    if isinstance(r, httpx.HTTPError):
        failed = f"{what}: the request failed before the gateway judged it ({_tls_detail(r)}); nothing is proved"
        return Condition(name, "Unknown", "ClientSideFailure", failed, hop)
    if r.status_code == 403 and RBAC_DENIED in r.content:
        return Condition(name, "True", "Refused", f"{what}: 403 RBAC: access denied ({policy})", hop)
    if r.status_code == 404:
        return Condition(
            name,
            "Unknown",
            "HostNotServed",
            f"{what} got HTTP 404: the gateway serves no host {host} (no route), so the importer reaches nothing "
            f"there; but the {policy} did not refuse it either (403), so whether it keeps importers to their own "
            "exports is not shown. Fix: nothing, unless a host is added there; 'meshbridge render' shows the policy "
            "that refuses it",
            hop,
        )
    return Condition(
        name,
        "False",
        f"HTTP{r.status_code}",
        f"{what} got HTTP {r.status_code}, not 403 'RBAC: access denied': the gateway lets an importer call a host "
        f"it does not import. Check the {policy} (it must select the gateway's pods and admit each export's "
        "importers to that export's host only; 'meshbridge render' shows it); "
        + _diagnose(twin, [f"{ex.from_}/{ig.name}"], tag),
        hop,
    )


def _manifest_policies(twin: LocalTwin, mesh: str) -> list[str] | None:
    """``AuthorizationPolicy NS/NAME`` of each policy in the manifests the twin runs for ``mesh`` (``[]``: they hold
    none); ``None`` when the mesh runs what meshbridge renders, or its manifests cannot be read now."""
    plan = twin.plan()
    paths = plan.get("manifests", {}).get(mesh) or []
    if not paths:
        return None
    try:
        docs = load_documents([Path(p) for p in paths], env=plan.get("manifest_env", {}))
    except MeshbridgeError:
        return None
    found = [d.get("metadata") or {} for _, d in docs if d.get("kind") == "AuthorizationPolicy"]
    return [f"AuthorizationPolicy {md.get('namespace', 'default')}/{md.get('name')}" for md in found]


def forbidden_host(bridge: Bridge, ex: Export, importer: str) -> str:
    """A host ``importer`` may not call on ``ex``'s gateway: another export's from the same mesh that it does not
    import, else one no export names (``not-exported.<host>``)."""
    for other in bridge.exports_from(ex.from_):
        if importer not in other.to:
            return other.host
    return f"not-exported.{ex.host}"


REFUSAL_COUNTERS = (
    "ssl.fail_verify_no_cert",
    "ssl.fail_verify_error",
    "ssl.fail_verify_san",
    "ssl.fail_verify_cert_hash",
    "ssl.connection_error",
    "no_filter_chain_match",
)


def _refusals(stats: dict[str, int]) -> dict[str, int]:
    """The gateway listeners' counters of refused connections (Envoy listener and TLS stats), summed by kind."""
    out: dict[str, int] = {}
    for key, value in stats.items():
        if key.startswith("listener.") and not key.startswith("listener.admin"):
            for counter in REFUSAL_COUNTERS:
                if key.endswith("." + counter):
                    out[counter] = out.get(counter, 0) + value
    return out


@contextmanager
def _tls_context(ca_pem: bytes, cert: CertBundle | None) -> Iterator[ssl.SSLContext]:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # as Envoy verifies: any CA of the bundle is an anchor
    if cert is None:
        yield ctx
        return
    with tempfile.TemporaryDirectory(prefix="meshbridge-verify-") as tmp:
        crt, key = cert.write_to(Path(tmp), "client")
        assert key is not None
        ctx.load_cert_chain(crt, key)
        yield ctx


def _tls_detail(e: Exception) -> str:
    text = str(e) or type(e).__name__
    for marker in ("alert", "certificate", "reset", "closed", "EOF"):
        if marker in text:
            return text
    return f"{type(e).__name__}: {text}"


# -- the app's call through both gateways (step 6) --------------------------------------------------------


def _app_check(
    twin: LocalTwin, view: AppView, ex: Export, path: str, backend: BackendAnswer, *, headers: Headers = ()
) -> Condition:
    hop = _app_hop(twin.bridge, view.name, ex)
    url = export_url(ex, path)
    tag = _request_tag()
    try:
        r = curl(view, url, headers=[("User-Agent", tag), *headers])
    except CurlError as e:
        return Condition(
            "AppReachesExport",
            "False",
            "CurlError",
            f"{url} from {view.name}: {e}. If the host does not resolve, the importer mesh needs "
            "ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE (or ServiceEntry addresses)",
            hop,
        )
    problem = backend.matches(r.status, r.body)
    if problem is None:
        upstream = dict(r.headers).get("x-envoy-upstream-service-time", "-")
        return Condition(
            "AppReachesExport",
            "True",
            "PageServed",
            f"{url} from {view.name} in plain HTTP: {backend.describe(r.body)}, "
            f"x-envoy-upstream-service-time {upstream} ms",
            hop,
        )
    importer = view.name.split("/", 1)[0]
    sidecar = [] if importer in ambient_importers(twin.bridge) else [view.name]
    path_proxies = sidecar + [
        f"{mesh}/{gw.name}"
        for mesh, gw in (
            (importer, twin.bridge.spec.meshes[importer].egress_gateway),
            (ex.from_, twin.bridge.spec.meshes[ex.from_].ingress_gateway),
        )
        if gw is not None
    ]
    return Condition(
        "AppReachesExport",
        "False",
        f"HTTP{r.status}",
        f"{url}: {problem}; " + _diagnose(twin, path_proxies, tag) + _predicted_stop(twin, ex, app=view.name),
        hop,
    )


def _routed_elsewhere(ex: Export, hop: Hop | None) -> Condition | None:
    """``BackendAnswers`` when the exporter gateway that runs does not send the export's requests to a backend
    that can answer them, or ``None`` (then the export's backend is asked directly): its cluster has no
    endpoints (a Service of the user's manifests no pod serves: Envoy answers 503 ``UH``; the export's backend
    itself defined by a Kubernetes Service, which the twin runs no pods for, is said as such), or it is not the
    export's backend (``spec.exports[].backend.host``), whose answer would say nothing of what the bridge serves."""
    if hop is None or hop.result.cluster is None:
        return None
    parsed = parse_cluster_name(hop.result.cluster)
    host = parsed[3] if parsed is not None else hop.result.cluster
    where = f"{hop.proxy} routes GET {hop.request.path} for {ex.host} to {hop.result.cluster}"
    at = f"{ex.from_} → {host} (what {hop.proxy} routes to)"
    if hop.result.response_flag == "UH" and host == ex.backend.host:
        return Condition(
            "BackendAnswers",
            "False",
            "NoEndpoints",
            f"{where}, the export's backend, which has no endpoints in the twin: Envoy answers 503 UH. The twin "
            f"runs no pods for a Kubernetes Service, so when the exporter's manifests define {host} by a Service "
            "it cannot serve it locally (docs/fidelity.md); on a cluster, the Service's pods answer. Fix: check "
            "this export on the cluster ('meshbridge verify --context MESH=CONTEXT'), or, for the twin, define "
            f"{host} by a ServiceEntry (the rendered one reaches spec.exports[].backend.local)",
            at,
        )
    if hop.result.response_flag == "UH":
        return Condition(
            "BackendAnswers",
            "False",
            "NoEndpoints",
            f"{where}, which has no endpoints (no pod serves {host}): Envoy answers 503 UH, so nothing through the "
            f"bridge can answer. Fix: route the export's VirtualService to its backend {ex.backend.host} (the twin "
            f"runs a local backend only for spec.exports[].backend), or give {host} endpoints (a ServiceEntry with "
            "endpoints, or a WorkloadEntry)",
            at,
        )
    if host == ex.backend.host or not hop.ok:
        return None
    return Condition(
        "BackendAnswers",
        "Unknown",
        "NotTheExportBackend",
        f"{where}, not to the export's backend {ex.backend.host}: asking {ex.backend.host} directly would say "
        f"nothing of what the bridge serves. Fix: route the export's VirtualService to {ex.backend.host}, or set "
        f"spec.exports[].backend.host to {host}",
        at,
    )


def _backend_answer(twin: LocalTwin, ex: Export, path: str, headers: Headers = ()) -> BackendAnswer | Condition:
    """Ask the export's backend directly, from the exporter's side (as the exporter gateway does): the answer
    every check through the bridge is compared with. A ``BackendAnswers`` condition when it cannot be had or
    is an error, since nothing through the bridge can then be judged."""
    hop = f"{ex.from_} → {ex.backend.host} (directly)"
    plan = twin.plan()
    alb = next((a for a in plan["albs"] if a["host"] == ex.backend.host), None)
    if alb is None:
        return Condition(
            "BackendAnswers",
            "Unknown",
            "NoLocalBackend",
            f"export {ex.name}: {ex.backend.host} has no local backend (exports[].backend.local), so there is "
            "nothing to compare the bridge's answers with",
            hop,
        )
    tls = ex.backend.tls.mode == "SIMPLE"
    listener = next(
        (x for x in alb["listeners"] if x["advertised"] == ex.backend.port),
        alb["listeners"][0],
    )
    url = f"{'https' if tls else 'http'}://{alb['address']}:{listener['port']}{path}"
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=plan["public_ca"]), timeout=30.0) as http:
            sent = [("Host", ex.backend.host), *headers]
            r = http.get(url, headers=sent, extensions={"sni_hostname": ex.backend.host})
    except httpx.HTTPError as e:
        return Condition("BackendAnswers", "False", "Unreachable", f"{url}: {e}", hop)
    if r.status_code >= 400:
        return Condition(
            "BackendAnswers",
            "False",
            f"HTTP{r.status_code}",
            f"GET {path} straight to {ex.backend.host} answers {r.status_code}: the function itself fails or does "
            f"not serve this path, so the bridge cannot be judged. Fix: pass --path with a path it serves, or see "
            f"'meshbridge local logs {alb['name']}'",
            hop,
        )
    return BackendAnswer(r.status_code, r.content)


def _alb_unreachable(twin: LocalTwin, view: AppView, ex: Export, importer: str) -> Condition:
    hop = f"{importer} → private backend"
    if ex.backend.host.lower() in (ex.host.lower(), ex.import_host.lower()):
        return _backend_address_unreachable(twin, view, ex, importer, hop)
    trace: list[str] = []
    try:
        ip, _ = resolve(view, ex.backend.host, trace)
    except CurlError:
        dns = "does not resolve"
    else:
        return Condition(
            "PrivateALBUnreachable",
            "False",
            "ResolvesOnImporter",
            f"{ex.backend.host} resolves to {ip} on the importer's side; a private ALB must not",
            hop,
        )
    leaks = [
        name
        for name, p in twin.plan()["proxies"].items()
        if p["mesh"] == importer
        and p.get("sidecar", True)  # an ambient importer's app has none: ztunnel, which the twin does not run
        and ex.backend.host in EnvoyView.from_config_dump(twin.config_dump(name)).upstream_hosts()
    ]
    if leaks:
        return Condition(
            "PrivateALBUnreachable",
            "False",
            "RouteOnImporter",
            f"{ex.backend.host} {dns}, but {', '.join(leaks)} have configuration for it",
            hop,
        )
    return Condition(
        "PrivateALBUnreachable",
        "True",
        "NoDNSNoRoute",
        f"{ex.backend.host} {dns} on the importer's side and no importer proxy has a route or "
        "cluster for it (the local network itself is flat: this is checked on DNS and configuration)",
        hop,
    )


def _backend_address_unreachable(twin: LocalTwin, view: AppView, ex: Export, importer: str, hop: str) -> Condition:
    """``PrivateALBUnreachable`` for a backend named as the export (its host is the name importers call, so it
    resolves on their side, to the import, by design): judged on the backend's own address instead of its name."""
    name = "PrivateALBUnreachable"
    alb = next((a for a in twin.plan()["albs"] if a["host"] == ex.backend.host), None)
    if alb is None:
        return Condition(name, "Unknown", "NoLocalBackend", f"{ex.backend.host} has no local backend to look for", hop)
    address = alb["address"]
    try:
        ip, _ = resolve(view, ex.backend.host, [])
    except CurlError:
        ip = None
    leaks = [
        proxy
        for proxy, p in twin.plan()["proxies"].items()
        if p["mesh"] == importer
        and p.get("sidecar", True)
        and address in EnvoyView.from_config_dump(twin.config_dump(proxy)).upstream_hosts()
    ]
    if ip == address or leaks:
        where = f"resolves to it ({ip})" if ip == address else f"is an endpoint of {', '.join(leaks)}"
        return Condition(name, "False", "BackendAddressOnImporter", f"the backend's own address {address} {where}", hop)
    return Condition(
        name,
        "True",
        "BackendAddressNotReached",
        f"{ex.backend.host} is also the name importers call, so it resolves on their side to the import "
        f"({ip or 'nothing'}), by design; the private backend's own address {address} is neither that nor an "
        "endpoint of any importer proxy",
        hop,
    )


# -- certificates ------------------------------------------------------------------------------------------


def _needed(bridge: Bridge, mesh: str, slot: Slot) -> str:
    """Why ``mesh`` needs a certificate in ``slot`` (a clause), or ``""`` when it may lack one (``ca-next``
    outside a rollover, a leaf of a role the mesh does not play)."""
    if slot == "ca":
        return "every mesh has its CA"
    if slot == "server" and server_leaf(bridge, mesh) is not None:
        return f"{mesh} exports a service, so its gateway presents a server certificate"
    if slot == "client" and client_leaf(bridge, mesh) is not None:
        return f"{mesh} imports a service, so its egress gateway presents a client certificate"
    return ""


def _expiry(twin: LocalTwin, store: PkiStore) -> list[Condition]:
    """The store's certificates (``CertificateExpiry:<mesh>/<slot>``): expiry and revocation; a certificate the
    spec needs but the store lacks is ``Unknown`` (``NotIssued``), not left out."""
    out = []
    now = utcnow()
    for mesh in twin.bridge.spec.meshes:
        for slot in SLOTS:
            b = store.load(mesh, slot)
            if b is None:
                needed = _needed(twin.bridge, mesh, slot)
                if needed:
                    out.append(
                        Condition(
                            f"CertificateExpiry:{mesh}/{slot}",
                            "Unknown",
                            "NotIssued",
                            f"{store.path(mesh, slot)} is not in the store, though {needed}: no expiry to read. "
                            "Fix: 'meshbridge certs issue' ('meshbridge certs check' says what is wrong)",
                            "pki",
                        )
                    )
                continue
            left = b.not_after - now
            name = f"{mesh}/{slot}"
            status: Status
            dates = f"{b.subject}: not after {b.not_after:%Y-%m-%dT%H:%M:%SZ} ({duration_text(left)})"
            try:
                revoked = store.check_revoked(mesh, slot, b)  # the rule of 'certs check', on the peers' CRLs
            except PkiError as e:
                status, reason, message = "Unknown", "CrlUnreadable", f"{dates}; its CRLs cannot be read: {e}"
            else:
                if revoked:
                    status, reason = "False", "Revoked"
                    message = f"{b.subject}: " + "; ".join(f"{f.problem}. Fix: {f.fix}" for f in revoked)
                else:
                    rotates = None if twin.bridge.spec.meshes[mesh].peer else mesh  # a peer's CA is its owner's
                    status, reason, message = _expiry_of(b, now, rotates, dates)
            out.append(Condition(f"CertificateExpiry:{name}", status, reason, message, "pki"))
    return out


def _expiry_of(b: CertBundle, now: dt.datetime, mesh: str | None, dates: str) -> tuple[Status, str, str]:
    """``CertificateExpiry``'s status, reason and message for certificate ``b`` by the rule of 'certs check'
    (:func:`~meshbridge.pki.checks.check_validity`): a validity shorter than the warning window passes. ``mesh``:
    the mesh whose rotation replaces it, ``None`` for a peer's CA, which only its owner rotates."""
    found = check_validity(mesh or "", b, now, mesh=mesh)
    bad = next((f for f in found if f.severity != "info"), None)
    if bad is None:
        return "True", "Valid", dates + "".join(f"; {f.problem}" for f in found)
    reason = "ExpiresSoon" if bad.severity == "warning" else "Expired" if now > b.not_after else "NotYetValid"
    fix = bad.fix if mesh is not None else PEER_CA_FIX
    return "False", reason, f"{dates}; {bad.problem}. Fix: {fix}"


PEER_CA_FIX = (
    "a peer's CA is rolled over by its owner: ask them for it; their next offer or reply carries the new CA beside "
    "this one ('meshbridge peer accept' or 'peer admit' trusts it)"
)
"""The fix of a peer's CA about to expire: only its owner holds its key."""


# -- explaining a failure -----------------------------------------------------------------------------------


RESPONSE_FLAG_HINTS = {
    "NR": "no route (or no filter chain) for the request: check the Gateway's servers[].hosts and the "
    "VirtualService's hosts and spec.gateways binding",
    "NC": "no cluster: the route's destination host has no ServiceEntry, or names a DestinationRule subset "
    "that does not exist",
    "UH": "no healthy upstream: the destination has no endpoints; check the ServiceEntry's endpoints and "
    "resolution, and that the DestinationRule subset's labels match an endpoint",
    "UF": "upstream connection failure: the next hop refused the connection or the TLS handshake; check the "
    "DestinationRule's trafficPolicy.tls (mode, credentialName, sni, subjectAltNames)",
    "URX": "the retries were exhausted on failing upstream attempts: look at the next hop's line",
    "UT": "upstream request timeout: the backend took longer than the route's timeout (exports[].timeout)",
    "UC": "the upstream closed the connection: look at the next hop's line",
}
"""What an Envoy response flag on a failed request means, and the Istio field to look at (Envoy access-log
docs, ``%RESPONSE_FLAGS%``)."""


def _request_tag() -> str:
    """A User-Agent unique to one check's request: Envoy passes it through every hop and logs it, while the
    gateways replace ``x-request-id`` (Istio's gateways do not preserve an external request id)."""
    return f"meshbridge-verify/{uuid.uuid4().hex[:16]}"


def _diagnose(twin: LocalTwin, proxies: list[str], tag: str, wait: float = 1.5) -> str:
    """What each proxy on the path logged for the request tagged ``tag``: status, response flags, details.

    ``proxies`` in path order. Access logs are flushed every 0.2 s, so this waits up to ``wait`` seconds for
    the lines. The hop that answered itself (details other than ``via_upstream``) gets the hint for its flags.
    A twin started with ``--no-access-log`` has no lines to read: that is said instead.
    """
    if twin.plan().get("access_log") is False:
        return (
            "the proxies write no access log (local up --no-access-log), so where the request stopped cannot be read "
            "from them: start the twin without --no-access-log and verify again, or see 'meshbridge local curl -v'"
        )
    deadline = time.monotonic() + wait
    while True:
        lines = {name: _tagged_line(twin.root / name / "access.log", tag) for name in proxies}
        if all(lines.values()) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    parts, hints = [], []
    for name in proxies:
        line = lines[name]
        if line is None:
            parts.append(f"{name}: did not log it (the request stopped before this hop)")
            continue
        fields = line.split('"')
        status, flags, details = [*fields[2].split(), "-", "-", "-"][:3]
        cluster = ([*fields[-1].split(), "-"])[0]  # %UPSTREAM_CLUSTER_RAW%, after the last quoted field
        parts.append(f"{name}: {status} {flags} {details}" + (f" (cluster {cluster})" if cluster != "-" else ""))
        if details != "via_upstream":
            hints += [f"{name}: {RESPONSE_FLAG_HINTS[f]}" for f in flags.split(",") if f in RESPONSE_FLAG_HINTS]
    text = "access logs: " + "; ".join(parts)
    return f"{text}. {' '.join(hints)}" if hints else text


def _tagged_line(log: Path, tag: str) -> str | None:
    try:
        text = log.read_text()
    except OSError:
        return None
    quoted = f'"{tag}"'
    return next((line for line in reversed(text.splitlines()) if quoted in line), None)


def served_certificates(twin: LocalTwin, timeout: float = 10.0, running: Running | None = None) -> Condition:
    """Every gateway serves the store's current certificate chain, trusts exactly the CAs the store says, and holds
    the store's current CRLs (see :mod:`meshbridge.verify.served`), under the credential it really reads (its
    running listeners and clusters say which, :func:`~meshbridge.local.exportpath.gateway_credentials`; its mesh's
    credentialName when they cannot be read).

    A rotation or a revocation recorded in the store but never pushed shows as ``StaleSecret``. SDS reloads are
    asynchronous (inotify): this waits up to ``timeout`` seconds for them. A gateway whose Secret the twin runs
    from the user's manifests (:func:`manifest_secrets`) is not compared with the store: when no other gateway
    differs, the condition is ``Unknown`` (``SecretsFromManifests``); so is a gateway whose configuration cannot
    be read (``GatewayUnreadable``). A gateway that serves certificate files of its pod (given with ``--cert``,
    :meth:`Running.files_only`) is not compared either: the store is not what it serves, so the check does not
    apply to it (``True``, ``CertificateFiles``, when no other gateway differs; :func:`served_expiry` reads
    their expiry). ``running``: what verify already read (read here otherwise).
    """
    try:
        credentials = twin_credentials(twin.bridge, twin_store(twin.bridge, twin.state_dir))
    except PkiError as e:
        return Condition("GatewaysServeCurrentCerts", "Unknown", "StoreUnreadable", f"{e}", "pki")
    running = running or read_running(twin)
    gateways = {name: spec for name, spec in twin.plan()["proxies"].items() if spec["role"] in ("ingress", "egress")}
    skipped, files = _not_the_stores(twin, running, gateways)
    t0 = time.monotonic()
    found, dumps, unread = _served_problems(twin, running, gateways, {*skipped, *files}, credentials, timeout)
    problems = [p for ps in found.values() for p in ps]
    duration = (time.monotonic() - t0) * 1000
    if unread and not problems:
        return Condition(
            "GatewaysServeCurrentCerts",
            "Unknown",
            "GatewayUnreadable",
            "; ".join(f"{name}: {why}" for name, why in sorted(unread.items()))
            + (f"; {', '.join(sorted(dumps))} serve the store's current certificates" if dumps else ""),
            "pki",
            duration,
        )
    not_compared = _not_compared(skipped, files)
    if problems:
        # no differing gateway uses the credential at all: pushing the store will not help
        unused = not any(
            holds_credential(dumps[name], credential)
            for name, ps in found.items()
            if ps
            for credential in _credentials_of(twin, running.credentials, name)
        )
        return Condition(
            "GatewaysServeCurrentCerts",
            "False",
            "NotServed" if unused else "StaleSecret",
            "; ".join(problems)
            + (
                ""
                if unused
                else ". Fix: 'meshbridge certs push' sends the store's certificates and CRLs to the running twin"
            )
            + (f". Not compared: {not_compared}" if not_compared else ""),
            "pki",
            duration,
        )
    if not_compared:
        others = sorted(set(gateways) - set(skipped) - set(files))
        return Condition(
            "GatewaysServeCurrentCerts",
            "Unknown" if skipped else "True",
            "SecretsFromManifests" if skipped else "CertificateFiles",
            not_compared + (f"; {', '.join(others)} serve the store's current certificates" if others else ""),
            "pki",
            duration,
        )
    return Condition(
        "GatewaysServeCurrentCerts",
        "True",
        "Current",
        f"every gateway serves the store's current certificates, trust bundles and CRLs (checked in {duration:.0f} ms)",
        "pki",
        duration,
    )


def _not_the_stores(
    twin: LocalTwin, running: Running, gateways: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The gateways of ``gateways`` (name → plan entry) that serve something else than the store: those that run a
    Secret of the user's manifests (name → ``Secret NS/NAME from FILE``, :func:`manifest_secrets`), and those that
    read only certificate files of their pod (name → file SDS names, :meth:`Running.files_only`)."""
    own = manifest_secrets(twin, running.credentials)
    files = {name: running.files_only(name) for name in gateways if running.files_only(name)}
    skipped = {
        name: own[(s["mesh"], s["role"])]
        for name, s in gateways.items()
        if (s["mesh"], s["role"]) in own and name not in files
    }
    return skipped, files


def _not_compared(skipped: Mapping[str, str], files: Mapping[str, list[str]]) -> str:
    """Why the gateways of ``skipped`` (name → the manifests' Secret it runs) and of ``files`` (name → the file SDS
    names it reads) are not compared with the store, one clause each; ``""`` for none."""
    return "; ".join(
        [
            f"{name} runs {what} (the user's manifests), not the store's certificates, so it is not compared with "
            "the store ('meshbridge certs push' would not change it: the manifests' Secret wins)"
            for name, what in sorted(skipped.items())
        ]
        + [
            f"{name} serves the certificate files its pod mounts ({', '.join(names)}; given with --cert), not a "
            "Secret of the store, so the store is not what it serves and is not compared with it (its expiry: "
            "ServedCertificateExpiry; to change them, change the files and run 'meshbridge local up' again with "
            "them)"
            for name, names in sorted(files.items())
        ]
    )


def _served_problems(
    twin: LocalTwin,
    running: Running,
    gateways: dict[str, dict[str, Any]],
    skipped: set[str],
    credentials: Mapping[str, MeshCredentials],
    timeout: float,
) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]], dict[str, str]]:
    """What each gateway not ``skipped`` serves that differs from the store, re-read until nothing differs or
    ``timeout`` seconds have passed (SDS reloads are asynchronous); with the last ``/config_dump`` of each,
    and why the others could not be read."""
    t0 = time.monotonic()
    dumps = {name: running.dumps[name] for name in gateways if name not in skipped and name in running.dumps}
    unread = {name: running.unread[name] for name in gateways if name not in skipped and name in running.unread}
    while True:
        found = {
            name: [
                p
                for credential in _credentials_of(twin, running.credentials, name)
                for p in served_problems(
                    name, gateways[name]["role"], dump, credentials[gateways[name]["mesh"]], credential
                )
            ]
            for name, dump in dumps.items()
        }
        if not any(found.values()) or time.monotonic() - t0 > timeout:
            return found, dumps, unread
        time.sleep(0.2)
        dumps, unread = _dumps(twin, [n for n in gateways if n not in skipped])


def _dumps(twin: LocalTwin, names: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The ``/config_dump`` of each proxy of ``names`` that answers, and why the others could not be read."""
    dumps: dict[str, dict[str, Any]] = {}
    unread: dict[str, str] = {}
    for name in names:
        try:
            dumps[name] = twin.config_dump(name)
        except LocalError as e:
            unread[name] = str(e)
    return dumps, unread


def served_expiry(twin: LocalTwin, running: Running) -> list[Condition]:
    """One ``ServedCertificateExpiry`` per gateway on an export's path: the certificates it *serves* (its
    ``kubernetes://`` secrets for the credentials it really reads, from its ``/config_dump``), not the store's.

    A gateway can run something else than the store holds: Secrets of the user's manifests, certificate files
    of its pod (``file-cert:``/``file-root:``, given with ``--cert``: those are read then), a push that never
    happened, an Envoy that rejected the new one. Every certificate counts: the leaf chain it presents and
    each CA it trusts. ``False`` when one has expired (``Expired``) or expires within the warning horizon
    (``ExpiresSoon``, as 'certs check'); ``Unknown`` when the gateway cannot be read (``GatewayUnreadable``),
    holds none of its credentials (``NotServed``) or holds PEM that cannot be read (``Unreadable``).
    """
    out = []
    now = utcnow()
    for name, role in _gateways(twin.bridge):
        hop = "pki"
        if name not in running.dumps:
            why = running.unread.get(name, f"{name} is not a proxy of the running twin")
            out.append(Condition("ServedCertificateExpiry", "Unknown", "GatewayUnreadable", why, hop, subject=name))
            continue
        served = _served_pems(running.dumps[name])
        certs: list[tuple[str, Any]] = []  # (what, certificate)
        unreadable: list[str] = []
        held: list[str] = []
        for sds, what in _served_secrets(twin, running, name):
            pem = served.get(sds)
            if pem is None:
                continue
            held.append(sds)
            try:
                certs += [(f"{what} {_subject(c)} ({sds})", c) for c in parse_certificates(pem)]
            except PkiError as e:
                unreadable.append(f"{sds}: {e}")
        if unreadable:
            out.append(
                Condition("ServedCertificateExpiry", "Unknown", "Unreadable", "; ".join(unreadable), hop, subject=name)
            )
            continue
        if not certs:
            names = ", ".join(sds for sds, what in _served_secrets(twin, running, name) if what == "serves")
            out.append(
                Condition(
                    "ServedCertificateExpiry",
                    "Unknown",
                    "NotServed",
                    f"{name} holds no certificate of {names} ({role} gateway), so no served expiry can be read; "
                    "see ComponentsReady and GatewaysServeCurrentCerts",
                    hop,
                    subject=name,
                )
            )
            continue
        dated = sorted(((c.not_valid_after_utc - now, what, c) for what, c in certs), key=lambda x: x[0])
        left, what, first = dated[0]
        leaf = next((x for x in dated if x[1].startswith("serves")), None)
        shown = f"{what}: not after {first.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ} ({left.days} days)"
        fix = (
            "Fix: renew it: 'meshbridge certs rotate --leaf' (or --ca for a CA) pushes new certificates to the "
            "running twin; a Secret of the manifests must be replaced there"
        )
        status: Status
        if left.total_seconds() < 0:
            status, reason, message = "False", "Expired", f"{name} {shown}: it has expired. {fix}"
        elif left < dt.timedelta(days=EXPIRY_WARNING_DAYS):
            status, reason = "False", "ExpiresSoon"
            message = f"{name} {shown}, within {EXPIRY_WARNING_DAYS} days. {fix}"
        else:
            status, reason = "True", "Valid"
            first_leaf = (
                f"the leaf it presents is valid {leaf[0].days} days more; "
                if leaf is not None and leaf[2] is not first
                else ""
            )
            message = (
                f"{name} holds {', '.join(held)} ({len(certs)} certificates); {first_leaf}the first to expire {shown}"
            )
        out.append(Condition("ServedCertificateExpiry", status, reason, message, hop, subject=name))
    return out


def _served_secrets(twin: LocalTwin, running: Running, name: str) -> list[tuple[str, str]]:
    """The SDS names gateway ``name`` reads on the exports' paths, each with ``serves`` (the chain it presents) or
    ``trusts`` (its CAs): those of the credentials it reads (:func:`_credentials_of`), then the certificate files
    of its pod (``file-cert:``/``file-root:``, :attr:`Running.files`); the files alone when it reads no
    credential."""
    files = [(sds, "trusts" if sds.startswith(FILE_ROOT) else "serves") for sds in running.files.get(name, [])]
    if running.files_only(name):
        return files
    kube = [
        (sds, what)
        for credential in _credentials_of(twin, running.credentials, name)
        for sds, what in ((sds_name(credential), "serves"), (sds_ca_name(credential), "trusts"))
    ]
    return kube + files


def _served_pems(dump: Mapping[str, Any]) -> dict[str, bytes]:
    """Every active secret's certificates as a proxy holds them: name → PEM (the chain it presents, or the CAs
    it trusts)."""
    out: dict[str, bytes] = {}
    for entry in EnvoyView.from_config_dump(dump).active_secrets():
        try:
            pem = entry.pem("chain") or entry.pem("trust")
        except ValueError:
            pem = b"not base64"
        if pem:
            out[entry.name] = pem
    return out


def _subject(cert: Any) -> str:
    return str(cert.subject.rfc4514_string())
