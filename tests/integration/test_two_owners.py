"""Two owners, each with only its own keys, on real Envoy: the mTLS path between their gateways completes.

The exporter (eks) and the importer (gke) each keep a one-side spec and a state folder of their own; they
exchange a signed offer and reply (``meshbridge peer``), issue their own certificates and render their own mesh.
The twin then runs the two rendered sides together (``local up --manifests``, as either owner or a third
party could run them), with the Secrets each side rendered from its own store: a real TLS handshake between
the gateways, each leaf signed by a CA whose key only its owner holds. Negative twin: the importer replaces
its CA without a new reply, and the exporter's gateway, which trusts only the admitted CA, refuses it.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.pki.x509 import parse_certificates
from meshbridge.spec import load_bridge
from tests.builders import ROOT
from tests.integration.twin_support import seed_folder
from tests.peer_support import Owners, exchange, two_owners

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"


def _render(side: Path, mesh: str, to: Path, capsys: pytest.CaptureFixture[str]) -> list[Path]:
    """What the owner of ``side`` renders for its own mesh (``render --mesh``), as a file of manifests."""
    capsys.readouterr()
    assert main(["render", "-f", str(side), "--mesh", mesh]) == 0
    to.write_text(capsys.readouterr().out)
    return [to]


def _cacert(manifest: Path) -> list[str]:
    (secret,) = (d for d in yaml.safe_load_all(manifest.read_text()) if d and d["kind"] == "Secret")
    return [c.subject.rfc4514_string() for c in parse_certificates(base64.b64decode(secret["data"]["cacert"]))]


def _refused(twin: LocalTwin) -> int:
    """Client certificates the exporter's ingress gateway refused (its listeners' ``ssl.fail_verify_error``)."""
    stats = twin.stats("eks/istio-ingressgateway")
    return sum(int(v) for k, v in stats.items() if k.endswith("ssl.fail_verify_error"))


def _up(owners: Owners, capsys: pytest.CaptureFixture[str], name: str) -> LocalTwin:
    """The twin of the whole bridge, running each side's own rendered documents and Secrets."""
    (owners.root / name).mkdir()
    file, bridge = seed_folder(owners.root / name)
    manifests = {
        "eks": _render(owners.exporter, "eks", owners.root / f"{name}-eks.yaml", capsys),
        "gke": _render(owners.importer, "gke", owners.root / f"{name}-gke.yaml", capsys),
    }
    twin = LocalTwin(bridge, file, file.parent / ".meshbridge")
    twin.up(manifests)
    return twin


def test_two_owners_each_with_only_its_own_keys_complete_the_mtls_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owners = two_owners(tmp_path)
    exchange(owners, capsys)
    gke_ca = PkiStore(owners.state(owners.importer)).require_ca("gke")
    twin = _up(owners, capsys, "together")
    try:
        assert _cacert(tmp_path / "together-eks.yaml") == [gke_ca.subject]  # the admitted CA, from the reply
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert (r.status, PAGE in r.body) == (200, True)
        assert _refused(twin) == 0
    finally:
        twin.down()


def test_the_exporter_refuses_an_importer_ca_it_never_admitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owners = two_owners(tmp_path)
    exchange(owners, capsys)
    # the importer's owner replaces its CA and leaves (a new key), and sends no new reply
    assert main(["certs", "issue", "--force", "-f", str(owners.importer)]) == 0
    twin = _up(owners, capsys, "unadmitted")
    try:
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 503 and PAGE not in r.body
        assert _refused(twin) >= 1
    finally:
        twin.down()


def test_the_importer_runs_its_one_side_spec_with_the_exporters_rendered_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``local up -f <importer's spec> --manifests eks=<what eks's owner rendered>``: a test of both sides
    together from the importer's folder (the exporter's render holds its Secret, so this is for a test bench,
    not for handing over)."""
    owners = two_owners(tmp_path)
    exchange(owners, capsys)
    (owners.importer.parent / "handler.py").write_text((ROOT / "examples" / "seed" / "handler.py").read_text())
    eks = _render(owners.exporter, "eks", tmp_path / "eks.yaml", capsys)
    twin = LocalTwin(load_bridge(owners.importer), owners.importer, owners.state(owners.importer))
    twin.up({"eks": eks})
    try:
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert (r.status, PAGE in r.body) == (200, True)
    finally:
        twin.down()
    assert not (owners.state(owners.importer) / "pki" / "eks" / "ca.key").exists()  # the twin issued no peer key
