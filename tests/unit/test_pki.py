"""The PKI: profiles of issued certificates, the store, and checks — with real TLS handshakes (Python ssl)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from meshbridge.errors import PkiError
from meshbridge.pki import CertBundle, PkiStore, check_leaf, issue_ca, issue_leaf
from meshbridge.pki.x509 import key_matches, utcnow
from tests.builders import bridge_from, issued_store, seed_bridge, seed_dict

HOST = "lambda.external"
CLIENT_ID = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"


@pytest.fixture(scope="module")
def cas() -> dict[str, CertBundle]:
    return {"eks": issue_ca("eks CA"), "gke": issue_ca("gke CA"), "evil": issue_ca("attacker CA")}


def server(ca: CertBundle, **kw: object) -> CertBundle:
    return issue_leaf(ca, "server", common_name=HOST, dns_names=[HOST], **kw)  # type: ignore[arg-type]


def client(ca: CertBundle, **kw: object) -> CertBundle:
    return issue_leaf(ca, "client", common_name="egress", uris=[CLIENT_ID], **kw)  # type: ignore[arg-type]


# -- profiles -----------------------------------------------------------------------------------------


def test_ca_profile(cas: dict[str, CertBundle]) -> None:
    ca = cas["eks"]
    assert ca.is_ca and ca.ekus == [] and ca.key_pem is not None
    assert (ca.not_after - ca.not_before).days == 365  # 365 days plus the 5-minute backdate


def test_leaves_carry_sans_and_exactly_one_eku(cas: dict[str, CertBundle]) -> None:
    s, c = server(cas["eks"]), client(cas["gke"])
    assert (s.ekus, s.dns_names, s.is_ca) == (["serverAuth"], [HOST], False)
    assert (c.ekus, c.uris, c.is_ca) == (["clientAuth"], [CLIENT_ID], False)
    assert s.issuer == cas["eks"].subject


def test_rsa_option(cas: dict[str, CertBundle]) -> None:
    leaf = issue_leaf(cas["eks"], "server", common_name=HOST, dns_names=[HOST], key_type="RSA_2048")
    assert leaf.cert.public_key().key_size == 2048  # type: ignore[union-attr]


def test_refuses_a_dual_use_leaf(cas: dict[str, CertBundle]) -> None:
    with pytest.raises(PkiError, match="exactly one EKU"):
        issue_leaf(cas["eks"], "server+client", common_name=HOST, dns_names=[HOST])  # type: ignore[arg-type]


def test_refuses_a_cn_only_leaf(cas: dict[str, CertBundle]) -> None:
    with pytest.raises(PkiError, match="without a SAN"):
        issue_leaf(cas["eks"], "server", common_name="*")


def test_refuses_to_issue_from_a_leaf(cas: dict[str, CertBundle]) -> None:
    with pytest.raises(PkiError, match="is not a CA"):
        issue_leaf(server(cas["eks"]), "server", common_name=HOST, dns_names=[HOST])


def test_key_never_in_repr(cas: dict[str, CertBundle]) -> None:
    assert "PRIVATE" not in repr(cas["eks"])


def test_write_to_keys_0600(tmp_path: Path, cas: dict[str, CertBundle]) -> None:
    crt, key = server(cas["eks"]).write_to(tmp_path / "x", "server")
    assert key is not None
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(crt.stat().st_mode) == 0o644


# -- checks -------------------------------------------------------------------------------------------


def test_check_accepts_a_good_leaf_and_its_negative_twins(cas: dict[str, CertBundle]) -> None:
    good = server(cas["eks"])
    assert check_leaf("s", good, "server", cas["eks"].cert_pem, dns_names=[HOST]) == []

    foreign = check_leaf("s", server(cas["evil"]), "server", cas["eks"].cert_pem, dns_names=[HOST])
    assert any("does not verify against the CA" in f.problem for f in foreign)

    swapped = check_leaf("s", client(cas["eks"]), "server", cas["eks"].cert_pem, dns_names=[HOST])
    assert any("EKU is ['clientAuth']" in f.problem for f in swapped)

    past = utcnow() - dt.timedelta(days=30)
    expired = check_leaf("s", server(cas["eks"], not_before=past, days=1), "server", cas["eks"].cert_pem)
    assert any("expired at" in f.problem for f in expired)

    future = check_leaf(
        "s", server(cas["eks"], not_before=utcnow() + dt.timedelta(days=2)), "server", cas["eks"].cert_pem
    )
    assert any("not valid before" in f.problem for f in future)

    wrong_san = check_leaf("s", good, "server", cas["eks"].cert_pem, dns_names=["orders.external"])
    assert any("lacks the SAN(s) its peer pins: DNS:orders.external" in f.problem for f in wrong_san)

    other_key = CertBundle(good.cert_pem, server(cas["eks"]).key_pem)
    assert any("does not belong" in f.problem for f in check_leaf("s", other_key, "server", cas["eks"].cert_pem))


def test_expiry_horizon_warns_under_30_days(cas: dict[str, CertBundle]) -> None:
    soon = server(cas["eks"], days=10)
    (finding,) = check_leaf("s", soon, "server", cas["eks"].cert_pem)
    assert finding.severity == "warning" and "expires in" in finding.problem


def test_key_matches(cas: dict[str, CertBundle]) -> None:
    s = server(cas["eks"])
    assert s.key_pem is not None and key_matches(s.cert, s.key_pem)
    assert not key_matches(s.cert, cas["eks"].key_pem or b"")


def test_garbage_pem_is_a_pki_error_without_echoing_the_key() -> None:
    with pytest.raises(PkiError, match="not a PEM certificate"):
        CertBundle(b"hello").cert  # noqa: B018
    with pytest.raises(PkiError) as exc:
        key_matches(issue_ca("x").cert, b"-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n")
    assert "SECRETSECRET" not in str(exc.value)


# -- the store ----------------------------------------------------------------------------------------


def test_store_issue_is_idempotent_and_private(tmp_path: Path) -> None:
    b = seed_bridge()
    store = issued_store(tmp_path, b)
    assert {a.action for a in store.issue(b)} == {"kept"}
    for key in (tmp_path / "state" / "pki").rglob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert store.check(b) == []


def test_store_reissues_a_leaf_whose_sans_changed(tmp_path: Path) -> None:
    store = issued_store(tmp_path, seed_bridge())
    d = seed_dict()
    d["spec"]["exports"][0]["host"] = "fn.external"
    actions = {(a.mesh, a.slot): a for a in store.issue(bridge_from(d))}
    assert actions[("eks", "server")].action == "reissued"
    assert actions[("eks", "server")].reason == "SANs changed in the spec"
    assert actions[("eks", "ca")].action == "kept"


def test_store_check_flags_a_leaf_from_another_ca(tmp_path: Path) -> None:
    b = seed_bridge()
    store = issued_store(tmp_path, b)
    store.save("eks", "server", server(issue_ca("rogue")))
    (finding,) = store.check(b)
    assert finding.subject == "eks/server" and "does not verify" in finding.problem


def test_credentials_say_how_to_issue_when_missing(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="run 'meshbridge certs issue'"):
        PkiStore(tmp_path).credentials(seed_bridge())


def test_credentials_cross_only_ca_certificates(tmp_path: Path) -> None:
    b = seed_bridge()
    store = issued_store(tmp_path, b)
    creds = store.credentials(b)
    eks_ca, gke_ca = store.load("eks", "ca"), store.load("gke", "ca")
    assert eks_ca is not None and gke_ca is not None
    assert creds["eks"].server_trust == gke_ca.cert_pem  # the exporter trusts the importer's CA
    assert creds["gke"].client_trust == eks_ca.cert_pem  # and the importer the exporter's
    assert b"PRIVATE" not in creds["eks"].server_trust + creds["gke"].client_trust


# -- real handshakes ----------------------------------------------------------------------------------


def _files(tmp: Path, name: str, b: CertBundle) -> tuple[str, str]:
    crt, key = b.write_to(tmp, name)
    assert key is not None
    return str(crt), str(key)


def handshake(tmp: Path, srv: CertBundle, srv_trust: CertBundle, cli: CertBundle, cli_trust: CertBundle) -> str:
    """One mutual-TLS handshake over loopback; returns 'ok' or the failing side's error text."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(*_files(tmp, "srv", srv))
    sctx.load_verify_locations(cadata=srv_trust.cert_pem.decode())
    sctx.verify_mode = ssl.CERT_REQUIRED
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_cert_chain(*_files(tmp, "cli", cli))
    cctx.load_verify_locations(cadata=cli_trust.cert_pem.decode())
    listener = socket.create_server(("127.0.0.1", 0))
    server_error: list[str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with sctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as e:
            server_error.append(str(e))

    t = threading.Thread(target=serve)
    t.start()
    try:
        with (
            socket.create_connection(listener.getsockname()) as raw,
            cctx.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            tls.sendall(b"x")
            tls.recv(1)  # surfaces the server's alert, if any
    except (ssl.SSLError, OSError) as e:
        t.join()
        return f"client: {e}" + (f"; server: {server_error[0]}" if server_error else "")
    finally:
        listener.close()
    t.join()
    return f"server: {server_error[0]}" if server_error else "ok"


def test_handshake_with_issued_certificates(tmp_path: Path, cas: dict[str, CertBundle]) -> None:
    assert handshake(tmp_path, server(cas["eks"]), cas["gke"], client(cas["gke"]), cas["eks"]) == "ok"


def test_handshake_refuses_a_client_from_a_foreign_ca(tmp_path: Path, cas: dict[str, CertBundle]) -> None:
    result = handshake(tmp_path, server(cas["eks"]), cas["gke"], client(cas["evil"]), cas["eks"])
    assert "CERTIFICATE_VERIFY_FAILED" in result or "unknown ca" in result.lower()


def test_handshake_refuses_a_server_from_a_foreign_ca(tmp_path: Path, cas: dict[str, CertBundle]) -> None:
    result = handshake(tmp_path, server(cas["evil"]), cas["gke"], client(cas["gke"]), cas["eks"])
    assert result.startswith("client:") and "CERTIFICATE_VERIFY_FAILED" in result


def test_handshake_refuses_swapped_ekus(tmp_path: Path, cas: dict[str, CertBundle]) -> None:
    # the client presents a server leaf; then the server presents a client leaf
    as_client = issue_leaf(cas["gke"], "server", common_name="egress", uris=[CLIENT_ID], dns_names=["egress.local"])
    r1 = handshake(tmp_path, server(cas["eks"]), cas["gke"], as_client, cas["eks"])
    assert "unsuitable certificate purpose" in r1.lower()
    as_server = issue_leaf(cas["eks"], "client", common_name=HOST, dns_names=[HOST])
    r2 = handshake(tmp_path, as_server, cas["gke"], client(cas["gke"]), cas["eks"])
    assert r2.startswith("client:") and "unsuitable certificate purpose" in r2.lower()


def test_handshake_refuses_an_expired_client(tmp_path: Path, cas: dict[str, CertBundle]) -> None:
    old = client(cas["gke"], not_before=utcnow() - dt.timedelta(days=30), days=1)
    result = handshake(tmp_path, server(cas["eks"]), cas["gke"], old, cas["eks"])
    assert "certificate has expired" in result.lower() or "CERTIFICATE_VERIFY_FAILED" in result


def test_handshake_refuses_the_wrong_server_name(tmp_path: Path, cas: dict[str, CertBundle]) -> None:
    other = issue_leaf(cas["eks"], "server", common_name="orders.external", dns_names=["orders.external"])
    result = handshake(tmp_path, other, cas["gke"], client(cas["gke"]), cas["eks"])
    assert result.startswith("client:") and "hostname mismatch" in result.lower()


def test_a_leaf_never_outlives_its_ca() -> None:
    short_ca = issue_ca("short-lived CA", days=10)
    leaf = issue_leaf(short_ca, "server", common_name=HOST, dns_names=[HOST], days=90)
    assert leaf.not_after == short_ca.not_after
    # negative twin: within the CA's life the requested lifetime holds
    assert (
        issue_leaf(short_ca, "server", common_name=HOST, dns_names=[HOST], days=2).not_after - short_ca.not_after
    ).days < 0
