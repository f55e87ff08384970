"""Lint of the article's own manifests and of what the seed spec renders."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.lint import SecretFile, from_manifests, lint
from tests.builders import seed_bridge
from tests.lint_builders import NOW, article_docs, lint_spec, openssl_self_signed


def article_certificates() -> list[SecretFile]:
    """The article's openssl recipe: two self-signed CN=* certificates, each side trusting the other's."""
    server, server_key = openssl_self_signed("Zamunda")
    client, client_key = openssl_self_signed("Wakanda")
    return [
        SecretFile("gke", "key", client_key, source="client.key"),
        SecretFile("gke", "cert", client, source="client.crt"),
        SecretFile("gke", "cacert", server, source="server.crt"),
        SecretFile("eks", "key", server_key, source="server.key"),
        SecretFile("eks", "cert", server, source="server.crt"),
        SecretFile("eks", "cacert", client, source="client.crt"),
    ]


def test_the_article_lints_without_errors_and_warns_about_its_weaknesses() -> None:
    report = lint(from_manifests(article_docs(), bridge=seed_bridge(), secret_files=article_certificates(), now=NOW))
    assert report.errors == [], report.table(wide=True)
    warned = {f.code for f in report.findings if f.severity == "warning"}
    # CN-only certificates, no SAN pins either way, no EKU, self-signed leaves as trust anchors
    assert {"MB407", "MB504", "MB506", "MB406", "MB408"} <= warned, report.table()
    cn_only = [f for f in report.findings if f.code == "MB407"]
    assert {(f.mesh, f.objects[0].display, f.objects[0].field) for f in cn_only} == {
        ("eks", "Secret istio-ingress/mtls-credential", "data.cert"),
        ("gke", "Secret istio-egress/mtls-credential", "data.cert"),
    }
    assert all("CN=*" in f.message and "no SAN" in f.message for f in cn_only)
    assert {f.objects[0].source for f in cn_only} == {
        "client.crt, client.key, server.crt",
        "client.crt, server.crt, server.key",
    }
    pins = next(f for f in report.findings if f.code == "MB504")
    assert pins.objects[0].field == "spec.trafficPolicy.portLevelSettings[0].tls.subjectAltNames"
    assert pins.objects[0].source.endswith("gke.yaml#1")


def test_the_article_without_its_secrets_says_what_it_could_not_check() -> None:
    report = lint(from_manifests(article_docs(), bridge=seed_bridge(), now=NOW))
    assert report.errors == []
    skipped = {(f.mesh, f.objects[0].namespace) for f in report.findings if f.code == "MB208"}
    assert skipped == {("eks", "istio-ingress"), ("gke", "istio-egress")}


def test_the_article_without_a_spec_assumes_istio_defaults_and_flags_dns() -> None:
    report = lint(from_manifests(article_docs(), now=NOW))
    assert {f.mesh for f in report.findings if f.code == "MB001"} == {"eks", "gke"}
    (dns,) = [f for f in report.findings if f.code == "MB101"]
    assert "ISTIO_META_DNS_CAPTURE" in dns.fix and "ISTIO_META_DNS_AUTO_ALLOCATE" in dns.fix
    assert "addresses" in dns.fix
    assert dns.symptom.startswith("curl: (6) Could not resolve host: lambda.external")


def test_the_rendered_seed_lints_clean() -> None:
    report = lint_spec()
    assert report.findings == (), report.table(wide=True)


def test_the_rendered_seed_without_certificates_only_says_so() -> None:
    report = lint_spec(issued=False)
    assert report.codes() == ["MB208", "MB208"]
    assert all("certs issue" in f.fix for f in report.findings)


def test_many_exports_lint_clean() -> None:
    def many(d: dict[str, Any]) -> None:
        template = d["spec"]["exports"][0]
        d["spec"]["exports"] = [
            {
                **template,
                "name": f"svc-{i}",
                "host": f"svc-{i}.external",
                "backend": {**template["backend"], "host": f"alb-{i}.example.com"},
            }
            for i in range(12)
        ]
        d["spec"]["aws"]["export"] = "svc-0"

    report = lint_spec(many)
    assert report.findings == (), report.table()


@pytest.mark.parametrize("version", ["1.17.2", "1.22.3", "1.26.0"])
def test_the_seed_is_clean_on_every_istio_version(version: str) -> None:
    def set_version(d: dict[str, Any]) -> None:
        for mesh in d["spec"]["meshes"].values():
            mesh["istio"]["version"] = version

    assert lint_spec(set_version).findings == ()
