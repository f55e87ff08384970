"""The fix 'local up' gives for a secret a proxy waits for: it blames the user's manifests only for a Secret they
hold, not for one the twin never fills."""

from __future__ import annotations

from pathlib import Path

from meshbridge.local.twin import LocalTwin
from tests.builders import seed_bridge

SECRET = "kubernetes://mtls-credential"


def _twin(tmp: Path) -> LocalTwin:
    return LocalTwin(seed_bridge(), tmp / "bridge.yaml", tmp / ".meshbridge")


def test_a_proxy_outside_the_gateways_namespaces_is_told_no_secret_is_filled_there(tmp_path: Path) -> None:
    """A rule of the manifests gives an app's sidecar (namespace sleep) the credential: the twin fills it only in
    the gateways' namespaces, so the fix says so instead of blaming a Secret the manifests do not hold."""
    fix = _twin(tmp_path)._unserved_secret_fix("gke", SECRET, "sleep", {"gke": [Path("gke.yaml")]})
    assert fix == (
        "a rule of --manifests gke names credentialName mtls-credential for a proxy of namespace sleep, and no Secret "
        "sleep/mtls-credential holds its cert and key (or tls.crt and tls.key) (a proxy reads only its own "
        "namespace's Secrets; the twin fills mtls-credential from meshbridge's PKI only in the gateways' namespaces: "
        "istio-egress): add that Secret to --manifests gke, or keep the rule to the gateway (workloadSelector or "
        "exportTo)"
    )
    assert "remove it from the manifests" not in fix


def test_a_secret_of_the_manifests_in_the_gateways_namespace_is_the_one_to_fix(tmp_path: Path) -> None:
    """The twin: in the egress gateway's namespace the Secret that holds no keys is the manifests' own (one the
    twin filled would be served)."""
    fix = _twin(tmp_path)._unserved_secret_fix("gke", SECRET, "istio-egress", {"gke": [Path("gke.yaml")]})
    assert fix.startswith("the Secret istio-egress/mtls-credential of --manifests gke holds no cert and key")
    assert fix.endswith("fix it, or remove it from the manifests so meshbridge fills it from its PKI")
