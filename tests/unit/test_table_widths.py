"""Tables fit a normal terminal (100 columns) on long names and long state paths: a three-mesh spec, the store
under pytest's (long) temporary folder, the working folder elsewhere."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.envoy.proxyconfig import Kind, format_proxy_config
from meshbridge.tabwriter import TERMINAL_WIDTH
from tests.builders import issued_store, seed_bridge, two_exports_three_meshes


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


@pytest.fixture
def far_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The three-mesh spec in ``tmp_path/project``; the working folder is ``tmp_path/elsewhere``."""
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    spec = tmp_path / "project" / "bridge.yaml"
    spec.write_text(yaml.safe_dump(two_exports_three_meshes()))
    monkeypatch.chdir(tmp_path / "elsewhere")
    return spec


def test_certs_issue_outside_the_working_folder_names_files_in_the_store(
    far_spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "issue", "-f", str(far_spec)]) == 0
    text = capsys.readouterr().out
    assert _widest(text) <= TERMINAL_WIDTH, text
    store = far_spec.parent / ".meshbridge" / "pki"
    rows = [line.split() for line in text.splitlines()[1:] if line.startswith(("aks", "eks", "gke"))]
    assert ["aks", "client", "issued", "missing", "aks/client.crt"] in rows
    assert text.splitlines()[-1] == f"FILE is in {store}" and (store / "aks" / "client.crt").is_file()


def test_certs_issue_under_the_working_folder_names_files_from_it(
    far_spec: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(far_spec.parent)
    assert main(["certs", "issue", "-f", str(far_spec)]) == 0
    text = capsys.readouterr().out
    assert "aks    client        issued   missing   .meshbridge/pki/aks/client.crt" in text
    assert "FILE is in" not in text and str(far_spec.parent) not in text  # the negative twin: nothing to say


def test_certs_show_check_rotate_revoke_fit_with_a_long_state_path(
    far_spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = ["-f", str(far_spec)]
    assert main(["certs", "issue", *f]) == 0
    for args in (
        ["certs", "show", *f],
        ["certs", "check", *f],
        ["certs", "rotate", "--leaf", "--mesh", "eks", *f],
        ["certs", "revoke", "--mesh", "gke", "--current", "client", *f],
    ):
        capsys.readouterr()
        assert main(args) == 0
        table = capsys.readouterr().out.split("\nrecorded in the store")[0].split("\nnote:")[0]
        assert _widest(table) <= TERMINAL_WIDTH, (args, table)


# -- proxy-config: a three-mesh bridge's long names ------------------------------------------------------------

GATEWAY = "https.443.https.meshbridge-orders-exporter-gateway.istio-ingress-orders-team"
VIRTUAL_SERVICE = "meshbridge-orders-through-the-egress-gateway-to-the-exporter.istio-egress-orders-team"
FQDN = "orders-payments-and-invoices.external.example.internal"
RULE = "meshbridge-orders-payments-and-invoices-mutual-tls.istio-egress-orders-team"
SECRET = "kubernetes://meshbridge-orders-payments-and-invoices-credential-cacert"


HEADERS: dict[Kind, list[str]] = {
    "routes": ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"],
    "clusters": ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"],
    "secret": ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"],
}


def _dump(config: str, **parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"configs": [{"@type": f"type.googleapis.com/envoy.admin.v3.{config}", **parts}]}


def _routes(gateway: str, host: str, virtual_service: str) -> dict[str, Any]:
    config = f"/apis/networking.istio.io/v1/namespaces/{virtual_service.split('.')[1]}/virtual-service/"
    route = {"match": {"prefix": "/"}, "metadata": {"filter_metadata": {"istio": {"config": config + "x"}}}}
    route["metadata"]["filter_metadata"]["istio"]["config"] = config + virtual_service.split(".")[0]
    vhost = {"name": f"{host}:443", "domains": [host], "routes": [route]}
    return _dump(
        "RoutesConfigDump", dynamic_route_configs=[{"route_config": {"name": gateway, "virtual_hosts": [vhost]}}]
    )


def _clusters(host: str, rule: str) -> dict[str, Any]:
    ns, name = rule.split(".")[1], rule.split(".")[0]
    config = f"/apis/networking.istio.io/v1/namespaces/{ns}/destination-rule/{name}"
    cluster = {
        "name": f"outbound|443|orders-v2-canary|{host}",
        "type": "STRICT_DNS",
        "metadata": {"filter_metadata": {"istio": {"config": config}}},
    }
    return _dump("ClustersConfigDump", dynamic_active_clusters=[{"cluster": cluster}])


def _secrets(tmp: Path, name: str) -> dict[str, Any]:
    pem = issued_store(tmp, seed_bridge()).load("eks", "server")
    assert pem is not None
    chain = {"certificate_chain": {"inline_bytes": base64.b64encode(pem.cert_pem).decode()}}
    return _dump("SecretsConfigDump", dynamic_active_secrets=[{"name": name, "secret": {"tls_certificate": chain}}])


def _columns(table: str, header: list[str]) -> list[str]:
    """Each column's text, its lines joined (a table of one row: the wrapped pieces of its cells, in order)."""
    first, *lines = table.splitlines()
    starts = [first.index(h) for h in header] + [None]
    return ["".join(line[a:b].strip() for line in lines) for a, b in itertools.pairwise(starts)]


def test_proxy_config_tables_of_long_names_fit_100_columns_and_wide_keeps_istioctls_layout(tmp_path: Path) -> None:
    dumps: dict[Kind, tuple[dict[str, Any], dict[str, str]]] = {
        "routes": (
            _routes(GATEWAY, FQDN, VIRTUAL_SERVICE),
            {"NAME": GATEWAY, "DOMAINS": FQDN, "VIRTUAL SERVICE": VIRTUAL_SERVICE},
        ),
        "clusters": (
            _clusters(FQDN, RULE),
            {"SERVICE FQDN": FQDN, "SUBSET": "orders-v2-canary", "DESTINATION RULE": RULE},
        ),
        "secret": (_secrets(tmp_path, SECRET), {"RESOURCE NAME": SECRET, "STATUS": "ACTIVE"}),
    }
    for kind, (dump, cells) in dumps.items():
        short = format_proxy_config(kind, dump)
        wide = format_proxy_config(kind, dump, wide=True)
        assert _widest(short) <= TERMINAL_WIDTH < _widest(wide), (kind, short)
        header = [h for h in HEADERS[kind] if h in short.splitlines()[0]]
        columns = dict(zip(header, _columns(short, header), strict=True))
        for column, name in cells.items():  # every name is there, wrapped, not cut
            assert columns[column] == name and name in wide, (kind, column, short)
    secret = format_proxy_config("secret", dumps["secret"][0])
    assert "NOT AFTER" in secret and "NOT BEFORE" not in secret  # VALID CERT says whether now is in the window
    assert "NOT BEFORE" in format_proxy_config("secret", dumps["secret"][0], wide=True)


def test_proxy_config_tables_of_short_names_keep_istioctls_layout() -> None:
    dump = _routes("http.8080", "lambda.external", "vs-lambda.istio-egress")
    short = format_proxy_config("routes", dump)
    assert short == format_proxy_config("routes", dump, wide=True)  # the negative twin: it fits, nothing wraps
    assert short.splitlines()[1].split() == [
        "http.8080",
        "lambda.external:443",
        "lambda.external",
        "/*",
        "vs-lambda.istio-egress",
    ]


def test_local_proxy_config_help_says_how_to_list_this_bridges_proxies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "proxy-config", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "'meshbridge local status' lists them" in text and "-o wide" in text
    assert "eks/istio-ingressgateway" not in text  # the seed's names are not this bridge's
    assert main(["proxy-config", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "its ingressGateway's or egressGateway's name" in text and "eks/istio-ingressgateway" not in text
