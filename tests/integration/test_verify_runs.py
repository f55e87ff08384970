"""verify checks what runs, with real Envoys: each export on a path its routes serve, each gateway on the
Secret it really reads, the certificates the gateways serve, and the readiness of every proxy."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.local.curl import curl
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge
from meshbridge.spec import Bridge
from meshbridge.spec.loader import read_backend_cas
from meshbridge.verify.local import verify_local
from tests.builders import bridge_from, seed_dict
from tests.integration.twin_support import seed_folder, twin_for, wait_for_status

pytestmark = pytest.mark.integration
Docs = list[dict[str, Any]]


def _rendered_manifests(
    folder: Path, bridge: Bridge, store: PkiStore, edit: Callable[[dict[str, Docs]], None]
) -> dict[str, list[Path]]:
    """The bridge's rendered manifests, Secrets from ``store`` included, edited, written one file per mesh."""
    rendered = render_bridge(
        bridge,
        store.credentials(bridge),
        backend_cas=read_backend_cas(bridge, folder),
        addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports},
    )
    docs = {mesh: copy.deepcopy(list(ms)) for mesh, ms in rendered.items()}
    edit(docs)
    out = {}
    for mesh, ms in docs.items():
        out[mesh] = [folder / f"{mesh}.yaml"]
        out[mesh][0].write_text(yaml.safe_dump_all(ms))
    return out


def _rename_gke_credential(docs: dict[str, Docs]) -> None:
    """The importer's DestinationRule names its own credential, ``gke-cred``, and its Secrets follow."""
    for d in docs["gke"]:
        if d["kind"] == "DestinationRule":
            for setting in d["spec"].get("trafficPolicy", {}).get("portLevelSettings", []):
                if setting.get("tls", {}).get("credentialName"):
                    setting["tls"]["credentialName"] = "gke-cred"
        if d["kind"] == "Secret" and d["metadata"]["name"].startswith("mtls-credential"):
            d["metadata"]["name"] = d["metadata"]["name"].replace("mtls-credential", "gke-cred")


# -- verify: the export's own path, the Secret each gateway reads, the certificates it serves ------------------


def test_verify_asks_each_export_on_a_path_its_routes_serve(article: Path) -> None:
    eks = article / "eks.api.yaml"
    eks.write_text((article / "eks.yaml").read_text().replace("            prefix: /\n", "            prefix: /api/\n"))
    twin, manifests = twin_for(article, eks="eks.api.yaml")
    try:
        report = twin.up(manifests)
        assert report.paths["lambda"].path == "/api/" and report.paths["lambda"].routed
        assert twin.export_path("lambda") == "/api/"
        assert not [n for n in report.notices if "404" in n or "NR" in n], report.notices  # no false path finding
        conditions = {c.check: c for c in verify_local(twin)}
        authz = conditions.pop("ExporterAuthorizes")  # the article's manifests hold no AuthorizationPolicy
        assert (authz.status, authz.reason) == ("Unknown", "NoPolicyInManifests"), authz
        assert "Fix: add the AuthorizationPolicy istio-ingress/istio-ingressgateway-importers" in authz.message
        assert [f"{c.name}: {c.message}" for c in conditions.values() if not c.passed] == []
        assert "GET /api/ (prefix /api/ of eks/istio-ingressgateway's route" in conditions["BackendAnswers"].message
        assert "http://lambda.external/api/" in conditions["AppReachesExport"].message
        # the negative twin: the article's fixed path is not routed here, and verify says where it stops
        fixed = {c.check: c for c in verify_local(twin, path="/hello-world")}
        for check in ("ExporterAcceptsImporterCert", "AppReachesExport"):
            assert (fixed[check].status, fixed[check].reason) == ("False", "HTTP404"), fixed[check]
        assert "eks/istio-ingressgateway: 404 NR" in fixed["AppReachesExport"].message
    finally:
        twin.down()


def test_verify_judges_each_gateway_on_the_secret_it_really_reads(tmp_path: Path) -> None:
    """The importer's manifests name their own credential (gke-cred, with its Secrets): verify dials with it,
    reads its expiry and says the gateway runs the manifests' Secret; the spec's name would find nothing."""
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    manifests = _rendered_manifests(tmp_path, bridge, store, _rename_gke_credential)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up({"gke": manifests["gke"]})
        conditions = {c.name: c for c in verify_local(twin)}
        served = conditions["GatewaysServeCurrentCerts"]
        assert (served.status, served.reason) == ("Unknown", "SecretsFromManifests"), served
        assert "Secret istio-egress/gke-cred" in served.message and "not compared" in served.message
        assert "eks/istio-ingressgateway serve the store's current certificates" in served.message
        expiry = conditions["ServedCertificateExpiry[gke/istio-egressgateway]"]
        assert expiry.passed and "kubernetes://gke-cred" in expiry.message, expiry
        for check in ("ExporterAcceptsImporterCert", "AppReachesExport", "ComponentsReady"):
            name = check if check == "ComponentsReady" else f"{check}[lambda → gke]"
            assert conditions[name].passed, conditions[name]
        assert "kubernetes://mtls-credential" not in expiry.message  # the spec's name is not what runs
    finally:
        twin.down()


def _short_lived() -> Bridge:
    """The seed bridge with 5-day leaves (inside the 30-day warning horizon of 'certs check')."""
    spec = seed_dict()
    spec["spec"]["tls"]["leafValidityDays"] = 5
    return bridge_from(spec)


def test_verify_reads_expiry_from_what_the_gateways_serve_not_only_from_the_store(tmp_path: Path) -> None:
    """The gateways run the manifests' Secrets, whose leaves expire in 5 days, while the store's are fresh:
    the store's CertificateExpiry passes, the served one fails on both gateways."""
    file, bridge = seed_folder(tmp_path)
    own = PkiStore(tmp_path / "own-pki")
    own.issue(_short_lived())
    manifests = _rendered_manifests(tmp_path, bridge, own, lambda _: None)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up(manifests)
        assert curl(twin.app_view(), "http://lambda.external/hello-world").status == 200
        conditions = {c.name: c for c in verify_local(twin)}
        assert all(c.passed for n, c in conditions.items() if n.startswith("CertificateExpiry:")), conditions
        for gateway in ("eks/istio-ingressgateway", "gke/istio-egressgateway"):
            served = conditions[f"ServedCertificateExpiry[{gateway}]"]
            assert (served.status, served.reason) == ("False", "ExpiresSoon"), served
            assert f"{gateway} serves CN=" in served.message and "(kubernetes://mtls-credential)" in served.message
            assert "Fix: renew it" in served.message
    finally:
        twin.down()


def test_verify_reports_a_proxy_that_did_not_take_a_pushed_secret(tmp_path: Path) -> None:
    import json

    from meshbridge.local.xds import swap_secrets

    file, bridge = seed_folder(tmp_path)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    egress = "gke/istio-egressgateway"
    try:
        twin.up()
        assert {c.check: c for c in verify_local(twin)}["ComponentsReady"].passed  # the negative twin first
        folder = twin.root / egress / "sds"
        name = "kubernetes___mtls-credential.yaml"
        files = {p.name: json.loads(p.read_text()) for p in folder.iterdir() if p.name.endswith(".yaml")}
        swap_secrets(folder, {**files, name: {"version_info": "deleted", "resources": []}})
        wait_for_status(twin, egress, lambda s: not s.ready)
        ready = {c.check: c for c in verify_local(twin)}["ComponentsReady"]
        assert (ready.status, ready.reason) == ("False", "ConfigurationNotTaken")
        assert f"{egress}: secret kubernetes://mtls-credential: Envoy rejected its update" in ready.message
        assert "certs push" in ready.message
    finally:
        twin.down()
