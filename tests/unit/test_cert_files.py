"""Certificates a Gateway or DestinationRule names as files in the pod (``serverCertificate``, ``clientCertificate``,
``privateKey``, ``caCertificates``, ``caCrl``): istiod's SDS names for them, lint's checks of the files given with
``--cert PATH=FILE`` (the rules of a Secret, across meshes), MB210 for those not given, and the option's errors.
The twin's side (mounting them, refusing to start without them) runs on real Envoy in
``tests/integration/test_twin_cert_files.py``; istiod's own names are compared in the oracle corpus
(``egress-mutual-origination-files``, ``ingress-mutual-files``)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.common import parse_cert
from meshbridge.cli.main import main
from meshbridge.envoy.names import file_cert_name, file_root_name, parse_file_sds_name
from meshbridge.envoy.secrets import SECRET_TYPE
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.errors import IstioConfigError
from meshbridge.istio.files import MountedFile
from meshbridge.lint import LintReport, from_manifests, lint
from meshbridge.pki import issue_crl
from meshbridge.render import render_bridge
from meshbridge.world import find_proxy, mesh_config, workloads
from tests.builders import seed_bridge
from tests.istio_builders import ADDRESSES, CLIENT_FILES, client_certificate_files, doc_named, placement
from tests.lint_builders import NOW, Docs, credentials, foreign_leaf, seed_ca, seed_docs

EGRESS = "gke/istio-egressgateway"
EGRESS_CLUSTER = "outbound|80||lambda.external"
CERT, KEY, CA = CLIENT_FILES["clientCertificate"], CLIENT_FILES["privateKey"], CLIENT_FILES["caCertificates"]
SERVER_FILES = {
    "serverCertificate": "/etc/istio/ingressgateway-certs/tls.crt",
    "privateKey": "/etc/istio/ingressgateway-certs/tls.key",
    "caCertificates": "/etc/istio/ingressgateway-ca-certs/ca.crt",
    "caCrl": "/etc/istio/ingressgateway-ca-certs/ca.crl",
}


def _common(socket: dict[str, Any]) -> dict[str, Any]:
    common: dict[str, Any] = socket["typed_config"]["common_tls_context"]
    return common


def _client_files() -> list[MountedFile]:
    """The gke egress gateway's client certificate and key, and the exporter's CA, as the seed issues them."""
    gke = credentials(seed_bridge())["gke"]
    assert gke.client is not None and gke.client.key_pem is not None
    return [
        MountedFile(CERT, gke.client.cert_pem, source="client.crt"),
        MountedFile(KEY, gke.client.key_pem, source="client.key"),
        MountedFile(CA, gke.client_trust, source="eks-ca.crt"),
    ]


def _lint(docs: Docs, files: list[MountedFile]) -> LintReport:
    pairs = {m: [(f"{m}.yaml#{i}", d) for i, d in enumerate(ds)] for m, ds in docs.items()}
    return lint(from_manifests(pairs, bridge=seed_bridge(), mounted_files=files, now=NOW))


def _client_docs() -> Docs:
    docs = seed_docs()
    client_certificate_files(docs)
    return docs


# -- istiod's names ----------------------------------------------------------------------------------------


def test_file_sds_names_are_istiods_and_read_back() -> None:
    assert file_cert_name("/c/tls.crt", "/c/tls.key") == "file-cert:/c/tls.crt~/c/tls.key"
    assert file_root_name("/c/ca.crt") == "file-root:/c/ca.crt"
    assert parse_file_sds_name("file-cert:/c/tls.crt~/c/tls.key") == ("/c/tls.crt", "/c/tls.key")
    assert parse_file_sds_name("file-root:/c/ca.crt") == ("/c/ca.crt",)
    # the twin: names that read no file of the pod
    for other in ("file-root:system", "kubernetes://mtls-credential", "default", "ROOTCA", "file-cert:/only-one"):
        assert parse_file_sds_name(other) is None


def _egress(tmp: Path, mounts: dict[str, Path] | None = None) -> ProxyConfig:
    """The seed's egress gateway with :func:`client_certificate_files`, its pod mounting ``mounts``."""
    bridge = seed_bridge()
    docs = {m: copy.deepcopy(list(ds)) for m, ds in render_bridge(bridge, None).items()}
    client_certificate_files(docs)
    cfg = mesh_config(bridge, "gke", [("gke.yaml", d) for d in docs["gke"]])
    spec = find_proxy(bridge, EGRESS)
    where = dataclasses.replace(placement(tmp, ADDRESSES[EGRESS]), mounts=mounts or {})
    return translate(cfg, spec.proxy, where, workloads(bridge, "gke", ADDRESSES))


def test_the_egress_cluster_reads_the_pods_files_over_sds(tmp_path: Path) -> None:
    pc = _egress(tmp_path)
    (cluster,) = [c for c in pc.clusters if c["name"] == EGRESS_CLUSTER]
    common = _common(cluster["transport_socket"])
    assert [s["name"] for s in common["tls_certificate_sds_secret_configs"]] == [f"file-cert:{CERT}~{KEY}"]
    validation = common["combined_validation_context"]
    assert validation["validation_context_sds_secret_config"]["name"] == f"file-root:{CA}"
    assert cluster["transport_socket"]["typed_config"]["sni"] == "lambda.external"
    assert not pc.warnings or all("file" not in w.message for w in pc.warnings)
    # nothing mounted: nothing served, and the proxy says which files it lacks
    assert pc.secrets[f"file-cert:{CERT}~{KEY}"] is None and pc.secrets[f"file-root:{CA}"] is None
    assert pc.unmounted_files() == sorted([CA, CERT, KEY])


def test_mounted_files_are_served_from_their_copies(tmp_path: Path) -> None:
    copies = {path: tmp_path / "mounts" / path.lstrip("/") for path in (CERT, KEY, CA)}
    pc = _egress(tmp_path, copies)
    assert pc.secrets[f"file-cert:{CERT}~{KEY}"] == {
        "@type": SECRET_TYPE,
        "name": f"file-cert:{CERT}~{KEY}",
        "tls_certificate": {
            "certificate_chain": {"filename": str(copies[CERT])},
            "private_key": {"filename": str(copies[KEY])},
        },
    }
    trust = pc.secrets[f"file-root:{CA}"]
    assert trust is not None and trust["validation_context"] == {"trusted_ca": {"filename": str(copies[CA])}}
    assert pc.unmounted_files() == []
    # the negative twin: the key not mounted, the secret that reads it is not served
    partial = _egress(tmp_path, {CERT: copies[CERT], CA: copies[CA]})
    assert partial.secrets[f"file-cert:{CERT}~{KEY}"] is None and partial.secrets[f"file-root:{CA}"] is not None
    assert partial.unmounted_files() == [KEY]


def _server_files(docs: Docs) -> None:
    """The seed's ingress gateway (eks) terminates mutual TLS with the files its pod mounts (:data:`SERVER_FILES`)."""
    tls = doc_named(docs, "eks", "Gateway", "eastwestgateway")["spec"]["servers"][0]["tls"]
    del tls["credentialName"]
    tls.update(SERVER_FILES)
    docs["eks"] = [d for d in docs["eks"] if d["kind"] != "Secret"]


def test_a_gateway_server_reads_its_files_and_its_crl_from_the_copy(tmp_path: Path) -> None:
    bridge = seed_bridge()
    docs = {m: copy.deepcopy(list(ds)) for m, ds in render_bridge(bridge, None).items()}
    _server_files(docs)
    cfg = mesh_config(bridge, "eks", [("eks.yaml", d) for d in docs["eks"]])
    spec = find_proxy(bridge, "eks/istio-ingressgateway")
    crl_copy = tmp_path / "ca.crl"

    def chain_tls(mounts: dict[str, Path]) -> tuple[dict[str, Any], ProxyConfig]:
        where = dataclasses.replace(placement(tmp_path, ADDRESSES[spec.name]), mounts=mounts)
        pc = translate(cfg, spec.proxy, where, workloads(bridge, "eks", ADDRESSES))
        (lst,) = pc.listeners
        return _common(lst["filter_chains"][0]["transport_socket"]), pc

    common, pc = chain_tls({SERVER_FILES["caCrl"]: crl_copy})
    cert, key = SERVER_FILES["serverCertificate"], SERVER_FILES["privateKey"]
    assert [s["name"] for s in common["tls_certificate_sds_secret_configs"]] == [f"file-cert:{cert}~{key}"]
    validation = common["combined_validation_context"]
    assert validation["validation_context_sds_secret_config"]["name"] == f"file-root:{SERVER_FILES['caCertificates']}"
    assert validation["default_validation_context"]["crl"] == {"filename": str(crl_copy)}  # Envoy reads the copy
    assert SERVER_FILES["caCrl"] not in pc.unmounted_files() and cert in pc.unmounted_files()
    # the negative twin: the CRL not mounted, Envoy would read the pod's path, which the twin lacks
    common, pc = chain_tls({})
    assert common["combined_validation_context"]["default_validation_context"]["crl"] == {
        "filename": SERVER_FILES["caCrl"]
    }
    assert pc.unmounted_files() == sorted(SERVER_FILES.values())


# -- lint: the files given are checked as Secrets are ------------------------------------------------------


def test_files_not_given_are_mb210_naming_them_and_the_skipped_checks() -> None:
    report = _lint(_client_docs(), [])
    (mb210,) = [f for f in report.findings if f.code == "MB210"]
    assert mb210.severity == "info"
    (ref,) = mb210.objects
    assert (ref.kind, ref.name, ref.field) == (
        "DestinationRule",
        "dr-lambda-ext",
        "spec.trafficPolicy.portLevelSettings[0].tls",
    )
    assert f"clientCertificate: {CERT}, privateKey: {KEY}, caCertificates: {CA}" in mb210.message
    assert "the key pair" in mb210.message and "the chain to the peer's CA" in mb210.message
    assert f"--cert {CERT}=./tls.crt" in mb210.fix and "local up" in mb210.fix
    assert report.exit_code == 0  # nothing given, nothing checked: no made-up error either


def test_the_right_files_pass_every_check() -> None:
    report = _lint(_client_docs(), _client_files())
    assert report.findings == (), [str(f) for f in report.findings]
    # and they were read: a year later, the same files have expired (MB403 at the field that names them)
    pairs = {m: [(f"{m}.yaml#{i}", d) for i, d in enumerate(ds)] for m, ds in _client_docs().items()}
    later = from_manifests(pairs, bridge=seed_bridge(), mounted_files=_client_files(), now=NOW + dt.timedelta(days=400))
    expired = [f for f in lint(later).findings if f.code == "MB403"]
    fields = {o.field.rsplit(".", 1)[-1] for f in expired for o in f.objects if o.kind == "DestinationRule"}
    assert {"clientCertificate", "caCertificates"} <= fields


def test_a_client_certificate_from_another_ca_is_mb308_at_its_field() -> None:
    """The negative twin of the above: a proper client certificate, but from a CA the exporter does not trust."""
    cert, key = foreign_leaf(
        "client", uris=["spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"]
    )
    files = [MountedFile(CERT, cert, source="wrong.crt"), MountedFile(KEY, key, source="wrong.key"), _client_files()[2]]
    report = _lint(_client_docs(), files)
    (mb308,) = [f for f in report.findings if f.code == "MB308"]
    client = mb308.objects[0]
    assert (client.mesh, client.kind, client.name) == ("gke", "DestinationRule", "dr-lambda-ext")
    assert client.field == "spec.trafficPolicy.portLevelSettings[0].tls.clientCertificate"
    assert client.source == "wrong.crt"
    assert "does not chain to the CA" in mb308.message and report.exit_code == 1


def test_a_key_of_another_certificate_is_mb402_at_the_private_key_field() -> None:
    _, other_key = foreign_leaf("client", dns=["other.example"])
    files = _client_files()
    files[1] = MountedFile(KEY, other_key, source="other.key")
    (mb402,) = [f for f in _lint(_client_docs(), files).findings if f.code == "MB402"]
    key_ref = mb402.objects[0]
    assert key_ref.field == "spec.trafficPolicy.portLevelSettings[0].tls.privateKey" and key_ref.source == "other.key"
    assert "belongs to another certificate" in mb402.message


def test_a_certificate_without_its_key_is_checked_and_mb210_names_the_key() -> None:
    report = _lint(_client_docs(), [f for f in _client_files() if f.path != KEY])
    (mb210,) = [f for f in report.findings if f.code == "MB210"]
    assert f"privateKey: {KEY}" in mb210.message and CERT not in mb210.message
    assert "it skipped the key pair" in mb210.message
    assert report.errors == []


def test_the_exporter_gateway_files_with_a_crl_that_revokes_the_client_are_mb311() -> None:
    bridge = seed_bridge()
    creds = credentials(bridge)
    eks, gke = creds["eks"], creds["gke"]
    server, client = eks.server, gke.client
    assert server is not None and server.key_pem is not None and client is not None
    key = server.key_pem
    docs = seed_docs()
    _server_files(docs)

    def files(revoked: list[int]) -> list[MountedFile]:
        return [
            MountedFile(SERVER_FILES["serverCertificate"], server.cert_pem, source="server.crt"),
            MountedFile(SERVER_FILES["privateKey"], key, source="server.key"),
            MountedFile(SERVER_FILES["caCertificates"], eks.server_trust, source="gke-ca.crt"),
            MountedFile(SERVER_FILES["caCrl"], issue_crl(seed_ca("gke"), revoked, now=NOW), source="gke-ca.crl"),
        ]

    clean = _lint(docs, files([0x1234]))  # a CRL that revokes someone else
    assert clean.errors == [], [str(f) for f in clean.errors]
    assert not [f for f in clean.findings if f.code == "MB210"]
    (mb311,) = [f for f in _lint(docs, files([client.serial])).findings if f.code == "MB311"]
    fields = {(o.kind, o.field, o.source) for o in mb311.objects}
    assert ("Gateway", "spec.servers[0].tls.caCrl", "gke-ca.crl") in fields
    assert "revoked" in mb311.message


# -- the option: one parser, its errors ------------------------------------------------------------------


def test_a_path_no_manifest_names_is_an_error_that_lists_those_named() -> None:
    with pytest.raises(IstioConfigError) as e:
        _lint(_client_docs(), [MountedFile("/etc/istio/egress-certs/tls.crt", b"x", source="client.crt")])
    text = str(e.value)
    assert text.startswith("--cert /etc/istio/egress-certs/tls.crt=client.crt: no Gateway or DestinationRule of ")
    assert "names the file /etc/istio/egress-certs/tls.crt" in text and CERT in text and "Fix:" in text


def test_a_path_two_meshes_name_needs_its_mesh() -> None:
    docs = _client_docs()
    eks_rule = copy.deepcopy(doc_named(docs, "gke", "DestinationRule", "dr-lambda-ext"))
    eks_rule["metadata"]["name"] = "same-paths"
    docs["eks"].append(eks_rule)
    with pytest.raises(IstioConfigError, match=rf"meshes eks and gke both name {CERT}.*--cert eks:{CERT}=client.crt"):
        _lint(docs, _client_files())
    with_mesh = [dataclasses.replace(f, mesh="gke") for f in _client_files()]
    report = _lint(docs, with_mesh)  # the twin: named, accepted, and eks's copy is MB210 (not given for eks)
    (mb210,) = [f for f in report.findings if f.code == "MB210"]
    assert mb210.objects[0].mesh == "eks" and f"--cert eks:{CERT}=" in mb210.fix


def test_a_mesh_that_is_not_linted_and_a_path_given_twice_are_errors() -> None:
    with pytest.raises(IstioConfigError, match=r"there is no mesh 'aks' \(meshes: eks, gke\)"):
        _lint(_client_docs(), [dataclasses.replace(_client_files()[0], mesh="aks")])
    with pytest.raises(IstioConfigError, match=rf"{CERT} is given twice for mesh gke \(also client.crt\)"):
        _lint(_client_docs(), [*_client_files(), MountedFile(CERT, b"x", source="again.crt")])


def test_parse_cert_reads_both_forms(tmp_path: Path) -> None:
    pem = tmp_path / "client.crt"
    pem.write_bytes(b"PEM")
    assert parse_cert(f"{CERT}={pem}") == MountedFile(CERT, b"PEM", None, str(pem))
    assert parse_cert(f"gke:{CERT}={pem}") == MountedFile(CERT, b"PEM", "gke", str(pem))
    secret = parse_cert(f"gke:cert={pem}")
    assert not isinstance(secret, MountedFile) and (secret.mesh, secret.key) == ("gke", "cert")
    # the twin: neither form
    with pytest.raises(IstioConfigError, match=r"expected MESH\[/NAMESPACE/NAME\]:KEY=FILE .* or \[MESH:\]PATH=FILE"):
        parse_cert(f"etc/istio/tls.crt={pem}")


def test_lint_cli_takes_the_files_and_exits_on_what_they_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = seed_docs(secrets=False)
    client_certificate_files(docs)
    bridge = tmp_path / "bridge.yaml"
    bridge.write_text(yaml.safe_dump(seed_bridge().model_dump(by_alias=True, mode="json")))
    for mesh in ("eks", "gke"):
        (tmp_path / f"{mesh}.yaml").write_text(yaml.safe_dump_all(docs[mesh]))
    given = []
    for f in _client_files():
        local = tmp_path / f.source
        local.write_bytes(f.data)
        given += ["--cert", f"{f.path}={local}"]
    args = [
        "lint",
        "-f",
        str(bridge),
        "--mesh",
        f"eks={tmp_path / 'eks.yaml'}",
        "--mesh",
        f"gke={tmp_path / 'gke.yaml'}",
    ]
    main([*args, "--json"])
    assert "MB210" in capsys.readouterr().out
    main([*args, *given, "--json"])
    assert "MB210" not in capsys.readouterr().out
    assert main([*args, "--cert", f"/etc/istio/nowhere.crt={tmp_path / 'client.crt'}"]) == 2
    assert "names the file /etc/istio/nowhere.crt" in capsys.readouterr().err


def test_local_up_takes_only_files_in_the_pod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pem = tmp_path / "client.crt"
    pem.write_bytes(b"PEM")
    assert main(["local", "up", "-f", str(tmp_path / "bridge.yaml"), "--cert", f"gke:cert={pem}"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'local up' mounts files the manifests name in the pods ([MESH:]PATH=FILE)" in err
    assert "Fix: put the Secret in the mesh's --manifests" in err
    assert main(["local", "up", "-f", str(tmp_path / "bridge.yaml"), "--cert", "gke:/etc/x.crt=/no/such.pem"]) == 2
    assert "cannot read /no/such.pem" in capsys.readouterr().err


def test_translate_validate_says_who_mounts_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bridge.yaml").write_text(yaml.safe_dump(seed_bridge().model_dump(by_alias=True, mode="json")))
    bridge = seed_bridge()
    docs = {m: [dict(d) for d in ds] for m, ds in render_bridge(bridge, None).items()}
    client_certificate_files(docs)
    (tmp_path / "gke.yaml").write_text(yaml.safe_dump_all(docs["gke"]))
    args = ["translate", "-f", str(tmp_path / "bridge.yaml"), "--proxy", EGRESS, "--validate"]
    assert main([*args, "--manifests", f"gke={tmp_path / 'gke.yaml'}"]) == 2
    err = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert f"files in the pod ({CA}, {CERT}, {KEY}) are mounted only by 'local up --cert PATH=FILE'" in err
    # the twin: a Secret that was never issued is not a file, and the message does not say so
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "kubernetes://mtls-credential" in err and "files in the pod" not in err
