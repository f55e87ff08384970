"""The twin tells the truth about readiness, with real Envoys: a proxy is ready only when it took every
resource it was given, and 'local up' fails naming the proxy, the resource, Envoy's own message and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.errors import LocalError
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from tests.builders import ROOT
from tests.integration.twin_support import seed_folder, twin_for, wait_for_status

pytestmark = pytest.mark.integration


# -- readiness: 'local up' fails on what Envoy refused, naming it -----------------------------------------------


def test_up_fails_on_a_secret_no_one_provides_naming_the_proxy_the_secret_and_the_fix(article: Path) -> None:
    gke = article / "gke.yaml"
    gke.write_text(gke.read_text().replace("credentialName: mtls-credential", "credentialName: other-cred"))
    twin, manifests = twin_for(article)
    said: list[str] = []
    with pytest.raises(LocalError) as e:
        twin.up(manifests, progress=said.append)
    text = str(e.value)
    # checked before any component starts (it could never become ready): no process was spawned
    assert "cannot start (nothing was started)" in text and not any(line.startswith("started") for line in said)
    assert "gke/istio-egressgateway: secret kubernetes://other-cred: nothing gives it" in text
    assert "gke/istio-egressgateway: secret kubernetes://other-cred-cacert: nothing gives it" in text
    assert text.count("kubernetes://other-cred:") == 1  # each secret once
    assert "names credentialName other-cred, and no Secret istio-egress/other-cred" in text
    assert "name the credential mtls-credential (spec.tls.credentialName)" in text
    assert twin.processes() == {}  # nothing left running
    # the negative twin: the same manifests as they stand come up, every proxy ready
    gke.write_text((ROOT / "examples" / "article" / "gke.yaml").read_text())
    try:
        twin.up(manifests)
        assert all(s.ready and s.live and not s.problems for s in twin.status())
    finally:
        twin.down()


def test_up_fails_on_a_route_envoy_rejects_with_envoys_own_message(article: Path) -> None:
    """A regex RE2 refuses (a lookahead, which Python's re would take): Envoy rejects the exporter gateway's
    route configuration, and LIVE alone would have called the gateway ready."""
    eks = article / "eks.yaml"
    eks.write_text(eks.read_text().replace("            prefix: /\n", '            regex: "/(?=a)b"\n', 1))
    twin, manifests = twin_for(article)
    with pytest.raises(LocalError) as e:
        twin.up(manifests)
    text = str(e.value)
    assert "eks/istio-ingressgateway is live but not ready" in text
    assert "route https.443.https.eastwestgateway.istio-ingress: Envoy rejected its update" in text
    assert "invalid perl operator" in text
    assert "--proxy eks/istio-ingressgateway --validate" in text and "meshbridge lint -f" in text
    assert twin.processes() == {}


def test_a_proxy_that_rejects_a_pushed_secret_is_not_ready_until_a_good_one_is_taken(tmp_path: Path) -> None:
    import json

    from meshbridge.local.xds import swap_secrets

    file, bridge = seed_folder(tmp_path)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    egress = "gke/istio-egressgateway"
    try:
        twin.up()
        folder = twin.root / egress / "sds"
        name = "kubernetes___mtls-credential.yaml"
        files = {p.name: json.loads(p.read_text()) for p in folder.iterdir() if p.name.endswith(".yaml")}
        swap_secrets(folder, {**files, name: {"version_info": "deleted", "resources": []}})
        status = wait_for_status(twin, egress, lambda s: not s.ready)
        assert status.live and not status.ready_for(allow_missing_secrets=True)  # a rejection, not a missing one
        (problem,) = status.problems
        assert (problem.kind, problem.name, problem.state) == ("secret", "kubernetes://mtls-credential", "rejected")
        assert "Missing SDS resources for kubernetes://mtls-credential" in problem.envoy
        assert curl(twin.app_view(), "http://lambda.external/hello-world").status == 200  # the last good one runs
        # the negative twin: the store's secret pushed back is taken, and the proxy is ready again
        assert name in twin.refresh_secrets()[egress]
        assert wait_for_status(twin, egress, lambda s: s.ready).problems == ()
    finally:
        twin.down()
