"""A real API server under load (``-m cluster``): lists longer than one page, and 429s from API Priority and Fairness.

* Pagination: the clients ask for a few objects a page (``KubeClient(page_size=...)``; 500 by default), the
  server really pages (a continue token, fewer items than exist), and prune, status and delete still see every
  object of the bridge, those of the later pages included.
* 429: a FlowSchema for user ``meshbridge`` and a PriorityLevelConfiguration that runs its requests one at a time
  and rejects the others (:class:`tests.cluster.admission.Throttle`). The raw server answers 429 with
  ``Retry-After``; a command under the limit succeeds by retrying after it; a limit that never lifts ends the
  command after the bounded retries with the server's 429, the number of attempts, the fix, and what landed.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from meshbridge.kube import apply_bridge, cluster_status, connect, delete_bridge
from meshbridge.kube.client import RETRIES, KubeClient
from meshbridge.kube.envtest import Clusters
from meshbridge.kube.errors import ApplyError
from meshbridge.kube.plan import label_selector
from meshbridge.pki import PkiStore
from meshbridge.render.manifests import ownership_labels
from tests.cluster.admission import Throttle, Webhook, raw
from tests.cluster.support import NAME, Cli, get, paths

pytestmark = pytest.mark.cluster

PAGE = 3
STALE = 7
"""Secrets of the bridge no longer rendered, beside its own: 8 on eks, three pages of 3."""


# -- pagination ------------------------------------------------------------------------------------------


def paged_clients(local: Clusters, page_size: int) -> dict[str, KubeClient]:
    """User ``meshbridge``'s clients, ``page_size`` objects a list request."""
    return {
        m: KubeClient.from_configuration(c.configuration(admin=False), m, page_size=page_size)
        for m, c in local.clusters.items()
    }


def add_stale_secrets(client: KubeClient) -> list[str]:
    """:data:`STALE` Secrets labelled as this bridge's and applied by meshbridge (as an export's Secrets were before
    the export was removed from the spec), in istio-ingress; their names."""
    names = [f"zz-stale-{i}" for i in range(STALE)]  # after mtls-credential: the server lists by name
    for name in names:
        doc = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": "istio-ingress", "labels": ownership_labels(NAME)},
            "type": "Opaque",
        }
        client.apply(doc)
    return names


def test_prune_status_and_delete_see_the_objects_beyond_the_first_page(cli: Cli, local: Clusters) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    clients = paged_clients(local, PAGE)
    try:
        stale = add_stale_secrets(clients["eks"])
        # the twin: one page of the real server holds fewer objects than the bridge owns, and says more follow
        first = clients["eks"].request(
            "GET",
            "/api/v1/namespaces/istio-ingress/secrets",
            query=[("labelSelector", label_selector(NAME)), ("limit", str(PAGE))],
            what="secrets",
            verb="list",
        )
        on_first_page = [i["metadata"]["name"] for i in first["items"]]
        assert len(on_first_page) == PAGE and first["metadata"]["continue"], first["metadata"]
        later = set(stale) - set(on_first_page)
        assert len(later) == STALE + 1 - PAGE  # 5 stale Secrets only on the later pages
        # status: every stale Secret, whatever its page
        creds = PkiStore(cli.state).credentials(cli.bridge)
        eks = cluster_status(cli.bridge, clients, credentials=creds)[0]
        assert eks.mesh == "eks" and not eks.error, eks.error
        assert sorted(o.ref.name for o in eks.objects if o.state == "stale") == stale
        # prune: apply deletes each of them
        outcome = apply_bridge(cli.bridge, clients, credentials=creds, wait=False)
        pruned = sorted(ref.name for what, ref in outcome.results[0].done if what == "pruned")
        assert pruned == stale
        assert all(get(local, "eks", f"/api/v1/namespaces/istio-ingress/secrets/{n}") is None for n in stale)
        # delete: every object of the bridge, those of the later pages included
        stale = add_stale_secrets(clients["eks"])
        deleted = {m.mesh: sorted(ref.name for _, ref in m.done) for m in delete_bridge(cli.bridge, clients)}
        assert set(stale) <= set(deleted["eks"]) and len(deleted["eks"]) == len(paths(cli, "eks")) + STALE
        assert all(get(local, m, p) is None for m in ("eks", "gke") for p in paths(cli, m))
        left = raw(local["eks"], "GET", f"/api/v1/secrets?labelSelector={quote(label_selector(NAME))}", admin=True)
        assert '"items":[]' in left.body.replace(" ", ""), left.body[:300]
    finally:
        for c in clients.values():
            c.close()


# -- 429 from API Priority and Fairness ------------------------------------------------------------------


def gke_namespace(cli: Cli) -> str:
    gateway = cli.bridge.spec.meshes["gke"].egress_gateway
    assert gateway is not None
    return gateway.namespace


def test_the_server_answers_429_with_retry_after_while_the_users_one_seat_is_held(
    cli: Cli, local: Clusters, webhook: Webhook
) -> None:
    gke = local["gke"]
    path = f"/api/v1/namespaces/{gke_namespace(cli)}/secrets/mtls-credential"
    with Throttle(gke, webhook, gke_namespace(cli)) as throttle:
        # the twin: under the same limit, a request alone is served
        alone = raw(gke, "GET", path)
        assert alone.status == 404 and throttle.classifies(alone), alone
        throttle.hold()
        refused = raw(gke, "GET", path)
        assert refused.status == 429 and throttle.classifies(refused), refused
        assert int(refused.headers["retry-after"]) >= 1 and "Too many requests" in refused.body
        assert raw(gke, "GET", path, admin=True).status == 404  # the admin is exempt
        throttle.release()
        assert raw(gke, "GET", path).status == 404
        assert throttle.held is not None and throttle.held.status == 201  # the held request went through


def test_status_under_the_limit_succeeds_by_retrying_after_the_servers_retry_after(
    cli: Cli, local: Clusters, webhook: Webhook
) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    lines: list[str] = []
    with Throttle(local["gke"], webhook, gke_namespace(cli)) as throttle:
        throttle.hold()
        before = throttle.rejected()

        def notify(line: str) -> None:  # the first retry announced: the seat is freed before the retry is sent
            lines.append(line)
            throttle.release()

        clients = connect(cli.bridge, cli.target.contexts, kubeconfig=cli.target.kubeconfig, notify=notify)
        try:
            statuses = cluster_status(cli.bridge, clients, credentials=PkiStore(cli.state).credentials(cli.bridge))
        finally:
            for c in clients.values():
                c.close()
        assert throttle.rejected() - before == 1
    gke = statuses[1]
    assert gke.mesh == "gke" and not gke.error and all(o.state in ("present", "unmanaged") for o in gke.objects), gke
    # the server asked for 1 s (Retry-After); without it the first pause would be 0.5 s
    assert lines == [
        "cluster 'gke': get the API server version (/version): 429 Too Many Requests: Too many requests, please "
        f"try again later.; retrying in 1 s (retry 1 of {RETRIES})"
    ]


def test_a_limit_that_never_lifts_ends_apply_after_the_bounded_retries_saying_what_landed(
    cli: Cli, local: Clusters, webhook: Webhook
) -> None:
    """eks is written, then gke refuses every request: apply stops with the 429, the attempts, the fix, and what
    landed where."""
    lines: list[str] = []
    clients = connect(cli.bridge, cli.target.contexts, kubeconfig=cli.target.kubeconfig, notify=lines.append)
    try:
        with Throttle(local["gke"], webhook, gke_namespace(cli)) as throttle:

            def progress(line: str) -> None:  # eks's first write landed: from now on gke is held
                if line.startswith("eks (") and throttle.holder is None:
                    throttle.hold()

            creds = PkiStore(cli.state).credentials(cli.bridge)
            with pytest.raises(ApplyError) as e:
                apply_bridge(cli.bridge, clients, credentials=creds, wait=False, progress=progress)
    finally:
        for c in clients.values():
            c.close()
    text = str(e.value)
    assert text.startswith(
        "cluster 'gke': apply Secret istio-egress/mtls-credential failed: 429 Too Many Requests: Too many requests, "
        f"please try again later. ({RETRIES + 1} attempts: the first and {RETRIES} retries); the API server "
        "throttled the request (API Priority and Fairness"
    ), text
    assert "Fix: re-run later" in text and "FlowSchema" in text
    assert f"  eks (eks): {len(paths(cli, 'eks'))} created, 1 kept\n" in text  # its Namespace exists: kept
    assert "  gke (gke): landed: nothing; FAILED at Secret istio-egress/mtls-credential; not reached: " in text
    assert len([x for x in lines if "retrying in 1 s" in x]) == RETRIES
    assert all(get(local, "eks", p) is not None for p in paths(cli, "eks"))
    assert all(get(local, "gke", p) is None for p in paths(cli, "gke"))


def test_certs_push_under_a_limit_that_never_lifts_exits_2_naming_where_the_secret_landed(
    cli: Cli, local: Clusters, webhook: Webhook
) -> None:
    with Throttle(local["gke"], webhook, gke_namespace(cli)) as throttle:
        throttle.hold()
        before = throttle.rejected()
        code, _, err = cli("certs", "push", "--timeout", "1")
        # the server refused exactly the attempts the message counts (the client's pool resends no 429 itself)
        assert throttle.rejected() - before == RETRIES + 1
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert f"429 Too Many Requests: Too many requests, please try again later. ({RETRIES + 1} attempts" in text
    assert "What landed before the failure (nothing was rolled back): eks (eks): 1 created" in text
    assert "gke (gke): landed: nothing; FAILED at Secret istio-egress/mtls-credential" in text
    assert f"re-run 'meshbridge certs push -f {cli.file} --state-dir " in text  # the user's options, with
    assert "--context eks=" in text and "--kubeconfig " in text  # the clusters they named
    assert get(local, "eks", "/api/v1/namespaces/istio-ingress/secrets/mtls-credential") is not None
    assert get(local, "gke", "/api/v1/namespaces/istio-egress/secrets/mtls-credential") is None
