"""istio.io's secure-ingress task with its credentialName Secret created beside the Gateway resource (default), not
in the gateway pods' namespace, on real Envoys: istiod serves that gateway nothing (``pilot/pkg/xds/sds.go``
filterAuthorizedResources: same namespace only), so the twin fills nothing from meshbridge's PKI either and 'local
up' refuses the proxy that would wait for it, in lint MB207's words. The same on the importer side. And a sidecar
that originates TLS with a credentialName, whose ServiceAccount no Role lets list Secrets: lint MB213's note."""

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
from tests.lint_builders import seed_docs
from tests.unit.test_lint_codes import at_sidecar

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


@pytest.mark.parametrize("role", [False, True])
def test_a_sidecar_that_reads_a_credential_without_a_role_gets_mb213s_note(tmp_path: Path, role: bool) -> None:
    """istio.io's TLS origination at a sidecar: its ServiceAccount must be allowed to list Secrets. The twin serves
    the Secret (it models no RBAC) and says istiod may not (lint MB213); the negative twin, with the task's Role
    (client-credential-role) bound to the app's account, says nothing."""
    file, bridge = seed_folder(tmp_path)
    docs = seed_docs(bridge)
    at_sidecar(names=[] if role else None)(docs)
    manifests = {}
    for mesh, ds in docs.items():
        manifests[mesh] = [tmp_path / f"{mesh}.yaml"]
        manifests[mesh][0].write_text(to_yaml(ds))
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        notes = [n for n in twin.up(manifests).notices if "MB213" in n]
        assert all(s.ready for s in twin.status())  # the sidecar got its Secret
    finally:
        twin.down()
    if role:
        assert notes == []
    else:
        assert notes == [
            "gke/sleep: reads credentialName mtls-credential, which istiod serves a sidecar only if its ServiceAccount "
            "sleep/sleep may list Secrets in sleep (a SubjectAccessReview), and no Role or ClusterRole of the input is "
            "bound to it with list on secrets; Kubernetes grants a ServiceAccount none by default. Not checked "
            "further: RBAC outside the input is not seen; the twin serves it (it models no RBAC) (lint MB213). Fix: "
            "bind sleep/sleep a Role in sleep with list on secrets (kubectl create role client-credential-role "
            "--resource=secret --verb=list -n sleep; kubectl create rolebinding client-credential-role-binding "
            "--role=client-credential-role --serviceaccount=sleep:sleep -n sleep) and pass it to lint, or check it: "
            "kubectl auth can-i list secrets -n sleep --as=system:serviceaccount:sleep:sleep"
        ]
