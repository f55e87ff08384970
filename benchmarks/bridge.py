"""Benchmark: what the bridge costs, measured side by side in one run (``make bench``).

1. ``local up`` of the seed scenario (time to all-ready; target ≤ 3 s on 2 cores), its Envoys as Istio's default
   profile runs them: no access log (``local up --no-access-log``; ``--access-log`` measures them with it).
2. At a fixed rate (default 200 rps, open loop, latency from the intended send time), alternately:
   *direct* — HTTPS straight to the emulated ALB (ALB → Lambda), and *bridge* — plain HTTP from the app
   through its sidecar → egress gateway → (mTLS) → exporter gateway → ALB → Lambda. The difference is what
   the bridge adds (targets: ≤ 0.5 ms p50, ≤ 1 ms p99).
3. Where the CPU goes: during the last bridge run, the CPU time of every process of the twin (each Envoy,
   the ALB, the Lambda runtimes, the supervisor, the DNS) and of the load generator, per request. Their sum
   bounds the throughput: ``cores / CPU per request``.
4. A throughput probe through the bridge: rising rates, at most ``--connections`` requests in flight (no
   more than the Lambda's reserved concurrency, so the probe never measures throttling). The knee is the
   highest rate *held*: achieved ≥ 97 % of the offered rate, 0 errors and p99 ≤ 50 ms (target ≥ 1000 rps
   on 2 cores).
5. TLS handshakes per request between the gateways (egress cluster stats; target ≤ 0.01) and the memory of
   each Envoy: RSS, anonymous and PSS (target PSS ≤ 35 MB).
6. The machine's floors, for scale, with the same load generator: one bare Envoy answering with a direct
   response (no upstream, no TLS, no filters but the router), the same with the twin's access log, a bare
   Envoy forwarding to it (the floor of a hop), and the ALB emulator's HTTPS listener alone (an empty target
   group: its own 503, no invocation): the latency and the CPU per request of each.

The load comes from vegeta (``tools/vegeta``, built through :mod:`meshbridge.gotools`; ``--generator``), or
from the Python generator where Go is absent (one line says so).

    python benchmarks/bridge.py [--rate 200] [--seconds 10] [--probe 200,400,...] [--connections 32]
                                [--generator auto|vegeta|python] [--access-log]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_result
from benchmarks.loadgen import LoadResult
from benchmarks.vegeta import Generator, generator
from meshbridge.alb.server import AlbConfig, ListenerConfig, issue_listener_certificate
from meshbridge.cli.init_cmd import SEED_FILES, seed_text
from meshbridge.envoy.binary import envoy_path
from meshbridge.envoy.listeners import HCM
from meshbridge.envoy.listeners import access_log as access_log_config
from meshbridge.envoy.placement import Placement
from meshbridge.local.process import ProcessId, spawn, stop
from meshbridge.local.twin import LocalTwin
from meshbridge.spec import load_bridge
from meshbridge.tabwriter import format_table

EGRESS_CLUSTER = "outbound|80||lambda.external"
KNEE_P99_MS = 50.0
KNEE_ACHIEVED = 0.97


def envoy_stats(admin: str) -> dict[str, int]:
    """Counters and gauges of one Envoy (``/stats``), name → value."""
    text = httpx.get(f"http://{admin}/stats", timeout=5).text
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            out[name] = int(value)
    return out


def memory_mb(pid: int) -> dict[str, float]:
    """RSS of ``pid`` in MB, split: anonymous (the process's own), file-backed (the Envoy binary's pages,
    shared by every Envoy), and PSS (its fair share of shared pages)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            out["Pss"] = round(int(line.split()[1]) / 1024, 1)
    return out


def _proc_stat(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds user + system) of ``pid`` from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_component(components: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process, plus ``Lambda runtimes``: every descendant of an ALB (the
    awslambdaric processes it started). Processes that exited are left out."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = _proc_stat(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    out = {name: stats[pid][1] for name, pid in components.items() if pid in stats}
    albs = {pid for name, pid in components.items() if name.endswith("/alb-lambda")}
    runtimes = 0.0
    for ppid, cpu in stats.values():
        while ppid > 1 and ppid not in albs:
            ppid = stats.get(ppid, (0, 0.0))[0]
        if ppid in albs:
            runtimes += cpu
    out["Lambda runtimes"] = runtimes
    return out


DIRECT_RESPONSE = {"direct_response": {"status": 200, "body": {"inline_string": "floor"}}}


def bare_envoy(
    action: dict[str, Any], *, access_log: Path | None = None, upstream: int | None = None
) -> dict[str, Any]:
    """A bare Envoy's bootstrap: one plain-HTTP listener whose only route does ``action`` (a direct response,
    or ``{"route": {"cluster": "upstream"}}`` to 127.0.0.1:``upstream``), the router as its only filter, and
    optionally the twin's file access log in Istio's format."""
    hcm: dict[str, Any] = {
        "@type": HCM,
        "stat_prefix": "bare",
        "route_config": {
            "virtual_hosts": [{"name": "bare", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, **action}]}]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }
        ],
    }
    if access_log is not None:
        hcm["access_log"] = access_log_config(Placement(address="127.0.0.1", xds_dir=Path(), access_log=access_log))
    config: dict[str, Any] = {
        "static_resources": {
            "listeners": [
                {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                }
            ]
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
    }
    if upstream is not None:
        address = {"socket_address": {"address": "127.0.0.1", "port_value": upstream}}
        config["static_resources"]["clusters"] = [
            {
                "name": "upstream",
                "type": "STATIC",
                "load_assignment": {
                    "cluster_name": "upstream",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
                },
            }
        ]
    return config


def start_bare(work: Path, name: str, config: dict[str, Any]) -> tuple[Popen[bytes], int]:
    """Start a bare Envoy with ``config`` (2 workers, as the twin's); its process and its listener's port."""
    (work / f"{name}.json").write_text(json.dumps(config))
    admin_file = work / f"{name}.admin"
    admin_file.unlink(missing_ok=True)  # a previous run's address would be read as this one's
    argv = [str(envoy_path()), "-c", str(work / f"{name}.json"), "--concurrency", "2", "--disable-hot-restart"]
    argv += ["--log-level", "error", "--admin-address-path", str(admin_file)]
    proc = spawn(argv, log=work / f"{name}.log")
    deadline = time.monotonic() + 10
    while not admin_file.exists() or not admin_file.read_text():
        if time.monotonic() > deadline:
            stop([ProcessId.of(proc.pid)])
            raise RuntimeError(f"bare Envoy did not start: see {work / f'{name}.log'}")
        time.sleep(0.05)
    listeners = httpx.get(f"http://{admin_file.read_text().strip()}/listeners?format=json", timeout=5).json()
    return proc, listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]


def machine_floor(work: Path, load: Generator, rate: float, seconds: float) -> dict[str, dict[str, float]]:
    """The machine's floors under the same open-loop load, each with its p50/p99 (ms) and CPU µs per request
    of the measured Envoy and of the load generator:

    * ``direct``: one bare Envoy answering a direct response (no upstream, no TLS);
    * ``access_log``: the same with the twin's access log (what the log alone costs);
    * ``proxy``: a bare Envoy forwarding plain HTTP to the first (the measured one is the forwarding hop).
    """
    floors: dict[str, dict[str, float]] = {}
    answer, port = start_bare(work, "bare", bare_envoy(DIRECT_RESPONSE))
    try:
        floors["direct"] = _floor(load, answer.pid, f"http://127.0.0.1:{port}/", rate, seconds)
        logged, logged_port = start_bare(work, "logged", bare_envoy(DIRECT_RESPONSE, access_log=work / "access.log"))
        try:
            floors["access_log"] = _floor(load, logged.pid, f"http://127.0.0.1:{logged_port}/", rate, seconds)
        finally:
            stop([ProcessId.of(logged.pid)])
        hop, hop_port = start_bare(work, "hop", bare_envoy({"route": {"cluster": "upstream"}}, upstream=port))
        try:
            floors["proxy"] = _floor(load, hop.pid, f"http://127.0.0.1:{hop_port}/", rate, seconds)
        finally:
            stop([ProcessId.of(hop.pid)])
    finally:
        stop([ProcessId.of(answer.pid)])
    return floors


def alb_listener_floor(work: Path, load: Generator, rate: float, seconds: float) -> dict[str, float]:
    """The ALB emulator's HTTPS listener alone, under the same load: the emulator with an empty target group
    (``python -m meshbridge.alb.server``, as the twin runs it) answers each request itself with its 503 page,
    so one HTTPS exchange through aiohttp and the emulator's own log line, and no Lambda invocation (no event,
    no Runtime API exchanges), is what its CPU per request measures."""
    folder = work / "alb-floor"
    ca, cert, key = issue_listener_certificate(["alb.local"], folder)
    listener = ListenerConfig(host="127.0.0.1", port=0, protocol="HTTPS", cert_file=cert, key_file=key)
    (folder / "alb.json").write_text(AlbConfig(listeners=(listener,)).to_json())
    log = folder / "alb.log"
    log.unlink(missing_ok=True)  # a previous run's ready line would give its port
    proc = spawn([sys.executable, "-m", "meshbridge.alb.server", str(folder / "alb.json")], log=log)
    try:
        deadline = time.monotonic() + 10
        while '"ready"' not in (log.read_text() if log.exists() else ""):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the ALB emulator did not start: see {log}")
            time.sleep(0.05)
        port = json.loads(log.read_text().splitlines()[0])["ports"][0]
        url = f"https://127.0.0.1:{port}/"
        return _floor(load, proc.pid, url, rate, seconds, cafile=str(ca), server_hostname="alb.local", expect=503)
    finally:
        stop([ProcessId.of(proc.pid)])


def _floor(load: Generator, pid: int, url: str, rate: float, seconds: float, **kw: Any) -> dict[str, float]:
    load(url, 50, 1, **kw)
    before = _proc_stat(pid)[1]
    r = load(url, rate, seconds, **kw)
    cpu = _proc_stat(pid)[1] - before
    return {
        "p50_ms": round(r.percentile(50), 3),
        "p99_ms": round(r.percentile(99), 3),
        "server_cpu_us_per_request": round(cpu / r.sent * 1e6),
        "load_generator_cpu_us_per_request": round(r.generator_cpu_s / r.sent * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--probe", default="200,400,600,800,1000,1250,1500,1750,2000")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--generator", choices=("auto", "vegeta", "python"), default="auto")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="run the twin's Envoys with their access logs (local up's default); without it, as Istio's default "
        "profile runs them (local up --no-access-log)",
    )
    args = parser.parse_args()
    generator_name, load = generator(args.generator)

    work = Path(tempfile.mkdtemp(prefix="meshbridge-bench-"))
    for name in SEED_FILES:
        (work / name).write_text(seed_text(name))
    # Lambda's default account concurrency is 1000; the seed's local backend caps it at 10. Lift the cap to
    # the probe's connections so the probe measures the bridge, not throttling (which the ALB answers 502).
    capped = f"timeout: 3\n          memory: 128\n          concurrency: {args.connections}"
    spec = (work / "bridge.yaml").read_text().replace("timeout: 3\n          memory: 128", capped)
    (work / "bridge.yaml").write_text(spec)
    twin = LocalTwin(load_bridge(work / "bridge.yaml"), work / "bridge.yaml", work / ".meshbridge")
    # the machine is shared: its 1-minute load average at the start and the end says how much
    result: dict[str, Any] = {
        "load_generator": generator_name,
        "access_log": args.access_log,
        "load_average": [round(os.getloadavg()[0], 2)],
    }
    try:
        report = twin.up(access_log=args.access_log)
        result["local_up_s"] = round(report.seconds, 3)
        plan = twin.plan()
        alb = plan["albs"][0]
        https = next(x for x in alb["listeners"] if x["protocol"] == "HTTPS")
        direct_url = f"https://{alb['address']}:{https['port']}/hello-world"
        view = twin.app_view()
        sidecar_port = 80 + view.low_port_offset
        bridge_url = f"http://{view.sidecar_address}:{sidecar_port}/hello-world"
        tls = {"cafile": plan["public_ca"], "server_hostname": alb["host"]}
        egress_admin = plan["proxies"]["gke/istio-egressgateway"]["admin"]

        # handshakes are counted from the first request on: the warm-up opens the gateways' connections
        before = envoy_stats(egress_admin)
        # warm both paths (cold starts of the Lambda environments are not what we measure)
        for _ in range(2):
            load(bridge_url, 50, 1, headers={"Host": "lambda.external"})
            load(direct_url, 50, 1, **tls)
        runs: dict[str, list[dict[str, Any]]] = {"direct": [], "bridge": []}
        components = {s.name: s.pid for s in twin.status() if s.pid}
        for _ in range(2):
            runs["direct"].append(load(direct_url, args.rate, args.seconds, **tls).summary())
            cpu_before = cpu_by_component(components)
            bridged = load(bridge_url, args.rate, args.seconds, headers={"Host": "lambda.external"})
            cpu_after = cpu_by_component(components)
            runs["bridge"].append(bridged.summary())
        after = envoy_stats(egress_admin)
        result.update(_cpu_per_request(cpu_before, cpu_after, bridged, generator_name))
        result["fixed_rate"] = runs
        result["added_ms"] = {
            p: round(
                _median([r[f"{p}_ms"] for r in runs["bridge"]]) - _median([r[f"{p}_ms"] for r in runs["direct"]]), 3
            )
            for p in ("p50", "p90", "p99")
        }
        result["gateway_handshakes"] = _handshakes(before, after)
        probe = _probe(load, bridge_url, args.probe, args.connections)
        result["throughput_probe"] = probe
        result["knee_rps"] = max((p["rate"] for p in probe if p["held"]), default=0)
        result["envoy_memory_mb"] = {s.name: memory_mb(s.pid) for s in twin.status() if s.kind == "envoy" and s.pid}
    finally:
        twin.down()
    try:
        result["machine_floor"] = machine_floor(work, load, args.rate, args.seconds)
        result["machine_floor"]["alb_listener"] = alb_listener_floor(work, load, args.rate, args.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_average"].append(round(os.getloadavg()[0], 2))
    path = write_result("bridge", result)
    rows = _table(result, args.rate)
    print(format_table(rows))
    print(f"→ {path}")


def _cpu_per_request(
    before: dict[str, float], after: dict[str, float], run: LoadResult, generator_name: str
) -> dict[str, Any]:
    """CPU µs per request of each process of the twin and of the load generator over ``run``, their sum, the
    rate that sum allows on this machine's CPUs, and the generator's context switches per request."""
    per_request = {name: round((after[name] - before.get(name, 0.0)) / run.sent * 1e6) for name in after}
    per_request[f"load generator ({generator_name})"] = round(run.generator_cpu_s / run.sent * 1e6)
    total_us = sum(per_request.values())
    out: dict[str, Any] = {
        "cpu_us_per_request": dict(sorted(per_request.items(), key=lambda kv: -kv[1])),
        "cpu_us_per_request_total": total_us,
        "cpu_bound_rps": round((os.cpu_count() or 1) * 1e6 / total_us) if total_us else None,
    }
    if run.generator_switches is not None:
        out["load_generator_switches_per_request"] = round(run.generator_switches / run.sent, 1)
    return out


def _handshakes(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    """TLS handshakes of the egress gateway's cluster to the exporter between two ``/stats`` readings, per request."""
    handshakes = after.get(f"cluster.{EGRESS_CLUSTER}.ssl.handshake", 0) - before.get(
        f"cluster.{EGRESS_CLUSTER}.ssl.handshake", 0
    )
    requests = after.get(f"cluster.{EGRESS_CLUSTER}.upstream_rq_total", 0) - before.get(
        f"cluster.{EGRESS_CLUSTER}.upstream_rq_total", 0
    )
    return {
        "handshakes": handshakes,
        "requests": requests,
        "per_request": round(handshakes / requests, 5) if requests else None,
    }


def _probe(load: Generator, url: str, rates: str, connections: int) -> list[dict[str, Any]]:
    """The throughput probe: 5 s at each of ``rates`` (comma-separated) through the bridge, until one is not held.

    It starts with the Lambda's environments warm, as the fixed-rate runs do: 2 s at the highest rate first
    start as many as that load needs (up to ``connections``). Without it each step's new environments would
    start during the step (an init of 300-600 ms on a busy machine while the load waits behind it): a
    measure of Lambda's scaling, not of the bridge's throughput.
    """
    steps = [float(r) for r in rates.split(",")]
    load(url, max(steps), 2, headers={"Host": "lambda.external"}, connections=connections)
    probe = []
    for rate in steps:
        r = load(url, rate, 5, headers={"Host": "lambda.external"}, connections=connections).summary()
        r["held"] = _held(r)
        probe.append(r)
        print(
            f"probe {rate:.0f} rps: ok {r['ok']}/{r['sent']}, achieved {r['achieved_rps']}, "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms{'' if r['held'] else '  (not held)'}",
            file=sys.stderr,
        )
        if not r["held"]:
            break
    return probe


HOPS = {
    "gke/sleep": "app sidecar",
    "gke/istio-egressgateway": "egress gateway",
    "eks/istio-ingressgateway": "exporter gateway",
}
"""The Envoys of the seed's path, in order, and what each is."""


def _table(result: dict[str, Any], rate: float) -> list[list[object]]:
    """The run's figures, each against its goal."""
    rows: list[list[object]] = [["METRIC", "VALUE", "GOAL"]]
    rows.append(["load average (1 min), start / end", " / ".join(map(str, result["load_average"])), ""])
    rows.append(["local up to all-ready", f"{result['local_up_s']} s", "≤ 3 s"])
    for p, target in (("p50", "≤ 0.5 ms"), ("p90", ""), ("p99", "≤ 1 ms")):
        d = _median([r[f"{p}_ms"] for r in result["fixed_rate"]["direct"]])
        b = _median([r[f"{p}_ms"] for r in result["fixed_rate"]["bridge"]])
        rows.append(
            [
                f"{p} at {rate:.0f} rps: direct / bridge / added",
                f"{d:.2f} / {b:.2f} / {result['added_ms'][p]:.2f} ms",
                target,
            ]
        )
    rows.append(
        [f"knee (0 errors, p99 ≤ {KNEE_P99_MS:.0f} ms)", f"{result['knee_rps']:.0f} rps{_above(result)}", "≥ 1000"]
    )
    total, bound = result["cpu_us_per_request_total"], result["cpu_bound_rps"]
    rows.append(["CPU per request, whole path + generator", f"{total} µs → ≤ {bound} rps on {os.cpu_count()} CPUs", ""])
    floors = result["machine_floor"]
    direct, proxy = floors["direct"]["server_cpu_us_per_request"], floors["proxy"]["server_cpu_us_per_request"]
    listener = floors["alb_listener"]["server_cpu_us_per_request"]
    for name, us in result["cpu_us_per_request"].items():
        goal = {"eks/alb-lambda": "≤ 250 µs"}.get(name, "≤ 50 µs" if name.startswith("load generator") else "")
        if name in HOPS:
            ratio = f" = {us / direct:.1f}× direct, {us / proxy:.1f}× proxy floor" if direct and proxy else ""
            rows.append([f"  {HOPS[name]}", f"{us} µs{ratio}", "≤ 1.5× floor"])
        elif name == "eks/alb-lambda":
            split = f"listener {listener} + invoke {us - listener}"
            rows.append([f"  {name}", f"{us} µs = {split}", goal])
        elif name.startswith("load generator") and result.get("load_generator_switches_per_request") is not None:
            switches = result["load_generator_switches_per_request"]
            rows.append([f"  {name}", f"{us} µs ({switches} switches/request)", goal])
        else:
            rows.append([f"  {name}", f"{us} µs", goal])
    hs = result["gateway_handshakes"]
    rows.append(
        [
            "TLS handshakes/request, egress → exporter",
            f"{hs['per_request']} ({hs['handshakes']}/{hs['requests']})",
            "≤ 0.01",
        ]
    )
    for name, mem in result["envoy_memory_mb"].items():
        value = f"{mem['VmRSS']} / {mem['RssAnon']} / {mem['Pss']} MB"
        rows.append([f"memory {name.split('/')[-1]}: RSS / anon / PSS", value, "PSS ≤ 35 MB"])
    for name, what in (
        ("direct", "bare Envoy, direct response"),
        ("access_log", "the same + an access log"),
        ("proxy", "bare Envoy forwarding to it"),
        ("alb_listener", "ALB listener alone (its 503)"),
    ):
        f = floors[name]
        rows.append(
            [
                f"floor: {what}",
                f"p50 {f['p50_ms']:.2f}, p99 {f['p99_ms']:.2f} ms; {f['server_cpu_us_per_request']} µs "
                f"(gen {f['load_generator_cpu_us_per_request']})",
                "",
            ]
        )
    return rows


def _above(result: dict[str, Any]) -> str:
    """`` (every step held)`` when the probe never found a rate it could not hold: the knee is above its top."""
    probe = result["throughput_probe"]
    return " (every step held)" if probe and all(p["held"] for p in probe) else ""


def _held(r: dict[str, Any]) -> bool:
    """Whether a probe step held its rate: 0 errors, achieved ≥ 97 % of offered, p99 ≤ 50 ms."""
    return (
        not r["errors"]
        and r["ok"] == r["sent"]
        and r["achieved_rps"] >= KNEE_ACHIEVED * r["rate"]
        and r["p99_ms"] <= KNEE_P99_MS
    )


def _median(values: list[float]) -> float:
    s = sorted(values)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


if __name__ == "__main__":
    main()
