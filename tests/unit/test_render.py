"""Render: golden files, fidelity with the article's step 4 and 5 manifests, secrets and errors."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.errors import RenderError
from meshbridge.fsutil import WRITTEN_RECORD
from meshbridge.render import render_bridge, render_install
from meshbridge.render.manifests import ownership_labels, to_yaml
from meshbridge.spec import load_bridge
from tests.builders import (
    ARTICLE,
    HELLOWORLD,
    bridge_from,
    issued_store,
    seed_bridge,
    seed_dict,
    two_exports_three_meshes,
)
from tests.golden import check_golden

# The seed uses placeholders where the article has its author's names.
PLACEHOLDERS = {"alb.jesus2.solo.io": "alb.internal.example.com", "${HOST_GW_CLUSTER2}": "ingress.eks.example.com"}

# What meshbridge renders differently on purpose (README: "Improvements over the article"), by
# (kind, article name) → field paths the article sets that meshbridge may leave out or change.
IMPROVEMENTS: dict[tuple[str, str], set[str]] = {
    # sourceLabels on a gateway route only restate the selector; a mismatch silently drops the route
    ("VirtualService", "vs-lambda"): {"spec.http[0].match[0].sourceLabels"},
}
NAMES = {
    ("ServiceEntry", "se-alb-ext"): "se-lambda-backend",
    ("DestinationRule", "dr-alb-ext"): "dr-lambda-backend",
}


def article(mesh: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ARTICLE / f"{mesh}.yaml").read_text()) if d]


def settings(value: Any, at: str = "") -> dict[str, Any]:
    """Flatten a document to {field path: scalar}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= settings(v, f"{at}.{k}" if at else str(k))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out |= settings(v, f"{at}[{i}]")
        return out
    return {at: PLACEHOLDERS.get(value, value) if isinstance(value, str) else value}


@pytest.mark.parametrize("mesh", ["eks", "gke"])
def test_every_setting_of_the_article_is_rendered(mesh: str) -> None:
    rendered = render_bridge(seed_bridge(), None)[mesh]
    missing = []
    for doc in article(mesh):
        kind, name = doc["kind"], doc["metadata"]["name"]
        ours = rendered.find(kind, NAMES.get((kind, name), name), doc["metadata"]["namespace"])
        theirs, mine = settings(doc), settings(ours)
        for path, value in theirs.items():
            if path.startswith("metadata.name") or any(path.startswith(p) for p in IMPROVEMENTS.get((kind, name), ())):
                continue
            if mine.get(path) != value:
                missing.append(f"{kind}/{name} {path}: article {value!r}, rendered {mine.get(path)!r}")
    assert missing == []


def test_documented_improvements_are_present() -> None:
    sets = render_bridge(seed_bridge(), None)
    gw = sets["eks"].find("Gateway", "eastwestgateway")["spec"]["servers"][0]["tls"]
    assert gw["subjectAltNames"] == ["spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"]
    assert gw["minProtocolVersion"] == "TLSV1_2"
    assert all("GCM" in c or "CHACHA20" in c for c in gw["cipherSuites"])
    dr = sets["gke"].find("DestinationRule", "dr-lambda-ext")["spec"]
    assert dr["trafficPolicy"]["portLevelSettings"][0]["tls"]["subjectAltNames"] == ["lambda.external"]
    be = sets["eks"].find("DestinationRule", "dr-lambda-backend")["spec"]["trafficPolicy"]["portLevelSettings"][0]
    assert be["tls"]["sni"] == "alb.internal.example.com"


def test_pins_can_be_turned_off_like_the_article() -> None:
    d = seed_dict()
    d["spec"]["tls"]["pinSubjectAltNames"] = False
    sets = render_bridge(bridge_from(d), None)
    assert "subjectAltNames" not in sets["eks"].find("Gateway", "eastwestgateway")["spec"]["servers"][0]["tls"]


def test_the_gateways_speak_http2_to_each_other_but_not_to_the_backend() -> None:
    """The importer's mTLS rule upgrades the egress → exporter connection (one connection for concurrent requests
    across a WAN: benchmarks/wan.py) and keeps it alive through the clouds' idle timeouts; the exporter's rule to
    the ALB, which the article keeps on HTTP/1.1 without keepalive, does neither."""
    sets = render_bridge(seed_bridge(), None)
    (mtls,) = sets["gke"].find("DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"]["portLevelSettings"]
    assert mtls["connectionPool"] == {
        "tcp": {"tcpKeepalive": {"time": "180s", "interval": "30s", "probes": 3}},
        "http": {"h2UpgradePolicy": "UPGRADE"},
    }
    backend = sets["eks"].find("DestinationRule", "dr-lambda-backend")["spec"]
    assert "connectionPool" not in yaml.safe_dump(backend)


@pytest.mark.parametrize("mesh", ["eks", "gke"])
def test_golden_seed(mesh: str, update_golden: bool) -> None:
    check_golden(f"seed/{mesh}.yaml", list(render_bridge(seed_bridge(), None)[mesh]), update_golden)


@pytest.mark.parametrize("mesh", ["eks", "gke", "aks"])
def test_golden_two_exports_three_meshes(mesh: str, update_golden: bool) -> None:
    sets = render_bridge(bridge_from(two_exports_three_meshes()), None)
    check_golden(f"multi/{mesh}.yaml", list(sets[mesh]), update_golden)


@pytest.mark.parametrize("mesh", ["c1", "c2"])
def test_golden_helloworld(mesh: str, update_golden: bool) -> None:
    """importAs, egressGatewayPort and a credentialName per mesh (examples/helloworld)."""
    check_golden(f"helloworld/{mesh}.yaml", list(render_bridge(load_bridge(HELLOWORLD), None)[mesh]), update_golden)


def test_an_import_name_is_routed_as_the_exported_host_from_the_sidecar_on() -> None:
    """Apps call hw.sleep.svc.cluster.local:5000; the sidecar's leg rewrites the authority to c2.example.com, so the
    egress Gateway, its leg, the SNI and the SAN pin keep the exported host."""
    c1 = render_bridge(load_bridge(HELLOWORLD), None)["c1"]
    vs = c1.find("VirtualService", "direct-hw-through-egress-gateway")["spec"]
    assert vs["hosts"] == c1.find("ServiceEntry", "se-hw-ext")["spec"]["hosts"]
    assert vs["hosts"] == ["c2.example.com", "hw.sleep.svc.cluster.local"]
    sidecar_leg, gateway_leg = vs["http"]
    assert sidecar_leg["rewrite"] == {"authority": "c2.example.com"} and "rewrite" not in gateway_leg
    assert c1.find("Gateway", "c1-egress")["spec"]["servers"][0]["hosts"] == ["c2.example.com"]
    tls = c1.find("DestinationRule", "dr-hw-ext")["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
    assert (tls["sni"], tls["subjectAltNames"]) == ("c2.example.com", ["c2.example.com"])
    # negative twin: without importAs there is one host and no rewrite (the seed, as the article)
    gke = render_bridge(seed_bridge(), None)["gke"]
    vs = gke.find("VirtualService", "direct-lambda-through-egress-gateway")["spec"]
    assert vs["hosts"] == ["lambda.external"] and "rewrite" not in vs["http"][0]


def test_the_apps_port_travels_on_the_egress_gateway_service_port() -> None:
    """Apps call port 5000; the sidecar sends to the egress gateway Service's port 80, where the Gateway server
    listens (its pod binds 8080); the egress gateway's leg goes on to the exported host's port 5000."""
    c1 = render_bridge(load_bridge(HELLOWORLD), None)["c1"]
    (server,) = c1.find("Gateway", "c1-egress")["spec"]["servers"]
    assert server["port"] == {"number": 80, "name": "http", "protocol": "HTTP"}
    sidecar_leg, gateway_leg = c1.find("VirtualService", "direct-hw-through-egress-gateway")["spec"]["http"]
    assert sidecar_leg["match"] == [{"gateways": ["mesh"], "port": 5000}]
    assert sidecar_leg["route"][0]["destination"]["port"] == {"number": 80}
    assert gateway_leg["match"] == [{"gateways": ["c1-egress"], "port": 80}]
    assert gateway_leg["route"][0]["destination"] == {"host": "c2.example.com", "port": {"number": 5000}}
    assert c1.find("ServiceEntry", "se-hw-ext")["spec"]["ports"] == [
        {"name": "http", "number": 5000, "protocol": "HTTP"}
    ]
    # negative twin: without egressGatewayPort, the apps' port is the Gateway server's (the seed: 80 and 80)
    gke = render_bridge(seed_bridge(), None)["gke"]
    assert gke.find("Gateway", "istio-egressgateway")["spec"]["servers"][0]["port"]["number"] == 80


def test_each_mesh_reads_its_own_credential(tmp_path: Path) -> None:
    """c2's Gateway and Secret say c2-mtls, c1's DestinationRule and Secret c1-egress-mtls."""
    b = load_bridge(HELLOWORLD)
    sets = render_bridge(b, issued_store(tmp_path, b).credentials(b))
    server_tls = sets["c2"].find("Gateway", "c2-gateway")["spec"]["servers"][0]["tls"]
    assert server_tls["credentialName"] == "c2-mtls"
    assert sets["c2"].find("Secret", "c2-mtls", "istio-ingress")["type"] == "Opaque"
    dr = sets["c1"].find("DestinationRule", "dr-hw-ext")["spec"]["trafficPolicy"]["portLevelSettings"][0]
    assert dr["tls"]["credentialName"] == "c1-egress-mtls"
    assert sets["c1"].find("Secret", "c1-egress-mtls", "istio-egress")["type"] == "Opaque"
    # negative twin: neither mesh has a Secret under the spec.tls name it overrides
    for mesh in ("c1", "c2"):
        with pytest.raises(KeyError):
            sets[mesh].find("Secret", "mtls-credential")


def test_the_rendered_helloworld_lints_clean_and_its_negative_twin_does_not() -> None:
    """Lint of what examples/helloworld renders, certificates included: 0 findings. Its negative twin: the sidecar
    leg sent to the apps' port 5000 on the egress gateway's Service, which exposes 80 and 443 only."""
    from meshbridge.lint import lint
    from meshbridge.lint.inputs import from_bridge
    from tests.lint_builders import NOW, credentials, doc, lint_docs

    b = load_bridge(HELLOWORLD)
    report = lint(from_bridge(b, credentials(b), now=NOW))
    assert report.findings == (), report.table(wide=True)
    docs = {m: list(ms) for m, ms in render_bridge(b, credentials(b)).items()}
    vs = doc(docs, "c1", "VirtualService", "direct-hw-through-egress-gateway")
    vs["spec"]["http"][0]["route"][0]["destination"]["port"]["number"] = 5000
    (finding,) = lint_docs(docs, b).findings
    assert finding.code == "MB108" and "Service istio-egress/istio-egressgateway has ports [15021, 80, 443]" in (
        finding.message
    )


@pytest.mark.parametrize("mesh", ["eks", "gke"])
def test_golden_install(mesh: str, update_golden: bool) -> None:
    check_golden(f"install/{mesh}.yaml", list(render_install(seed_bridge())[mesh]), update_golden)


def test_api_version_follows_the_istio_version() -> None:
    for version, api in (("1.21.4", "networking.istio.io/v1beta1"), ("1.22.0", "networking.istio.io/v1")):
        d = seed_dict()
        d["spec"]["meshes"]["eks"]["istio"]["version"] = version
        gw = render_bridge(bridge_from(d), None)["eks"].find("Gateway", "eastwestgateway")
        assert gw["apiVersion"] == api


def test_every_document_is_labelled_and_in_apply_order() -> None:
    for ms in render_bridge(seed_bridge(), None).values():
        kinds = [d["kind"] for d in ms]
        assert kinds == sorted(
            kinds,
            key=[
                "Namespace",
                "Secret",
                "ServiceEntry",
                "DestinationRule",
                "AuthorizationPolicy",
                "Gateway",
                "VirtualService",
                "EnvoyFilter",
            ].index,
        )
        for d in ms:
            assert d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshbridge"
            assert d["metadata"]["labels"]["meshbridge.io/bridge"] == "lambda-aws-to-gcp"


def test_secrets_go_to_the_gateway_workload_namespaces(tmp_path: Path) -> None:
    """MB207: Secrets live where the gateway pods run; generic key/cert/cacert layout (MB205, MB206)."""
    b = seed_bridge()
    store = issued_store(tmp_path, b)
    sets = render_bridge(b, store.credentials(b))
    eks = sets["eks"].find("Secret", "mtls-credential", "istio-ingress")
    gke = sets["gke"].find("Secret", "mtls-credential", "istio-egress")
    assert set(eks["data"]) == set(gke["data"]) == {"key", "cert", "cacert"}
    gke_ca = store.load("gke", "ca")
    assert gke_ca is not None and base64.b64decode(eks["data"]["cacert"]) == gke_ca.cert_pem


def test_missing_exporter_address_explains_the_fix() -> None:
    d = seed_dict()
    del d["spec"]["meshes"]["eks"]["ingressGateway"]["address"]
    with pytest.raises(RenderError, match=r"set spec\.meshes\.eks\.ingressGateway\.address"):
        render_bridge(bridge_from(d), None)
    # negative twin: an address discovered by apply fills it
    sets = render_bridge(bridge_from(d), None, addresses={"eks": "10.1.2.3"})
    se = sets["gke"].find("ServiceEntry", "se-lambda-ext")["spec"]
    assert (se["endpoints"][0]["address"], se["resolution"]) == ("10.1.2.3", "STATIC")


def test_backend_ca_file_becomes_a_ca_secret_and_credential_name() -> None:
    d = seed_dict()
    d["spec"]["exports"][0]["backend"]["tls"]["caFile"] = "alb-ca.pem"
    sets = render_bridge(bridge_from(d), None, backend_cas={"lambda": b"PEM"})
    dr = sets["eks"].find("DestinationRule", "dr-lambda-backend")["spec"]["trafficPolicy"]["portLevelSettings"][0]
    assert dr["tls"]["credentialName"] == "lambda-backend-ca"
    assert sets["eks"].find("Secret", "lambda-backend-ca")["data"] == {"cacert": "UEVN"}


def test_write_dir_has_a_kustomization_and_private_secrets(tmp_path: Path) -> None:
    b = seed_bridge()
    store = issued_store(tmp_path, b)
    paths, pruned = render_bridge(b, store.credentials(b))["eks"].write_dir(tmp_path / "out")
    kust = yaml.safe_load(paths[-1].read_text())
    assert kust["resources"] == [p.name for p in paths[:-1]] and pruned.removed == pruned.left == []
    secret = next(p for p in paths if "secret" in p.name)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_write_dir_removes_what_the_spec_no_longer_renders(tmp_path: Path) -> None:
    sets = render_bridge(bridge_from(two_exports_three_meshes()), None)
    first, _ = sets["eks"].write_dir(tmp_path / "out")
    d = two_exports_three_meshes()
    d["spec"]["exports"].pop()  # drop 'orders'
    paths, pruned = render_bridge(bridge_from(d), None)["eks"].write_dir(tmp_path / "out")
    assert pruned.removed and pruned.left == []
    assert all("orders" in p.name or p.name not in {q.name for q in paths} for p in pruned.removed)
    on_disk = {p.name for p in (tmp_path / "out" / "eks").iterdir()}
    assert on_disk == {p.name for p in paths} | {WRITTEN_RECORD}
    assert len(first) > len(paths)


def test_write_dir_leaves_the_users_own_files_alone(tmp_path: Path) -> None:
    """A hand-written, unlabelled file named like the rendered ones is the user's: render never removes it."""
    sets = render_bridge(bridge_from(two_exports_three_meshes()), None)
    sets["eks"].write_dir(tmp_path / "out")
    mine = tmp_path / "out" / "eks" / "10-configmap-mine.yaml"
    mine.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n")
    _, pruned = sets["eks"].write_dir(tmp_path / "out")
    assert pruned.removed == [] and pruned.left == [mine] and mine.exists()
    # negative twin: a file meshbridge rendered (its labels say so) in a folder without the record still goes
    (tmp_path / "out" / "eks" / WRITTEN_RECORD).unlink()
    ours = tmp_path / "out" / "eks" / "99-configmap-old.yaml"
    ours.write_text(to_yaml([{"kind": "ConfigMap", "metadata": {"name": "old", "labels": ownership_labels("b")}}]))
    _, pruned = sets["eks"].write_dir(tmp_path / "out")
    assert pruned.removed == [ours] and not ours.exists() and pruned.left == [mine]


def test_rendered_yaml_never_uses_anchors_even_when_exports_share_values() -> None:
    from meshbridge.render.manifests import to_yaml

    shared = {"cipherSuites": ["ECDHE-ECDSA-AES128-GCM-SHA256"]}
    text = to_yaml([{"kind": "Gateway", "a": shared, "b": shared}])
    assert "&id" not in text and "*id" not in text
    assert text.count("ECDHE-ECDSA-AES128-GCM-SHA256") == 2


def test_tls_1_3_only_renders_no_cipher_suites() -> None:
    """TLS 1.3's suites are fixed; cipherSuites only ever applies to TLS 1.2, so a TLS 1.3 floor renders none (a
    Gateway API listener cannot take a TLS 1.3 floor at all: render refuses it)."""
    data = seed_dict()
    data["spec"]["tls"] = {**data["spec"].get("tls", {}), "minProtocolVersion": "TLSV1_3"}
    server = render_bridge(bridge_from(data), None)["eks"].find("Gateway", "eastwestgateway")["spec"]["servers"][0]
    assert server["tls"]["minProtocolVersion"] == "TLSV1_3" and "cipherSuites" not in server["tls"]
    # the negative twin: the TLS 1.2 floor keeps its AEAD-only list
    data["spec"]["tls"]["minProtocolVersion"] = "TLSV1_2"
    server = render_bridge(bridge_from(data), None)["eks"].find("Gateway", "eastwestgateway")["spec"]["servers"][0]
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in server["tls"]["cipherSuites"]
