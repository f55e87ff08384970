"""What the security suite does to the local twin: dial the exporter gateway as an attacker would, read the
gateways' counters, serve another leaf from a gateway, and cut the pooled connections between the gateways.

Every helper talks to the real Envoy processes of a running :class:`LocalTwin`; nothing here is mocked.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.local.curl import CurlResult, curl, resolve
from meshbridge.local.twin import LocalTwin
from meshbridge.local.xds import swap_secrets
from meshbridge.pki import CertBundle, PkiStore
from meshbridge.spec import load_bridge
from tests.builders import scratch_dir

PAGE = b"Hello World from Lambda"
INGRESS = "eks/istio-ingressgateway"
EGRESS = "gke/istio-egressgateway"
CREDENTIAL_FILE = "kubernetes___mtls-credential.yaml"


def seed_twin_in(folder: Path) -> LocalTwin:
    """The seed bridge (``meshbridge init``) in ``folder``, not started."""
    for name in SEED_FILES:
        (folder / name).write_text(seed_text(name))
    return LocalTwin(load_bridge(folder / "bridge.yaml"), folder / "bridge.yaml", folder / ".meshbridge")


@contextmanager
def running(twin: LocalTwin) -> Iterator[LocalTwin]:
    """Up, yield, and always down."""
    try:
        twin.up()
        yield twin
    finally:
        twin.down()


# -- the exporter gateway, dialled directly ------------------------------------------------------------------


def gateway_address(twin: LocalTwin, export: str = "lambda") -> tuple[str, int]:
    """(IP, port) of the exporter gateway's load balancer as the importer side resolves and reaches it."""
    ex = twin.bridge.export(export)
    ig = twin.bridge.spec.meshes[ex.from_].ingress_gateway
    assert ig is not None and ig.address is not None
    view = twin.app_view()
    ip, _ = resolve(view, ig.address, [])
    return ip, view.endpoint_ports.get((ig.address, ex.gateway_port), ex.gateway_port)


@dataclass
class Outcome:
    """A response, or the transport error (TLS alert, reset) that stood in its place."""

    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    http_version: str = ""
    error: str = ""

    @property
    def refused(self) -> bool:
        """No HTTP response at all: the handshake (or the connection) was refused."""
        return self.status is None

    @property
    def page(self) -> bool:
        """The Lambda's page, served by the exporter gateway."""
        return self.status == 200 and PAGE in self.body


@contextmanager
def client_context(
    ca: CertBundle | None, cert: CertBundle | None, *, check_hostname: bool = True
) -> Iterator[ssl.SSLContext]:
    """An ``ssl`` client context trusting ``ca`` (or nothing: no verification) and presenting ``cert``."""
    if ca is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
        ctx.check_hostname = check_hostname
    if cert is None:
        yield ctx
        return
    with scratch_dir("meshbridge-security-") as tmp:  # the client's key file lives while ssl loads it
        crt, key = cert.write_to(tmp, "client")
        assert key is not None
        ctx.load_cert_chain(crt, key)
        yield ctx


def dial(
    twin: LocalTwin,
    cert: CertBundle | None,
    *,
    sni: str = "lambda.external",
    host: str | None = None,
    path: str = "/hello-world",
    ca: CertBundle | None = None,
) -> Outcome:
    """One HTTP/1.1 request to the exporter gateway over mTLS with ``cert`` (None: no client certificate).

    The server certificate is verified against the exporter's CA (or ``ca``) for the SNI name, as the
    importer's egress gateway does.
    """
    ip, port = gateway_address(twin)
    trust = ca or PkiStore(twin.state_dir).load("eks", "ca")
    with client_context(trust, cert) as ctx:
        try:
            with httpx.Client(verify=ctx, timeout=10.0) as http:
                r = http.get(
                    f"https://{ip}:{port}{path}", headers={"Host": host or sni}, extensions={"sni_hostname": sni}
                )
        except httpx.TransportError as e:
            return Outcome(error=f"{type(e).__name__}: {e}")
    return Outcome(r.status_code, r.content, dict(r.headers), r.http_version)


def handshake(
    twin: LocalTwin,
    cert: CertBundle | None,
    *,
    sni: str | None = "lambda.external",
    version: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> str:
    """A bare TLS handshake (plus one read, where TLS 1.3 delivers a refusal): ``ok TLSv1.3 <cipher>`` or
    the error. ``sni=None`` sends no server name; ``version`` pins both ends of the version range;
    ``ciphers`` is an OpenSSL TLS ≤ 1.2 cipher string (security level 0, so the client is able to offer
    legacy suites and any refusal is the server's)."""
    ip, port = gateway_address(twin)
    with client_context(None, cert) as ctx:
        if version is not None:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: offering them is the point here
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = version
                ctx.maximum_version = version
        if ciphers is not None:
            ctx.set_ciphers(f"{ciphers}:@SECLEVEL=0")
        try:
            with (
                socket.create_connection((ip, port), timeout=5.0) as raw,
                ctx.wrap_socket(raw, server_hostname=sni) as tls,
            ):
                tls.sendall(b"GET /hello-world HTTP/1.1\r\nHost: lambda.external\r\nConnection: close\r\n\r\n")
                first = tls.recv(64)
                if not first:
                    return "closed: no response"
                return f"ok {tls.version()} {tls.cipher()[0]}"  # type: ignore[index]
        except (OSError, ssl.SSLError) as e:
            return f"{type(e).__name__}: {e}"


def raw_request(twin: LocalTwin, cert: CertBundle, request: bytes, *, sni: str = "lambda.external") -> Outcome:
    """Send ``request`` byte for byte over mTLS (paths httpx would normalise, e.g. ``#frag``)."""
    ip, port = gateway_address(twin)
    with (
        client_context(None, cert) as ctx,
        socket.create_connection((ip, port), timeout=10.0) as raw,
        ctx.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        tls.sendall(request)
        data = b""
        while True:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLError, OSError):
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return Outcome(error=f"no HTTP response: {data[:80]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Outcome(int(lines[0].split()[1]), body, headers, lines[0].split()[0])


def app_call(twin: LocalTwin, path: str = "/hello-world", host: str = "lambda.external") -> CurlResult:
    """The importer's app calling ``http://<host><path>`` in plain HTTP, through its sidecar and egress."""
    return curl(twin.app_view(), f"http://{host}{path}")


class AccessLog:
    """The lines a proxy's access log gains after this object was made (logs are flushed every 0.2 s)."""

    def __init__(self, twin: LocalTwin, proxy: str) -> None:
        self.path = twin.root / proxy / "access.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def request(self, contains: str = '"GET ', timeout: float = 3.0) -> str:
        """The last new line with ``contains`` (default: a GET request line), waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                lines = [x for x in f.read().decode(errors="replace").splitlines() if contains in x]
            if lines:
                return lines[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no new line with {contains!r} in {self.path}")
            time.sleep(0.1)


# -- counters --------------------------------------------------------------------------------------------------


class Counters:
    """The difference in a proxy's counters under ``prefix`` since this object was made."""

    def __init__(self, twin: LocalTwin, proxy: str, prefix: str) -> None:
        self.twin, self.proxy, self.prefix = twin, proxy, prefix
        self.before = self._read()

    def _read(self) -> dict[str, int]:
        return {k[len(self.prefix) :]: v for k, v in self.twin.stats(self.proxy).items() if k.startswith(self.prefix)}

    def delta(self) -> dict[str, int]:
        """Counters that grew, by name after the prefix."""
        now = self._read()
        return {k: v - self.before.get(k, 0) for k, v in now.items() if v > self.before.get(k, 0)}


def ingress_tls(twin: LocalTwin) -> Counters:
    """The exporter gateway's TLS listener counters (``ssl.handshake``, ``ssl.fail_verify_*``, versions)."""
    address = twin.plan()["proxies"][INGRESS]["address"]
    _, port = gateway_address(twin)
    return Counters(twin, INGRESS, f"listener.{address}_{port}.ssl.")


def egress_upstream(twin: LocalTwin, host: str = "lambda.external", port: int = 80) -> Counters:
    """The importer egress gateway's counters of its mTLS cluster to the exporter."""
    return Counters(twin, EGRESS, f"cluster.outbound|{port}||{host}.")


def backend_requests(twin: LocalTwin, backend: str = "alb.internal.example.com") -> Counters:
    """The exporter gateway's counters of its cluster to the backend (the ALB): did anything get through?"""
    return Counters(twin, INGRESS, f"cluster.outbound|443||{backend}.")


# -- swapping what a gateway serves ----------------------------------------------------------------------------


def serve_leaf(twin: LocalTwin, proxy: str, leaf: CertBundle, timeout: float = 10.0) -> None:
    """Make ``proxy`` present ``leaf`` (an SDS swap, as if its Secret had changed), then cut pooled connections."""
    folder = twin.root / proxy / "sds"
    files = {p.name: json.loads(p.read_text()) for p in folder.iterdir() if p.is_symlink() and p.name != "..data"}
    assert leaf.key_pem is not None
    (res,) = files[CREDENTIAL_FILE]["resources"]
    res["tls_certificate"] = {
        "certificate_chain": {"inline_bytes": base64.b64encode(leaf.cert_pem).decode()},
        "private_key": {"inline_bytes": base64.b64encode(leaf.key_pem).decode()},
    }
    swap_secrets(folder, files)
    wait_served(twin, proxy, leaf.serial, timeout)
    cut_gateway_connections(twin)


def restore(twin: LocalTwin, timeout: float = 10.0) -> None:
    """Every proxy back on the store's certificates and CRLs, pooled connections cut."""
    twin.refresh_secrets()
    store = PkiStore(twin.state_dir)
    for proxy, slot in ((INGRESS, "server"), (EGRESS, "client")):
        leaf = store.load(proxy.split("/")[0], slot)  # type: ignore[arg-type]
        assert leaf is not None
        wait_served(twin, proxy, leaf.serial, timeout)
    creds = store.credentials(twin.bridge)
    wait_crl(twin, INGRESS, creds["eks"].server_crl, timeout)
    wait_crl(twin, EGRESS, creds["gke"].client_crl, timeout)
    cut_gateway_connections(twin)


def served(twin: LocalTwin, proxy: str) -> dict[str, object]:
    """The proxy's active SDS secrets, by name (from ``/config_dump``)."""
    out: dict[str, object] = {}
    for cfg in twin.config_dump(proxy).get("configs", []):
        for entry in cfg.get("dynamic_active_secrets", []):
            out[entry["name"]] = entry.get("secret", {})
    return out


def wait_served(twin: LocalTwin, proxy: str, serial: int, timeout: float = 10.0) -> None:
    """Wait until ``proxy`` presents the certificate with ``serial`` (SDS reloads are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        secret = served(twin, proxy).get("kubernetes://mtls-credential", {})
        chain = secret.get("tls_certificate", {}).get("certificate_chain", {})  # type: ignore[attr-defined]
        if "inline_bytes" in chain:
            cert = x509.load_pem_x509_certificate(base64.b64decode(chain["inline_bytes"]))
            if cert.serial_number == serial:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{proxy} did not load certificate {serial:x} within {timeout} s")
        time.sleep(0.1)


def wait_crl(twin: LocalTwin, proxy: str, crl: bytes | None, timeout: float = 10.0) -> None:
    """Wait until ``proxy``'s validation context carries ``crl`` (None: no CRL)."""
    deadline = time.monotonic() + timeout
    while True:
        vc = served(twin, proxy).get("kubernetes://mtls-credential-cacert", {}).get("validation_context", {})  # type: ignore[attr-defined]
        have = base64.b64decode(vc["crl"]["inline_bytes"]) if "crl" in vc else None
        if have == crl:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{proxy} did not load the expected CRL within {timeout} s")
        time.sleep(0.1)


def cut_gateway_connections(twin: LocalTwin) -> None:
    """Destroy the pooled egress → exporter connections (``ss -K``), so the next request shakes hands again.

    A certificate swap only affects new handshakes: Envoy keeps pooled connections (one per worker), so a
    test that changes a certificate and reuses them would prove nothing.
    """
    if shutil.which("ss") is None:
        pytest.skip("needs 'ss' (iproute2) to cut pooled connections between the gateways")
    ip, port = gateway_address(twin)
    filt = ["dst", ip, "dport", "=", str(port)]
    subprocess.run(["ss", "-K", "-tn", *filt], check=False, capture_output=True)
    left = subprocess.run(["ss", "-Htn", "state", "established", *filt], capture_output=True, text=True).stdout
    if left.strip():
        pytest.skip(f"'ss -K' cannot destroy sockets here (needs root and CONFIG_INET_DIAG_DESTROY): {left.strip()}")


# -- a bridge with two exports ------------------------------------------------------------------------------------

ECHO_HANDLERS = '''"""Two Lambdas that say which export they are and what they were asked (the ALB target event)."""

import json
import time


def _answer(export, event):
    if event.get("path") == "/slow":
        time.sleep(float((event.get("queryStringParameters") or {}).get("s", "2")))
    body = {"export": export, "path": event.get("path"), "host": (event.get("headers") or {}).get("host")}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def lambda_handler(event, context):
    return _answer("lambda", event)


def orders_handler(event, context):
    return _answer("orders", event)
'''


def two_exports_twin(
    folder: Path, *, lambda_timeout: float | None = None, limits: dict[str, object] | None = None
) -> LocalTwin:
    """The seed bridge plus a second export, ``orders.external``, from the same gateway on the same port.

    Each export has its own ALB and Lambda answering ``{"export": ..., "path": ..., "host": ...}``;
    ``/slow?s=N`` sleeps N seconds first. ``lambda_timeout`` sets the lambda export's ``timeout``, ``limits``
    the exporter gateway's ``limits`` (the edge limits).
    """
    import copy

    import yaml

    from tests.builders import seed_dict

    (folder / "echo.py").write_text(ECHO_HANDLERS)
    d = seed_dict()
    d["spec"].pop("aws")
    lam = d["spec"]["exports"][0]
    lam["backend"]["local"]["handler"] = "echo.py:lambda_handler"
    if lambda_timeout is not None:
        lam["timeout"] = lambda_timeout
    orders = copy.deepcopy(lam)
    orders.pop("timeout", None)
    orders.update({"name": "orders", "host": "orders.external"})
    orders["backend"]["host"] = "orders-alb.internal.example.com"
    orders["backend"]["local"]["handler"] = "echo.py:orders_handler"
    d["spec"]["exports"].append(orders)
    if limits is not None:
        d["spec"]["meshes"]["eks"]["ingressGateway"]["limits"] = limits
    file = folder / "bridge.yaml"
    file.write_text(yaml.safe_dump(d, sort_keys=False))
    return LocalTwin(load_bridge(file), file, folder / ".meshbridge")


@contextmanager
def gateway_connection(twin: LocalTwin, cert: CertBundle, *, timeout: float = 10.0) -> Iterator[ssl.SSLSocket]:
    """An mTLS connection to the exporter gateway (SNI ``lambda.external``), handshake done, held open."""
    ip, port = gateway_address(twin)
    with (
        client_context(None, cert) as ctx,
        socket.create_connection((ip, port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname="lambda.external") as tls,
    ):
        yield tls


def read_response(tls: ssl.SSLSocket) -> bytes:
    """One HTTP/1.1 response from ``tls``: its head, and its body by ``content-length`` (or up to EOF)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(v)
            for k, _, v in (x.partition(b":") for x in head.split(b"\r\n")[1:])
            if k.strip().lower() == b"content-length"
        ),
        None,
    )
    while length is None or len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def closed_by_peer(tls: ssl.SSLSocket) -> bool:
    """Whether the next read finds the connection closed (EOF, close_notify or reset) rather than data."""
    try:
        return tls.recv(1) == b""
    except TimeoutError:
        return False  # still open when the socket's timeout ran out
    except (ssl.SSLError, OSError):
        return True


def answer(out: Outcome | CurlResult | httpx.Response) -> dict[str, str]:
    """The echo Lambda's JSON answer (empty when the body is not one: a gateway's own 404, 431, ...)."""
    try:
        data = json.loads(out.content if isinstance(out, httpx.Response) else out.body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) and "export" in data else {}
