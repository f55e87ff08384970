"""One trust rule, Envoy's (:func:`meshbridge.pki.checks.served_verifies`): the simulator's client certificates,
lint's MB308/MB309 and the path check judge a served chain alike, with the chains of ``tests.pki_builders.CHAINS``
whose verdicts the real Envoy gives (``tests/integration/test_pki_envoy.py``).

Each case has its twin: the same shape the other way.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from meshbridge.envoy.simulate import Request, simulate
from meshbridge.envoy.view import EnvoyView, SecretEntry
from meshbridge.errors import PkiError
from meshbridge.pki.checks import served_verifies
from meshbridge.pki.x509 import utcnow
from tests.lint_builders import NOW, lint_docs, secret_data, seed_ca, seed_docs, set_secret_data
from tests.pki_builders import CHAINS, SERVER_AUTH, Chain, Made, client, make

CAS = "kubernetes://mtls-credential-cacert"


def _gateway(trusted: bytes) -> EnvoyView:
    """An exporter's gateway: one MUTUAL chain whose validation context (SDS ``CAS``) holds ``trusted``."""
    common = {"combined_validation_context": {"validation_context_sds_secret_config": {"name": CAS}}}
    tls = {"name": "tls", "typed_config": {"common_tls_context": common, "require_client_certificate": True}}
    route = {"match": {"prefix": "/"}, "direct_response": {"status": 200}}
    chain: dict[str, Any] = {
        "transport_socket": tls,
        "filters": [
            {
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [route]}]}
                },
            }
        ],
    }
    vc = {"name": CAS, "validation_context": {"trusted_ca": {"inline_bytes": base64.b64encode(trusted).decode()}}}
    return EnvoyView(
        [{"name": "0.0.0.0_8443", "filter_chains": [chain]}], [], [], secrets=[SecretEntry(CAS, "ACTIVE", vc)]
    )


def _call(view: EnvoyView, presented: bytes) -> str | None:
    req = Request(8443, "lambda.external", tls=True, sni="lambda.external", client_cert=True, client_chain=presented)
    return simulate(view, req).error


@pytest.fixture(scope="module")
def pki() -> dict[str, Made]:
    root = make("corp root")
    issuing = make("corp issuing CA", root)
    server_only = make("corp server CA", root, ekus=[SERVER_AUTH])
    return {
        "root": root,
        "issuing": issuing,
        "leaf": client(issuing),
        "server_only": server_only,
        "under_server_only": client(server_only),
        "foreign": client(make("someone else's root")),
    }


def test_the_simulator_refuses_a_client_its_cas_do_not_verify(pki: dict[str, Made]) -> None:
    root, issuing, leaf = pki["root"].pem, pki["issuing"].pem, pki["leaf"].pem
    # the leaf alone, under an intermediate the gateway does not hold: unable to get local issuer certificate
    assert _call(_gateway(root), leaf) == "UnknownCA"
    # twin: the client sends the intermediate (exact CA matching refused this one: its issuer is not in the bundle)
    assert _call(_gateway(root), leaf + issuing) is None
    # a client from a CA the gateway does not trust at all, and its twin, that CA's own leaf
    assert _call(_gateway(root + issuing), pki["foreign"].pem) == "UnknownCA"
    assert _call(_gateway(root + issuing), leaf) is None


def test_the_simulator_takes_an_intermediate_without_its_root_as_envoy_does(pki: dict[str, Made]) -> None:
    """Envoy sets X509_V_FLAG_PARTIAL_CHAIN: the intermediate of the bundle is an anchor (real Envoy: the CHAINS
    row 'a trust bundle of the intermediate without its root'); with its root beside it the same."""
    assert _call(_gateway(pki["issuing"].pem), pki["leaf"].pem) is None
    assert _call(_gateway(pki["issuing"].pem + pki["root"].pem), pki["leaf"].pem) is None
    # negative twin: the bundle holds another intermediate of the same root
    assert _call(_gateway(pki["server_only"].pem), pki["leaf"].pem) == "UnknownCA"


def test_the_simulator_judges_a_sent_intermediates_eku_for_a_client(pki: dict[str, Made]) -> None:
    """An intermediate limited to serverAuth, sent by the client, fails Envoy's ssl_client purpose check."""
    presented = pki["under_server_only"].pem + pki["server_only"].pem
    r = simulate(
        _gateway(pki["root"].pem),
        Request(8443, "h", tls=True, sni="h", client_cert=True, client_chain=presented),
    )
    assert r.error == "UnknownCA" and "without clientAuth" in r.detail and CAS in r.detail
    # twin: the same client sends the intermediate of no EKU
    assert _call(_gateway(pki["root"].pem), pki["leaf"].pem + pki["issuing"].pem) is None


PATH_CHAINS = [c for c in CHAINS if c.envoy or c.rule == "chain"]
"""The chains of the table Envoy accepts, or refuses on their path (not on the leaf's own EKU, keyUsage or SAN)."""


@pytest.mark.parametrize("chain", PATH_CHAINS, ids=[f"{c.role}: {c.case}" for c in PATH_CHAINS])
def test_the_simulator_and_the_path_check_decide_as_the_real_envoy_does(chain: Chain) -> None:
    """Each chain's verdict is Envoy 1.40's (tests/integration/test_pki_envoy.py replays them): the simulator's
    gateway (a client chain) and served_verifies with the role (either) give it."""
    trusted, leaf = chain.build()
    assert (served_verifies(leaf.cert_pem, trusted.pem, utcnow(), chain.role) is None) == chain.envoy
    if chain.role == "client":
        assert (_call(_gateway(trusted.pem), leaf.cert_pem) is None) == chain.envoy


def test_served_verifies_is_cached_and_names_unreadable_pem(pki: dict[str, Made]) -> None:
    now = utcnow()
    assert served_verifies(pki["leaf"].pem + pki["issuing"].pem, pki["root"].pem, now, "client") is None
    hits = served_verifies.cache_info().hits
    assert served_verifies(pki["leaf"].pem + pki["issuing"].pem, pki["root"].pem, now, "client") is None
    assert served_verifies.cache_info().hits == hits + 1
    with pytest.raises(PkiError, match="the trusted CAs: "):
        served_verifies(pki["leaf"].pem, b"not PEM", now, "client")


# -- lint MB308 with the role --------------------------------------------------------------------------------


def _gke_intermediate(**kw: Any) -> Made:
    """An intermediate of the gke mesh CA (which the exporter trusts), with ``kw`` as :func:`make` options."""
    ca = seed_ca("gke")
    key = ca.private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return make("gke issuing CA", Made(ca.cert, key), not_before=NOW - dt.timedelta(days=1), **kw)


def _client_under(docs: dict[str, Any], intermediate: Made) -> None:
    """The importer's client Secret holds a client leaf of ``intermediate``, then ``intermediate``."""
    leaf = client(intermediate, not_before=NOW - dt.timedelta(hours=1))
    data = secret_data(docs, "gke")
    data["cert"], data["key"] = leaf.pem + intermediate.pem, leaf.key_pem
    set_secret_data(docs, "gke", data)


@pytest.mark.parametrize(("ekus", "refused"), [([SERVER_AUTH], True), (None, False)])
def test_mb308_judges_a_client_intermediates_eku_as_envoy_does(ekus: Any, refused: bool) -> None:
    """The importer's client certificate under an intermediate limited to serverAuth: Envoy refuses it (CHAINS:
    'an intermediate limited to serverAuth, for a client'), so MB308; twin: an intermediate with no EKU."""
    docs = seed_docs()
    _client_under(docs, _gke_intermediate(ekus=ekus))
    found = [f for f in lint_docs(docs).findings if f.code == "MB308"]
    if refused:
        (f,) = found
        assert "its intermediate CN=gke issuing CA has EKU ['serverAuth'], without clientAuth" in f.message
    else:
        assert found == []
