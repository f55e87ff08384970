"""``meshbridge verify`` against the local twin: one condition per hop and per security property.

The checks follow the article:

* step 4's curl: the exporter's gateway, dialled at its load-balancer name with the importer's client
  certificate, key and the exporter's CA, SNI = the exported host → the Lambda's page, ``server: istio-envoy``;
* the same without a client certificate, with one from a foreign CA, with an expired one, and with the
  wrong SNI → refused (TLS alert or reset, never a page);
* step 6: the importer's app calls ``http://<host>/...`` in plain HTTP → the page;
* step 1's point: the private ALB is unreachable from the importer's side — its name does not resolve
  there and no importer proxy has a route or cluster for it;
* every certificate's expiry horizon.

A failed check explains itself: the hop, the status and Envoy response flags from the proxies' access
logs, or the TLS alert, and the configuration field to look at.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from meshbridge.errors import LocalError
from meshbridge.local.curl import CurlError, curl, resolve
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import CertBundle, PkiStore, issue_ca, issue_leaf
from meshbridge.pki.checks import EXPIRY_WARNING_DAYS
from meshbridge.pki.identities import client_leaf
from meshbridge.pki.store import SLOTS
from meshbridge.pki.x509 import utcnow
from meshbridge.spec.models import Export
from meshbridge.verify.report import Condition, Status

PAGE_MARKER = b"Hello World from Lambda"


def verify_local(twin: LocalTwin, path: str = "/hello-world") -> list[Condition]:
    """Run every check against the running local twin.

    Raises:
        LocalError: the twin is not up.
    """
    if not twin.running():
        raise LocalError("the local twin is not running. Fix: 'meshbridge local up' (or use 'meshbridge demo')")
    store = PkiStore(twin.state_dir)
    out: list[Condition] = []
    for ex in twin.bridge.spec.exports:
        for importer in ex.to:
            out += _exporter_checks(twin, store, ex, importer, path)
            out.append(_timed(lambda ex=ex: _app_check(twin, ex, path)))  # type: ignore[misc]
            out.append(_timed(lambda ex=ex: _alb_unreachable(twin, ex)))  # type: ignore[misc]
    out += _expiry(twin, store)
    return out


def _timed(check: Callable[[], Condition]) -> Condition:
    t0 = time.monotonic()
    c = check()
    return Condition(c.check, c.status, c.reason, c.message, c.hop, (time.monotonic() - t0) * 1000)


# -- the exporter gateway, dialled directly (step 4) ------------------------------------------------------


def _exporter_checks(twin: LocalTwin, store: PkiStore, ex: Export, importer: str, path: str) -> list[Condition]:
    client = store.load(importer, "client")
    exporter_ca = store.load(ex.from_, "ca")
    importer_ca = store.load(importer, "ca")
    if client is None or exporter_ca is None or importer_ca is None:
        return [
            Condition(
                "ExporterAcceptsImporterCert",
                "Unknown",
                "CertificatesMissing",
                "certificates are missing; run 'meshbridge certs issue'",
                "importer → exporter",
            )
        ]
    spec = client_leaf(twin.bridge, importer)
    assert spec is not None
    expired = issue_leaf(
        importer_ca,
        "client",
        common_name=spec.common_name,
        uris=spec.uris,
        not_before=utcnow() - dt.timedelta(days=10),
        days=1,
    )
    foreign_ca = issue_ca("verify: a foreign CA")
    foreign = issue_leaf(foreign_ca, "client", common_name=spec.common_name, uris=spec.uris)
    hop = f"{importer} → {ex.from_} gateway"
    cases = [
        ("ExporterAcceptsImporterCert", client, ex.host, True, ""),
        ("ExporterRefusesNoClientCert", None, ex.host, False, "a client without a certificate"),
        ("ExporterRefusesForeignCA", foreign, ex.host, False, "a certificate from a foreign CA"),
        ("ExporterRefusesExpiredCert", expired, ex.host, False, "an expired certificate from the importer's CA"),
        ("ExporterRefusesWrongSNI", client, f"wrong-sni.{ex.host}", False, "the wrong SNI"),
    ]
    out = []
    for name, cert, sni, accept, what in cases:
        t0 = time.monotonic()
        c = _gateway_call(twin, ex, path, cert, exporter_ca, sni, name, accept, what, hop)
        out.append(Condition(c.check, c.status, c.reason, c.message, c.hop, (time.monotonic() - t0) * 1000))
    return out


def _gateway_call(
    twin: LocalTwin,
    ex: Export,
    path: str,
    cert: CertBundle | None,
    ca: CertBundle,
    sni: str,
    name: str,
    accept: bool,
    what: str,
    hop: str,
) -> Condition:
    view = twin.app_view()
    exporter = twin.bridge.spec.meshes[ex.from_].ingress_gateway
    assert exporter is not None
    lb = exporter.address or ""
    trace: list[str] = []
    try:
        ip, _ = resolve(view, lb, trace)
    except CurlError as e:
        return Condition(name, "Unknown", "NoDNS", f"{lb} does not resolve on the importer's side: {e}", hop)
    port = view.endpoint_ports.get((lb, ex.gateway_port), ex.gateway_port)
    url = f"https://{ip}:{port}{path}"
    with _tls_context(ca, cert) as ctx:
        try:
            with httpx.Client(verify=ctx, timeout=10.0) as http:
                r = http.get(url, headers={"Host": ex.host}, extensions={"sni_hostname": sni})
        except httpx.HTTPError as e:
            detail = _tls_detail(e)
            if accept:
                return Condition(
                    name,
                    "False",
                    "HandshakeRefused",
                    f"the gateway refused the importer's own certificate ({detail}); check that the exporter "
                    f"Gateway's tls.credentialName Secret holds the importer's CA in cacert and that "
                    f"tls.subjectAltNames lists the importer's SPIFFE ID",
                    hop,
                )
            return Condition(name, "True", "Refused", f"{what} is refused: {detail}", hop)
    if not accept:
        return Condition(
            name,
            "False",
            "Accepted",
            f"{what} got HTTP {r.status_code}: the gateway must refuse it. Check the exporter Gateway's "
            "tls.mode (MUTUAL, not OPTIONAL_MUTUAL), its hosts (no '*') and its cacert",
            hop,
        )
    server = r.headers.get("server", "")
    if r.status_code == 200 and PAGE_MARKER in r.content and server == "istio-envoy":
        return Condition(
            name,
            "True",
            "PageServed",
            f"https://{ex.host}{path} via {lb}:{ex.gateway_port} with the importer's certificate: "
            f"200, server: {server}, {len(r.content)} bytes",
            hop,
        )
    return Condition(
        name,
        "False",
        f"HTTP{r.status_code}",
        f"200 with the Lambda's page expected, got {r.status_code} (server: {server or '-'}); "
        + _diagnose(twin, [f"{ex.from_}/{exporter.name}"]),
        hop,
    )


@contextmanager
def _tls_context(ca: CertBundle, cert: CertBundle | None) -> Iterator[ssl.SSLContext]:
    ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
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


def _app_check(twin: LocalTwin, ex: Export, path: str) -> Condition:
    hop = "app → sidecar → egress → exporter → ALB → Lambda"
    view = twin.app_view()
    url = f"http://{ex.host}{'' if ex.port == 80 else f':{ex.port}'}{path}"
    try:
        r = curl(view, url)
    except CurlError as e:
        return Condition(
            "AppReachesExport",
            "False",
            "CurlError",
            f"{url} from {view.name}: {e}. If the host does not resolve, the importer mesh needs "
            "ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE (or ServiceEntry addresses)",
            hop,
        )
    if r.status == 200 and PAGE_MARKER in r.body:
        upstream = dict(r.headers).get("x-envoy-upstream-service-time", "-")
        return Condition(
            "AppReachesExport",
            "True",
            "PageServed",
            f"{url} from {view.name} in plain HTTP: 200, {len(r.body)} bytes, "
            f"x-envoy-upstream-service-time {upstream} ms",
            hop,
        )
    names = [n for n in twin.plan()["proxies"]]
    return Condition(
        "AppReachesExport", "False", f"HTTP{r.status}", f"{url}: {r.status}; " + _diagnose(twin, names), hop
    )


def _alb_unreachable(twin: LocalTwin, ex: Export) -> Condition:
    hop = "importer → private ALB"
    view = twin.app_view()
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
    plan = twin.plan()
    leaks = []
    for name, p in plan["proxies"].items():
        if p["mesh"] == ex.from_:
            continue
        dump = twin.config_dump(name)
        if ex.backend.host in str(dump):
            leaks.append(name)
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


# -- certificates ------------------------------------------------------------------------------------------


def _expiry(twin: LocalTwin, store: PkiStore) -> list[Condition]:
    out = []
    now = utcnow()
    for mesh in twin.bridge.spec.meshes:
        for slot in SLOTS:
            b = store.load(mesh, slot)
            if b is None:
                continue
            left = b.not_after - now
            name = f"{mesh}/{slot}"
            status: Status
            if left.total_seconds() < 0:
                status, reason = "False", "Expired"
            elif left < dt.timedelta(days=EXPIRY_WARNING_DAYS):
                status, reason = "False", "ExpiresSoon"
            else:
                status, reason = "True", "Valid"
            out.append(
                Condition(
                    f"CertificateExpiry:{name}",
                    status,
                    reason,
                    f"{b.subject}: not after {b.not_after:%Y-%m-%dT%H:%M:%SZ} ({left.days} days)"
                    + ("" if status == "True" else "; rotate it: 'meshbridge certs rotate'"),
                    "pki",
                )
            )
    return out


# -- explaining a failure -----------------------------------------------------------------------------------


def _diagnose(twin: LocalTwin, proxies: list[str]) -> str:
    """The last access-log line of each proxy on the path: status, response flags, details, route."""
    parts = []
    for name in proxies:
        log = twin.root / name / "access.log"
        try:
            last = log.read_text().strip().splitlines()[-1]
        except (OSError, IndexError):
            continue
        fields = last.split('"')
        tail = fields[2].split() if len(fields) > 2 else []
        if tail:
            parts.append(f"{name}: {' '.join(tail[:3])}")
    return ("access logs: " + "; ".join(parts)) if parts else "no proxy logged the request"


def served_certificates(twin: LocalTwin, timeout: float = 10.0) -> Condition:
    """Every gateway serves the store's current leaf and trusts exactly the peers' current CAs.

    SDS reloads are asynchronous (inotify); this waits up to ``timeout`` seconds for them.
    """
    store = PkiStore(twin.state_dir)
    t0 = time.monotonic()
    problems: list[str] = []
    while True:
        problems = []
        for name, spec in twin.plan()["proxies"].items():
            if spec["role"] not in ("ingress", "egress"):
                continue
            slot = "server" if spec["role"] == "ingress" else "client"
            leaf = store.load(spec["mesh"], slot)  # type: ignore[arg-type]
            if leaf is None:
                continue
            served = _served(twin.config_dump(name))
            credential = f"kubernetes://{twin.bridge.spec.tls.credential_name}"
            if served.get(credential) != [leaf.serial]:
                problems.append(
                    f"{name} serves {credential} serial {served.get(credential)}, the store has {leaf.serial:x}"
                )
        if not problems or time.monotonic() - t0 > timeout:
            break
        time.sleep(0.2)
    duration = (time.monotonic() - t0) * 1000
    if problems:
        return Condition("GatewaysServeCurrentCerts", "False", "StaleSecret", "; ".join(problems), "pki", duration)
    return Condition(
        "GatewaysServeCurrentCerts",
        "True",
        "Current",
        f"every gateway serves the store's current certificate (reloaded without restart, {duration:.0f} ms)",
        "pki",
        duration,
    )


def _served(dump: dict[str, object]) -> dict[str, list[int]]:
    """SDS name → serial numbers of the certificate chain each ``kubernetes://`` cert secret holds."""
    import base64

    from cryptography import x509

    out: dict[str, list[int]] = {}
    for cfg in dump.get("configs", []):  # type: ignore[attr-defined]
        for entry in cfg.get("dynamic_active_secrets", []):
            data = entry.get("secret", {}).get("tls_certificate", {}).get("certificate_chain", {})
            if entry.get("name", "").startswith("kubernetes://") and "inline_bytes" in data:
                certs = x509.load_pem_x509_certificates(base64.b64decode(data["inline_bytes"]))
                out[entry["name"]] = [c.serial_number for c in certs]
    return out
