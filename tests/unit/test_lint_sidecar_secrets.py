"""A sidecar that originates TLS with a credentialName (istio.io's egress TLS origination "at sidecar": a
DestinationRule with workloadSelector app: sleep, its Secret beside the app): istiod serves that sidecar the Secret
only from its own namespace (MB207, worded for a sidecar), and only if its ServiceAccount may list Secrets (MB212,
MB213; ``pilot/pkg/xds/sds.go`` filterAuthorizedResources)."""

from __future__ import annotations

from meshbridge.lint.findings import Finding
from tests.unit.test_lint_codes import Change, at_sidecar, run


def _findings(change: Change, code: str) -> list[Finding]:
    return [f for f in run(change, None, True, ("eks", "gke")).findings if f.code == code]


def test_mb207_on_a_sidecar_speaks_of_the_sidecar_not_of_a_gateway() -> None:
    (f,) = _findings(at_sidecar("istio-egress", names=[]), "MB207")
    assert f.message == (
        "gke/sleep runs in namespace sleep and reads credentialName 'mtls-credential' there, but the Secret is in "
        "istio-egress: istiod serves a sidecar only the Secrets of its own namespace"
    )
    assert f.fix == (
        "create the Secret mtls-credential in namespace sleep (the sidecar workload's namespace, not the namespace of "
        "the resource that names it)"
    )
    assert "gateway" not in f.message + f.fix
    # negative twin: the Secret beside the app is served to its sidecar
    assert _findings(at_sidecar("sleep", names=[]), "MB207") == []


def test_a_sidecar_bound_no_role_that_lists_secrets_is_warned_with_the_tasks_role() -> None:
    (f,) = _findings(at_sidecar(), "MB213")
    assert f.severity == "warning" and (f.objects[0].kind, f.objects[0].name) == ("ServiceAccount", "sleep")
    assert f.message.startswith(
        "gke/sleep reads credentialName mtls-credential, which istiod serves a sidecar only if its ServiceAccount "
        "sleep/sleep may list Secrets in sleep (a SubjectAccessReview), and no Role or ClusterRole of the input is "
        "bound to it with list on secrets"
    )
    assert "kubectl create role client-credential-role --resource=secret --verb=list -n sleep" in f.fix
    assert "--serviceaccount=sleep:sleep" in f.fix
    assert "kubectl auth can-i list secrets -n sleep --as=system:serviceaccount:sleep:sleep" in f.fix
    # negative twins: the task's Role bound to the app's account; and a gateway bound none (its chart's Role)
    assert _findings(at_sidecar(names=[]), "MB213") == []
    assert _findings(lambda _: None, "MB213") == []


def test_mb212_on_a_sidecar_whose_role_lists_secrets_only_by_name() -> None:
    (f,) = _findings(at_sidecar(names=["mtls-credential"]), "MB212")
    assert f.severity == "error"
    assert f.message == (
        "gke/sleep runs as ServiceAccount sleep/sleep, whose Roles let it list Secrets only by name (mtls-credential); "
        "istiod asks whether it may list Secrets in sleep at all (a SubjectAccessReview without a name) before it "
        "serves mtls-credential, and the answer is no"
    )
    assert f.fix.startswith("grant get, list and watch on secrets in the sidecar's namespace without resourceNames")
    assert _findings(at_sidecar(names=["mtls-credential"]), "MB213") == []  # one finding: the Role is there
    # negative twin: the Role without resourceNames
    assert _findings(at_sidecar(names=[]), "MB212") == []
