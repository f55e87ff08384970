"""What a gateway serves against the store: verify's GatewaysServeCurrentCerts, without Envoy."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from meshbridge.verify.served import holds_credential, served_problems
from tests.builders import issued_store, seed_bridge

CRED = "mtls-credential"


def _dump(chain: bytes, trust: bytes) -> dict[str, Any]:
    def b64(pem: bytes) -> str:
        return base64.b64encode(pem).decode()

    return {
        "configs": [
            {
                "dynamic_active_secrets": [
                    {
                        "name": f"kubernetes://{CRED}",
                        "secret": {"tls_certificate": {"certificate_chain": {"inline_bytes": b64(chain)}}},
                    },
                    {
                        "name": f"kubernetes://{CRED}-cacert",
                        "secret": {"validation_context": {"trusted_ca": {"inline_bytes": b64(trust)}}},
                    },
                ]
            }
        ]
    }


def test_a_gateway_serving_the_stores_secrets_has_no_problem(tmp_path: Path) -> None:
    bridge = seed_bridge()
    creds = issued_store(tmp_path, bridge).credentials(bridge)["eks"]
    assert creds.server is not None
    dump = _dump(creds.server.cert_pem, creds.server_trust)
    assert served_problems("eks/istio-ingressgateway", "ingress", dump, creds, CRED) == []


def test_a_gateway_holding_no_such_credential_is_told_apart_from_a_stale_one(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    creds = store.credentials(bridge)["eks"]
    (problem,) = served_problems("eks/istio-ingressgateway", "ingress", {"configs": []}, creds, CRED)
    assert "holds no kubernetes://mtls-credential at all" in problem and "credentialName mtls-credential" in problem
    other = store.credentials(bridge)["gke"]  # another leaf: served, but not the store's
    assert other.client is not None
    stale = served_problems(
        "eks/istio-ingressgateway", "ingress", _dump(other.client.cert_pem, creds.server_trust), creds, CRED
    )
    assert stale and not any("at all" in p for p in stale) and "the store has" in stale[0]


def test_holds_credential_sees_the_certificate_or_the_trust_bundle(tmp_path: Path) -> None:
    bridge = seed_bridge()
    creds = issued_store(tmp_path, bridge).credentials(bridge)["eks"]
    assert creds.server is not None
    dump = _dump(creds.server.cert_pem, creds.server_trust)
    assert holds_credential(dump, CRED)
    trust_only = {"configs": [{"dynamic_active_secrets": dump["configs"][0]["dynamic_active_secrets"][1:]}]}
    assert holds_credential(trust_only, CRED)
    assert not holds_credential(dump, "other-credential") and not holds_credential({"configs": []}, CRED)
