"""Certificates the importer's egress gateway reads from files in its pod, on real Envoy: the seed's bridge whose gke
DestinationRule (``--manifests``) names ``clientCertificate``, ``privateKey`` and ``caCertificates`` instead of a
credentialName, as Istio's egress TLS origination task did before credentialName.

Given with ``--cert PATH=FILE``, the twin mounts the files where the egress gateway's Envoy reads them and the app
reaches the Lambda; not given, ``local up`` refuses to start, naming each path, the rule that names it and the fix;
given but from a CA the exporter does not trust, lint says so (MB308) and the exporter refuses the handshake."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from meshbridge.errors import LocalError
from meshbridge.istio.files import MountedFile
from meshbridge.istiod.oracle import OracleUnavailable, ensure_oracle
from meshbridge.lint import from_manifests, lint
from meshbridge.local.curl import curl
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin, Translator
from meshbridge.pki import PkiStore, issue_ca, issue_leaf
from meshbridge.render import render_bridge
from tests.integration.twin_support import seed_folder
from tests.istio_builders import CLIENT_FILES, client_certificate_files

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
EGRESS_CLUSTER = "outbound|80||lambda.external"
IDENTITY = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
CERT, KEY, CA = CLIENT_FILES["clientCertificate"], CLIENT_FILES["privateKey"], CLIENT_FILES["caCertificates"]


def _setup(tmp: Path) -> tuple[LocalTwin, dict[str, list[Path]], list[MountedFile]]:
    """The seed's twin with the gke manifests of :func:`client_certificate_files`, and the files its egress
    gateway's pod would mount: the client certificate and key meshbridge issued for gke, and eks's CA."""
    file, bridge = seed_folder(tmp)
    store = PkiStore(tmp / ".meshbridge")
    store.issue(bridge)
    rendered = render_bridge(
        bridge, None, addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports}
    )
    docs = {"gke": [dict(d) for d in rendered["gke"]]}
    client_certificate_files(docs)
    gke = tmp / "gke.yaml"
    gke.write_text(yaml.safe_dump_all(docs["gke"]))
    client = store.credentials(bridge)["gke"]
    assert client.client is not None and client.client.key_pem is not None
    content = {CERT: client.client.cert_pem, KEY: client.client.key_pem, CA: client.client_trust}
    return LocalTwin(bridge, file, tmp / ".meshbridge"), {"gke": [gke]}, _files(tmp, content)


def _files(tmp: Path, content: dict[str, bytes]) -> list[MountedFile]:
    """The ``--cert PATH=FILE`` values for ``content`` (path in the pod → bytes), each written to a file in ``tmp``."""
    out = []
    for path, data in content.items():
        local = tmp / path.rsplit("/", 1)[-1]
        local.write_bytes(data)
        out.append(MountedFile(path, data, None, str(local)))
    return out


def _egress_handshakes(twin: LocalTwin, counter: str) -> int:
    """The egress gateway's TLS ``counter`` toward the exporter (istiod's clusters count under ``<name>;``)."""
    stats = twin.stats("gke/istio-egressgateway")
    return sum(stats.get(f"cluster.{EGRESS_CLUSTER}{tail}.ssl.{counter}", 0) for tail in ("", ";"))


@pytest.mark.parametrize("translator", ["meshbridge", pytest.param("istiod", marks=pytest.mark.oracle)])
def test_the_files_given_are_mounted_and_the_app_reaches_the_lambda(tmp_path: Path, translator: Translator) -> None:
    """On meshbridge's translation and on istiod's own (its file-cert/file-root names, served from the copies)."""
    if translator == "istiod":
        try:
            ensure_oracle()
        except OracleUnavailable as e:
            pytest.skip(str(e))
    twin, manifests, files = _setup(tmp_path)
    twin.up(manifests, translator=translator, files=files)
    try:
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 200 and PAGE in r.body
        assert _egress_handshakes(twin, "handshake") >= 1  # with the mounted client certificate
        copy = twin.root / "mounts" / "gke" / KEY.lstrip("/")
        assert copy.read_bytes() == files[1].data and stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert f"--cert {CERT}=" in twin.up_command()  # the hints that start it again give the files again
    finally:
        twin.down()


def test_without_the_files_local_up_refuses_to_start(tmp_path: Path) -> None:
    """The negative twin: nothing mounted, so the egress gateway would wait for its certificate forever; the start
    stops before any process runs, naming each path, the field that names it and the fix."""
    twin, manifests, files = _setup(tmp_path)
    phases: list[str] = []
    with pytest.raises(LocalError) as e:
        twin.up(manifests, checkpoint=phases.append, files=[f for f in files if f.path != KEY])
    text = str(e.value)
    assert f"gke/istio-egressgateway reads {KEY} (DestinationRule istio-egress/dr-lambda-ext " in text
    assert "spec.trafficPolicy.portLevelSettings[0].tls.privateKey)" in text
    assert CERT not in text and CA not in text  # those two were given
    assert f"Fix: give each file: --cert PATH=FILE (e.g. --cert {KEY}=./tls.key" in text
    assert "credentialName" in text
    assert "supervisor" not in phases and not twin.running() and twin.processes() == {}
    with pytest.raises(LocalError) as none:
        twin.up(manifests)
    assert all(path in str(none.value) for path in (CERT, KEY, CA))
    # a path no manifest names is the option's error, as in lint
    with pytest.raises(LocalError, match=r"^--cert /etc/istio/nowhere.crt=.*: no Gateway or DestinationRule of "):
        twin.up(manifests, files=[*files, MountedFile("/etc/istio/nowhere.crt", b"x", None, "nowhere.crt")])
    assert not twin.running()


def _lint(twin: LocalTwin, manifests: dict[str, list[Path]], files: Sequence[MountedFile]) -> list[str]:
    """lint's errors on the same input (the rendered eks with its Secrets, the gke manifests, the files)."""
    bridge = twin.bridge
    eks = render_bridge(bridge, PkiStore(twin.state_dir).credentials(bridge))["eks"]
    gke = yaml.safe_load_all(manifests["gke"][0].read_text())
    docs = {"eks": [("eks", dict(d)) for d in eks], "gke": [("gke.yaml", d) for d in gke]}
    report = lint(from_manifests(docs, bridge=bridge, mounted_files=files))
    return [f"{f.code} {f.objects[0].field} {f.message}" for f in report.errors]


def test_a_client_certificate_from_another_ca_fails_in_lint_and_in_the_twin(tmp_path: Path) -> None:
    """The negative twin of the first: the right paths, the right identity, a CA eks does not trust."""
    twin, manifests, files = _setup(tmp_path)
    assert _lint(twin, manifests, files) == []
    stranger = issue_ca("a CA nobody trusts")
    leaf = issue_leaf(stranger, "client", common_name="istio-egressgateway", uris=[IDENTITY])
    assert leaf.key_pem is not None
    wrong = _files(tmp_path, {CERT: leaf.cert_pem, KEY: leaf.key_pem, CA: files[2].data})
    (error,) = _lint(twin, manifests, wrong)
    assert error.startswith("MB308 spec.trafficPolicy.portLevelSettings[0].tls.clientCertificate ")
    assert "does not chain to the CA eks/istio-ingressgateway trusts" in error
    twin.up(manifests, files=wrong)
    try:
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 503 and PAGE not in r.body
        ingress = twin.stats("eks/istio-ingressgateway")

        def listener(counter: str) -> int:
            return sum(
                v for k, v in ingress.items() if k.startswith("listener.") and k.endswith(f"_8443.ssl.{counter}")
            )

        assert listener("fail_verify_error") >= 1 and listener("handshake") == 0  # the exporter refused it
    finally:
        twin.down()


def test_a_rotation_on_a_twin_serving_files_is_refused_before_the_store_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The files are what the egress gateway serves; a rotation changes the store, not them: refused, nothing changed
    (it used to reissue the leaves, then stop with a traceback while pushing)."""
    from meshbridge.cli.main import main

    twin, manifests, files = _setup(tmp_path)
    twin.up(manifests, files=files)
    monkeypatch.chdir(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    before = {
        (m, slot): (store.root / m / f"{slot}.crt").read_bytes() for m, slot in (("gke", "client"), ("eks", "server"))
    }
    try:
        capsys.readouterr()
        assert main(["certs", "rotate", "--leaf"]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "the running local twin was started with certificate files of your --manifests" in err
        assert f"{CERT} (" in err and "Nothing was rotated" in err
        assert {k: (store.root / k[0] / f"{k[1]}.crt").read_bytes() for k in before} == before
        assert curl(twin.app_view(), "http://lambda.external/hello-world").status == 200  # still served
    finally:
        twin.down()
    # the negative twin: the same twin on the store's Secrets (no --manifests, no --cert) rotates
    twin.up()
    try:
        capsys.readouterr()
        assert main(["certs", "rotate", "--leaf", "--mesh", "gke"]) == 0
        assert (store.root / "gke" / "client.crt").read_bytes() != before[("gke", "client")]
    finally:
        twin.down()
