"""Benchmark: the bridge across an emulated WAN, in round trips (``python benchmarks/wan.py``).

Toxiproxy (``tools/toxiproxy``, built from its pinned Go module through :mod:`meshbridge.gotools`) is put between
the egress gateway and the exporter's gateway of the seed's local twin: the egress's cluster for the export is
pointed at the proxy, which adds ``--latency`` ms (default 30) to every chunk in each direction, so one round
trip (RTT) is twice that. Optional ``--jitter`` (ms) and ``--bandwidth`` (KB/s, each direction).

Measured per variant of the egress's cluster (``rendered``: what meshbridge renders; the others change one
setting of that cluster to show what it is worth), each as round trips over the emulated WAN (the latency
minus the same request's latency without the WAN, divided by the RTT):

* first: a request on the first connection of a new cluster (a full TLS handshake, no session to resume);
* cold: a request on a new connection (Toxiproxy is disabled and enabled, which closes the gateways'
  connection); an L4 proxy answers TCP's handshake itself, so the measured figure lacks that round trip and
  the table adds it (``cold incl. TCP``); the physical floor is 3 (TCP, TLS 1.3, the request);
* warm: a request on the pooled connection (floor 1);
* 1, 10 and 100 concurrent callers, each sending 5 requests in turn from a cold pool: p50 and p99 in round
  trips and the connections the egress opened across the WAN.

Nothing of the product changes: the variants rewrite the running egress's file-based cluster configuration.

    python benchmarks/wan.py [--latency 30] [--jitter 0] [--bandwidth 0] [--variants rendered,http1,tls12]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bridge import envoy_stats
from benchmarks.common import write_result
from meshbridge import gotools
from meshbridge.cli.init_cmd import SEED_FILES, seed_text
from meshbridge.fsutil import write_atomic
from meshbridge.gotools import GoBinary, GoTool, ToolUnavailable, require_module
from meshbridge.local.process import ProcessId, spawn, stop
from meshbridge.local.twin import LocalTwin
from meshbridge.spec import load_bridge
from meshbridge.tabwriter import format_table

TOXIPROXY = GoTool(
    module="toxiproxy",
    title="Toxiproxy",
    purpose="the benchmarks' latency-injecting proxy",
    make_target="toxiproxy",
    binaries=(GoBinary("toxiproxy-server", "github.com/Shopify/toxiproxy/v2/cmd/server", "MESHBRIDGE_TOXIPROXY"),),
    cold="about a minute",
    label=lambda d: f"Toxiproxy {require_module(d, 'github.com/Shopify/toxiproxy/v2')}",
)
"""Toxiproxy's server as a :class:`~meshbridge.gotools.GoTool` (``tools/toxiproxy``)."""

EGRESS = "gke/istio-egressgateway"
CLUSTER = "outbound|80||lambda.external"


def _tls12(cluster: dict[str, Any]) -> None:
    params = cluster["transport_socket"]["typed_config"]["common_tls_context"].setdefault("tls_params", {})
    params["tls_maximum_protocol_version"] = "TLSv1_2"


def _http1(cluster: dict[str, Any]) -> None:
    """The cluster as rendered before HTTP/2 between the gateways: HTTP/1.1, no ALPN."""
    cluster.pop("typed_extension_protocol_options", None)
    cluster["transport_socket"]["typed_config"]["common_tls_context"].pop("alpn_protocols", None)


VARIANTS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "rendered": ("as meshbridge renders it", lambda _: None),
    "http1": ("HTTP/1.1 between the gateways (the rendering before HTTP/2)", _http1),
    "tls12": ("TLS 1.2 at most (a peer without TLS 1.3)", _tls12),
}


class Toxiproxy:
    """A running Toxiproxy server and one proxy in it, driven through its HTTP API."""

    def __init__(self, binary: Path, work: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.api = f"http://127.0.0.1:{port}"
        self.latency_ms = self.jitter_ms = 0
        self.proc = spawn([str(binary), "-host", "127.0.0.1", "-port", str(port)], log=work / "toxiproxy.log")
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{self.api}/version", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Toxiproxy did not start: see {work / 'toxiproxy.log'}") from None
                time.sleep(0.05)

    def proxy(self, upstream: str, latency_ms: int, jitter_ms: int, bandwidth_kbs: int) -> str:
        """Create the WAN proxy to ``upstream`` (host:port) with its toxics; its listen address."""
        made = httpx.post(f"{self.api}/proxies", json={"name": "wan", "listen": "127.0.0.1:0", "upstream": upstream})
        made.raise_for_status()
        self.latency_ms, self.jitter_ms = latency_ms, jitter_ms
        for stream in ("upstream", "downstream"):
            toxics = [("latency", {"latency": latency_ms, "jitter": jitter_ms})]
            if bandwidth_kbs:
                toxics.append(("bandwidth", {"rate": bandwidth_kbs}))
            for kind, attributes in toxics:
                body = {"name": f"{kind}_{stream}", "type": kind, "stream": stream, "attributes": attributes}
                httpx.post(f"{self.api}/proxies/wan/toxics", json=body).raise_for_status()
        return str(made.json()["listen"])

    def toxics(self, enabled: bool) -> None:
        """Add (True) or remove the latency of both directions, keeping the proxy."""
        for stream in ("upstream", "downstream"):
            name = f"latency_{stream}"
            if enabled:
                body = {
                    "name": name,
                    "type": "latency",
                    "stream": stream,
                    "attributes": {"latency": self.latency_ms, "jitter": self.jitter_ms},
                }
                httpx.post(f"{self.api}/proxies/wan/toxics", json=body).raise_for_status()
            else:
                httpx.delete(f"{self.api}/proxies/wan/toxics/{name}").raise_for_status()

    def cut(self) -> None:
        """Close every connection through the proxy (disable, then enable it): the next request is cold."""
        for enabled in (False, True):
            httpx.post(f"{self.api}/proxies/wan", json={"enabled": enabled}).raise_for_status()
        time.sleep(0.3)  # the egress sees the close and drops the connection from its pool

    def stop(self) -> None:
        stop([ProcessId.of(self.proc.pid)])


def point_egress(cds: Path, admin: str, address: str, variant: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the egress's cluster for the export to reach ``address`` (the proxy), changed by ``variant``, and
    wait until the egress runs it."""
    data = yaml.safe_load(cds.read_text())
    cluster = next(r for r in data["resources"] if r["name"] == CLUSTER)
    host, _, port = address.rpartition(":")
    cluster["type"] = "STATIC"
    for key in ("dns_lookup_family", "dns_refresh_rate", "respect_dns_ttl", "dns_jitter", "typed_dns_resolver_config"):
        cluster.pop(key, None)
    endpoint = {"address": {"socket_address": {"address": host, "port_value": int(port)}}}
    cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": [{"endpoint": endpoint}]}]
    variant(cluster)
    marker = f"wan-{time.monotonic_ns()}"  # a new version even when the variant changes nothing
    cluster.setdefault("metadata", {}).setdefault("filter_metadata", {})["bench"] = {"variant": marker}
    write_atomic(cds, yaml.safe_dump(data, sort_keys=False))
    deadline = time.monotonic() + 10
    while marker not in httpx.get(f"http://{admin}/config_dump?resource=dynamic_active_clusters", timeout=5).text:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the egress did not take the rewritten {cds}")
        time.sleep(0.1)


def timed(client: httpx.Client, url: str) -> float:
    """One request's latency in ms (it must succeed)."""
    t0 = time.perf_counter()
    r = client.get(url, headers={"Host": "lambda.external"})
    took = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"the bridge answered {r.status_code}: {r.text[:200]}")
    return took


async def callers(url: str, n: int, each: int, throttled: list[int]) -> list[float]:
    """``n`` concurrent callers, each sending ``each`` requests in turn; every latency in ms. Answers the ALB
    throttles (its 502 beyond the Lambda's reserved concurrency) cross the WAN as well and count in
    ``throttled[0]``."""
    out: list[float] = []
    connector = aiohttp.TCPConnector(limit=n)
    async with aiohttp.ClientSession(connector=connector, headers={"Host": "lambda.external"}) as session:

        async def caller() -> None:
            for _ in range(each):
                t0 = time.perf_counter()
                async with session.get(url) as r:
                    await r.read()
                    if r.status not in (200, 502):  # 502: the ALB's throttle, an answer from across the WAN too
                        raise RuntimeError(f"the bridge answered {r.status}")
                    throttled[0] += r.status == 502
                out.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(caller() for _ in range(n)))
    return out


def measure(
    proxy: Toxiproxy, url: str, admin: str, rtt_ms: float, base_ms: float, again: Callable[[], None]
) -> dict[str, Any]:
    """First, cold, warm and concurrent figures of the current egress configuration, in round trips. ``again``
    gives the egress its cluster anew (no TLS session to resume: the next connection is a full handshake)."""

    def rtts(ms: float) -> float:
        return round((ms - base_ms) / rtt_ms, 2)

    out: dict[str, Any] = {}
    first, cold, warm = [], [], []
    with httpx.Client(timeout=10) as client:
        for _ in range(3):
            again()
            first.append(timed(client, url))
        out["first_rtt"] = rtts(statistics.median(first))
        for _ in range(5):
            proxy.cut()
            cold.append(timed(client, url))
            warm += [timed(client, url) for _ in range(4)]
    out["cold_ms"] = round(statistics.median(cold), 1)
    out["cold_rtt"] = rtts(statistics.median(cold))
    out["cold_rtt_incl_tcp"] = round(out["cold_rtt"] + 1, 2)
    out["warm_ms"] = round(statistics.median(warm), 1)
    out["warm_rtt"] = rtts(statistics.median(warm))
    for n in (1, 10, 100):
        proxy.cut()
        before = envoy_stats(admin).get(f"cluster.{CLUSTER}.upstream_cx_total", 0)
        throttled = [0]
        lat = sorted(asyncio.run(callers(url, n, 5, throttled)))
        opened = envoy_stats(admin).get(f"cluster.{CLUSTER}.upstream_cx_total", 0) - before
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        out[f"callers_{n}"] = {
            "p50_rtt": rtts(statistics.median(lat)),
            "p99_rtt": rtts(p99),
            "connections": opened,
            "throttled": throttled[0],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=int, default=30, help="ms added one way")
    parser.add_argument("--jitter", type=int, default=0, help="ms of jitter one way")
    parser.add_argument("--bandwidth", type=int, default=0, help="KB/s each way (0: unlimited)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--build", action="store_true", help="only build Toxiproxy (make toxiproxy)")
    args = parser.parse_args()
    try:
        binary = gotools.ensure_tool(TOXIPROXY, lambda line: print(line, file=sys.stderr, flush=True))
    except ToolUnavailable as e:
        print(f"wan: skipped: {e}", file=sys.stderr)
        return
    if args.build:
        print(binary["toxiproxy-server"])
        return
    work = Path(tempfile.mkdtemp(prefix="meshbridge-wan-"))
    for name in SEED_FILES:
        (work / name).write_text(seed_text(name))
    # the seed's Lambda runs 10 environments at most; 32 serve most of the 100 callers (the rest are throttled)
    spec = (work / "bridge.yaml").read_text()
    spec = spec.replace("memory: 128", "memory: 128\n          concurrency: 32")
    (work / "bridge.yaml").write_text(spec)
    twin = LocalTwin(load_bridge(work / "bridge.yaml"), work / "bridge.yaml", work / ".meshbridge")
    result: dict[str, Any] = {"latency_ms": args.latency, "jitter_ms": args.jitter, "bandwidth_kbs": args.bandwidth}
    proxy: Toxiproxy | None = None
    try:
        twin.up()
        proxy = Toxiproxy(binary["toxiproxy-server"], work)
        plan = twin.plan()
        view = twin.app_view()
        url = f"http://{view.sidecar_address}:{80 + view.low_port_offset}/hello-world"
        admin = plan["proxies"][EGRESS]["admin"]
        exporter = f"{plan['dns_zones']['gke']['ingress.eks.example.com']}:{_exporter_port(plan)}"
        listen = proxy.proxy(exporter, args.latency, args.jitter, args.bandwidth)
        cds = work / ".meshbridge" / "local" / EGRESS / "cds.yaml"
        original = cds.read_text()
        rtt_ms = 2 * args.latency
        for name in args.variants.split(","):
            point_egress(cds, admin, listen, VARIANTS[name][1])
            proxy.toxics(False)
            # every Lambda environment the callers need is started first: cold starts are not the WAN's
            asyncio.run(callers(url, 32, 3, [0]))
            with httpx.Client(timeout=10) as client:
                base_ms = statistics.median(timed(client, url) for _ in range(20))
            proxy.toxics(True)
            again = partial(point_egress, cds, admin, listen, VARIANTS[name][1])
            result[name] = {
                "what": VARIANTS[name][0],
                "no_wan_ms": round(base_ms, 2),
                **measure(proxy, url, admin, rtt_ms, base_ms, again),
            }
            print(f"{name}: {result[name]}", file=sys.stderr, flush=True)
        write_atomic(cds, original)
    finally:
        if proxy is not None:
            proxy.stop()
        twin.down()
        shutil.rmtree(work, ignore_errors=True)  # the twin's state holds the meshes' CA and gateway keys
    path = write_result("wan", result)
    print(format_table(_table(result, args.variants.split(","))))
    print(f"→ {path}")


def _exporter_port(plan: dict[str, Any]) -> int:
    """The local port of the exporter gateway's public 443 (the twin remaps it)."""
    return next(
        int(x["local"]) for x in plan["endpoint_ports"] if x["host"] == "ingress.eks.example.com" and x["port"] == 443
    )


def _table(result: dict[str, Any], variants: list[str]) -> list[list[object]]:
    rows: list[list[object]] = [
        ["VARIANT", "FIRST", "COLD (+TCP)", "WARM", "1 CALLER p50/p99 (conns)", "10 CALLERS", "100 CALLERS"]
    ]
    for name in variants:
        r = result[name]
        row: list[object] = [name, r["first_rtt"], f"{r['cold_rtt']} ({r['cold_rtt_incl_tcp']})", r["warm_rtt"]]
        for n in (1, 10, 100):
            c = r[f"callers_{n}"]
            row.append(f"{c['p50_rtt']} / {c['p99_rtt']} ({c['connections']})")
        rows.append(row)
    rows.append(["floor (+TCP)", 2, "2 (3)", 1, "1 / 1", "1 / 1", "1 / 1"])
    return rows


if __name__ == "__main__":
    main()
