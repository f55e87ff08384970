"""Istio's port protocols and which of them are HTTP, TLS or TCP: the one place meshbridge asks.

Source: istio/istio ``pkg/config/protocol/instance.go`` (``Parse``, ``IsHTTP``, ``IsHTTP2``, ``IsTLS``, ``IsTCP``).
``Parse`` ignores case and turns every name it does not know into ``UnsupportedProtocol``, which istiod sniffs on a
service port and its validation refuses on a Gateway server. meshbridge spells the names as users write them in
YAML, upper case (Istio's own constants say ``GRPC-Web``, ``Mongo``, ``Redis``, ``MySQL``).
"""

from __future__ import annotations

UNSUPPORTED = "UnsupportedProtocol"
"""What :func:`parse` gives for a name Istio does not know (Istio's ``protocol.Unsupported``)."""

_KNOWN = frozenset(
    {"TCP", "UDP", "GRPC", "GRPC-WEB", "HTTP", "HTTP_PROXY", "HTTP2", "HTTPS", "TLS", "MONGO", "REDIS", "MYSQL"}
)
"""The names ``Parse`` knows (its ``DoubleHBONE`` case compares a lower-cased name with a capital, so never)."""

_HTTP = frozenset({"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB"})
_HTTP2 = frozenset({"HTTP2", "GRPC", "GRPC-WEB"})
_TLS = frozenset({"HTTPS", "TLS"})
_TCP = frozenset({"TCP", "HTTPS", "TLS", "MONGO", "REDIS", "MYSQL"})


def parse(name: str) -> str:
    """Istio's protocol of ``name``, any case (``grpc-web`` → ``GRPC-WEB``), else :data:`UNSUPPORTED`."""
    upper = name.upper()
    return upper if upper in _KNOWN else UNSUPPORTED


def is_http(name: str) -> bool:
    """HTTP as transport: HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-WEB (Istio's ``IsHTTP``)."""
    return parse(name) in _HTTP


def is_http2(name: str) -> bool:
    """HTTP/2 as transport: HTTP2, GRPC, GRPC-WEB (Istio's ``IsHTTP2``)."""
    return parse(name) in _HTTP2


def is_tls(name: str) -> bool:
    """On top of TLS: HTTPS, TLS (Istio's ``IsTLS``)."""
    return parse(name) in _TLS


def is_tcp(name: str) -> bool:
    """TCP as transport: TCP, HTTPS, TLS, MONGO, REDIS, MYSQL (Istio's ``IsTCP``)."""
    return parse(name) in _TCP
