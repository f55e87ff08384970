"""The rest of Istio's validation of a Gateway (``validateServer``, ``validateServerPort``, ``validateServerBind``,
``validateTLSOptions``): each rule a hand-written Gateway breaks is refused by lint, translate and the twin in
Istio's words, naming the field and the fix; its twin (the valid form) is taken. ``RULES`` is also asked of
istiod's own validation (tests/oracle/test_gateway_validation.py); Istio's warnings become lint MB005."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.errors import IstioConfigError
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.gateway_validation import ValidationWarning, host_errors
from meshbridge.istio.parse import build_config
from tests.builders import ARTICLE

HOST = "api.partner.example"


def gateway(*servers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "partner-gateway", "namespace": "istio-ingress"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": list(servers)},
    }


def server(
    *,
    hosts: list[str] | None = None,
    port: dict[str, Any] | None = None,
    tls: dict[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """An HTTPS server on 443 for api.partner.example, MUTUAL with its credentialName, unless told otherwise."""
    return {
        "hosts": hosts or [HOST],
        "port": port or {"name": "https", "number": 443, "protocol": "HTTPS"},
        "tls": tls or {"mode": "MUTUAL", "credentialName": "mtls-credential"},
        **more,
    }


def plain(protocol: str | None, **more: Any) -> dict[str, Any]:
    """A server on 80 without tls, of ``protocol`` (none: the field left out)."""
    port = {"name": "http", "number": 80} | ({"protocol": protocol} if protocol is not None else {})
    s = server(port=port, **more)
    del s["tls"]
    return s


TLS_PORT = {"name": "tls", "number": 443, "protocol": "TLS"}
FILES = {"serverCertificate": "/etc/certs/tls.crt", "privateKey": "/etc/certs/tls.key"}


@dataclass(frozen=True)
class Rule:
    """A Gateway Istio's validation refuses (``bad``), the field and Istio's words, and its valid twin (``good``)."""

    id: str
    bad: dict[str, Any]
    field: str
    said: str
    good: dict[str, Any]


RULES = [
    Rule("no-server", gateway(), "spec.servers", "gateway must have at least one server", gateway(server())),
    Rule(
        "short-host",
        gateway(server(hosts=["api"])),
        "spec.servers[0].hosts[0]",
        "short names (non FQDN) are not allowed",
        gateway(server(hosts=[HOST])),
    ),
    Rule(
        "partial-wildcard",
        gateway(server(hosts=["api*.partner.example"])),
        "spec.servers[0].hosts[0]",
        'domain name "api*.partner.example" invalid (label "api*" invalid); '
        'partial wildcard "api*.partner.example" not allowed',
        gateway(server(hosts=["*.partner.example"])),
    ),
    Rule(
        "namespace-with-dots",
        gateway(server(hosts=[f"partner.apps/{HOST}"])),
        "spec.servers[0].hosts[0]",
        'invalid namespace value "partner.apps" in gateway',
        gateway(server(hosts=[f"partner-apps/{HOST}", f"./{HOST}", "*/*"])),
    ),
    Rule(
        "numeric-top-level-domain",
        gateway(server(hosts=["api.partner.443"])),
        "spec.servers[0].hosts[0]",
        'domain name "partner.443" invalid (top level domain "443" cannot be all-numeric)',
        gateway(server(hosts=["10.1.2.3", "api.partner.example."])),  # an IP address, a name ending in '.'
    ),
    Rule(
        "unsupported-protocol",
        gateway(plain("h2c")),
        "spec.servers[0].port.protocol",
        'invalid protocol "h2c", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP',
        gateway(plain("http2")),  # any case
    ),
    Rule(
        "no-protocol",
        gateway(plain(None)),
        "spec.servers[0].port.protocol",
        'invalid protocol "", supported protocols are',
        gateway(plain("HTTP")),
    ),
    Rule(
        "port-out-of-range",
        gateway(server(port={"name": "https", "number": 70000, "protocol": "HTTPS"})),
        "spec.servers[0].port.number",
        "port number 70000 must be in the range 1..65535",
        gateway(server(port={"name": "https", "number": 8443, "protocol": "HTTPS"})),
    ),
    Rule(
        "bind-not-an-ip",
        gateway(server(bind="gateway.local")),
        "spec.servers[0].bind",
        "gateway.local is not a valid IP",
        gateway(server(bind="0.0.0.0")),
    ),
    Rule(
        "unix-bind-with-a-port",
        gateway(server(bind="unix:///var/run/gateway.sock")),
        "spec.servers[0].bind",
        "port number must be 0 for unix domain socket",
        gateway(server(bind="unix:///var/run/gateway.sock", port={"name": "https", "number": 0, "protocol": "HTTPS"})),
    ),
    Rule(
        "tls-on-tcp",
        gateway(server(port={"name": "tcp", "number": 443, "protocol": "TCP"})),
        "spec.servers[0].tls",
        "server cannot have TLS settings for non HTTPS/TLS ports",
        gateway(server(port={"name": "tls", "number": 443, "protocol": "TLS"})),
    ),
    Rule(
        "tls-on-http",
        gateway(server(port={"name": "http", "number": 80, "protocol": "HTTP"})),
        "spec.servers[0].tls",
        "server cannot have TLS settings for plain text HTTP ports",
        gateway(server(port={"name": "http", "number": 80, "protocol": "HTTP"}, tls={"httpsRedirect": True})),
    ),
    Rule(
        "istio-mutual-with-credential",
        gateway(server(tls={"mode": "ISTIO_MUTUAL", "credentialName": "mtls-credential"})),
        "spec.servers[0].tls.credentialName",
        "ISTIO_MUTUAL TLS cannot have associated credentialName",
        gateway(server(tls={"mode": "ISTIO_MUTUAL"})),
    ),
    Rule(
        "two-certificate-sources",
        gateway(server(tls={"mode": "SIMPLE", "credentialName": "mtls-credential", **FILES})),
        "spec.servers[0].tls",
        "only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be "
        "specified",
        gateway(server(tls={"mode": "SIMPLE", **FILES})),
    ),
    Rule(
        "mutual-without-ca",
        gateway(server(tls={"mode": "MUTUAL", **FILES})),
        "spec.servers[0].tls.caCertificates",
        "MUTUAL TLS requires a client CA bundle",
        gateway(server(tls={"mode": "MUTUAL", "caCertificates": "/etc/certs/ca.crt", **FILES})),
    ),
    Rule(
        "simple-without-key",
        gateway(server(tls={"mode": "SIMPLE", "serverCertificate": "/etc/certs/tls.crt"})),
        "spec.servers[0].tls.privateKey",
        "SIMPLE TLS requires a private key",
        gateway(server(tls={"mode": "SIMPLE", **FILES})),
    ),
    Rule(
        "crl-with-credential",  # only where istiod does not read the credential: a passthrough server
        gateway(
            server(port=TLS_PORT, tls={"mode": "PASSTHROUGH", "credentialName": "c", "caCrl": "/etc/certs/ca.crl"})
        ),
        "spec.servers[0].tls.caCrl",
        "CRL is not supported with credentialName. CRL has to be specified in the credential",
        gateway(
            server(port=TLS_PORT, tls={"mode": "PASSTHROUGH"}),
            server(tls={"mode": "MUTUAL", "credentialName": "c", "caCrl": "/etc/certs/ca.crl"}),  # Istio checks no more
        ),
    ),
    Rule(
        "crl-with-simple",
        gateway(server(tls={"mode": "SIMPLE", "caCrl": "/etc/certs/ca.crl", **FILES})),
        "spec.servers[0].tls.caCrl",
        "CRL is not supported with SIMPLE TLS",
        gateway(
            server(tls={"mode": "MUTUAL", "caCrl": "/etc/certs/ca.crl", "caCertificates": "/etc/certs/ca.crt", **FILES})
        ),
    ),
]


def _read(gw: dict[str, Any]) -> ConfigSet:
    return build_config([("mine.yaml", gw)])


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_a_gateway_istios_validation_refuses_is_refused_in_its_words(rule: Rule) -> None:
    with pytest.raises(IstioConfigError) as caught:
        _read(rule.bad)
    said = str(caught.value)
    assert said.startswith(f"mine.yaml: Gateway istio-ingress/partner-gateway: {rule.field}: {rule.said}"), said
    assert re.search(r", as Istio's validation says\. Fix: \S", said), said


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_negative_twin_the_valid_form_is_taken(rule: Rule) -> None:
    cfg = _read(rule.good)
    assert cfg.gateways and not [w for w in cfg.warnings if isinstance(w, ValidationWarning)]


SEVERAL = gateway(
    server(hosts=["api"]),
    server(port={"name": "https", "number": 9443, "protocol": "TCP"}),
)
"""Three errors in two servers: istiod's webhook lists them all, so does meshbridge, one line each."""
SEVERAL_SAID = [
    "spec.servers[0].hosts[0]: short names (non FQDN) are not allowed",
    "spec.servers[1].tls: server cannot have TLS settings for non HTTPS/TLS ports",
    "spec.servers[1].port.name: port names in servers must be unique: duplicate name https",
]


def test_every_error_of_a_gateway_is_said_one_line_each() -> None:
    with pytest.raises(IstioConfigError) as caught:
        _read(SEVERAL)
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 2)[2][: len(said)] for line, said in zip(lines, SEVERAL_SAID, strict=True)] == SEVERAL_SAID


HOSTS = [
    ("*api", ["short names (non FQDN) are not allowed", 'partial wildcard "*api" not allowed']),
    (
        "/api.partner.example",
        ["config namespace and dnsName in host entry cannot be empty", 'invalid namespace value "" in gateway'],
    ),
    ("~/api.partner.example", ['invalid namespace value "~" in gateway']),  # only a Gateway API one's
    ("api_v1.partner.example", ['domain name "api_v1.partner.example" invalid (label "api_v1" invalid)']),
    ("*", []),
    ("*.example", []),
    ("10.1.2.3", []),  # an IP address: no FQDN needed
    ("*-api.partner.example", ['partial wildcard "*-api.partner.example" not allowed']),
    ("2001:db8::1", ["short names (non FQDN) are not allowed"]),  # an IPv6 address has no dot
]


@pytest.mark.parametrize(("host", "said"), HOSTS)
def test_host_forms_as_istio_judges_them(host: str, said: list[str]) -> None:
    assert host_errors(host) == said


WARNINGS = [
    (
        server(tls={"mode": "MUTUAL", "credentialName": "mtls-credential", "httpsRedirect": True}),
        ".tls.httpsRedirect",
        "tls.httpsRedirect should only be used with http servers",
    ),
    (
        server(tls={"mode": "SIMPLE", "credentialName": "c", "cipherSuites": ["TLS_AES_128_GCM_SHA256", "AES128-SHA"]}),
        ".tls.cipherSuites",
        "ignoring invalid cipher suites: [TLS_AES_128_GCM_SHA256]",
    ),
    (
        server(tls={"mode": "SIMPLE", "credentialName": "c", "cipherSuites": ["AES128-SHA", "AES128-SHA"]}),
        ".tls.cipherSuites",
        "ignoring duplicate cipher suites: [AES128-SHA]",
    ),
    (
        server(
            port={"name": "tls", "number": 443, "protocol": "TLS"}, tls={"mode": "PASSTHROUGH", "credentialName": "c"}
        ),
        ".tls",
        "PASSTHROUGH mode does not use certificates, they will be ignored",
    ),
    (
        server(tls={"mode": "SIMPLE", "credentialName": "c", "minProtocolVersion": "TLSV1_1"}),
        ".tls.minProtocolVersion",
        "TLS version below TLSV1_2 require setting compatible ciphers",
    ),
]


@pytest.mark.parametrize(("srv", "field", "said"), WARNINGS, ids=[w[2].split(":")[0][:40] for w in WARNINGS])
def test_istios_validation_warnings_are_kept_with_the_field(srv: dict[str, Any], field: str, said: str) -> None:
    (w,) = [w for w in _read(gateway(srv)).warnings if isinstance(w, ValidationWarning)]
    assert (w.field, w.message[: len(said)]) == (f"spec.servers[0]{field}", said)
    assert w.fix


def test_negative_twin_no_warning_on_what_istio_takes_quietly() -> None:
    quiet = [
        server(port={"name": "http", "number": 80, "protocol": "HTTP"}, tls={"httpsRedirect": True}),
        server(tls={"mode": "SIMPLE", "credentialName": "c", "cipherSuites": ["AES128-SHA", "-ALL", "ALL"]}),
        server(port={"name": "tls", "number": 443, "protocol": "TLS"}, tls={"mode": "PASSTHROUGH"}),
        server(
            tls={
                "mode": "SIMPLE",
                "credentialName": "c",
                "minProtocolVersion": "TLSV1_1",
                "cipherSuites": ["AES128-SHA"],
            }
        ),
    ]
    for i, srv in enumerate(quiet):
        srv["port"]["name"] += f"-{i}"
    assert not [w for w in _read(gateway(*quiet)).warnings if isinstance(w, ValidationWarning)]


@pytest.fixture
def article_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, dict[str, Any]], str]:
    """Writes the article's exporter manifest with its Gateway's server changed, returns the file's name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    assert main(["init"]) == 0  # translate's world

    def write(name: str, change: dict[str, Any]) -> str:
        docs = [d for d in yaml.safe_load_all((ARTICLE / "eks.yaml").read_text()) if d]
        (gw,) = [d for d in docs if d["kind"] == "Gateway"]
        gw["spec"]["servers"][0] |= change
        (tmp_path / name).write_text(yaml.safe_dump_all(docs))
        return name

    return write


COMMANDS = [["lint", "--mesh", "eks={}"], ["translate", "--proxy", "eks/istio-ingressgateway", "--manifests", "eks={}"]]


@pytest.mark.parametrize("command", COMMANDS, ids=["lint", "translate"])
def test_lint_and_translate_refuse_a_short_host_and_take_its_fqdn(
    article_with: Callable[[str, dict[str, Any]], str], command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    short, fqdn = article_with("short.yaml", {"hosts": ["lambda"]}), article_with("fqdn.yaml", {})
    capsys.readouterr()
    assert main([c.format(short) for c in command]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert (
        "Gateway istio-ingress/eastwestgateway: spec.servers[0].hosts[0]: short names (non FQDN) are not allowed"
        in said
    )
    assert main([c.format(fqdn) for c in command]) in (0, 1)  # the negative twin: judged, not refused
    assert "short names" not in capsys.readouterr().err


def test_lint_reports_istios_warnings_as_mb005_with_the_field(
    article_with: Callable[[str, dict[str, Any]], str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    tls = {"mode": "MUTUAL", "credentialName": "mtls-credential"}
    warned = article_with("warned.yaml", {"tls": tls | {"httpsRedirect": True}})
    assert main(["lint", "--json", "--mesh", f"eks={warned}"]) in (0, 1)
    (f,) = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["code"] == "MB005"]
    assert f["severity"] == "warning" and f["objects"][0]["field"] == "spec.servers[0].tls.httpsRedirect"
    assert f["message"] == "tls.httpsRedirect should only be used with http servers"
    quiet = article_with("quiet.yaml", {"tls": tls})  # the negative twin: no redirect, no warning
    assert main(["lint", "--json", "--mesh", f"eks={quiet}"]) in (0, 1)
    assert "MB005" not in {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
