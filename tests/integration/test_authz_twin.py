"""Authorization at the exporter on real Envoy: eks exports lambda (to gke and aks) and orders (to gke only); its
ingress gateway's AuthorizationPolicy, translated into the RBAC filter as istiod builds it, lets aks call lambda
and refuses it orders with 403 ``RBAC: access denied``, while gke may call both. ``verify`` proves the same
(``ExporterAuthorizes``). Negative twin: with ``authorizeImporters: false`` and no SAN pinning, aks's certificate
reaches orders' route (the policy was the only guard), and verify says the check has nothing to check."""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from meshbridge.local.curl import resolve
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge
from meshbridge.spec import load_bridge
from meshbridge.verify.local import verify_local
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
DENIED = b"RBAC: access denied"


def _two_exports(tmp: Path, **gateway: Any) -> LocalTwin:
    """The seed with orders (to gke; no local backend) and aks importing lambda; ``gateway``: ingressGateway
    fields of eks, ``pin``: spec.tls.pinSubjectAltNames."""
    file, _ = seed_folder(tmp)
    data = yaml.safe_load(file.read_text())
    spec = data["spec"]
    spec["meshes"]["aks"] = {
        "trustDomain": "aks.example.com",
        "egressGateway": {"namespace": "egress", "name": "egw", "labels": {"app": "egw"}, "gateway": "egw"},
    }
    spec["exports"][0]["to"] = ["gke", "aks"]
    orders = {**spec["exports"][0], "name": "orders", "host": "orders.external", "to": ["gke"]}
    orders["backend"] = {"host": "orders.internal.example.com", "port": 8080, "tls": {"mode": "DISABLE"}}
    spec["exports"].append(orders)
    spec["meshes"]["eks"]["ingressGateway"].update(gateway)
    if not gateway.get("authorizeImporters", True):
        spec.setdefault("tls", {})["pinSubjectAltNames"] = False
    del spec["aws"]
    file.write_text(yaml.safe_dump(data))
    return LocalTwin(load_bridge(file), file, tmp / ".meshbridge")


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    t = _two_exports(tmp_path_factory.mktemp("authz"))
    try:
        t.up()
        yield t
    finally:
        t.down()


def _call(twin: LocalTwin, importer: str, sni: str, host: str) -> httpx.Response:
    """GET /hello-world on eks's gateway as ``importer``'s egress gateway: its client certificate, SNI ``sni``,
    Host ``host``."""
    store = PkiStore(twin.state_dir)
    client = store.load(importer, "client")
    assert client is not None
    view = twin.app_view(mesh=importer)
    lb = lb_address(twin.bridge, "eks")
    ip, _ = resolve(view, lb, [])
    port = view.endpoint_ports.get((lb, 443), 443)
    ctx = ssl.create_default_context(cadata=store.trusted("eks").decode())
    with tempfile.TemporaryDirectory() as tmp:
        crt, key = client.write_to(Path(tmp), "client")
        assert key is not None
        ctx.load_cert_chain(crt, key)
    with httpx.Client(verify=ctx, timeout=10.0) as http:
        return http.get(f"https://{ip}:{port}/hello-world", headers={"Host": host}, extensions={"sni_hostname": sni})


def test_an_importer_of_lambda_only_is_refused_orders_and_served_lambda(twin: LocalTwin) -> None:
    refused = _call(twin, "aks", "lambda.external", "orders.external")
    assert (refused.status_code, refused.content) == (403, DENIED)
    assert refused.headers["server"] == "istio-envoy"  # the exporter's gateway answered, before any route
    served = _call(twin, "aks", "lambda.external", "lambda.external")
    assert served.status_code == 200 and PAGE in served.content  # the same certificate, its own export


def test_an_importer_of_both_passes_the_policy_on_orders(twin: LocalTwin) -> None:
    """gke may call orders: the policy lets it through to the route, whose backend the twin does not run (503)."""
    r = _call(twin, "gke", "orders.external", "orders.external")
    assert r.status_code == 503 and DENIED not in r.content
    assert _call(twin, "gke", "lambda.external", "lambda.external").status_code == 200


def test_a_host_no_export_names_is_refused_to_every_importer(twin: LocalTwin) -> None:
    for importer in ("gke", "aks"):
        r = _call(twin, importer, "lambda.external", "not-exported.lambda.external")
        assert (r.status_code, r.content) == (403, DENIED)


def test_verify_proves_the_refusals(twin: LocalTwin) -> None:
    conditions = {c.name: c for c in verify_local(twin) if c.check == "ExporterAuthorizes"}
    assert sorted(conditions) == [
        "ExporterAuthorizes[lambda → aks]",
        "ExporterAuthorizes[lambda → gke]",
        "ExporterAuthorizes[orders → gke]",
    ]
    assert all(c.passed for c in conditions.values()), [c.message for c in conditions.values()]
    aks = conditions["ExporterAuthorizes[lambda → aks]"].message
    assert aks == (
        "aks's certificate (SNI lambda.external) asking for Host orders.external: 403 RBAC: access denied "
        "(AuthorizationPolicy istio-ingress/istio-ingressgateway-importers)"
    )
    assert "asking for Host not-exported.lambda.external" in conditions["ExporterAuthorizes[lambda → gke]"].message


def test_negative_twin_without_the_policy_aks_reaches_orders(tmp_path: Path) -> None:
    """No policy, no SAN pinning: aks's certificate passes orders' handshake and nothing refuses its request."""
    twin = _two_exports(tmp_path, authorizeImporters=False)
    try:
        twin.up()
        r = _call(twin, "aks", "orders.external", "orders.external")
        assert r.status_code == 503 and DENIED not in r.content  # orders' route, past every guard
        conditions = [c for c in verify_local(twin) if c.check == "ExporterAuthorizes"]
        assert {(c.status, c.reason) for c in conditions} == {("Unknown", "AuthorizationOff")}
        assert "ingressGateway.authorizeImporters is false" in conditions[0].message
    finally:
        twin.down()


def test_a_policy_that_admits_every_importer_is_not_shown_by_a_404_but_is_by_a_route(tmp_path: Path) -> None:
    """eks runs its rendered documents with the AuthorizationPolicy admitting anyone anywhere. A host no export
    names gets 404 (no route): nothing is reached, so that is not an authorization failure, but no refusal is shown
    either (Unknown HostNotServed, not False HTTP404). Its twin on the same twin: with lambda's server on *.external,
    aks asking for orders on lambda's chain reaches orders' route past the policy (False)."""
    twin = _two_exports(tmp_path)
    docs = [dict(d) for d in render_bridge(twin.bridge, None)["eks"]]
    (policy,) = [d for d in docs if d["kind"] == "AuthorizationPolicy"]
    policy["spec"] = {**policy["spec"], "rules": [{}]}  # ALLOW with an empty rule: every request
    (gateway,) = [d for d in docs if d["kind"] == "Gateway"]
    (lambda_server,) = [s for s in gateway["spec"]["servers"] if s["hosts"] == ["lambda.external"]]
    lambda_server["hosts"] = ["*.external"]  # lambda's chain (its SNI) serves orders' route too
    (tmp_path / "eks.yaml").write_text(yaml.safe_dump_all(docs))
    try:
        twin.up({"eks": [tmp_path / "eks.yaml"]})
        conditions = {c.name: c for c in verify_local(twin) if c.check == "ExporterAuthorizes"}
        gke = conditions["ExporterAuthorizes[lambda → gke]"]
        assert (gke.status, gke.reason) == ("Unknown", "HostNotServed"), gke
        assert gke.message.startswith(
            "gke's certificate (SNI lambda.external) asking for Host not-exported.lambda.external got HTTP 404: the "
            "gateway serves no host not-exported.lambda.external (no route), so the importer reaches nothing there"
        )
        aks = conditions["ExporterAuthorizes[lambda → aks]"]
        assert (aks.status, aks.reason) == ("False", "HTTP503"), aks
        assert "the gateway lets an importer call a host it does not import" in aks.message
    finally:
        twin.down()
