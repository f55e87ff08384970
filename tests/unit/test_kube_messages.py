"""The messages of answers that mean something other than their status code, and of the in-cluster configuration.

Each is checked on a real API server too (tests/cluster/test_admission.py, test_missing_crds.py,
test_terminating.py, test_in_cluster.py); these pin the text and its negative twins without one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.errors import KubeError
from meshbridge.kube import connect, kubeconfig
from meshbridge.kube.errors import crd_not_served, http_error
from meshbridge.kube.kubeconfig import IN_CLUSTER, KubeconfigFiles, in_cluster_configuration
from meshbridge.kube.resources import resource_type
from tests.builders import seed_bridge

VS = "VirtualService istio-ingress/vs-lambda"
DENIED = (
    'admission webhook "validation.istio.io" denied the request: configuration is invalid: '
    "http route must have at least one destination"
)
RBAC = 'secrets "mtls-credential" is forbidden: User "meshbridge" cannot create resource "secrets"'
TERMINATING = (
    'secrets "mtls-credential" is forbidden: unable to create new content in namespace istio-ingress because it is '
    "being terminated (metadata.namespace: namespace istio-ingress is being terminated)"
)


def text(status: int, reason: str, message: str, context: str = "eks") -> str:
    return str(http_error(status, reason, message, context=context, what=VS, verb="apply (dry run)"))


# -- admission webhooks ----------------------------------------------------------------------------------


def test_a_webhook_denial_names_the_webhook_its_message_and_the_object() -> None:
    shown = text(400, "Bad Request", DENIED)
    assert "cluster 'eks': apply (dry run) VirtualService istio-ingress/vs-lambda failed: 400 Bad Request" in shown
    assert "configuration is invalid: http route must have at least one destination" in shown
    assert "the admission webhook 'validation.istio.io' denied VirtualService istio-ingress/vs-lambda" in shown
    assert "Fix: correct what the webhook's message names in the bridge spec" in shown
    assert "'kubectl --context eks get validatingwebhookconfigurations'" in shown
    assert "see the server's message" not in shown


def test_a_plain_400_keeps_the_generic_fix() -> None:
    """Negative twin: a 400 that is no webhook's denial says nothing of webhooks."""
    shown = text(400, "BadRequest", "the body of the request was in an unknown format")
    assert "webhook" not in shown and "Fix: see the server's message" in shown


def test_a_webhook_that_denies_with_403_is_still_a_denial_not_rbac() -> None:
    """A webhook may choose its code (the API server keeps any code of 400 or more)."""
    shown = text(403, "Forbidden", DENIED)
    assert "the admission webhook 'validation.istio.io' denied" in shown and "grant the verb" not in shown


def test_a_webhook_the_server_could_not_call_names_it_and_its_service() -> None:
    shown = text(
        500,
        "Internal Server Error",
        'Internal error occurred: failed calling webhook "rev.validation.istio.io": failed to call webhook: Post '
        '"https://istiod-1-17.istio-system.svc:443/validate?timeout=10s": dial tcp 10.0.0.7:443: connect: '
        "connection refused",
    )
    assert "the API server could not call the admission webhook 'rev.validation.istio.io'" in shown
    assert (
        "nothing judged the object" in shown
        and "'kubectl --context eks -n istio-system get pods -l app=istiod'" in shown
    )
    assert "check the control plane's health" not in shown


def test_a_plain_500_keeps_the_control_plane_fix() -> None:
    """Negative twin: a 500 that names no webhook."""
    shown = text(500, "Internal Server Error", "Internal error occurred: etcdserver: leader changed")
    assert "webhook" not in shown and "check the control plane's health" in shown


# -- a namespace being deleted ---------------------------------------------------------------------------


def test_a_403_for_a_terminating_namespace_says_it_is_being_deleted() -> None:
    shown = text(403, "Forbidden", TERMINATING)
    assert "namespace istio-ingress is being deleted (Terminating)" in shown
    assert "'kubectl --context eks get namespace istio-ingress' no longer finds it" in shown
    assert "or use another namespace in the bridge spec" in shown
    assert "grant the verb" not in shown and "Required RBAC" not in shown


def test_an_rbac_403_keeps_the_rbac_fix() -> None:
    """Negative twin: a refusal by RBAC still names the grant."""
    shown = text(403, "Forbidden", RBAC)
    assert "Fix: grant the verb on this resource ('meshbridge render --rbac | kubectl apply -f -'" in shown
    assert "Terminating" not in shown


# -- CRDs ------------------------------------------------------------------------------------------------


def test_a_missing_crd_is_named_with_the_context_and_the_base_chart() -> None:
    shown = crd_not_served(
        resource_type("networking.istio.io/v1", "Gateway"), context="bare", mesh="eks", istio_version="1.24.0"
    )
    assert shown.startswith(
        "the CRD gateways.networking.istio.io is not installed in context 'bare' (networking.istio.io/v1 does "
        "not serve Gateway). Fix: install Istio's CRDs (the base chart"
    )
    assert "set spec.meshes.eks.istio.version to the installed release" in shown


# -- in-cluster configuration ----------------------------------------------------------------------------


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Pod's environment: the service variables set, the token and CA mounted in ``tmp_path``."""
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    (tmp_path / "token").write_text("a-service-account-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return tmp_path


def test_in_cluster_configuration_reads_the_pods_service_account(pod: Path) -> None:
    c = in_cluster_configuration()
    assert c.host == "https://10.0.0.1:443" and c.ssl_ca_cert == str(pod / "ca.crt")
    assert c.get_api_key_with_prefix("BearerToken") == "bearer a-service-account-token"


def test_in_cluster_configuration_outside_a_pod_names_what_is_missing(
    pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative twin: without the variables and the token, the error names each and the fix."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    (pod / "token").unlink()
    with pytest.raises(KubeError) as e:
        in_cluster_configuration()
    shown = str(e.value)
    assert shown.startswith("context @in-cluster: $KUBERNETES_SERVICE_HOST is not set; the service account token")
    assert f"{pod / 'token'} cannot be read" in shown and "$KUBERNETES_SERVICE_PORT" not in shown
    assert "Fix: --context MESH=@in-cluster works only in a Pod whose service account token is mounted" in shown


def test_an_in_cluster_mesh_reads_no_kubeconfig(pod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    clients = connect(seed_bridge(), {"eks": IN_CLUSTER}, meshes=["eks"])
    try:
        assert clients["eks"].context == IN_CLUSTER and clients["eks"].host == "https://10.0.0.1:443"
    finally:
        clients["eks"].close()
    # negative twin: the other mesh still needs its kubeconfig context, and the error says where to look
    with pytest.raises(KubeError) as e:
        connect(seed_bridge(), {"eks": IN_CLUSTER})
    assert "no-kubeconfig (from $KUBECONFIG) does not exist" in str(e.value)
    assert "this runs in a Pod ($KUBERNETES_SERVICE_HOST is set): --context MESH=@in-cluster" in str(e.value)


def test_a_missing_kubeconfig_outside_a_pod_does_not_mention_in_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeError) as e:
        KubeconfigFiles.locate(tmp_path / "none").contexts()
    assert "does not exist" in str(e.value) and IN_CLUSTER not in str(e.value)


def test_a_401_in_cluster_names_the_service_account_token(pod: Path) -> None:
    shown = text(401, "Unauthorized", "Unauthorized", context=IN_CLUSTER)
    assert f"the in-cluster configuration's service account token ({pod / 'token'}) was rejected" in shown
    assert "spec.serviceAccountName" in shown and "aws eks update-kubeconfig" not in shown


def test_a_401_of_a_kubeconfig_context_names_its_credentials() -> None:
    """Negative twin: a kubeconfig context's 401 is about refreshing its credentials."""
    shown = text(401, "Unauthorized", "Unauthorized")
    assert "refresh them" in shown and "service account" not in shown
