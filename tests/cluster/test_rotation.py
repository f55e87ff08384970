"""``certs rotate --context`` to both real clusters (``-m cluster``): the gateway Secrets replaced on each, and what
happens when one cluster cannot take them.

There is no kubelet on the local servers: the check after each step reads every gateway pod's Envoy through
port-forward, which they refuse ("does not have a host assigned"). So each rotation here stops after its first
step, exit 2, and says so: the step, where it was pushed, that the check could not run, the steps not run. A mesh's
leaves are therefore rotated one ``--mesh`` at a time.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.kube.client import KubeClient
from meshbridge.kube.envtest import Clusters
from meshbridge.kube.errors import KubeApiError
from meshbridge.pki import CertBundle, PkiStore
from meshbridge.render import render_secrets
from meshbridge.render.manifests import ownership_labels
from tests.cluster.admission import Webhook, secrets_rule, wait_until, webhook_installed
from tests.cluster.conftest import Target
from tests.cluster.support import NAME, Cli, Doc, get, managers

pytestmark = pytest.mark.cluster

STEP_1 = "step 1 of 2 (reissue the leaves of eks from its current CA)"
NOT_RUN = "not run: step 2 (reissue the leaves of gke from its current CA)"


def secret_paths(cli: Cli) -> dict[str, str]:
    """Each mesh's gateway Secret (one each in the seed bridge)."""
    rendered = render_secrets(cli.bridge, PkiStore(cli.state).credentials(cli.bridge))
    out = {}
    for mesh, docs in rendered.items():
        (doc,) = docs
        out[mesh] = f"/api/v1/namespaces/{doc['metadata']['namespace']}/secrets/{doc['metadata']['name']}"
    return out


def live(cli: Cli, local: Clusters) -> dict[str, Doc]:
    out = {}
    for mesh, path in secret_paths(cli).items():
        doc = get(local, mesh, path)
        assert doc is not None, path
        out[mesh] = doc
    return out


def serial(secret: Doc) -> int:
    """The serial of the leaf certificate a gateway Secret carries (``cert``)."""
    return CertBundle(base64.b64decode(secret["data"]["cert"])).serial


def rv(secret: Doc) -> str:
    return str(secret["metadata"]["resourceVersion"])


def store_bytes(state: Path) -> dict[str, bytes]:
    return {str(p.relative_to(state)): p.read_bytes() for p in sorted(state.rglob("*")) if p.is_file()}


def test_certs_rotate_replaces_the_secrets_on_both_clusters(cli: Cli, local: Clusters) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    before = live(cli, local)
    code, _, err = cli("certs", "rotate", "--leaf", "--timeout", "1")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert (
        f"{STEP_1} was pushed to eks (eks: 1 Secret(s)), gke (gke: 1 Secret(s)), but the check after it could " in text
    )
    assert f"could not run; {NOT_RUN}:" in text and "does not have a host assigned" in text
    assert "--no-wait" not in text and "The gateway Secrets were written to eks, gke" in text
    assert "Where it stands: the store holds the certificates of step 1" in text
    assert "then 'meshbridge certs rotate --leaf --mesh gke" in text
    first = live(cli, local)
    store = PkiStore(cli.state)
    eks_leaf, gke_leaf = store.load("eks", "server"), store.load("gke", "client")
    assert eks_leaf is not None and gke_leaf is not None
    # eks: the new leaf, written by meshbridge; gke: step 2 did not run, its Secret did not move
    assert serial(first["eks"]) == eks_leaf.serial != serial(before["eks"])
    assert rv(first["eks"]) != rv(before["eks"]) and managers(first["eks"]) == {"meshbridge": "Apply"}
    assert rv(first["gke"]) == rv(before["gke"]) and serial(first["gke"]) == gke_leaf.serial
    # gke's leaves on their own
    code, _, err = cli("certs", "rotate", "--leaf", "--mesh", "gke", "--timeout", "1")
    assert code == 2 and "step 1 of 1 (reissue the leaves of gke from its current CA) was pushed to" in err
    second = live(cli, local)
    new_gke = PkiStore(cli.state).load("gke", "client")
    assert new_gke is not None and serial(second["gke"]) == new_gke.serial != serial(before["gke"])
    assert rv(second["gke"]) != rv(before["gke"]) and managers(second["gke"]) == {"meshbridge": "Apply"}
    assert rv(second["eks"]) == rv(first["eks"])
    # a push of the store as it is writes nothing: no resourceVersion moves (the serve check fails as above)
    code, out, _ = cli("certs", "push", "--timeout", "1")
    assert code == 2 and "pushed: eks (eks: 1 Secret(s))" in out and "pushed: gke (gke: 1 Secret(s))" in out
    assert {m: rv(d) for m, d in live(cli, local).items()} == {m: rv(d) for m, d in second.items()}
    # rotating again reissues again: another serial, another write
    assert cli("certs", "rotate", "--leaf", "--mesh", "gke", "--timeout", "1")[0] == 2
    third = live(cli, local)
    assert serial(third["gke"]) != serial(second["gke"]) and rv(third["gke"]) != rv(second["gke"])


def _unreachable(local: Clusters, folder: Path) -> Path:
    """A copy of the clusters' kubeconfig with context ``gke-unreachable``: gke's user, a port nothing listens on."""
    from meshbridge.ports import free_ports

    config: dict[str, Any] = yaml.safe_load(local.kubeconfig.read_text())
    (port,) = free_ports(1)
    gke = next(c for c in config["clusters"] if c["name"] == "gke")
    config["clusters"].append(
        {"name": "unreachable", "cluster": {**gke["cluster"], "server": f"https://127.0.0.1:{port}"}}
    )
    user = next(c for c in config["contexts"] if c["name"] == "gke")["context"]["user"]
    config["contexts"].append({"name": "gke-unreachable", "context": {"cluster": "unreachable", "user": user}})
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_cluster_that_does_not_answer_stops_the_rotation_before_anything_changes(
    cli: Cli, local: Clusters, tmp_path: Path
) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    before, store = live(cli, local), store_bytes(cli.state)
    cli.target = Target(_unreachable(local, tmp_path), {"eks": "eks", "gke": "gke-unreachable"}, local=True, run=local)
    code, _, err = cli("certs", "rotate", "--leaf", "--timeout", "1")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert "cluster 'gke-unreachable': get the API server version (/version) failed: ConnectionFailed" in text
    assert text.endswith("Nothing was rotated: the store and the clusters are unchanged")
    assert store_bytes(cli.state) == store
    assert {m: rv(d) for m, d in live(cli, local).items()} == {m: rv(d) for m, d in before.items()}


def test_a_cluster_that_refuses_the_secret_is_named_and_the_other_keeps_its_new_certificate(
    cli: Cli, local: Clusters, webhook: Webhook
) -> None:
    """gke's admission refuses meshbridge's Secrets (a webhook of the test, 403): the rotation stops at that
    push and says that eks has the new certificate and gke does not; ``certs push`` finishes it once gke accepts."""
    assert cli("apply", "--no-wait")[0] == 0
    before = live(cli, local)
    gke = local["gke"]
    deny = webhook.configuration(
        "meshbridge-e2e-deny", "/deny", secrets_rule("CREATE", "UPDATE"), ownership_labels(NAME)
    )
    md = before["gke"]["metadata"]
    probe = {"apiVersion": "v1", "kind": "Secret", "metadata": {k: md[k] for k in ("name", "namespace", "labels")}}
    with gke.client(admin=False) as user:
        with webhook_installed(gke, deny):
            wait_until(lambda: _refused(user, probe), "the deny webhook took effect")
            code, _, err = cli("certs", "rotate", "--leaf", "--timeout", "1")
        wait_until(lambda: not _refused(user, probe), "the deny webhook was removed")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert f"{STEP_1}: the store holds its new certificates, but pushing them failed; {NOT_RUN}:" in text
    assert (
        f'admission webhook "meshbridge-e2e-deny.meshbridge-e2e.test" denied the request: {webhook.deny_message}'
        in text
    )
    assert "What landed before the failure (nothing was rolled back): eks (eks): 1 configured" in text
    assert "gke (gke): landed: nothing; FAILED at Secret istio-egress/mtls-credential" in text
    assert f"re-run 'meshbridge certs push -f {cli.file} --state-dir " in text  # the user's options, with
    assert "--context eks=" in text and "--kubeconfig " in text  # the clusters they named
    after = live(cli, local)
    eks_leaf = PkiStore(cli.state).load("eks", "server")
    assert eks_leaf is not None and serial(after["eks"]) == eks_leaf.serial != serial(before["eks"])
    assert rv(after["gke"]) == rv(before["gke"])
    # gke accepts again: the push the message names delivers what the store holds
    code, out, _ = cli("certs", "push", "--timeout", "1")
    assert "pushed: eks (eks: 1 Secret(s))" in out and "pushed: gke (gke: 1 Secret(s))" in out


def _refused(user: KubeClient, doc: Doc) -> bool:
    """True when a dry-run server-side apply of ``doc`` as the user is refused (403): the server's own answer that
    the deny webhook took effect."""
    try:
        user.apply(doc, dry_run=True)
    except KubeApiError as e:
        return e.status == 403
    return False
