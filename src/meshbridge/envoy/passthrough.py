"""An exporter filter chain that passes the importer's TLS through to a backend, unterminated (pure).

A Gateway server with ``tls: {mode: PASSTHROUGH}`` (istio.io's "ingress TLS passthrough" task), routed by a
VirtualService ``tls:`` route on ``sniHosts``, gives the exporter's ingress gateway a chain that matches the SNI and
runs ``tcp_proxy`` to the route's destination: no ``DownstreamTlsContext``, so the gateway presents no certificate,
asks for none, and its MUTUAL settings, ``credentialName`` and AuthorizationPolicy principals play no part. The
importer's mutual TLS handshake is then with that backend: it works only if the backend terminates it, serving a
certificate the importer trusts and verifying the importer's client certificate. Lint's MB314 and ``local up``'s
path check (:mod:`meshbridge.envoy.pathsim`) say so in these words; the twin's backends (the ALB emulator: its own
certificate on 443, plain HTTP on 80; a Service it does not run: no endpoint) terminate no such TLS.
"""

from __future__ import annotations

from meshbridge.envoy.view import ChainRef, EnvoyView

PASSTHROUGH = "TLSPassthrough"
"""The importer's error when the exporter's chain for its SNI passes the TLS through to the backend."""


def passthrough_chain(view: EnvoyView, port: int, index: int | None) -> ChainRef | None:
    """The chain ``index`` of ``view``'s listener on ``port`` when it passes TLS through: it matches TLS (by SNI or
    ``transport_protocol: tls``), terminates none and proxies TCP; ``None`` otherwise."""
    chain = view.chain(port, index) if index is not None else None
    if chain is None or chain.tls is not None or chain.tcp_proxy is None:
        return None
    if chain.server_names is None and chain.match.get("transport_protocol") != "tls":
        return None
    return chain


def passthrough_cluster(chain: ChainRef) -> str:
    """The cluster ``chain``'s TCP proxy forwards to (the first of weighted ones)."""
    tcp = chain.tcp_proxy or {}
    weighted = (tcp.get("weighted_clusters") or {}).get("clusters") or [{}]
    return str(tcp.get("cluster") or weighted[0].get("name") or "?")


def passthrough_why(exporter: str, chain: ChainRef) -> str:
    """Why the importer's mutual TLS does not end at ``exporter``'s gateway, whose ``chain`` passes it through."""
    names = ", ".join(chain.server_names or ("any SNI",))
    return (
        f"{exporter} passes the TLS through unterminated (Gateway server tls mode PASSTHROUGH: SNI {names} -> "
        f"tcp_proxy to {passthrough_cluster(chain)}), so the importer's mutual TLS handshake is with that backend, "
        "not the gateway: it works only if the backend terminates it, serving a certificate the importer trusts and "
        "verifying the importer's client certificate (the gateway's MUTUAL settings, credentialName and "
        "AuthorizationPolicy principals do not apply)"
    )


def passthrough_fix(host: str) -> str:
    """The fix of a passthrough chain for ``host`` on the exporter (:func:`passthrough_why`)."""
    return (
        f"to end the mutual TLS at the exporter gateway (the bridge's shape), set the Gateway server for {host} to "
        "tls: {mode: MUTUAL, credentialName: <Secret>} and route it with the VirtualService's http (not tls with "
        "sniHosts); keep PASSTHROUGH only with a backend that terminates mutual TLS with the bridge's certificates"
    )
