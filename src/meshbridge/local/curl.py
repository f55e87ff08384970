"""``local curl``: a request from an importer's app, through its sidecar, like ``kubectl exec deploy/sleep -- curl``.

What a pod does, step by step, and how each step is reproduced here:

1. **DNS.** With ``ISTIO_META_DNS_CAPTURE`` the istio-agent answers for ServiceEntry hosts (their addresses,
   or auto-allocated ``240.240.x.y`` VIPs); other names go to the cluster's and the cloud's DNS — here the
   mesh's DNS server. A name nobody knows fails like curl: ``(6) Could not resolve host``. As in a pod
   (``ndots:5``), a name with fewer than five dots is first tried with the pod's search domains
   (``<namespace>.svc.cluster.local``, ``svc.cluster.local``, ``cluster.local``), so ``hw`` from namespace
   ``sleep`` finds a ServiceEntry host ``hw.sleep.svc.cluster.local``.
2. **iptables.** Every outbound connection is redirected to the sidecar; here the request is sent to the
   sidecar's listener for the port (``0.0.0.0_80``), with the Host header the app would send. For a
   destination that is not a mesh service, the original destination rides in ``x-envoy-original-dst-host``
   (what ``PassthroughCluster`` reads locally instead of the socket's original destination).
3. **HTTP.** httpx, as plain HTTP/1.1 like ``curl`` without flags.

:func:`curl` sends one request; :func:`follow` sends it and follows redirects as ``curl -L`` does. Each
:class:`CurlResult` carries what ``curl -w`` reports (times, sizes, the effective URL).
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from dnslib import QTYPE, RCODE, DNSRecord

from meshbridge.envoy.simulate import VirtualHosts
from meshbridge.envoy.view import EnvoyView
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
    endpoint_addresses: dict[str, str] = field(default_factory=dict)
    """A load balancer's IP address (``ingressGateway.address``) → the twin's address that plays it: where a
    check that dials the exporter's gateway itself connects, as the egress gateway's endpoint does."""
    namespace: str | None = None
    waypoint: str | None = None
    """An ambient importer's app: no sidecar; the waypoint (``<mesh>/<name>``) whose listeners stand for ztunnel's
    capture of its requests (at :attr:`sidecar_address`, on :attr:`sidecar_ports`)."""

    @property
    def search(self) -> tuple[str, ...]:
        """The pod's DNS search domains (``/etc/resolv.conf`` in a Kubernetes pod of :attr:`namespace`)."""
        return (f"{self.namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local") if self.namespace else ()


def routed_ports(dump: Mapping[str, Any], host: str) -> list[int]:
    """The ports on which a sidecar's ``/config_dump`` routes ``host``: those whose route configuration (istiod
    names a sidecar's by port, ``80``, ``8080``) has a virtual host for it, a ``*`` domain left out; ascending."""
    view = EnvoyView.from_config_dump(dump)
    return sorted(
        {
            int(rc["name"])
            for rc in view.route_configs
            if str(rc.get("name", "")).isdigit()
            and VirtualHosts(rc.get("virtual_hosts", [])).pick(host, catch_all=False) is not None
        }
    )


def view_doc(view: AppView) -> dict[str, Any]:
    """``view`` as JSON data (what the twin on the real control plane records on an app's pod); :func:`view_from_doc`
    reads it back."""
    return asdict(view) | {"endpoint_ports": [[h, p, lp] for (h, p), lp in view.endpoint_ports.items()]}


def view_from_doc(doc: dict[str, Any]) -> AppView:
    """The :class:`AppView` :func:`view_doc` wrote."""
    return AppView(
        **doc
        | {
            "dns_server": (str(doc["dns_server"][0]), int(doc["dns_server"][1])),
            "sidecar_ports": tuple(doc["sidecar_ports"]),
            "endpoint_ports": {(str(h), int(p)): int(lp) for h, p, lp in doc["endpoint_ports"]},
        }
    )


@dataclass
class CurlResult:
    """The response, and curl-style ``*`` lines describing what happened (for ``-v``).

    The rest is what ``curl -w`` reports: ``url`` (``%{url_effective}``), ``method``, ``remote`` (the address
    and port the request went to, the sidecar's for a mesh host), seconds from the start to the name lookup,
    to the first response byte and to the end (``%{time_namelookup}``, ``%{time_starttransfer}``,
    ``%{time_total}``), and the bytes of the request body and of the response's headers.
    """

    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    body: bytes
    trace: list[str]
    url: str = ""
    method: str = "GET"
    remote: tuple[str, int] | None = None
    time_namelookup: float = 0.0
    time_starttransfer: float = 0.0
    time_total: float = 0.0
    size_upload: int = 0
    size_header: int = 0

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or ``None``."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


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
    searched = [f"{host}.{d}" for d in view.search] if host.count(".") < 5 and not host.endswith(".") else []
    for name in (*searched, host.rstrip(".")):
        if name in view.agent_dns:
            address = view.agent_dns[name][0]
            how = "" if name == host.rstrip(".") else f"; {host} through the pod's DNS search path"
            proxy = "ztunnel's" if view.waypoint else "the sidecar's"
            trace.append(f"* istio-agent DNS: {name} → {address} (ServiceEntry, answered by {proxy} DNS proxy{how})")
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

    ``timeout``: seconds the whole request may take (``curl -m``), name lookup included.

    Raises:
        CurlError: the URL is malformed (3), the host does not resolve (6), the connection fails (7) or times
            out (28).
        LocalError: the URL is not plain ``http://``, the method is not an HTTP token, or a header cannot be
            sent (a name that is not a token, a value with CR, LF or NUL: RFC 9110 §5.1, §5.5).
    """
    started = time.perf_counter()
    u = _checked_request(url, method, headers)
    trace: list[str] = []
    port = u.port or 80
    address, mesh_address = resolve(view, u.host, trace)
    namelookup = time.perf_counter() - started
    given = {name.lower() for name, _ in headers or []}
    defaults = [  # what curl sends; a header given with -H replaces curl's own, as in curl
        ("host", u.host if port == 80 else f"{u.host}:{port}"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
    ]
    send_headers = [(k, v) for k, v in defaults if k not in given] + list(headers or [])
    target = _first_hop(view, u.host, port, (address, mesh_address), send_headers, trace)
    path = u.raw_path.decode("ascii")
    remote = httpx.URL(target)
    r, request, body, starttransfer = _exchange(
        method, target + path, send_headers, data, (started, timeout), f"{u.host} port {port}", trace
    )
    trace.append(f"> {method} {path} HTTP/1.1")
    trace += [f"> {k}: {v}" for k, v in request.headers.multi_items() if k.lower() != ORIGINAL_DST_HEADER.lower()]
    trace.append(">")
    response_headers = list(r.headers.multi_items())
    status_line = f"{r.http_version} {r.status_code} {r.reason_phrase}\r\n"
    return CurlResult(
        r.status_code,
        r.reason_phrase,
        r.http_version,
        response_headers,
        body,
        trace,
        url=str(u),
        method=method,
        remote=(remote.host, remote.port or 80),
        time_namelookup=namelookup,
        time_starttransfer=starttransfer,
        time_total=time.perf_counter() - started,
        size_upload=len(data or b""),
        size_header=len(status_line) + sum(len(k) + len(v) + 4 for k, v in response_headers) + 2,
    )


def check_headers(headers: Sequence[tuple[str, str]]) -> None:
    """Refuse a header that cannot be sent (RFC 9110 §5.1, §5.5): a name that is not a token, a value with CR, LF
    or NUL.

    Raises:
        LocalError: naming the ``-H`` and the fix.
    """
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            raise LocalError(f"-H {name!r}: not a header name (a token, no spaces or ':'). Fix: -H 'Name: value'")
        if any(c in value for c in "\r\n\0"):
            raise LocalError(
                f"-H {name}: the value holds a line break or NUL, which would inject a header. Fix: one header per -H"
            )


def _checked_request(url: str, method: str, headers: list[tuple[str, str]] | None) -> httpx.URL:
    """The URL of a request curl would send (``http://`` added when no scheme is given), after checking the
    URL, the method and the headers (see :func:`curl`'s ``Raises``)."""
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
    check_headers(headers or [])
    if u.scheme != "http":
        raise LocalError(
            f"{url}: local curl sends plain HTTP from the app (the egress gateway originates the TLS); use http://"
        )
    return u


def _first_hop(
    view: AppView,
    host: str,
    port: int,
    resolved: tuple[str, bool],
    send_headers: list[tuple[str, str]],
    trace: list[str],
) -> str:
    """Where the app's connection goes (``http://address:port``): the sidecar's listener when it has one on
    ``port`` (as iptables redirects it; with the original destination header for a real address), else
    straight to the address. ``resolved``: the address and whether istio-agent allocated it.

    Raises:
        CurlError: the address is off this machine, or an allocated address has no listener (7).
    """
    address, mesh_address = resolved
    if not mesh_address and ipaddress.ip_address(address) not in LOOPBACK:
        raise CurlError(
            7,
            f"Failed to connect to {host} port {port}: {address} is outside the local twin, which never sends "
            f"traffic off this machine (its network is 127.0.0.0/8); in a pod the sidecar would pass it through to "
            f"{address}:{port} (PassthroughCluster, outboundTrafficPolicy ALLOW_ANY)",
            trace,
        )
    if port in view.sidecar_ports and view.waypoint and mesh_address:
        target = f"http://{view.sidecar_address}:{port + view.low_port_offset if port < 1024 else port}"
        trace.append(
            f"* ztunnel (not run by the twin; no HBONE): {address}:{port} → waypoint {view.waypoint} listener "
            f"waypoint_{port} ({target[7:]}), as {view.name}"
        )
        return target
    if port in view.sidecar_ports and not view.waypoint:
        target = f"http://{view.sidecar_address}:{port + view.low_port_offset if port < 1024 else port}"
        trace.append(f"* iptables: {address}:{port} → sidecar {view.name} listener 0.0.0.0_{port} ({target[7:]})")
        if not mesh_address:
            local_port = view.endpoint_ports.get((address, port), port)
            send_headers.append((ORIGINAL_DST_HEADER, f"{address}:{local_port}"))
        return target
    local_port = view.endpoint_ports.get((address, port), port)
    why = f"no service bound to the waypoint on {port}" if view.waypoint else f"sidecar has no listener on {port}"
    trace.append(f"* {why}: passthrough straight to {address}:{local_port}")
    if mesh_address:
        raise CurlError(
            7,
            f"Failed to connect to {host} port {port}: {address} is the address istio-agent allocated to "
            f"{host}, and the sidecar has no listener on port {port}; in a pod the connection goes out to "
            f"{address} itself, which routes nowhere",
            trace,
        )
    return f"http://{address}:{local_port}"


def _exchange(
    method: str,
    url: str,
    send_headers: list[tuple[str, str]],
    data: bytes | None,
    clock: tuple[float, float],
    where: str,
    trace: list[str],
) -> tuple[httpx.Response, httpx.Request, bytes, float]:
    """Send the request with exactly ``send_headers`` and read the whole body within what is left of the
    time allowed: the response, the request sent, the body and when its first byte came.

    Args:
        clock: when the request started (``time.perf_counter()``) and the seconds it may take in all.
        where: ``host port N``, for the errors.

    Raises:
        CurlError: the connection failed (7), the time ran out (28) or the reply was not HTTP (8).
    """
    started, timeout = clock
    left = timeout - (time.perf_counter() - started)
    received = 0
    try:
        if left <= 0:
            raise httpx.TimeoutException("no time left after the name lookup")
        with httpx.Client(timeout=left) as client:
            client.headers.clear()  # only curl's headers, not httpx's defaults (accept-encoding, ...)
            request = client.build_request(method, url, headers=send_headers, content=data)
            r = client.send(request, stream=True)
            try:
                starttransfer = time.perf_counter() - started
                chunks = []
                for chunk in r.iter_raw():
                    chunks.append(chunk)
                    received += len(chunk)
                    if time.perf_counter() - started > timeout:
                        raise httpx.ReadTimeout("the whole request took longer than allowed")
                body = b"".join(chunks)
            finally:
                r.close()
    except httpx.ConnectError as e:
        raise CurlError(7, f"Failed to connect to {where}: {e}", trace) from e
    except httpx.TimeoutException as e:
        spent = (time.perf_counter() - started) * 1000
        raise CurlError(
            28, f"Operation timed out after {spent:.0f} milliseconds with {received} bytes received", trace
        ) from e
    except httpx.RemoteProtocolError as e:
        raise CurlError(8, f"Weird server reply: {e}", trace) from e
    return r, request, body, starttransfer


REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRS = 50
"""curl's default ``--max-redirs``."""


def follow(
    view: AppView,
    url: str,
    *,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    data: bytes | None = None,
    timeout: float = 30.0,
    max_redirs: int = MAX_REDIRS,
) -> list[CurlResult]:
    """:func:`curl`, then each redirect as ``curl -L`` follows it: every response, the last one last.

    A 301, 302 or 303 answer to a POST is followed with a GET without the body (303: any method but HEAD),
    307 and 308 with the same method and body; a relative ``Location`` is resolved against the URL it answered;
    Authorization and Cookie headers given with ``-H`` are not sent to another host. ``timeout`` bounds the
    whole chain.

    Raises:
        CurlError: as :func:`curl`, and 47 when more than ``max_redirs`` redirects would be followed.
        LocalError: as :func:`curl` (a redirect to ``https://`` included).
    """
    deadline = time.perf_counter() + timeout
    results: list[CurlResult] = []
    current = httpx.URL(url if "://" in url else f"http://{url}")
    sent = list(headers or [])
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise CurlError(28, f"Operation timed out after {timeout * 1000:.0f} milliseconds", [])
        r = curl(view, str(current), method=method, headers=sent, data=data, timeout=left)
        results.append(r)
        location = r.header("location")
        if r.status not in REDIRECTS or location is None:
            return results
        if len(results) > max_redirs:
            raise CurlError(47, f"Maximum ({max_redirs}) redirects followed", r.trace)
        target = current.join(location)
        if target.host != current.host:
            sent = [(k, v) for k, v in sent if k.lower() not in ("authorization", "cookie")]
        if (r.status == 303 and method != "HEAD") or (r.status in (301, 302) and method == "POST"):
            method, data = "GET", None
        r.trace.append(f"* Issue another request to this URL: '{target}'")
        current = target


def redirect_url(result: CurlResult) -> str:
    """Where a redirect answer points (``curl -w %{redirect_url}``), resolved; ``""`` for other answers."""
    location = result.header("location")
    if result.status not in REDIRECTS or location is None or not result.url:
        return ""
    return str(httpx.URL(result.url).join(location))
