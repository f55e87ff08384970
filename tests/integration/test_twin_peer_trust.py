"""'local up' predicts a handshake refused on trust, and real Envoy refuses it the same way (two owners).

Each owner renders its own mesh from its own state folder (``meshbridge peer`` exchanged the CAs); the twin runs
the two renders together. When one owner replaced its CA after the exchange and sent nothing new, the other's
Secret trusts the old CA: 'local up' says which gateway does not trust which certificate, and the fix, instead of
its 'Try:' line, and the curl it would have suggested gets the 503 the prediction names. Negative twin: after
the exchange, nothing is predicted and the curl gets the Lambda's 200.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.spec import load_bridge
from tests.integration.twin_support import seed_folder
from tests.peer_support import Owners, exchange, two_owners

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
URL = "http://lambda.external/hello-world"


def _up(owners: Owners, capsys: pytest.CaptureFixture[str]) -> tuple[LocalTwin, str, str]:
    """'local up' of the whole bridge on each owner's render of its own mesh; the twin, and what up printed."""
    manifests = []
    for mesh, side in (("eks", owners.exporter), ("gke", owners.importer)):
        capsys.readouterr()
        assert main(["render", "-f", str(side), "--mesh", mesh]) == 0
        (owners.root / f"{mesh}.yaml").write_text(capsys.readouterr().out)
        manifests += ["--manifests", f"{mesh}={owners.root / f'{mesh}.yaml'}"]
    (owners.root / "bench").mkdir()
    file, bridge = seed_folder(owners.root / "bench")
    assert main(["local", "up", "-f", str(file), *manifests]) == 0
    printed = capsys.readouterr()
    return LocalTwin(bridge, file, file.parent / ".meshbridge"), printed.out, printed.err


def _stats(twin: LocalTwin, proxy: str, suffix: str) -> int:
    return sum(int(v) for k, v in twin.stats(proxy).items() if k.endswith(suffix))


def _egress_flags(twin: LocalTwin, capsys: pytest.CaptureFixture[str]) -> set[str]:
    """The status and response flags of the importer's egress gateway's access log ('local logs --access')."""
    deadline = time.monotonic() + 5.0
    while True:  # Envoy flushes its access log within 0.2 s
        capsys.readouterr()
        assert main(["local", "logs", "gke/istio-egressgateway", "--access", "-f", str(twin.bridge_file)]) == 0
        found = set(re.findall(r'HTTP/[0-9.]+" (\d{3} [A-Z,]+ \S+)', capsys.readouterr().out))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_ca_the_exporter_never_admitted_is_predicted_at_up_and_refused_by_its_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owners = two_owners(tmp_path)
    exchange(owners, capsys)
    assert main(["certs", "issue", "--force", "-f", str(owners.importer)]) == 0  # a new CA, and no new reply
    twin, out, err = _up(owners, capsys)
    try:
        assert "Try:" not in out
        assert (
            "the path check predicts that 1 request(s) stop (notes above): export lambda at "
            "eks/istio-ingressgateway (UnknownCA)"
        ) in out
        assert "eks/istio-ingressgateway does not trust gke/istio-egressgateway's client certificate" in err
        assert "eks's owner runs 'meshbridge peer admit' with gke's reply" in err
        r = curl(twin.app_view(), URL)
        assert (r.status, PAGE in r.body) == (503, False)
        assert _stats(twin, "eks/istio-ingressgateway", "ssl.fail_verify_error") >= 1
        assert _stats(twin, "gke/istio-egressgateway", "ssl.fail_verify_error") == 0  # the server was trusted
        assert _egress_flags(twin, capsys) == {
            "503 UC upstream_reset_before_response_started{connection_termination}"
        }  # what the prediction says the egress answers
    finally:
        twin.down()


def test_a_ca_the_importer_never_accepted_is_predicted_at_up_and_refused_by_its_egress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owners = two_owners(tmp_path)
    exchange(owners, capsys)
    assert main(["certs", "issue", "--force", "-f", str(owners.exporter)]) == 0  # a new CA, and no new offer
    twin, out, err = _up(owners, capsys)
    try:
        assert "export lambda at gke/istio-egressgateway (UF)" in out
        assert "gke/istio-egressgateway does not trust eks/istio-ingressgateway's server certificate" in err
        r = curl(twin.app_view(), URL)
        assert (r.status, PAGE in r.body) == (503, False)
        assert _stats(twin, "gke/istio-egressgateway", "ssl.fail_verify_error") >= 1  # the importer refused first
        (flags,) = _egress_flags(twin, capsys)  # 503 URX,UF upstream_reset_before_response_started{...}
        status, flag, why = flags.split(" ", 2)
        assert (status, flag.split(",")[-1], "CERTIFICATE_VERIFY_FAILED" in why) == ("503", "UF", True)
        assert _stats(twin, "eks/istio-ingressgateway", "ssl.fail_verify_error") == 0
    finally:
        twin.down()


def test_after_the_exchange_up_predicts_no_stop_and_the_call_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owners = two_owners(tmp_path)
    exchange(owners, capsys)
    twin, out, err = _up(owners, capsys)
    try:
        assert "predicts" not in out and "does not trust" not in err
        assert f"Try: meshbridge local curl -i {URL}" in out
        r = curl(twin.app_view(), URL)
        assert (r.status, PAGE in r.body) == (200, True)
    finally:
        twin.down()
    assert load_bridge(owners.importer).spec.meshes["eks"].peer  # the importer's own spec still names the peer
