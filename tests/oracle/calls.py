"""The calls a corpus case declares, followed through its mesh twice: on the twin's configuration (meshbridge's
translation) and on istiod's (the oracle's, delivered as the twin would run it), with the one simulator.

A case declares what a user would try after applying it, one line each in its header::

    # call: sleep http://reviews.bookshop:9080/reviews/1
    # call: shop-ingressgateway https://www.shop.example/cart
    # call: bank-gateway https://api.bank.example/ sni=api.bank.example cert
    # call: shop-ingressgateway https://www.shop.example/ sni=other.example expect=fail
    # call: media-gateway http://media.stream.example/upload method=PUT header=x-beta-user:true

The first word is the workload the request enters (``sleep``, the app every case's world has, or a gateway of
the world); the URL is what the client asks for (``http``, ``https``; ``tcp`` and ``tls`` for a connection that speaks
no HTTP to the proxy, ``tls`` with the host as SNI): for a gateway, the port is its Service's port (the request
reaches the pod on the target port), ``https`` sends TLS with the URL's host as SNI unless ``sni=`` says
otherwise, ``cert`` presents a client certificate (``principal=spiffe://...``: its URI SAN, what an
AuthorizationPolicy judges; ``issuer=NAMESPACE/SECRET``: issued by the CA in that Secret's ``ca.crt``, which the
gateway's client CAs must hold), ``method=``, ``header=NAME:VALUE`` and ``alpn=A,B`` set the
request's method, headers and the ALPN list of its ClientHello, ``source=ADDRESS`` the address the client
connects from (what ``ipBlocks`` judge; none: an address no block names); ``expect=fail`` marks a call the
configuration must stop (a missing client certificate, a route exported elsewhere). The call is followed hop by
hop: when a proxy's chosen cluster is a Service of another proxy of the world, the request continues there, on
that Service's target port, with the TLS, SNI, ALPN and client certificate the cluster sends
(``meshbridge.envoy.pathsim.upstream_request``, the rule the twin's own path check follows). The answer is the last
cluster reached, or where and why the request stopped (Envoy's status and response flag).

``python -m tests.oracle.calls [CASE...]`` prints every call's two answers.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from meshbridge.envoy.names import parse_cluster_name
from meshbridge.envoy.pathsim import upstream_request
from meshbridge.envoy.simulate import Index, Request, Result, simulate
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.istio.visibility import Proxy
from meshbridge.istiod.adopt import adopt
from meshbridge.istiod.judge import MeshVerdict
from meshbridge.jsontree import mappings
from tests.oracle.corpus import CASES

HOPS = 4
"""At most this many proxies per call (a sidecar, an egress gateway, ...): a loop stops here."""


@dataclass(frozen=True)
class Call:
    """One ``# call:`` line of a case: where the request enters, what it asks for."""

    origin: str
    url: str
    sni: str | None = None
    client_cert: bool = False
    fails: bool = False
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    alpn: tuple[str, ...] | None = None
    principal: str | None = None
    issuer: str | None = None
    source: str | None = None

    def __str__(self) -> str:
        extra = (f" sni={self.sni}" if self.sni else "") + (" cert" if self.client_cert else "")
        extra += f" issuer={self.issuer}" if self.issuer else ""
        extra += f" principal={self.principal}" if self.principal else ""
        extra += f" source={self.source}" if self.source else ""
        extra += f" method={self.method}" if self.method != "GET" else ""
        extra += "".join(f" header={k}:{v}" for k, v in self.headers)
        extra += f" alpn={','.join(self.alpn)}" if self.alpn is not None else ""
        return f"{self.origin} {self.url}{extra}"


@dataclass(frozen=True)
class Hop:
    """One proxy the call went through: what reached it, what it did."""

    proxy: str
    request: Request
    result: Result


@dataclass(frozen=True)
class Answer:
    """Where a call ended on one configuration."""

    hops: list[Hop]

    @property
    def ok(self) -> bool:
        """The call reached a cluster or got a direct response."""
        return self.hops[-1].result.ok

    @property
    def outcome(self) -> str:
        """The last cluster reached (``outbound|80||reviews.bookshop.svc.cluster.local``), a direct response
        (``200 direct``), or where the request stopped (``404 NR at mesh/sleep``)."""
        last = self.hops[-1]
        r = last.result
        if r.ok and r.cluster is None:
            return f"{r.detail} at {last.proxy}"
        if r.ok:
            return str(r.cluster)
        what = " ".join(str(x) for x in (r.status, r.response_flag or r.error) if x is not None)
        return f"{what} at {last.proxy}"


def calls(case: str) -> list[Call]:
    """The ``# call:`` lines of ``cases/<case>.yaml``, in order."""
    found = []
    for line in (CASES / f"{case}.yaml").read_text().splitlines():
        if not line.startswith("# call:"):
            continue
        words = line.removeprefix("# call:").split()
        origin, url, rest = words[0], words[1], words[2:]
        values = [w.split("=", 1) for w in rest if "=" in w]
        sni = next((v for k, v in values if k == "sni"), None)
        method = next((v for k, v in values if k == "method"), "GET")
        headers = tuple((name, value) for k, v in values if k == "header" for name, _, value in [v.partition(":")])
        alpn = next((tuple(v.split(",")) for k, v in values if k == "alpn"), None)
        principal = next((v for k, v in values if k == "principal"), None)
        issuer = next((v for k, v in values if k == "issuer"), None)
        source = next((v for k, v in values if k == "source"), None)
        fails = "expect=fail" in rest
        found.append(Call(origin, url, sni, "cert" in rest, fails, method, headers, alpn, principal, issuer, source))
    return found


def follow(call: Call, configs: Mapping[str, ProxyConfig], client_chain: bytes | None = None) -> Answer:
    """``call`` through ``configs`` (by ``<mesh>/<workload>``), hop by hop; ``client_chain``: the PEM the client
    presents (``issuer=``, see :func:`issuer_ca`).

    Raises:
        KeyError: the call's origin is no proxy of ``configs``.
    """
    by_workload = {name.split("/", 1)[1]: name for name in configs}
    name = by_workload[call.origin]
    url = urlsplit(call.url)
    host = url.hostname or ""
    tls = url.scheme in ("https", "tls")
    port = url.port or (443 if tls else 80)
    proxy = configs[name].proxy
    if proxy.kind == "router":
        port = _target_port(proxy, port) or port
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    req = Request(
        port,
        host,
        path,
        tls,
        (call.sni or host) if tls else None,
        call.client_cert,
        alpn=call.alpn if call.alpn is not None or url.scheme in ("http", "https") else (),
        method=call.method,
        headers=call.headers,
        principal=call.principal,
        client_chain=client_chain,
        source=call.source,
    )
    indexes = {n: Index(pc) for n, pc in configs.items()}
    hops = []
    for _ in range(HOPS):
        result = simulate(configs[name], req, indexes[name])
        hops.append(Hop(name, req, result))
        following = _next_proxy(result, configs, indexes[name], req)
        if following is None:
            break
        name, req = following
    return Answer(hops)


def _next_proxy(
    result: Result, configs: Mapping[str, ProxyConfig], index: Index, req: Request
) -> tuple[str, Request] | None:
    """The proxy of the world behind ``result``'s cluster, and the request that reaches it; ``None`` otherwise."""
    parsed = parse_cluster_name(result.cluster) if result.ok and result.cluster else None
    if parsed is None:
        return None
    _, port, _, host = parsed
    for name, pc in configs.items():
        svc = pc.proxy.service
        if pc.proxy.kind != "router" or svc is None or svc.fqdn != host:
            continue
        target = _target_port(pc.proxy, port)
        if target is None:
            return None
        if result.route_config is None:  # a TCP proxy passes the connection on as it came
            return name, replace(req, port=target)
        sent = upstream_request(index.view, str(result.cluster), target, req.host, req.path)
        return name, replace(sent, method=req.method, headers=req.headers)
    return None


def _target_port(proxy: Proxy, port: int) -> int | None:
    """The container port a gateway's Service sends its ``port`` to (the port itself without a targetPort)."""
    svc = proxy.service
    for p in svc.spec.ports if svc is not None else []:
        if p.port == port:
            return p.target_port if isinstance(p.target_port, int) else port
    return None


@dataclass(frozen=True)
class Judged:
    """One call of a corpus case and its two answers: on the twin's configuration and on istiod's."""

    call: Call
    twin: Answer
    istiod: Answer
    case: str

    @property
    def agree(self) -> bool:
        """Both configurations send the call to the same place (or stop it the same way)."""
        return self.twin.outcome == self.istiod.outcome

    @property
    def explained(self) -> str | None:
        """The docs/fidelity.md entry that explains why the twin answers otherwise, if one is listed."""
        return EXPLAINED.get((self.case, str(self.call)))

    @property
    def verdict(self) -> str:
        """``same``, the entry that explains the difference, or ``DIFFERENT``."""
        return "same" if self.agree else self.explained or "DIFFERENT"


AGENT_SECRETS = ("default", "ROOTCA", "file-root:", "file-cert:")
"""SDS names a pod's istio-agent serves (the workload certificate, the mesh root, files in the pod); the twin serves
them from its own files, which a translation made only to be compared has not: they count as served, on both
sides."""


def with_agent_secrets(pc: ProxyConfig) -> ProxyConfig:
    """``pc`` with every SDS secret an istio-agent would serve marked as served."""
    names = {d["name"] for d in mappings([pc.listeners, pc.clusters]) if "sds_config" in d and "name" in d}
    served = {n: {"name": n} for n in names if n in AGENT_SECRETS[:2] or n.startswith(AGENT_SECRETS[2:])}
    return replace(pc, secrets={**served, **{n: s for n, s in pc.secrets.items() if s is not None}})


EXPLAINED: dict[tuple[str, str], str] = {
    ("egress-tls-passthrough", "sleep tls://blobs.storage-vendor.example"): "FD04",
    ("serviceentry-static-endpoints", "sleep tcp://mysql.datacenter.internal:3306"): "FD04",
    ("serviceentry-resolution-none", "sleep tls://storage.cloudvendor.example"): "FD04",
    (
        "eastwest-auto-passthrough",
        "istio-eastwestgateway tls://outbound_.8080_._.inventory.warehouse.svc.cluster.local:15443 cert "
        "alpn=istio-peer-exchange,istio",
    ): "FD06",
}
"""Calls the twin answers differently from istiod, by (case, call), with the docs/fidelity.md entry that says why."""


def judge_calls(case: str, verdict: MeshVerdict) -> list[Judged]:
    """Every call of ``case`` on the twin's configuration and on istiod's (both from ``verdict``)."""
    ours = {v.name: with_agent_secrets(v.ours) for v in verdict.proxies}
    theirs = {v.name: with_agent_secrets(adopt(v.istiod, v.ours)) for v in verdict.proxies}
    out = []
    for c in calls(case):
        ca = issuer_ca(case, c.issuer) if c.issuer else None
        out.append(Judged(c, follow(c, ours, ca), follow(c, theirs, ca), case))
    return out


def issuer_ca(case: str, issuer: str) -> bytes:
    """The CA certificate (PEM) of ``issuer=NAMESPACE/SECRET``: that Secret of the case's world (``ca.crt`` or
    ``cacert``), the CA that issued the call's client certificate.

    The client presents it in place of a leaf it issued (a case holds no CA key): the gateway's path above such a
    leaf is the same, so :func:`meshbridge.pki.checks.peer_verifies` accepts a CA of the trust bundle (a
    self-signed one, or any with Envoy's partial chains) and refuses one the bundle lacks.

    Raises:
        KeyError: the case has no such Secret, or it holds no CA.
    """
    from meshbridge.istio.parse import secret_values
    from tests.oracle.corpus import load_case

    namespace, _, name = issuer.partition("/")
    secret = load_case(case).cfg.secret(namespace, name)
    if secret is None:
        raise KeyError(f"{case}: issuer={issuer}: no Secret {namespace}/{name} in the case")
    values = secret_values(secret)
    ca = values.get("ca.crt") or values.get("cacert")
    if not ca:
        raise KeyError(f"{case}: issuer={issuer}: Secret {namespace}/{name} holds no ca.crt or cacert")
    return ca


if __name__ == "__main__":
    from meshbridge.istiod.judge import judge_mesh
    from tests.oracle.corpus import case_names, load_case

    for name in sys.argv[1:] or case_names():
        case = load_case(name)
        for j in judge_calls(name, judge_mesh("mesh", case.cfg, case.proxies)):
            print(f"{name}: {j.call}\n  twin   {j.twin.outcome}\n  istiod {j.istiod.outcome}\n  {j.verdict}")
