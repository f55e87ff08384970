"""S8: the exporter gateway's TLS profile as a real scanner sees it, what legacy clients get, and what the real
importer (the egress Envoy) negotiates.

The scanner is ``sslyze`` in its own environment (``make tools`` → ``.venv-tools``: it pins an older
``cryptography`` that must not enter the project's environment); without it the scan tests skip.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from tests.builders import ROOT
from tests.security.support import (
    PAGE,
    app_call,
    cut_gateway_connections,
    egress_upstream,
    gateway_address,
    handshake,
    ingress_tls,
)

pytestmark = pytest.mark.security

TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
AEAD = ("_GCM_", "_CHACHA20_POLY1305_")


def _sslyze(twin: LocalTwin, *args: str) -> tuple[int, dict[str, Any]]:
    if not TOOLS_PYTHON.exists():
        pytest.skip(f"sslyze is not installed: run 'make tools' (creates {TOOLS_PYTHON.parent.parent})")
    ip, port = gateway_address(twin)
    cmd = [str(TOOLS_PYTHON), "-W", "ignore", "-m", "sslyze", "--sni", "lambda.external", *args, "--json_out=-"]
    done = subprocess.run([*cmd, f"{ip}:{port}"], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    (result,) = json.loads(done.stdout)["server_scan_results"]
    assert result["scan_status"] == "COMPLETED" and result["connectivity_status"] == "COMPLETED", result
    return done.returncode, result


def _accepted(result: dict[str, Any], scan: str) -> list[dict[str, Any]]:
    found = result["scan_result"][scan]
    assert found["status"] == "COMPLETED", found
    return list(found["result"]["accepted_cipher_suites"])


def test_s8_sslyze_with_the_importer_certificate_mozilla_intermediate(twin: LocalTwin) -> None:
    pki = Path(twin.state_dir) / "pki"
    code, result = _sslyze(
        twin,
        "--cert",
        str(pki / "gke" / "client.crt"),
        "--key",
        str(pki / "gke" / "client.key"),
        "--certinfo_ca_file",
        str(pki / "eks" / "ca.crt"),
        "--mozilla_config",
        "intermediate",
    )
    for legacy in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"):
        assert _accepted(result, legacy) == [], legacy
    tls12 = _accepted(result, "tls_1_2_cipher_suites")
    assert tls12, "TLS 1.2 must stay available (Envoy clients before 1.22 stop at 1.2)"
    for suite in tls12:
        name = suite["cipher_suite"]["name"]
        assert name.startswith("TLS_ECDHE_") and any(a in name for a in AEAD), name  # PFS + AEAD only
        assert suite["ephemeral_key"] is not None, name
    assert {s["cipher_suite"]["name"] for s in _accepted(result, "tls_1_3_cipher_suites")} >= {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
    }
    assert result["scan_result"]["tls_compression"]["result"]["supports_compression"] is False
    assert result["scan_result"]["heartbleed"]["result"]["is_vulnerable_to_heartbleed"] is False
    assert result["scan_result"]["tls_fallback_scsv"]["result"]["supports_fallback_scsv"] is True
    chain = result["scan_result"]["certificate_info"]["result"]["certificate_deployments"][0]
    # only the exporter's CA (--certinfo_ca_file) can validate the chain: no public store knows it
    assert [p["was_validation_successful"] for p in chain["path_validation_results"]].count(True) == 1
    # sslyze exits 1 when the server is not compliant with Mozilla's "intermediate" profile
    assert code == 0


def test_s8_sslyze_without_a_certificate_sees_client_auth_required(twin: LocalTwin) -> None:
    code, result = _sslyze(
        twin, "--mozilla_config", "disable", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3"
    )
    assert code == 0
    assert result["connectivity_result"]["client_auth_requirement"] == "REQUIRED"
    assert result["connectivity_result"]["highest_tls_version_supported"] == "TLS_1_3"
    # the protocol and suite enumeration needs only the ServerHello: the same answer as with a certificate
    assert _accepted(result, "tls_1_1_cipher_suites") == [] and _accepted(result, "tls_1_0_cipher_suites") == []


def _client(twin: LocalTwin) -> Any:
    return PkiStore(twin.state_dir).load("gke", "client")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
def test_s8_a_client_forced_below_tls_1_2_is_refused(twin: LocalTwin, version: ssl.TLSVersion) -> None:
    got = handshake(twin, _client(twin), version=version)
    assert "PROTOCOL_VERSION" in got or "UNSUPPORTED_PROTOCOL" in got, got
    # twin: the same client, certificate and settings, at TLS 1.2
    assert handshake(twin, _client(twin), version=ssl.TLSVersion.TLSv1_2).startswith("ok TLSv1.2 ECDHE-ECDSA-")


@pytest.mark.parametrize(
    "suite",
    [
        "ECDHE-ECDSA-AES128-SHA",  # CBC (Envoy's default server list still has it)
        "ECDHE-ECDSA-AES256-SHA384",  # CBC with SHA-384
        "AES128-GCM-SHA256",  # no forward secrecy (RSA key exchange)
        "AES128-SHA",  # neither
    ],
)
def test_s8_cbc_and_non_pfs_suites_are_refused(twin: LocalTwin, suite: str) -> None:
    got = handshake(twin, _client(twin), version=ssl.TLSVersion.TLSv1_2, ciphers=suite)
    assert "HANDSHAKE_FAILURE" in got or "NO_SHARED_CIPHER" in got, got
    good = handshake(twin, _client(twin), version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    assert good == "ok TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"  # twin: an AEAD + ECDHE suite


def test_s8_the_importer_egress_negotiates_tls_1_3(twin: LocalTwin) -> None:
    cut_gateway_connections(twin)  # the next request shakes hands again
    ingress, egress = ingress_tls(twin), egress_upstream(twin)
    r = app_call(twin)
    assert r.status == 200 and PAGE in r.body
    seen_by_exporter, seen_by_importer = ingress.delta(), egress.delta()
    assert seen_by_exporter.get("versions.TLSv1.3") == 1 and "versions.TLSv1.2" not in seen_by_exporter
    assert seen_by_importer.get("ssl.versions.TLSv1.3") == 1
    ciphers = [k for k in seen_by_exporter if k.startswith("ciphers.")]
    assert ciphers == ["ciphers.TLS_AES_128_GCM_SHA256"], seen_by_exporter  # BoringSSL's client preference
    assert [k for k in seen_by_importer if k.startswith("ssl.ciphers.")] == ["ssl.ciphers.TLS_AES_128_GCM_SHA256"]
