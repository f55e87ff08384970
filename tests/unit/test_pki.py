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
from meshbridge.spec import load_bridge
from meshbridge.spec.models import Bridge
from tests.builders import HELLOWORLD, bridge_from, issued_store, seed_bridge, seed_dict

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
    soon = server(cas["eks"], days=90)
    (finding,) = check_leaf("s", soon, "server", cas["eks"].cert_pem, now=utcnow() + dt.timedelta(days=80))
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


def test_the_server_leaf_names_the_exported_host_not_the_name_apps_call(tmp_path: Path) -> None:
    """examples/helloworld: apps call hw.sleep.svc.cluster.local, the SNI and the importer's pin are c2.example.com."""
    b = load_bridge(HELLOWORLD)
    store = issued_store(tmp_path, b)
    leaf, ca = store.load("c2", "server"), store.load("c2", "ca")
    assert leaf is not None and ca is not None
    assert leaf.dns_names == ["c2.example.com"]
    assert store.check(b) == []
    # negative twin: a peer pinning the name apps call would refuse it
    pinned_alias = check_leaf("s", leaf, "server", ca.cert_pem, dns_names=["hw.sleep.svc.cluster.local"])
    assert any("lacks the SAN(s) its peer pins: DNS:hw.sleep.svc.cluster.local" in f.problem for f in pinned_alias)


def _key_type(key_type: str) -> Bridge:
    d = seed_dict()
    d["spec"].setdefault("tls", {})["keyType"] = key_type
    return bridge_from(d)


def test_issue_reissues_leaves_of_another_key_type_and_keeps_the_ca_with_a_warning(tmp_path: Path) -> None:
    store = issued_store(tmp_path, _key_type("ECDSA_P256"))
    cas = {m: store.path(m, "ca").read_bytes() for m in ("eks", "gke")}
    # the negative twin: the same key type keeps everything, silently
    assert {(a.action, a.reason) for a in store.issue(_key_type("ECDSA_P256"))} == {("kept", "")}
    assert store.check(_key_type("ECDSA_P256")) == []

    rsa = _key_type("RSA_2048")
    actions = {(a.mesh, a.slot): a for a in store.issue(rsa)}
    for mesh, slot in (("eks", "server"), ("gke", "client")):
        assert (actions[mesh, slot].action, actions[mesh, slot].reason) == (
            "reissued",
            "key type RSA_2048 in the spec, ECDSA_P256 stored",
        )
        leaf = store.load(mesh, slot)
        assert leaf is not None and leaf.key_type == "RSA_2048"
    for mesh in ("eks", "gke"):  # a CA is never replaced for it: that would break trust
        assert actions[mesh, "ca"].action == "kept"
        assert actions[mesh, "ca"].reason.startswith("key type RSA_2048 in the spec, ECDSA_P256 stored: kept")
        assert store.path(mesh, "ca").read_bytes() == cas[mesh]
    findings = store.check(rsa)
    assert [(f.severity, f.subject) for f in findings] == [("warning", "eks/ca"), ("warning", "gke/ca")]
    assert "key type ECDSA_P256, but spec.tls.keyType is RSA_2048" in findings[0].problem
    assert findings[0].fix.startswith("roll it over in stages: 'meshbridge certs rotate --ca --mesh eks'")
    assert store.key_type_findings(rsa) == findings
    # a second run keeps the RSA leaves (their key type now is the spec's) and still notes the CAs
    again = {(a.mesh, a.slot): a for a in store.issue(rsa)}
    assert again["eks", "server"].action == "kept" and again["eks", "server"].reason == ""
    assert again["eks", "ca"].reason.startswith("key type RSA_2048 in the spec")


def test_the_staged_rollover_gives_the_new_ca_the_spec_key_type(tmp_path: Path) -> None:
    store = issued_store(tmp_path, _key_type("ECDSA_P256"))
    rsa = _key_type("RSA_2048")
    store.issue(rsa)
    done = [store.rollover(rsa, "eks", stage) for stage in (1, 2, 3)]
    assert [(a.slot, a.action) for a in done[2]] == [("ca", "replaced")]  # stage 3 retires the old CA
    ca, leaf = store.load("eks", "ca"), store.load("eks", "server")
    assert ca is not None and leaf is not None
    assert (ca.key_type, leaf.key_type, leaf.issuer) == ("RSA_2048", "RSA_2048", ca.subject)
    assert [f.subject for f in store.check(rsa)] == ["gke/ca"]  # the twin: gke's CA was not rolled over
    assert {a.action for a in store.issue(rsa) if a.mesh == "eks"} == {"kept"}


def test_a_server_leaf_of_another_key_type_says_tls_1_2_clients_fail(tmp_path: Path) -> None:
    store = issued_store(tmp_path, _key_type("ECDSA_P256"))
    rsa = _key_type("RSA_2048")
    (server_warning,) = store.check_key_type(rsa, "eks", "server")
    assert "TLS 1.2 clients fail the handshake" in server_warning.problem
    assert server_warning.fix == "run 'meshbridge certs issue' (it reissues a leaf whose key type is not the spec's)"
    (client_warning,) = store.check_key_type(rsa, "gke", "client")
    assert "TLS 1.2" not in client_warning.problem
    assert store.check_key_type(_key_type("ECDSA_P256"), "eks", "server") == []


def test_cli_issue_and_check_warn_about_a_ca_of_another_key_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0 and main(["certs", "issue"]) == 0
    capsys.readouterr()
    bridge_file = tmp_path / "bridge.yaml"
    bridge_file.write_text(bridge_file.read_text().replace("keyType: ECDSA_P256", "keyType: RSA_2048"))
    assert main(["certs", "issue"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "reissued key type RSA_2048 in the spec," in text and "ECDSA_P256 stored" in text  # WHY wraps to fit 100
    assert "warning: eks/ca: key type ECDSA_P256, but spec.tls.keyType is RSA_2048" in text
    assert "'meshbridge certs rotate --ca --mesh eks'" in text
    assert main(["certs", "check"]) == 0  # warnings only
    text = capsys.readouterr().out
    assert "warning" in text and "rotate --ca --mesh gke" in text and "error" not in text


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
