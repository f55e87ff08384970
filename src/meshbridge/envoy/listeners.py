"""Listener pieces shared by gateways and sidecars: the HTTP connection manager and the access log.

HCM defaults from istio/istio ``pilot/pkg/networking/core/gateway.go`` (``buildGatewayConnectionManager``) and
``listener_builder.go`` (``buildHTTPConnectionManager``). The istio-proxy-only filters
(``istio.metadata_exchange``, ``istio.alpn``, ``istio.stats``) are left out: stock Envoy does not have them;
everything else istiod emits is kept.
"""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.placement import Placement

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

# Istio's default text access-log format (meshConfig accessLogFormat), with the response flags.
ACCESS_LOG_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
    "%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" '
    '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% '
    "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)


def access_log(placement: Placement, *, listener: bool = False) -> list[dict[str, Any]]:
    """A file access log in Istio's format (response flags included), or none without a file.

    ``listener=True`` gives the listener-level log istiod adds beside the HTTP connection manager's: it logs
    only connections that found no filter chain (``response_flag_filter`` ``NR``), so a refused SNI is
    logged while ordinary connections are not logged twice (istio ``pilot/pkg/networking/core/accesslog.go``,
    ``listenerAccessLog``).
    """
    if placement.access_log is None:
        return []
    log: dict[str, Any] = {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(placement.access_log),
            "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
        },
    }
    if listener:
        log = {"name": log["name"], "filter": {"response_flag_filter": {"flags": ["NR"]}}, **log}
    return [log]


def http_filters() -> list[dict[str, Any]]:
    """grpc_stats, fault, cors, router: istiod's HTTP filter chain minus the istio-proxy-only filters."""
    return [
        {
            "name": "envoy.filters.http.grpc_stats",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
                "emit_filter_state": True,
                "stats_for_all_methods": False,
            },
        },
        {
            "name": "envoy.filters.http.fault",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"},
        },
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        },
    ]


def http_connection_manager(
    route_name: str,
    stat_prefix: str,
    placement: Placement,
    *,
    gateway: bool,
    rbac: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The HCM of a gateway (``server: istio-envoy``, remote address trusted) or a sidecar listener; ``rbac``: the
    RBAC HTTP filters of the proxy's AuthorizationPolicies (:func:`meshbridge.envoy.authz.rbac_filters`), first in
    the chain as istiod puts them."""
    hcm: dict[str, Any] = {
        "@type": HCM,
        "stat_prefix": stat_prefix,
        "rds": {"route_config_name": route_name, "config_source": placement.config_source("rds", route_name)},
        "http_filters": [*(rbac or []), *http_filters()],
        "codec_type": "AUTO",
        "stream_idle_timeout": "0s",
        "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "request_id_extension": {
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
                "use_request_id_for_trace_sampling": True,
            }
        },
        "http_protocol_options": {},
        "proxy_100_continue": True,
        "access_log": access_log(placement),
    }
    if gateway:
        hcm.update(
            {
                "use_remote_address": True,
                "server_name": "istio-envoy",
                "server_header_transformation": "OVERWRITE",
                "forward_client_cert_details": "SANITIZE_SET",
                "set_current_client_cert_details": {"subject": True, "cert": True, "dns": True, "uri": True},
            }
        )
    else:
        hcm["use_remote_address"] = False
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}


def listener(
    name: str, port: int, placement: Placement, chains: list[dict[str, Any]], *, tls_inspector: bool
) -> dict[str, Any]:
    """A listener on the proxy's own address (``port`` mapped by the placement), traffic OUTBOUND."""
    out: dict[str, Any] = {
        "name": name,
        "address": {"socket_address": {"address": placement.address, "port_value": placement.listen_port(port)}},
        "filter_chains": chains,
        "traffic_direction": "OUTBOUND",
        "access_log": access_log(placement, listener=True),
    }
    if tls_inspector:
        out["listener_filters"] = [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
                },
            }
        ]
    return out
