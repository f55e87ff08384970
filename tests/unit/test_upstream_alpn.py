"""The ALPN a cluster's upstream TLS offers, as istiod builds it (``pilot/pkg/networking/core/cluster_tls.go``):
an HTTP/2 cluster originating SIMPLE or MUTUAL TLS offers ``h2`` alone (``ALPNH2Only``), an HTTP/1.1 one offers
nothing; ISTIO_MUTUAL offers Istio's in-mesh protocols, plus ``h2`` for HTTP/2. The oracle case
``egress-mutual-origination-http2`` holds the same against istiod itself."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.envoy.tls import upstream_tls
from meshbridge.istio.resources import ClientTLSSettings


def _alpn(tls: dict[str, Any], *, http2: bool) -> list[str] | None:
    settings = ClientTLSSettings.model_validate(tls)
    socket, _ = upstream_tls(
        settings,
        lambda name: {"name": name},
        verify_at_client=True,
        pod_file=lambda path: path,
        mesh_sni="outbound_.443_._.bank.example",
        http2=http2,
    )
    assert socket is not None
    alpn: list[str] | None = socket["typed_config"]["common_tls_context"].get("alpn_protocols")
    return alpn


@pytest.mark.parametrize(
    "tls",
    [
        {"mode": "MUTUAL", "credentialName": "bank-client", "sni": "bank.example"},
        {"mode": "SIMPLE", "sni": "bank.example"},
        {"mode": "MUTUAL", "clientCertificate": "/etc/certs/c.pem", "privateKey": "/etc/certs/k.pem"},
    ],
)
def test_an_http2_cluster_originating_tls_offers_h2_alone(tls: dict[str, Any]) -> None:
    assert _alpn(tls, http2=True) == ["h2"]


@pytest.mark.parametrize(
    "tls",
    [
        {"mode": "MUTUAL", "credentialName": "bank-client", "sni": "bank.example"},
        {"mode": "SIMPLE", "sni": "bank.example"},
    ],
)
def test_an_http1_cluster_originating_tls_offers_no_alpn(tls: dict[str, Any]) -> None:
    assert _alpn(tls, http2=False) is None


def test_istio_mutual_offers_the_in_mesh_protocols_and_h2_only_for_http2() -> None:
    tls = {"mode": "ISTIO_MUTUAL"}
    assert _alpn(tls, http2=True) == ["istio-peer-exchange", "istio", "h2"]
    assert _alpn(tls, http2=False) == ["istio-peer-exchange", "istio"]
