"""cert-manager mode (``spec.tls.issuer: cert-manager``): the spec's rules, what render emits (Certificates, the
peers' CA beside them, CA Issuers), what meshbridge owns and may touch, and the local store holding CA
certificates only. istiod's reading of these shapes is judged in tests/oracle (corpus case cert-manager-*)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.errors import PkiError, SpecError
from meshbridge.kube.apply import owned_types
from meshbridge.pki.store import PkiStore
from meshbridge.pki.x509 import CertBundle, issue_ca, issue_leaf, parse_certificates
from meshbridge.render import render_bridge
from meshbridge.render.owned import owned_kinds
from meshbridge.render.rbac import render_rbac
from meshbridge.spec.models import Bridge
from tests.builders import bridge_from, seed_dict, two_exports_three_meshes

Doc = dict[str, Any]


def cert_manager_dict(base: dict[str, Any] | None = None, version: str = "1.31.0") -> dict[str, Any]:
    """The seed (or ``base``) in cert-manager mode: eks signs with an existing ClusterIssuer, every other mesh with a
    CA Issuer meshbridge renders on its CA Secret; Istio ``version`` everywhere."""
    d = base or seed_dict()
    d["spec"]["tls"]["issuer"] = "cert-manager"
    for name, mesh in d["spec"]["meshes"].items():
        mesh.setdefault("istio", {})["version"] = version
        mesh["certManager"] = (
            {"issuerRef": {"name": "eks-mesh-ca", "kind": "ClusterIssuer"}}
            if name == "eks"
            else {"caSecret": "root-ca"}
        )
    return d


def store_with_issuer_cas(tmp: Path, bridge: Bridge) -> tuple[PkiStore, dict[str, bytes]]:
    """A store holding each mesh's issuer CA certificate only (``certs import --slot ca``), and those PEMs."""
    store = PkiStore(tmp / "state")
    pems = {}
    for mesh in bridge.spec.meshes:
        ca = issue_ca(f"{mesh} issuer CA")
        store.import_(bridge, mesh, "ca", CertBundle(ca.cert_pem))
        pems[mesh] = ca.cert_pem
    return store, pems


def _spec_error(d: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as exc:
        bridge_from(d)
    return exc.value


def _kinds(docs: Any, kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


# -- spec ------------------------------------------------------------------------------------------------


def test_a_cert_manager_spec_validates_and_the_default_is_meshbridge() -> None:
    assert bridge_from(cert_manager_dict()).issued_by_cert_manager
    assert not bridge_from(seed_dict()).issued_by_cert_manager


def test_cert_manager_mode_needs_an_issuer_in_every_mesh() -> None:
    d = cert_manager_dict()
    del d["spec"]["meshes"]["gke"]["certManager"]
    (issue,) = _spec_error(d).issues
    assert issue.path == "spec.meshes.gke"
    assert "has no certManager" in issue.problem and "issuerRef" in issue.fix


def test_a_cert_manager_block_without_an_issuer_is_named() -> None:
    d = cert_manager_dict()
    d["spec"]["meshes"]["gke"]["certManager"] = {}
    (issue,) = _spec_error(d).issues
    assert issue.path == "spec.meshes.gke.certManager" and "names no issuer" in issue.problem


def test_issuer_ref_and_ca_secret_together_are_refused() -> None:
    d = cert_manager_dict()
    d["spec"]["meshes"]["gke"]["certManager"]["issuerRef"] = {"name": "gke-ca"}
    (issue,) = _spec_error(d).issues
    assert "issuerRef and caSecret are both set" in str(issue)


def test_cert_manager_settings_while_meshbridge_issues_are_refused() -> None:
    d = cert_manager_dict()
    d["spec"]["tls"]["issuer"] = "meshbridge"
    issues = _spec_error(d).issues
    assert {i.path for i in issues} == {"spec.meshes.eks.certManager", "spec.meshes.gke.certManager"}
    assert all("set spec.tls.issuer: cert-manager, or remove certManager" in i.fix for i in issues)


def test_a_peer_mesh_names_no_issuer_its_owner_does() -> None:
    d = cert_manager_dict()
    d["spec"]["meshes"]["gke"]["peer"] = True
    (issue,) = _spec_error(d).issues
    assert issue.path == "spec.meshes.gke.certManager" and "remove certManager" in str(issue)
    del d["spec"]["meshes"]["gke"]["certManager"]
    assert bridge_from(d).own_meshes == ["eks"]


# -- render ----------------------------------------------------------------------------------------------


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Bridge, dict[str, Any], dict[str, bytes]]:
    bridge = bridge_from(cert_manager_dict())
    store, pems = store_with_issuer_cas(tmp_path, bridge)
    return bridge, render_bridge(bridge, store.credentials(bridge)), pems


def test_the_exporter_gets_a_server_certificate_in_its_gateway_namespace(rendered: Any) -> None:
    _, sets, _ = rendered
    (cert,) = _kinds(sets["eks"], "Certificate")
    assert cert["apiVersion"] == "cert-manager.io/v1"
    assert cert["metadata"]["namespace"] == "istio-ingress"
    spec = cert["spec"]
    assert spec["secretName"] == cert["metadata"]["name"] == "mtls-credential"
    assert spec["dnsNames"] == ["lambda.external"] and "uris" not in spec
    assert spec["usages"] == ["digital signature", "server auth"]
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert (spec["duration"], spec["renewBefore"]) == ("2160h", "720h")  # 90 days, renewed with 30 left
    assert spec["issuerRef"] == {"name": "eks-mesh-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert not _kinds(sets["eks"], "Issuer")  # an existing issuer: nothing rendered for it


def test_the_importer_gets_a_client_certificate_with_its_spiffe_identity_and_a_ca_issuer(rendered: Any) -> None:
    _, sets, _ = rendered
    (cert,) = _kinds(sets["gke"], "Certificate")
    spec = cert["spec"]
    assert cert["metadata"]["namespace"] == "istio-egress"
    assert spec["uris"] == ["spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"]
    assert "dnsNames" not in spec and spec["usages"] == ["digital signature", "client auth"]
    (issuer,) = _kinds(sets["gke"], "Issuer")
    assert issuer["metadata"] == {
        "name": "meshbridge-lambda-aws-to-gcp",
        "namespace": "istio-egress",
        "labels": issuer["metadata"]["labels"],
    }
    assert issuer["spec"] == {"ca": {"secretName": "root-ca"}}
    assert spec["issuerRef"] == {"name": "meshbridge-lambda-aws-to-gcp", "kind": "Issuer", "group": "cert-manager.io"}


def test_each_gateway_trusts_the_peers_ca_through_the_cacert_secret_never_its_own(rendered: Any) -> None:
    _, sets, pems = rendered
    for mesh, peer, ns in (("eks", "gke", "istio-ingress"), ("gke", "eks", "istio-egress")):
        (secret,) = _kinds(sets[mesh], "Secret")
        assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("mtls-credential-cacert", ns)
        assert list(secret["data"]) == ["ca.crt"]  # no key, no certificate of its own
        assert base64.b64decode(secret["data"]["ca.crt"]) == pems[peer] != pems[mesh]
    (gateway,) = _kinds(sets["eks"], "Gateway")
    tls = gateway["spec"]["servers"][0]["tls"]
    assert (tls["credentialName"], tls["caCertCredentialName"]) == ("mtls-credential", "mtls-credential-cacert")
    rule = next(d for d in sets["gke"] if d["metadata"]["name"] == "dr-lambda-ext")
    assert rule["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["credentialName"] == "mtls-credential"


def test_before_istio_1_28_the_gateway_has_no_ca_cert_credential_name_and_reads_the_same_secret() -> None:
    """ServerTLSSettings.caCertCredentialName is new in Istio 1.28; before, istiod reads <credentialName>-cacert."""
    sets = render_bridge(bridge_from(cert_manager_dict(version="1.27.3")), None)
    (gateway,) = _kinds(sets["eks"], "Gateway")
    assert "caCertCredentialName" not in gateway["spec"]["servers"][0]["tls"]


def test_without_credentials_no_trust_secret_is_rendered_but_the_certificates_are() -> None:
    sets = render_bridge(bridge_from(cert_manager_dict()), None)
    assert not _kinds(sets["eks"], "Secret") and len(_kinds(sets["eks"], "Certificate")) == 1


def test_meshbridge_mode_renders_no_certificate_and_no_ca_cert_credential_name(tmp_path: Path) -> None:
    from tests.builders import issued_store

    d = seed_dict()
    for mesh in d["spec"]["meshes"].values():
        mesh.setdefault("istio", {})["version"] = "1.31.0"
    bridge = bridge_from(d)
    sets = render_bridge(bridge, issued_store(tmp_path, bridge).credentials(bridge))
    assert not _kinds(sets["eks"], "Certificate") and not _kinds(sets["gke"], "Issuer")
    (gateway,) = _kinds(sets["eks"], "Gateway")
    assert "caCertCredentialName" not in gateway["spec"]["servers"][0]["tls"]


def test_other_naming_rsa_keys_and_three_meshes(tmp_path: Path) -> None:
    """A team's own Secret name and namespaces, RSA keys, an exporter trusting two importers' CAs."""
    d = cert_manager_dict(two_exports_three_meshes())
    d["spec"]["tls"]["keyType"] = "RSA_2048"
    d["spec"]["meshes"]["eks"]["credentialName"] = "c2-mtls"
    d["spec"]["meshes"]["eks"]["ingressGateway"]["namespace"] = "edge"
    bridge = bridge_from(d)
    store, pems = store_with_issuer_cas(tmp_path, bridge)
    sets = render_bridge(bridge, store.credentials(bridge))
    (cert,) = _kinds(sets["eks"], "Certificate")
    assert (cert["metadata"]["name"], cert["metadata"]["namespace"], cert["spec"]["secretName"]) == (
        "c2-mtls",
        "edge",
        "c2-mtls",
    )
    assert cert["spec"]["dnsNames"] == ["lambda.external", "orders.external"]
    assert cert["spec"]["privateKey"]["algorithm"] == "RSA" and cert["spec"]["privateKey"]["size"] == 2048
    assert cert["spec"]["usages"] == ["digital signature", "key encipherment", "server auth"]
    (secret,) = _kinds(sets["eks"], "Secret")
    assert secret["metadata"]["name"] == "c2-mtls-cacert"
    trusted = parse_certificates(base64.b64decode(secret["data"]["ca.crt"]))
    assert len(trusted) == 2 and pems["eks"] not in base64.b64decode(secret["data"]["ca.crt"])
    aks = _kinds(sets["aks"], "Certificate")[0]
    assert aks["metadata"] == {"name": "mtls-credential", "namespace": "egress", "labels": aks["metadata"]["labels"]}


def test_no_private_key_and_no_meshbridge_label_on_what_cert_manager_writes(rendered: Any) -> None:
    _, sets, _ = rendered
    secrets = [d for ms in sets.values() for d in _kinds(ms, "Secret")]
    assert secrets and all(b"PRIVATE KEY" not in base64.b64decode(v) for d in secrets for v in d["data"].values())
    text = yaml.safe_dump_all([d for ms in sets.values() for d in ms])
    assert "secretTemplate" not in text  # meshbridge's labels on cert-manager's Secret would make prune delete it


# -- ownership, RBAC, the store ----------------------------------------------------------------------------


def test_cert_manager_kinds_are_owned_and_granted_only_in_cert_manager_mode() -> None:
    on, off = bridge_from(cert_manager_dict()), bridge_from(seed_dict())
    for mesh, ns in (("eks", "istio-ingress"), ("gke", "istio-egress")):
        assert {"Certificate", "Issuer"} <= {k.kind for k in owned_kinds(on.spec.meshes[mesh])}
        assert {t.plural for t in owned_types(on, mesh)} >= {"certificates", "issuers"}
        assert not {"Certificate", "Issuer"} & {k.kind for k in owned_kinds(off.spec.meshes[mesh])}
        for bridge, granted in ((on, True), (off, False)):
            role = next(
                d for d in render_rbac(bridge)[mesh] if d["kind"] == "Role" and d["metadata"]["namespace"] == ns
            )
            rules = [r for r in role["rules"] if "cert-manager.io" in r["apiGroups"]]
            assert bool(rules) is granted
            if granted:
                assert set(rules[0]["resources"]) == {"certificates", "issuers"}
                assert rules[0]["verbs"] == ["get", "list", "create", "patch", "delete"]


def test_the_store_gives_trust_only_and_names_a_missing_issuer_ca(tmp_path: Path) -> None:
    bridge = bridge_from(cert_manager_dict())
    with pytest.raises(PkiError, match=r"certs import --mesh MESH --slot ca --cert CA.pem") as exc:
        PkiStore(tmp_path / "empty").credentials(bridge)
    assert "eks/ca.crt" in str(exc.value) and "certs issue" not in str(exc.value)
    store, _ = store_with_issuer_cas(tmp_path, bridge)
    creds = store.credentials(bridge)
    assert creds["eks"].server is None and creds["gke"].client is None


def test_certs_issue_refuses_in_cert_manager_mode_and_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="cert-manager issues the gateway certificates in each cluster") as exc:
        PkiStore(tmp_path / "state").issue(bridge_from(cert_manager_dict()))
    assert "--slot ca" in str(exc.value)
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("*.key"))


# -- certs check --context: what cert-manager issued ---------------------------------------------------------


def _issuers(tmp: Path, bridge: Bridge) -> tuple[PkiStore, dict[str, CertBundle]]:
    """Each mesh's cert-manager issuer (a CA with its key, in the cluster), and the store holding their certificates."""
    store = PkiStore(tmp / "state")
    cas = {}
    for mesh in bridge.spec.meshes:
        cas[mesh] = issue_ca(f"{mesh} issuer CA")
        store.import_(bridge, mesh, "ca", CertBundle(cas[mesh].cert_pem))
    return store, cas


def _issued(bridge: Bridge, cas: dict[str, CertBundle], **overrides: Any) -> dict[tuple[str, str, str], Any]:
    """The Secrets cert-manager writes for the seed (and meshbridge's -cacert), by (mesh, namespace, name);
    ``overrides`` replaces some: ``eks_leaf`` (the server leaf), ``eks_cacert``, ``eks_ca``."""
    server = overrides.get("eks_leaf") or issue_leaf(
        cas["eks"], "server", common_name="lambda.external", dns_names=["lambda.external"]
    )
    client_id = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
    client = issue_leaf(cas["gke"], "client", common_name="egw", uris=[client_id])
    return {
        ("eks", "istio-ingress", "mtls-credential"): {
            "tls.crt": server.cert_pem,
            "tls.key": b"(not read)",
            "ca.crt": overrides.get("eks_ca", cas["eks"].cert_pem),
        },
        ("eks", "istio-ingress", "mtls-credential-cacert"): overrides.get(
            "eks_cacert", {"ca.crt": cas["gke"].cert_pem}
        ),
        ("gke", "istio-egress", "mtls-credential"): {"tls.crt": client.cert_pem, "ca.crt": cas["gke"].cert_pem},
        ("gke", "istio-egress", "mtls-credential-cacert"): {"ca.crt": cas["eks"].cert_pem},
    }


def test_what_cert_manager_issued_passes_when_it_is_what_the_spec_asks(tmp_path: Path) -> None:
    bridge = bridge_from(cert_manager_dict())
    store, cas = _issuers(tmp_path, bridge)
    assert store.check_issued(bridge, _issued(bridge, cas)) == []


@pytest.mark.parametrize(
    ("change", "label", "says"),
    [
        ({"eks_leaf": "missing"}, "eks/server", "is not in the cluster"),
        ({"eks_leaf": "wrong-san"}, "eks/server", "lambda.external"),
        ({"eks_leaf": "client-eku"}, "eks/server", "server"),
        ({"eks_leaf": "foreign"}, "eks/server", "does not verify"),
        ({"eks_cacert": None}, "eks/server", "trusts only the ca.crt cert-manager writes"),
        ({"eks_cacert": "own"}, "eks/server", "not the peers' CAs"),
    ],
)
def test_what_cert_manager_issued_is_refused_where_a_peer_would_refuse_it(
    tmp_path: Path, change: dict[str, Any], label: str, says: str
) -> None:
    bridge = bridge_from(cert_manager_dict())
    store, cas = _issuers(tmp_path, bridge)
    value = next(iter(change.values()))
    leaves = {
        "wrong-san": lambda: issue_leaf(cas["eks"], "server", common_name="other", dns_names=["other.example"]),
        "client-eku": lambda: issue_leaf(cas["eks"], "client", common_name="lambda.external", uris=["spiffe://x/y"]),
        "foreign": lambda: issue_leaf(
            issue_ca("someone else"), "server", common_name="lambda.external", dns_names=["lambda.external"]
        ),
    }
    overrides: dict[str, Any] = {}
    if "eks_leaf" in change and value in leaves:
        overrides["eks_leaf"] = leaves[value]()
    if "eks_cacert" in change:
        overrides["eks_cacert"] = None if value is None else {"ca.crt": cas["eks"].cert_pem}
    secrets = _issued(bridge, cas, **overrides)
    if value == "missing":
        secrets[("eks", "istio-ingress", "mtls-credential")] = None
    errors = [f for f in store.check_issued(bridge, secrets) if f.severity == "error"]
    assert errors and all(f.subject.startswith(f"{label} (Secret istio-ingress/mtls-credential)") for f in errors)
    assert any(says in f.problem for f in errors), [f.problem for f in errors]


def test_a_ca_crt_other_than_the_imported_issuer_is_a_warning(tmp_path: Path) -> None:
    bridge = bridge_from(cert_manager_dict())
    store, cas = _issuers(tmp_path, bridge)
    found = store.check_issued(bridge, _issued(bridge, cas, eks_ca=issue_ca("a rotated issuer").cert_pem))
    assert [f.severity for f in found] == ["warning"] and "not the issuer CA imported for eks" in found[0].problem


def test_certs_check_context_is_for_cert_manager_mode(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from meshbridge.cli.main import main

    assert main(["certs", "check", "--context", "eks=nowhere"]) != 0
    assert "spec.tls.issuer is 'meshbridge'" in capsys.readouterr().err


# -- trust-manager: the peers' CAs through a Bundle --------------------------------------------------------------


def _bundle_bridge(base: dict[str, Any] | None = None) -> Bridge:
    d = cert_manager_dict(base)
    for mesh in d["spec"]["meshes"].values():
        mesh["certManager"]["peerTrust"] = "Bundle"
    return bridge_from(d)


def test_with_peer_trust_bundle_a_trust_manager_bundle_writes_the_cacert_secret(tmp_path: Path) -> None:
    bridge = _bundle_bridge()
    store, pems = store_with_issuer_cas(tmp_path, bridge)
    sets = render_bridge(bridge, store.credentials(bridge))
    assert not _kinds(sets["eks"], "Secret")  # trust-manager writes it
    (bundle,) = _kinds(sets["eks"], "Bundle")
    assert bundle["apiVersion"] == "trust.cert-manager.io/v1alpha1"
    assert bundle["metadata"]["name"] == "mtls-credential-cacert" and "namespace" not in bundle["metadata"]
    assert bundle["spec"]["target"] == {
        "secret": {"key": "ca.crt"},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-ingress"}},
    }
    assert bundle["spec"]["sources"] == [{"inLine": pems["gke"].decode()}]
    secret_mode = render_bridge(bridge_from(cert_manager_dict()), store.credentials(bridge))
    assert not _kinds(secret_mode["eks"], "Bundle")


def test_a_mesh_whose_two_gateways_would_need_one_bundle_name_twice_is_refused(tmp_path: Path) -> None:
    """eks exports to gke and imports from it: its ingress and egress gateways, in two namespaces, would each need
    the cluster-scoped Bundle mtls-credential-cacert."""
    import copy

    from meshbridge.errors import RenderError

    d = seed_dict()
    meshes = d["spec"]["meshes"]
    meshes["gke"]["ingressGateway"] = copy.deepcopy(meshes["eks"]["ingressGateway"])
    meshes["eks"]["egressGateway"] = copy.deepcopy(meshes["gke"]["egressGateway"])
    back = copy.deepcopy(d["spec"]["exports"][0])
    back.update({"name": "reports", "host": "reports.external", "from": "gke", "to": ["eks"]})
    d["spec"]["exports"].append(back)
    bridge = _bundle_bridge(d)
    store, _ = store_with_issuer_cas(tmp_path, bridge)
    with pytest.raises(RenderError, match="peerTrust: Secret"):
        render_bridge(bridge, store.credentials(bridge))


def test_the_twin_plays_trust_manager_too(tmp_path: Path) -> None:
    from meshbridge.local.certmanager import issuing_bridge, twin_credentials, twin_store

    bridge = _bundle_bridge()
    store = twin_store(bridge, tmp_path)
    store.issue(issuing_bridge(bridge))
    sets = render_bridge(bridge, twin_credentials(bridge, store))
    names = sorted(d["metadata"]["name"] for d in _kinds(sets["eks"], "Secret"))
    assert names == ["mtls-credential", "mtls-credential-cacert"] and _kinds(sets["eks"], "Bundle")


def test_bundles_are_owned_cluster_wide_and_granted_by_the_cluster_role() -> None:
    bridge = _bundle_bridge()
    (bundle,) = [t for t in owned_types(bridge, "eks") if t.kind == "Bundle"]
    assert (bundle.plural, bundle.namespaced) == ("bundles", False)
    docs = list(render_rbac(bridge)["eks"])
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    rules = [r for r in cluster_role["rules"] if r["apiGroups"] == ["trust.cert-manager.io"]]
    assert rules == [{"apiGroups": ["trust.cert-manager.io"], "resources": ["bundles"], "verbs": list(_VERBS)}]
    roles = [d for d in docs if d["kind"] == "Role"]
    assert not [r for d in roles for r in d["rules"] if "trust.cert-manager.io" in r["apiGroups"]]
    plain = [d for d in render_rbac(bridge_from(cert_manager_dict()))["eks"] if d["kind"] == "ClusterRole"]
    assert not [r for r in plain[0]["rules"] if "trust.cert-manager.io" in r["apiGroups"]]


_VERBS = ("get", "list", "create", "patch", "delete")


def test_lint_counts_a_bundle_as_the_peer_cas_and_without_it_names_the_trap(tmp_path: Path) -> None:
    from meshbridge.lint import from_manifests, lint

    bridge = _bundle_bridge()
    store, _ = store_with_issuer_cas(tmp_path, bridge)
    sets = render_bridge(bridge, store.credentials(bridge))

    def codes(keep_bundle: bool) -> set[str]:
        pairs = {
            m: [(f"{m}.yaml#{i}", dict(d)) for i, d in enumerate(ms) if keep_bundle or d["kind"] != "Bundle"]
            for m, ms in sets.items()
        }
        return lint(from_manifests(pairs, bridge=bridge)).codes()

    assert "MB211" not in codes(keep_bundle=True)
    assert "MB211" in codes(keep_bundle=False)


def test_lint_does_not_ask_to_drop_the_ca_crt_cert_manager_writes(tmp_path: Path) -> None:
    """MB206 says a Secret's own CA key is ignored beside <name>-cacert; cert-manager's ca.crt cannot be dropped
    (cert-manager writes it), so a Secret it issued is not flagged; the same Secret without its marks is."""
    from meshbridge.lint import from_manifests, lint
    from meshbridge.local.certmanager import issuing_bridge, twin_credentials, twin_store

    bridge = bridge_from(cert_manager_dict())
    store = twin_store(bridge, tmp_path)
    store.issue(issuing_bridge(bridge))
    sets = render_bridge(bridge, twin_credentials(bridge, store))

    def codes(marked: bool) -> set[str]:
        docs = {m: [dict(d) for d in ms if d["kind"] != "Certificate"] for m, ms in sets.items()}
        if not marked:
            for d in docs["eks"]:
                if d["kind"] == "Secret" and "annotations" in d["metadata"]:
                    d["metadata"] = {k: v for k, v in d["metadata"].items() if k != "annotations"}
        pairs = {m: [(f"{m}.yaml#{i}", d) for i, d in enumerate(ds)] for m, ds in docs.items()}
        return lint(from_manifests(pairs, bridge=bridge)).codes()

    assert "MB206" not in codes(marked=True)
    assert "MB206" in codes(marked=False)


def test_peer_offer_in_cert_manager_mode_says_two_owners_are_not_supported_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main

    d = cert_manager_dict()
    d["spec"]["meshes"]["gke"]["peer"] = True
    del d["spec"]["meshes"]["gke"]["certManager"]
    del d["spec"]["aws"]
    spec = tmp_path / "bridge.yaml"
    spec.write_text(yaml.safe_dump(d))
    assert main(["peer", "offer", "-f", str(spec), "-o", str(tmp_path / "offer.yaml")]) == 2
    said = capsys.readouterr().err
    assert "two owners with cert-manager (spec.tls.issuer: cert-manager) are not supported yet" in said
    assert not (tmp_path / "offer.yaml").exists()
    # its twin: the same one-side spec with meshbridge issuing gets past this check (to the missing CA)
    d["spec"]["tls"]["issuer"] = "meshbridge"
    del d["spec"]["meshes"]["eks"]["certManager"]
    spec.write_text(yaml.safe_dump(d))
    assert main(["peer", "offer", "-f", str(spec), "-o", str(tmp_path / "offer.yaml")]) == 2
    assert "has no CA" in capsys.readouterr().err
