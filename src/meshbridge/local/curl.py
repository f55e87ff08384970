"""``local curl``: a request from an importer's app, through its sidecar, like ``kubectl exec deploy/sleep -- curl``.

What a pod does, step by step, and how each step is reproduced here:

1. **DNS.** With ``ISTIO_META_DNS_CAPTURE`` the istio-agent answers for ServiceEntry hosts (their addresses,
   or auto-allocated ``240.240.x.y`` VIPs); other names go to the cluster's and the cloud's DNS — here the
   mesh's DNS server. A name nobody knows fails like curl: ``(6) Could not resolve host``.
2. **iptables.** Every outbound connection is redirected to the sidecar; here the request is sent to the
   sidecar's listener for the port (``0.0.0.0_80``), with the Host header the app would send. For a
   destination that is not a mesh service, the original destination rides in ``x-envoy-original-dst-host``
   (what ``PassthroughCluster`` reads locally instead of the socket's original destination).
3. **HTTP.** httpx, as plain HTTP/1.1 like ``curl`` without flags.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

import httpx
from dnslib import QTYPE, RCODE, DNSRecord

from meshbridge.errors import LocalError

ORIGINAL_DST_HEADER = "x-envoy-original-dst-host"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True)
class AppView:
    """What an app pod sees: its sidecar's address, the agent's name table, its mesh's DNS server."""

    name: str
    sidecar_address: str
    low_port_offset: int
    agent_dns: dict[str, list[str]]
    dns_server: tuple[str, int]
    sidecar_ports: tuple[int, ...]
    endpoint_ports: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass
class CurlResult:
    """The response, and curl-style ``*`` lines describing what happened (for ``-v``)."""

    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    body: bytes
    trace: list[str]


class CurlError(LocalError):
    """A failure curl itself would report, with curl's exit code (6: resolve, 7: connect, 28: timeout)."""

    def __init__(self, code: int, message: str, trace: list[str]) -> None:
        super().__init__(f"curl: ({code}) {message}")
        self.code = code
        self.trace = trace


def resolve(view: AppView, host: str, trace: list[str]) -> tuple[str, bool]:
    """(address, is a mesh VIP or ServiceEntry address) for ``host``, or CurlError 6."""
    try:
        ipaddress.ip_address(host)
        return host, False
    except ValueError:
        pass
    if host in view.agent_dns:
        address = view.agent_dns[host][0]
        trace.append(f"* istio-agent DNS: {host} → {address} (ServiceEntry, answered by the sidecar's DNS proxy)")
        return address, True
    ip, port = view.dns_server
    try:
        reply = DNSRecord.parse(DNSRecord.question(host).send(ip, port, timeout=2.0))
    except OSError as e:
        raise CurlError(6, f"Could not resolve host: {host} (DNS server {ip}:{port}: {e})", trace) from e
    answers = [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]
    if reply.header.rcode == RCODE.NXDOMAIN or not answers:
        trace.append(f"* DNS {ip}:{port}: {host}: NXDOMAIN (the mesh's DNS does not know it)")
        raise CurlError(6, f"Could not resolve host: {host}", trace)
    trace.append(f"* DNS {ip}:{port}: {host} → {answers[0]}")
    return answers[0], False


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2


def curl(
    view: AppView,
    url: str,
    *,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    data: bytes | None = None,
    timeout: float = 30.0,
) -> CurlResult:
    """Send one request as the app would (see the module docstring).

    Raises:
        CurlError: the URL is malformed (3), the host does not resolve (6), the connection fails (7) or times
            out (28).
        LocalError: the URL is not plain ``http://``, the method is not an HTTP token, or a header cannot be
            sent (a name that is not a token, a value with CR, LF or NUL: RFC 9110 §5.1, §5.5).
    """
    try:
        u = httpx.URL(url if "://" in url else f"http://{url}")
        if u.port is not None and not 0 < u.port < 65536:
            raise httpx.InvalidURL(f"port {u.port} is not between 1 and 65535")
    except httpx.InvalidURL as e:
        raise CurlError(3, f"URL rejected: {url}: {e}", []) from None
    if not _TOKEN.fullmatch(method):
        raise LocalError(
            f"-X {method!r}: not an HTTP method (a token: letters, digits and !#$%&'*+-.^_`|~, no spaces). "
            "Fix: e.g. -X POST"
        )
    for name, value in headers or []:
        if not _TOKEN.fullmatch(name):
            raise LocalError(f"-H {name!r}: not a header name (a token, no spaces or ':'). Fix: -H 'Name: value'")
        if any(c in value for c in "\r\n\0"):
            raise LocalError(
                f"-H {name}: the value holds a line break or NUL, which would inject a header. Fix: one header per -H"
            )
    if u.scheme != "http":
        raise LocalError(
            f"{url}: local curl sends plain HTTP from the app (the egress gateway originates the TLS); use http://"
        )
    trace: list[str] = []
    port = u.port or 80
    address, mesh_address = resolve(view, u.host, trace)
    given = {name.lower() for name, _ in headers or []}
    defaults = [  # what curl sends; a header given with -H replaces curl's own, as in curl
        ("host", u.host if port == 80 else f"{u.host}:{port}"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
    ]
    send_headers = [(k, v) for k, v in defaults if k not in given] + list(headers or [])
    if not mesh_address and ipaddress.ip_address(address) not in LOOPBACK:
        raise CurlError(
            7,
            f"Failed to connect to {u.host} port {port}: {address} is outside the local twin, which never sends "
            f"traffic off this machine (its network is 127.0.0.0/8); in a pod the sidecar would pass it through to "
            f"{address}:{port} (PassthroughCluster, outboundTrafficPolicy ALLOW_ANY)",
            trace,
        )
    if port in view.sidecar_ports:
        target = f"http://{view.sidecar_address}:{port + view.low_port_offset if port < 1024 else port}"
        trace.append(f"* iptables: {address}:{port} → sidecar {view.name} listener 0.0.0.0_{port} ({target[7:]})")
        if not mesh_address:
            local_port = view.endpoint_ports.get((address, port), port)
            send_headers.append((ORIGINAL_DST_HEADER, f"{address}:{local_port}"))
    else:
        local_port = view.endpoint_ports.get((address, port), port)
        target = f"http://{address}:{local_port}"
        trace.append(f"* sidecar has no listener on {port}: passthrough straight to {address}:{local_port}")
        if mesh_address:
            raise CurlError(
                7,
                f"Failed to connect to {u.host} port {port}: {address} is the address istio-agent allocated to "
                f"{u.host}, and the sidecar has no listener on port {port}; in a pod the connection goes out to "
                f"{address} itself, which routes nowhere",
                trace,
            )
    path = u.raw_path.decode("ascii")
    try:
        with httpx.Client(timeout=timeout) as client:
            client.headers.clear()  # only curl's headers, not httpx's defaults (accept-encoding, ...)
            r = client.request(method, target + path, headers=send_headers, content=data)
    except httpx.ConnectError as e:
        raise CurlError(7, f"Failed to connect to {u.host} port {port}: {e}", trace) from e
    except httpx.TimeoutException as e:
        raise CurlError(28, f"Operation timed out after {timeout:.0f} s", trace) from e
    except httpx.RemoteProtocolError as e:
        raise CurlError(8, f"Weird server reply: {e}", trace) from e
    trace.append(f"> {method} {path} HTTP/1.1")
    trace += [f"> {k}: {v}" for k, v in r.request.headers.multi_items() if k.lower() != ORIGINAL_DST_HEADER.lower()]
    trace.append(">")
    return CurlResult(r.status_code, r.reason_phrase, r.http_version, list(r.headers.multi_items()), r.content, trace)
