"""``istioctl proxy-config``-style tables from an Envoy admin ``/config_dump`` (pure).

One printer for the local twin's Envoys and for real gateways (their dump fetched through the API server's
port-forward), reading the dump through :class:`~meshbridge.envoy.view.EnvoyView`. Columns, sorting and cell
formats follow istioctl's writers (``istioctl/pkg/writer/envoy/configdump/{cluster,listener,route}.go`` and
``writer/compare/sds``); tables are aligned like Go's ``tabwriter`` with padding 5, as those writers set it.
A table wider than a terminal (:data:`~meshbridge.tabwriter.TERMINAL_WIDTH`) wraps its long names instead, and
the secrets table leaves out NOT BEFORE; ``wide`` keeps istioctl's layout whatever its width.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from cryptography import x509

from meshbridge.envoy.names import parse_cluster_name
from meshbridge.envoy.view import TCP_PROXY_FILTER, EnvoyView, SecretEntry, inline, listener_chains
from meshbridge.errors import PkiError
from meshbridge.istio.envoyfilter import HCM_FILTER
from meshbridge.pki.x509 import parse_certificate
from meshbridge.tabwriter import TERMINAL_WIDTH, fit_table, format_table

Kind = Literal["routes", "clusters", "listeners", "secret"]
KINDS: tuple[Kind, ...] = ("routes", "clusters", "listeners", "secret")


_ALIASES: dict[str, Kind] = {
    **dict.fromkeys(("routes", "route", "r"), "routes"),
    **dict.fromkeys(("clusters", "cluster", "c"), "clusters"),
    **dict.fromkeys(("listeners", "listener", "l"), "listeners"),
    **dict.fromkeys(("secret", "secrets", "s"), "secret"),
}


def proxy_config_kind(value: str) -> Kind:
    """The table kind for a name istioctl accepts (``route``, ``routes``, ``r``, ...).

    Raises:
        ValueError: not one of them (the message lists the four kinds).
    """
    kind = _ALIASES.get(value.lower())
    if kind is None:
        raise ValueError(f"{value!r} is not a proxy-config kind; use routes, clusters, listeners or secret")
    return kind


def format_proxy_config(
    kind: Kind, config_dump: dict[str, Any], now: dt.datetime | None = None, *, wide: bool = False
) -> str:
    """The table istioctl prints for ``proxy-config <kind>`` (verbose, ``-o short``), fitted to a terminal.

    Args:
        kind: ``routes``, ``clusters``, ``listeners`` or ``secret``.
        config_dump: the JSON of Envoy's ``/config_dump`` (``?include_eds`` optional).
        now: the time VALID CERT is judged at (secrets); default now.
        wide: istioctl's own columns and spacing, however wide (``-o wide``); else the table fits
            :data:`~meshbridge.tabwriter.TERMINAL_WIDTH` columns: long names wrap, and the secrets table
            leaves out NOT BEFORE.

    Raises:
        ValueError: ``kind`` is not one of the four.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown proxy-config kind {kind!r}; use one of {', '.join(KINDS)}")
    view = EnvoyView.from_config_dump(config_dump)
    if kind == "routes":
        return _routes(view, wide)
    if kind == "clusters":
        return _clusters(view, wide)
    if kind == "listeners":
        return _listeners(view, wide)
    return _secrets(view, now or dt.datetime.now(dt.UTC), wide)


def _table(rows: list[list[object]], wrap: list[int], wide: bool) -> str:
    """istioctl's layout (padding 5) when ``wide`` or when it fits a terminal; else :func:`fit_table`'s, its
    ``wrap`` columns (the long names) wrapping onto continuation lines."""
    table = format_table(rows, padding=5)
    if wide or max(len(line) for line in table.splitlines()) <= TERMINAL_WIDTH:
        return table
    return fit_table(rows, TERMINAL_WIDTH, wrap=wrap)


# -- routes ----------------------------------------------------------------------------------------------


def _route_name_key(rc: dict[str, Any]) -> tuple[int, int, str]:
    name = str(rc.get("name", ""))
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _routes(view: EnvoyView, wide: bool) -> str:
    """One row per route, sorted by route configuration name, then domains, then match.

    A virtual host's routes keep their order (Envoy takes the first that matches); virtual hosts are sorted
    by (route configuration, domains, virtual host name, matches), so no row moves between runs, not even
    among the static configurations, which share the empty name.
    """
    rows: list[list[object]] = [["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]]
    groups: list[tuple[tuple[Any, ...], list[list[object]]]] = []
    for static, part in enumerate((view.route_configs, view.static_route_configs)):
        for rc in part:
            name = rc.get("name", "")
            for vh in rc.get("virtual_hosts", []):
                domains = describe_domains(vh.get("domains", []))
                routes = vh.get("routes", [])
                group: list[list[object]] = [
                    [name, vh.get("name", ""), domains, describe_match(r.get("match", {})), _management(r)]
                    for r in routes
                    if r.get("route", {}).get("cluster") != "PassthroughCluster"
                ]
                if not routes:
                    group.append([name, vh.get("name", ""), domains, "/*", "404"])
                key = (static, _route_name_key(rc), domains, str(vh.get("name", "")), [str(g[3]) for g in group])
                groups.append((key, group))
    for _, group in sorted(groups, key=lambda g: g[0]):
        rows.extend(group)
    return _table(rows, [0, 1, 2, 4], wide)  # NAME, VHOST NAME, DOMAINS, VIRTUAL SERVICE


def describe_domains(domains: list[str]) -> str:
    """One domain as is; several: no ``:port`` forms, ``.svc``/``.svc.cluster.local`` folded, 2 shown."""
    if not domains:
        return ""
    if len(domains) == 1:
        return domains[0]
    without_port = [d for d in domains if ":" not in d or (d.count(":") > 2 and d.endswith("]"))]
    unique = set(without_port)
    drop = {
        h
        for h in without_port
        for short in (h.removesuffix(".svc.cluster.local"), h.removesuffix(".svc"))
        if short != h and short in unique
    }
    kept = [h for h in without_port if h not in drop]
    if len(kept) > 2:
        return f"{', '.join(kept[:2])} + {len(kept) - 2} more..."
    return ", ".join(kept)


def describe_match(match: dict[str, Any]) -> str:
    """``/*`` for prefix ``/``, ``PathPrefix:/p``, an exact path, or ``regex …``; headers are not shown."""
    conds = []
    if match.get("prefix"):
        conds.append(f"{match['prefix']}*")
    if match.get("path_separated_prefix"):
        conds.append(f"PathPrefix:{match['path_separated_prefix']}")
    if match.get("path"):
        conds.append(match["path"])
    if match.get("safe_regex"):
        conds.append(f"regex {match['safe_regex'].get('regex', '')}")
    return " ".join(conds)


def _management(route: dict[str, Any]) -> str:
    path = route.get("metadata", {}).get("filter_metadata", {}).get("istio", {}).get("config", "")
    if not path:
        return ""
    pieces = path.split("/")
    if len(pieces) == 8 and pieces[1] == "apis" and pieces[2].startswith("networking.istio.io"):
        return f"{pieces[7]}.{pieces[5]}"
    return "<unknown>"


# -- clusters --------------------------------------------------------------------------------------------


def _clusters(view: EnvoyView, wide: bool) -> str:
    rows = []
    for c in [*view.clusters.values(), *view.warming_clusters]:
        parsed = parse_cluster_name(c.get("name", ""))
        if parsed is None:
            rows.append((c.get("name", ""), "-", "-", "-", _cluster_type(c), _dr(c)))
        else:
            direction, port, subset, host = parsed
            rows.append((host, str(port), subset or "-", direction, _cluster_type(c), _dr(c)))
    rows.sort(key=lambda r: (r[0], r[2], int(r[1]) if r[1].isdigit() else -1, r[3], r[4], r[5]))
    header: list[list[object]] = [["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"]]
    return _table(header + [list(r) for r in rows], [0, 2, 5], wide)  # SERVICE FQDN, SUBSET, DESTINATION RULE


def _cluster_type(c: dict[str, Any]) -> str:
    if "cluster_type" in c:
        return str(c["cluster_type"].get("name", "CUSTOM"))
    return str(c.get("type", "STATIC"))


def _dr(c: dict[str, Any]) -> str:
    path = c.get("metadata", {}).get("filter_metadata", {}).get("istio", {}).get("config", "")
    pieces = path.split("/")
    if len(pieces) == 8 and pieces[6] == "destination-rule":
        return f"{pieces[7]}.{pieces[5]}"
    return ""


# -- listeners -------------------------------------------------------------------------------------------

_APP_PROTOCOLS = {
    ("http/1.0", "http/1.1", "h2c"): "App: HTTP",
    ("http/1.1", "h2c", "http/1.0"): "App: HTTP",
    ("http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "App: HTTP TLS",
    ("istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "App: Istio HTTP Plain",
    ("istio-peer-exchange", "istio"): "App: TCP TLS",
}


def _listeners(view: EnvoyView, wide: bool) -> str:
    rows: list[tuple[str, int, str, str]] = []
    for lst in sorted(view.listeners, key=lambda x: (_port(x), _address(x), str(x.get("name", "")))):
        chains = [(_chain_match(c.match), _destination(c.config.get("filters", []))) for c in listener_chains(lst)]
        for match, dest in sorted(chains, key=lambda m: (m[1], m[0]), reverse=True):
            rows.append((_address(lst), _port(lst), match, dest))
    header: list[list[object]] = [["ADDRESSES", "PORT", "MATCH", "DESTINATION"]]
    return _table(header + [list(r) for r in rows], [2, 3], wide)


def _address(lst: dict[str, Any]) -> str:
    return str(lst.get("address", {}).get("socket_address", {}).get("address", ""))


def _port(lst: dict[str, Any]) -> int:
    """The port the listener binds (istioctl's column; a twin's port below 1024 shows as moved)."""
    return int(lst.get("address", {}).get("socket_address", {}).get("port_value", 0))


def _chain_match(m: dict[str, Any]) -> str:
    parts = []
    if m.get("server_names"):
        parts.append("SNI: " + ",".join(m["server_names"]))
    if m.get("transport_protocol"):
        parts.append(f"Trans: {m['transport_protocol']}")
    if m.get("application_protocols"):
        protos = tuple(m["application_protocols"])
        parts.append(_APP_PROTOCOLS.get(protos, "App: " + ",".join(protos)))
    if m.get("prefix_ranges"):
        port = f":{m['destination_port']}" if "destination_port" in m else ""
        ranges = ",".join(f"{p['address_prefix']}/{p.get('prefix_len', 0)}" for p in m["prefix_ranges"])
        parts.append(f"Addr: {ranges}{port}")
    return "; ".join(parts) or "ALL"


def _destination(filters: list[dict[str, Any]]) -> str:
    for f in filters:
        cfg = f.get("typed_config", {})
        if f.get("name") == HCM_FILTER:
            if "route_config" in cfg:
                return _inline_route(cfg["route_config"])
            if cfg.get("rds", {}).get("route_config_name"):
                return f"Route: {cfg['rds']['route_config_name']}"
            return "HTTP"
        if f.get("name") == TCP_PROXY_FILTER and "BlackHoleCluster" not in str(cfg.get("cluster", "")):
            cluster = str(cfg.get("cluster", ""))
            return cluster if "Cluster" in cluster else f"Cluster: {cluster}"
    return "Non-HTTP/Non-TCP"


def _inline_route(rc: dict[str, Any]) -> str:
    vhosts = []
    for vh in rc.get("virtual_hosts", []):
        domains = vh.get("domains", [])
        described = ", ".join(describe_match(r.get("match", {})) for r in vh.get("routes", []))
        vhosts.append(described if domains == ["*"] else f"{'/'.join(domains)} {described}")
    return "Inline Route: " + "; ".join(vhosts)


# -- secrets ---------------------------------------------------------------------------------------------


def _secrets(view: EnvoyView, now: dt.datetime, wide: bool) -> str:
    """One row per secret; without ``wide``, no NOT BEFORE (VALID CERT says whether now is inside the
    certificate's window), and RESOURCE NAME and SERIAL NUMBER wrap when the rest does not fit."""
    entries = sorted(view.secret_entries, key=lambda e: (e.name, e.state))  # Envoy's order changes between runs
    if not entries:
        return "No active or warming secrets found.\n"
    rows: list[list[object]] = [
        ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"]
    ]
    for entry in entries:
        cert = _first_cert(entry)
        if cert is None:
            rows.append([entry.name, "", entry.state, "false", "", "", ""])
            continue
        is_ca = _is_ca(cert)
        valid = cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
        rows.append(
            [
                entry.name,
                "CA" if is_ca else "Cert Chain",
                entry.state,
                "true" if valid else "false",
                f"{cert.serial_number:032x}",
                cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ]
        )
    return _table(rows if wide else [r[:-1] for r in rows], [0, 4], wide)


def _first_cert(entry: SecretEntry) -> x509.Certificate | None:
    data = entry.data("chain") or entry.data("trust")
    if not data:
        return None
    try:
        raw = inline(data)
    except ValueError:  # inline_bytes that are not base64
        return None
    if not raw and "filename" in data:
        try:
            with open(data["filename"], "rb") as fh:
                raw = fh.read()
        except OSError:
            return None
    end = raw.find(b"-----END CERTIFICATE-----")
    if end < 0:
        return None
    try:  # only the first block: istioctl reads the first certificate (a bundle may hold odd ones later)
        return parse_certificate(raw[: end + len(b"-----END CERTIFICATE-----")])
    except PkiError:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
