"""istio.io's secure-ingress task with its credentialName Secret created beside the Gateway resource (default), not
in the gateway pods' namespace, on real Envoys: istiod serves that gateway nothing (``pilot/pkg/xds/sds.go``
filterAuthorizedResources: same namespace only), so the twin fills nothing from meshbridge's PKI either and 'local
up' refuses the proxy that would wait for it, in lint MB207's words. The same on the importer side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshbridge.errors import LocalError
from meshbridge.local.curl import curl
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge, to_yaml
from meshbridge.spec.loader import read_backend_cas
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration


def _manifests(tmp: Path, moved: str | None) -> tuple[LocalTwin, dict[str, list[Path]]]:
    """The seed rendered with certificates of the user's own PKI into manifests, mesh ``moved``'s Secrets in
    ``default``; and the twin that runs them."""
    file, bridge = seed_folder(tmp)
    own = PkiStore(tmp / "own-pki")
    own.issue(bridge)
    rendered = render_bridge(
        bridge,
        own.credentials(bridge),
        backend_cas=read_backend_cas(bridge, file.parent),
        addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports},
    )
    manifests = {}
    for mesh, docs in rendered.items():
        out: list[dict[str, Any]] = [dict(d) for d in docs]
        if mesh == moved:
            out = [
                {**d, "metadata": {**d["metadata"], "namespace": "default"}} if d["kind"] == "Secret" else d
                for d in out
            ]
        manifests[mesh] = [tmp / f"{mesh}.yaml"]
        manifests[mesh][0].write_text(to_yaml(out))
    return LocalTwin(bridge, file, tmp / ".meshbridge"), manifests


@pytest.mark.parametrize(
    ("mesh", "proxy", "namespace"),
    [("eks", "eks/istio-ingressgateway", "istio-ingress"), ("gke", "gke/istio-egressgateway", "istio-egress")],
)
def test_a_gateway_secret_in_another_namespace_is_served_nothing_and_up_says_why(
    tmp_path: Path, mesh: str, proxy: str, namespace: str
) -> None:
    twin, manifests = _manifests(tmp_path, mesh)
    with pytest.raises(LocalError) as e:
        twin.up(manifests)
    text = str(e.value)
    assert "cannot start (nothing was started)" in text
    assert (
        f"{proxy}: secret kubernetes://mtls-credential: nothing gives it, so Envoy would wait for it for ever. It "
        f"reads credentialName mtls-credential in namespace {namespace}, but the Secret is in default: istiod serves a "
        f"gateway only the Secrets of its own namespace (lint MB207). Fix: create the Secret mtls-credential in "
        f"namespace {namespace} (the gateway workload's namespace, not the namespace of the resource that names it)"
    ) in text
    assert "meshbridge's issued certificates" not in text
    assert twin.processes() == {}


def test_negative_twin_the_secrets_in_the_gateways_namespaces_are_served_and_nothing_is_said(tmp_path: Path) -> None:
    twin, manifests = _manifests(tmp_path, None)
    try:
        report = twin.up(manifests)
        assert [n for n in report.notices if "Secret" in n and ("MB207" in n or "not in the manifests" in n)] == []
        assert curl(twin.app_view(), "http://lambda.external/hello-world").status == 200
    finally:
        twin.down()
