"""verify on a twin whose exporter gateway serves certificate files of its pod, on real Envoy: the seed's eks Gateway
names ``serverCertificate``, ``privateKey`` and ``caCertificates`` instead of a credentialName (the README's ``local
up --manifests eks=eks.yaml --cert PATH=FILE``). The gateway serves the files, not the store's Secret: verify
judges the files it serves (ServedCertificateExpiry reads their ``file-cert:``/``file-root:`` secrets) and says the
store is not what it serves (GatewaysServeCurrentCerts ``CertificateFiles``), so every check passes; files whose
certificate expires soon fail ServedCertificateExpiry, though the store's own certificate is far from expiry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.istio.files import MountedFile
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore, issue_leaf
from meshbridge.pki.identities import server_leaf
from meshbridge.render import render_bridge
from meshbridge.verify.local import verify_local
from tests.integration.twin_support import seed_folder
from tests.istio_builders import doc_named

pytestmark = pytest.mark.integration
CERT, KEY = "/etc/istio/ingressgateway-certs/tls.crt", "/etc/istio/ingressgateway-certs/tls.key"
CA = "/etc/istio/ingressgateway-ca-certs/ca.crt"
SERVED = f"file-cert:{CERT}~{KEY}"
INGRESS = "eks/istio-ingressgateway"


def _setup(tmp: Path, leaf_days: int | None = None) -> tuple[LocalTwin, dict[str, list[Path]], list[MountedFile]]:
    """The seed's twin whose eks Gateway reads the server certificate, its key and the client CA from files, and
    those files: the store's eks server leaf (or, with ``leaf_days``, a leaf of the same CA and identity valid that
    many days) and the CAs eks trusts for clients."""
    file, bridge = seed_folder(tmp)
    store = PkiStore(tmp / ".meshbridge")
    store.issue(bridge)
    rendered = render_bridge(
        bridge, None, addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports}
    )
    docs = {"eks": [dict(d) for d in rendered["eks"]]}
    tls = doc_named(docs, "eks", "Gateway", "eastwestgateway")["spec"]["servers"][0]["tls"]
    del tls["credentialName"]
    tls.update({"serverCertificate": CERT, "privateKey": KEY, "caCertificates": CA})
    eks = tmp / "eks-files.yaml"
    eks.write_text(yaml.safe_dump_all([d for d in docs["eks"] if d["kind"] != "Secret"]))
    own = store.credentials(bridge)["eks"]
    assert own.server is not None and own.server.key_pem is not None
    leaf = own.server
    if leaf_days is not None:
        ca, spec = store.load("eks", "ca"), server_leaf(bridge, "eks")
        assert ca is not None and spec is not None
        leaf = issue_leaf(ca, "server", common_name=spec.common_name, dns_names=spec.dns_names, days=leaf_days)
    assert leaf.key_pem is not None
    files = []
    for path, data in {CERT: leaf.cert_pem, KEY: leaf.key_pem, CA: own.server_trust}.items():
        local = tmp / path.rsplit("/", 1)[-1]
        local.write_bytes(data)
        files.append(MountedFile(path, data, None, str(local)))
    return LocalTwin(bridge, file, tmp / ".meshbridge"), {"eks": [eks]}, files


def test_verify_judges_the_files_the_gateway_serves(tmp_path: Path) -> None:
    twin, manifests, files = _setup(tmp_path)
    twin.up(manifests, files=files)
    try:
        conditions = {c.name: c for c in verify_local(twin)}
        served = conditions["GatewaysServeCurrentCerts"]
        assert (served.status, served.reason) == ("True", "CertificateFiles"), served
        assert f"{INGRESS} serves the certificate files its pod mounts ({SERVED}, file-root:{CA};" in served.message
        assert "the store is not what it serves" in served.message
        assert "gke/istio-egressgateway serve the store's current certificates" in served.message
        assert "kubernetes://mtls-credential" not in served.message
        expiry = conditions[f"ServedCertificateExpiry[{INGRESS}]"]
        assert (expiry.status, expiry.reason) == ("True", "Valid"), expiry
        assert f"{INGRESS} holds {SERVED}, file-root:{CA}" in expiry.message
        assert all(c.passed for c in conditions.values()), [c for c in conditions.values() if not c.passed]
    finally:
        twin.down()


def test_files_that_expire_soon_fail_served_expiry_though_the_store_is_far_from_it(tmp_path: Path) -> None:
    """The negative twin: the same Gateway serving a 5-day leaf (inside the warning horizon); the store's own leaf
    is valid for months, so only a check of what is really served can see it."""
    twin, manifests, files = _setup(tmp_path, leaf_days=5)
    twin.up(manifests, files=files)
    try:
        conditions = {c.name: c for c in verify_local(twin)}
        expiry = conditions[f"ServedCertificateExpiry[{INGRESS}]"]
        assert (expiry.status, expiry.reason) == ("False", "ExpiresSoon"), expiry
        assert f"({SERVED}): not after" in expiry.message
        assert conditions["CertificateExpiry:eks/server"].passed  # the store's certificates are far from expiry
        served = conditions["GatewaysServeCurrentCerts"]
        assert (served.status, served.reason) == ("True", "CertificateFiles"), served
    finally:
        twin.down()
