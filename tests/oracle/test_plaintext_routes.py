"""MB209 judges a gateway only on the clusters a VirtualService's route sends to: istiod's own translation of the
sidecar says which those are. With the egress gateway's ISTIO_MUTUAL server on the Service port 80 (Istio's egress
mutual-TLS origination task on the seed's port), the app's route for the exported host sends to the subset's
cluster, which istiod gives ISTIO_MUTUAL; the default cluster is reached only by istiod's default route for the egress
gateway Service's own host."""

from __future__ import annotations

import copy
from pathlib import Path

from meshbridge.envoy.view import EnvoyView
from meshbridge.istiod.judge import judge_mesh
from meshbridge.render import render_bridge
from meshbridge.world import mesh_config, proxies
from tests.builders import seed_bridge
from tests.istio_builders import Docs, doc_named, istio_mutual_egress, rendered_config
from tests.lint_builders import lint_docs, seed_docs

EGRESS = "istio-egressgateway.istio-egress.svc.cluster.local"
VS = ("istio-egress", "direct-lambda-through-egress-gateway")


def _plain_subset(docs: Docs) -> None:
    doc_named(docs, "gke", "DestinationRule", "egressgateway-for-lambda")["spec"]["subsets"] = [{"name": "lambda"}]


def _sidecar(oracle: Path, subset_tls: bool) -> tuple[EnvoyView, EnvoyView]:
    """The app's sidecar as istiod and meshbridge configure it, for the seed with the ISTIO_MUTUAL egress on 80."""
    b = seed_bridge()
    docs = {m: copy.deepcopy([dict(d) for d in ds]) for m, ds in render_bridge(b, None).items()}
    istio_mutual_egress(docs, 80)
    if not subset_tls:
        _plain_subset(docs)
    cfg = mesh_config(b, "gke", [("rendered", d) for d in docs["gke"]])
    cfg.secrets += rendered_config("gke", secrets=True).secrets
    verdict = judge_mesh("gke", cfg, [p.proxy for p in proxies(b, "gke")], oracle)
    sleep = next(v for v in verdict.proxies if v.name == "gke/sleep")
    return EnvoyView.from_istiod(sleep.istiod), EnvoyView.of(sleep.ours)


def _mb209(subset_tls: bool) -> list[str]:
    docs = seed_docs()
    istio_mutual_egress(docs, 80)
    if not subset_tls:
        _plain_subset(docs)
    return [f.message for f in lint_docs(docs).findings if f.code == "MB209"]


def test_the_route_sends_to_the_istio_mutual_subset_and_only_the_default_route_to_the_default_cluster(
    oracle: Path,
) -> None:
    istiod, ours = _sidecar(oracle, subset_tls=True)
    for view in (istiod, ours):
        by_vs = {c for c, routes in view.routed.items() if any(r.virtual_service == VS for r in routes)}
        assert by_vs == {f"outbound|80|lambda|{EGRESS}"}
        assert view.upstream_tls(f"outbound|80|lambda|{EGRESS}") is not None  # ISTIO_MUTUAL
        default = view.routed[f"outbound|80||{EGRESS}"]
        assert [r.virtual_service for r in default] == [None]  # istiod's route for the Service's own host
    assert _mb209(subset_tls=True) == []


def test_negative_twin_the_subset_without_tls_sends_plain_text_and_is_mb209(oracle: Path) -> None:
    istiod, ours = _sidecar(oracle, subset_tls=False)
    for view in (istiod, ours):
        assert view.upstream_tls(f"outbound|80|lambda|{EGRESS}") is None  # plain text to the ISTIO_MUTUAL server
    (message,) = _mb209(subset_tls=False)
    assert message.startswith(f"gke/sleep routes HTTP to outbound|80|lambda|{EGRESS} ")
