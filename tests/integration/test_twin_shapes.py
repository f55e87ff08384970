"""examples/helloworld on the twin, with real Envoys: apps call another name than the exported host (importAs),
on a port the egress gateway's Service does not expose (egressGatewayPort), and each mesh's gateway reads its
own credentialName. Each shape has its negative twin: the same path without what the shape renders fails."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshbridge.errors import LocalError
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.render import render_bridge, to_yaml
from meshbridge.spec import load_bridge
from meshbridge.verify.local import verify_local
from tests.builders import HELLOWORLD

pytestmark = pytest.mark.integration
ANSWER = b"Hello version: v1, instance: helloworld-v1"


def _folder(tmp: Path) -> Path:
    """A copy of examples/helloworld in ``tmp``; its bridge file."""
    shutil.copytree(HELLOWORLD.parent, tmp / "helloworld")
    return tmp / "helloworld" / "bridge.yaml"


def _twin(file: Path) -> LocalTwin:
    return LocalTwin(load_bridge(file), file, file.parent / ".meshbridge")


def _rendered_with(file: Path, mesh: str, change: str, into: str) -> dict[str, list[Path]]:
    """``--manifests`` for ``mesh``: its rendered documents (no Secrets: the twin fills them from its PKI) with the
    YAML text ``change`` replaced by ``into``."""
    text = to_yaml(list(render_bridge(load_bridge(file), None)[mesh]))
    assert change in text
    path = file.parent / f"{mesh}.yaml"
    path.write_text(text.replace(change, into))
    return {mesh: [path]}


@pytest.fixture(scope="module")
def helloworld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    twin = _twin(_folder(tmp_path_factory.mktemp("helloworld")))
    try:
        twin.up()
        yield twin
    finally:
        twin.down()


def test_an_app_calls_hw_on_5000_and_gets_the_backends_answer(helloworld: LocalTwin) -> None:
    """The whole path: sleep's sidecar (port 5000, authority rewritten), the egress gateway on Service port 80
    (pod port 8080), mutual TLS with SNI c2.example.com to c2's gateway, the backend."""
    for url in ("http://hw:5000/hello", "http://hw.sleep.svc.cluster.local:5000/hello"):
        r = curl(helloworld.app_view(), url)
        assert (r.status, r.header("server")) == (200, "envoy"), r.body
        assert ANSWER in r.body and b"(Host: c2.example.com)" in r.body  # the exported host, from the sidecar on
    assert "hw through the pod's DNS search path" in "\n".join(curl(helloworld.app_view(), "http://hw:5000/").trace)


def test_verify_passes_and_each_gateway_serves_its_own_meshs_credential(helloworld: LocalTwin) -> None:
    conditions = {(c.check, c.subject): c for c in verify_local(helloworld)}
    assert [f"{c.check}: {c.message}" for c in conditions.values() if not c.passed] == []
    served = {s: c.message for (check, s), c in conditions.items() if check == "ServedCertificateExpiry"}
    assert "holds kubernetes://c2-mtls, kubernetes://c2-mtls-cacert" in served["c2/istio-ingressgateway"]
    assert "holds kubernetes://c1-egress-mtls, kubernetes://c1-egress-mtls-cacert" in served["c1/istio-egressgateway"]
    reached = next(c for (check, _), c in conditions.items() if check == "AppReachesExport")
    assert reached.message.startswith("http://hw.sleep.svc.cluster.local:5000/hello-world from c1/sleep")


def test_negative_twin_without_the_authority_rewrite_the_egress_gateway_has_no_route(tmp_path: Path) -> None:
    """The name apps call reaches the egress gateway as it stands, and its Gateway serves c2.example.com only."""
    file = _folder(tmp_path)
    twin = _twin(file)
    manifests = _rendered_with(file, "c1", "    rewrite:\n      authority: c2.example.com\n", "")
    try:
        twin.up(manifests)
        r = curl(twin.app_view(), "http://hw:5000/hello")
        assert r.status == 404 and ANSWER not in r.body
        assert curl(twin.app_view(), "http://c2.example.com:5000/hello").status == 200  # the exported host still routes
    finally:
        twin.down()


def test_negative_twin_a_gateway_naming_the_shared_credential_gets_no_secret(tmp_path: Path) -> None:
    """c2's Secret is c2-mtls: a Gateway that names spec.tls.credentialName (mtls-credential) finds none."""
    file = _folder(tmp_path)
    twin = _twin(file)
    manifests = _rendered_with(file, "c2", "credentialName: c2-mtls", "credentialName: mtls-credential")
    with pytest.raises(LocalError) as e:
        twin.up(manifests)
    text = str(e.value)
    assert "cannot start (nothing was started)" in text
    assert "c2/istio-ingressgateway: secret kubernetes://mtls-credential: nothing gives it" in text
    assert "name the credential c2-mtls (spec.meshes.c2.credentialName)" in text
    assert twin.processes() == {}
