"""Users' own manifests as every command reads them (``lint --mesh``, ``local up --manifests``, ``translate
--manifests``): variables expanded as the article's shell heredocs are, and what Istio removed named as removed,
with the release and the replacement. Each rule has its failing case and its passing twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshbridge.cli.main import main
from meshbridge.errors import IstioConfigError
from meshbridge.istio.config import MeshSettings
from meshbridge.istio.parse import build_config, expand_env, load_documents, parse_yaml_text, referenced_env
from meshbridge.istio.removed import REMOVALS, RemovedWarning
from meshbridge.lint import from_manifests, lint
from tests.builders import ARTICLE

ARTICLE_GKE = (ARTICLE / "gke.yaml").read_text()
BRACED = "${HOST_GW_CLUSTER2}"
BARE = "$HOST_GW_CLUSTER2"


def one(text: str, env: dict[str, str]) -> str:
    return expand_env(text, env, "eks.yaml")


def refusal(text: str, env: dict[str, str]) -> str:
    with pytest.raises(IstioConfigError) as e:
        expand_env(text, env, "eks.yaml")
    return str(e.value)


# -- variables: what a shell heredoc does ------------------------------------------------------------------


def test_bare_and_braced_variables_both_expand() -> None:
    env = {"HOST": "ingress.eks.example.com"}
    assert one("address: $HOST\n", env) == one("address: ${HOST}\n", env) == "address: ingress.eks.example.com\n"
    assert one("host: $HOST.\n", env) == "host: ingress.eks.example.com.\n"  # the name ends where a shell's does
    assert one("host: ${HOST}x\n", env) == "host: ingress.eks.example.comx\n"


def test_an_escaped_dollar_stays_literal_and_its_twin_expands() -> None:
    env = {"HOST": "h"}
    assert one("a: \\$HOST\n", env) == "a: $HOST\n"  # as the heredoc prints it: the backslash goes
    assert one("a: \\${HOST}\n", env) == "a: ${HOST}\n"
    assert one("a: \\$UNSET\n", {}) == "a: $UNSET\n"  # escaped: not a reference, so not an error
    assert one("a: $HOST\n", env) == "a: h\n"


def test_an_unset_variable_names_the_variable_the_file_and_the_line() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: $LB_HOST\n  b: ${LB_HOST}\n  c: $OTHER\n"
    message = refusal(text, {})
    assert message.startswith("eks.yaml:4: $LB_HOST is not set (also unset: line 5 ${LB_HOST}, line 6 $OTHER)")
    assert "Fix: export LB_HOST=<value> and export OTHER=<value>" in message
    assert one(text, {"LB_HOST": "x", "OTHER": "y"}).endswith("  a: x\n  b: x\n  c: y\n")  # the twin: set


def test_a_variable_set_empty_expands_to_nothing() -> None:
    assert one("a: x$EMPTY\n", {"EMPTY": ""}) == "a: x\n"


def test_shell_forms_meshbridge_does_not_evaluate_are_refused_not_kept() -> None:
    for form in ("${HOST:-ingress}", "${#HOST}", "${HOST/a/b}", "${HOST"):
        message = refusal(f"a: {form}\n", {"HOST": "h"})
        assert message.startswith(f"eks.yaml:1: {form}: meshbridge expands only $VAR and ${{VAR}}")
        assert "Fix: export HOST=<value> and write ${HOST}" in message and f"or write \\{form}" in message
        assert one(f"a: \\{form}\n", {"HOST": "h"}) == f"a: {form}\n"  # the twin: escaped, kept literally


def test_dollars_that_are_no_variable_are_kept() -> None:
    text = 'regex: "^/v[0-9]+$"\nargs: ["--pod=$(POD_NAME)"]\nreplacement: $1:$2\nprice: ${1}\nend: $\n'
    assert one(text, {}) == text  # regex anchors, Kubernetes' $(VAR), positional parameters


def test_full_line_comments_are_left_alone_but_values_are_not() -> None:
    comment = "# export LB_HOST=... before applying; $LB_HOST is the exporter's load balancer\na: 1\n"
    assert one(comment, {}) == comment
    assert "$LB_HOST is not set" in refusal("a: 1  # trailing comments are the line's: $LB_HOST\n", {})


def test_every_reader_expands_the_same_way(tmp_path: Path) -> None:
    """``load_documents`` is the one reader: ``$VAR`` expands in every file of a folder, with or without env."""
    folder = tmp_path / "eks"
    folder.mkdir()
    (folder / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {h: $LB}\n")
    (folder / "b.yml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {h: ${LB}}\n")
    docs = load_documents([folder], {"LB": "lb.example.com"})
    assert [d["data"]["h"] for _, d in docs] == ["lb.example.com", "lb.example.com"]
    with pytest.raises(IstioConfigError, match=r"a\.yaml:4: \$LB is not set"):
        load_documents([folder], {})


def test_the_process_environment_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "eks.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {h: $LB}\n")
    monkeypatch.setenv("LB", "from-the-shell")
    ((_, d),) = load_documents([f])
    assert d["data"]["h"] == "from-the-shell"
    monkeypatch.delenv("LB")
    with pytest.raises(IstioConfigError, match=r"\$LB is not set"):
        load_documents([f])


def test_a_reload_expands_bare_variables_as_up_did(tmp_path: Path) -> None:
    """``local up`` records the variables its manifests use; ``$VAR`` counts as ``${VAR}`` does."""
    f = tmp_path / "gke.yaml"
    f.write_text("# $IN_A_COMMENT\na: $BARE\nb: ${BRACED}\nc: \\$ESCAPED\n")
    env = {"BARE": "1", "BRACED": "2", "ESCAPED": "3", "IN_A_COMMENT": "4", "UNUSED": "5"}
    assert referenced_env([f], env) == {"BARE": "1", "BRACED": "2"}


@pytest.mark.parametrize("spelling", [BRACED, BARE])
def test_lint_reads_the_article_with_either_spelling(
    spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The endpoint address is the exporter's load balancer once expanded (no MB305); a wrong value is MB305."""
    f = tmp_path / "gke.yaml"
    f.write_text(ARTICLE_GKE.replace(BRACED, spelling))
    args = ["lint", "-f", str(ARTICLE / "bridge.yaml"), "--mesh", f"eks={ARTICLE / 'eks.yaml'}", "--mesh", f"gke={f}"]
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    assert main(args) == 0
    assert "0 errors" in capsys.readouterr().err
    monkeypatch.setenv("HOST_GW_CLUSTER2", "elsewhere.example.com")  # the twin: expanded to the wrong host
    assert main(args) == 1
    assert "MB305" in capsys.readouterr().out


def _commands(tmp_path: Path, manifest: Path) -> dict[str, list[str]]:
    return {
        "lint": ["lint", "--mesh", f"gke={manifest}"],
        "local up": ["local", "up", "--manifests", f"gke={manifest}"],
        "translate": ["translate", "--proxy", "gke/sleep", "--manifests", f"gke={manifest}"],
    }


@pytest.mark.parametrize("command", ["lint", "local up", "translate"])
@pytest.mark.parametrize("spelling", [BRACED, BARE])
def test_an_unset_variable_stops_every_command_with_the_same_message(
    command: str, spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOST_GW_CLUSTER2", raising=False)
    assert main(["init"]) == 0
    manifest = tmp_path / "gke.yaml"
    manifest.write_text(ARTICLE_GKE.replace(BRACED, spelling))
    line = next(i for i, text in enumerate(ARTICLE_GKE.splitlines(), 1) if BRACED in text and "#" not in text)
    capsys.readouterr()
    assert main(_commands(tmp_path, manifest)[command]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{manifest}:{line}: {spelling} is not set" in err
    assert "Fix: export HOST_GW_CLUSTER2=<value>" in err
    assert not (tmp_path / ".meshbridge" / "pki").exists()  # refused before anything was done


# -- what Istio removed -------------------------------------------------------------------------------------


def _doc(api: str, kind: str, spec: dict[str, Any], name: str = "x", ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


REMOVED_KINDS = [
    ("authentication.istio.io/v1alpha1", "MeshPolicy", "mesh-policy", "1.6", "PeerAuthentication"),
    ("authentication.istio.io/v1alpha1", "Policy", "policy", "1.6", "RequestAuthentication"),
    ("rbac.istio.io/v1alpha1", "ClusterRbacConfig", "rbac", "1.6", "AuthorizationPolicy"),
    ("rbac.istio.io/v1alpha1", "RbacConfig", "rbac", "1.6", "AuthorizationPolicy"),
    ("rbac.istio.io/v1alpha1", "ServiceRole", "rbac", "1.6", "AuthorizationPolicy"),
    ("rbac.istio.io/v1alpha1", "ServiceRoleBinding", "rbac", "1.6", "AuthorizationPolicy"),
    ("config.istio.io/v1alpha2", "RouteRule", "routing-v1alpha2", "1.0", "VirtualService"),
    ("config.istio.io/v1alpha2", "handler", "mixer", "1.8", "Telemetry API"),
    ("config.istio.io/v1alpha2", "instance", "mixer", "1.8", "Telemetry API"),
    ("config.istio.io/v1alpha2", "rule", "mixer", "1.8", "WasmPlugin"),
    ("config.istio.io/v1alpha2", "attributemanifest", "mixer", "1.8", "Telemetry API"),
    ("config.istio.io/v1alpha2", "adapter", "mixer", "1.8", "Telemetry API"),
    ("config.istio.io/v1alpha2", "template", "mixer", "1.8", "Telemetry API"),
    ("policy.istio.io/v1beta1", "handler", "mixer", "1.8", "Telemetry API"),
]


@pytest.mark.parametrize(("api", "kind", "key", "release", "replacement"), REMOVED_KINDS)
def test_a_removed_kind_is_named_removed_with_its_release_and_replacement(
    api: str, kind: str, key: str, release: str, replacement: str
) -> None:
    cfg = build_config([("old.yaml#0", _doc(api, kind, {}))])
    (w,) = cfg.warnings
    assert isinstance(w, RemovedWarning) and w.removal is REMOVALS[key]
    text = str(w)
    assert text.startswith(f"old.yaml#0: {kind} default/x: {api} {kind}: ")
    assert f"was removed in Istio {release}" in text and "not modelled" not in text
    assert f"Fix: {REMOVALS[key].fix}" in text and replacement in REMOVALS[key].fix
    assert REMOVALS[key].source.startswith("https://istio.io/")


@pytest.mark.parametrize(
    ("api", "kind"),
    [
        ("networking.istio.io/v1alpha3", "Sidecar"),  # still served: not modelled, never removed
        ("networking.istio.io/v1", "WorkloadEntry"),
        ("security.istio.io/v1", "PeerAuthentication"),  # the replacements
        ("telemetry.istio.io/v1", "Telemetry"),
        ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ],
)
def test_a_current_kind_is_not_modelled_but_never_removed(api: str, kind: str) -> None:
    (w,) = build_config([("new.yaml#0", _doc(api, kind, {}))]).warnings
    assert not isinstance(w, RemovedWarning)
    assert w.message == f"{api} {kind} is not modelled; ignored"


def test_a_mesh_before_the_removal_still_has_it() -> None:
    doc = _doc("authentication.istio.io/v1alpha1", "MeshPolicy", {})
    (old,) = build_config([("a#0", doc)], MeshSettings(istio_version="1.5.10")).warnings
    assert not isinstance(old, RemovedWarning)
    (new,) = build_config([("a#0", doc)], MeshSettings(istio_version="1.6.0")).warnings
    assert isinstance(new, RemovedWarning)


def _envoy_filter(apply_to: str, value: dict[str, Any], match: dict[str, Any] | None = None) -> dict[str, Any]:
    patch: dict[str, Any] = {"applyTo": apply_to, "patch": {"operation": "INSERT_BEFORE", "value": value}}
    if match is not None:
        patch["match"] = match
    return _doc("networking.istio.io/v1alpha3", "EnvoyFilter", {"configPatches": [patch]}, "lua", "istio-system")


def _removed(doc: dict[str, Any]) -> list[RemovedWarning]:
    return [w for w in build_config([("f#0", doc)]).warnings if isinstance(w, RemovedWarning)]


LUA = {"inlineCode": "function envoy_on_request(h) end"}
LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"


def test_an_envoy_filter_config_struct_is_named_removed_and_its_twin_typed_config_is_not() -> None:
    (w,) = _removed(_envoy_filter("HTTP_FILTER", {"name": "envoy.lua", "config": LUA}))
    assert w.field == "spec.configPatches[0].patch.value.config" and w.removal is REMOVALS["filter-config-struct"]
    assert "removed in Istio 1.7" in w.message and 'typed_config with an "@type"' in w.fix
    assert not _removed(_envoy_filter("HTTP_FILTER", {"name": "envoy.lua", "typed_config": {"@type": LUA_TYPE, **LUA}}))


def test_config_structs_are_found_inside_listeners_and_clusters_but_not_inside_typed_messages() -> None:
    listener = {"filter_chains": [{"filters": [{"name": "envoy.tcp_proxy", "config": {"cluster": "c"}}]}]}
    (w,) = _removed(_envoy_filter("LISTENER", listener))
    assert w.field == "spec.configPatches[0].patch.value.filter_chains[0].filters[0].config"
    cluster = {"transport_socket": {"name": "tls", "config": {"sni": "x"}}}
    (w,) = _removed(_envoy_filter("CLUSTER", cluster))
    assert w.field == "spec.configPatches[0].patch.value.transport_socket.config"
    wasm = {  # Wasm's own message has a field called config: current, not the old Struct
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {"name": "x", "vm_config": {"runtime": "envoy.wasm.runtime.v8"}},
        },
    }
    assert not _removed(_envoy_filter("HTTP_FILTER", wasm))


def test_the_mixer_filter_is_named_removed_by_name_match_and_type() -> None:
    inserted = _removed(_envoy_filter("HTTP_FILTER", {"name": "mixer", "typed_config": {"@type": LUA_TYPE}}))
    assert [w.field for w in inserted] == ["spec.configPatches[0].patch.value.name"]
    by_type = {
        "name": "x",
        "typed_config": {"@type": "type.googleapis.com/istio.mixer.v1.config.client.HttpClientConfig"},
    }
    assert [w.field for w in _removed(_envoy_filter("HTTP_FILTER", by_type))] == [
        "spec.configPatches[0].patch.value.typed_config.@type"
    ]
    for name, removed in (("envoy.filters.http.mixer", True), ("envoy.filters.http.router", False)):
        match = {"listener": {"filterChain": {"filter": {"name": "hcm", "subFilter": {"name": name}}}}}
        found = _removed(
            _envoy_filter("HTTP_FILTER", {"name": "envoy.lua", "typed_config": {"@type": LUA_TYPE}}, match)
        )
        assert [w.removal.key for w in found] == (["mixer-filter"] if removed else [])


def test_citadel_cert_files_are_named_removed_and_other_files_are_not() -> None:
    def gateway(path: str) -> dict[str, Any]:
        tls = {"mode": "SIMPLE", "serverCertificate": path, "privateKey": path.replace("cert-chain", "key")}
        server = {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.example"], "tls": tls}
        return _doc("networking.istio.io/v1", "Gateway", {"selector": {"istio": "ingressgateway"}, "servers": [server]})

    found = _removed(gateway("/etc/certs/cert-chain.pem"))
    assert [w.field for w in found] == ["spec.servers[0].tls.serverCertificate", "spec.servers[0].tls.privateKey"]
    assert "removed in Istio 1.5" in found[0].message and "credentialName" in found[0].fix
    assert not _removed(gateway("/etc/istio/ingressgateway-certs/cert-chain.pem"))

    def rule(path: str) -> dict[str, Any]:
        tls = {"mode": "MUTUAL", "clientCertificate": path, "privateKey": path, "caCertificates": path}
        policy = {"portLevelSettings": [{"port": {"number": 443}, "tls": tls}]}
        return _doc(
            "networking.istio.io/v1",
            "DestinationRule",
            {"host": "a.example", "subsets": [{"name": "v1", "trafficPolicy": policy}]},
        )

    found = _removed(rule("/etc/certs/cert-chain.pem"))
    assert [w.field for w in found] == [
        f"spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.{key}"
        for key in ("clientCertificate", "privateKey", "caCertificates")
    ]
    assert "ISTIO_MUTUAL" in found[0].fix
    assert not _removed(rule("/etc/ssl/client.pem"))


def test_lint_and_the_parser_say_the_same_thing() -> None:
    """One table: lint's MB003 is the parser's warning, problem and fix apart."""
    doc = _doc("rbac.istio.io/v1alpha1", "ServiceRole", {"rules": []}, "viewer", "app")
    (w,) = build_config([("eks.yaml#0", doc)]).warnings
    assert isinstance(w, RemovedWarning)
    report = lint(from_manifests({"eks": [("eks.yaml#0", doc)]}))
    (f,) = [f for f in report.findings if f.code == "MB003"]
    assert f.severity == "error" and report.exit_code == 1
    assert f.message == w.problem and f.fix.startswith(w.fix) and REMOVALS["rbac"].source in f.fix
    assert f.objects[0].display == "ServiceRole app/viewer" and f.objects[0].source == "eks.yaml#0"
    assert "MB002" not in report.codes()  # named as removed, not as 'not modelled'


def test_translate_prints_the_removal_for_the_proxies_of_that_mesh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    assert main(["init"]) == 0
    assert main(["certs", "issue"]) == 0
    old = "---\napiVersion: authentication.istio.io/v1alpha1\nkind: MeshPolicy\nmetadata: {name: default}\n"
    (tmp_path / "gke.yaml").write_text(ARTICLE_GKE + old)
    (tmp_path / "twin.yaml").write_text(ARTICLE_GKE)
    capsys.readouterr()
    assert main(["translate", "--proxy", "gke/sleep", "--manifests", "gke=gke.yaml"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "MeshPolicy default/default: authentication.istio.io/v1alpha1 MeshPolicy: the alpha authentication" in err
    assert "was removed in Istio 1.6" in err and "Fix: a PeerAuthentication (security.istio.io/v1)" in err
    assert main(["translate", "--proxy", "gke/sleep", "--manifests", "gke=twin.yaml"]) == 0
    assert "removed in Istio" not in capsys.readouterr().err


def test_text_parsed_without_a_file_is_not_expanded_twice() -> None:
    """``parse_yaml_text`` is the YAML step alone; expansion happened once, in ``load_documents``."""
    ((_, d),) = parse_yaml_text("a: $HOST\n", "x.yaml")
    assert d == {"a": "$HOST"}
