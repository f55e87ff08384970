"""``meshbridge lint`` in-process: inputs, output forms, exit codes; and the report's table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.lint import CODES, LintReport, ObjectRef
from meshbridge.lint.codes import finding
from meshbridge.render import render_bridge
from tests.builders import ARTICLE, seed_bridge
from tests.lint_builders import openssl_self_signed


def test_lint_the_spec_with_its_certificates(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["lint"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing found: no table
    assert "0 errors, 0 warnings, 0 info (eks, gke)" in captured.err and "fixes:" not in captured.err


def test_lint_the_spec_before_certificates_are_issued(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.splitlines()[0].split() == ["SEVERITY", "CODE", "MESH", "OBJECT", "FIELD"]  # each message under its row
    assert "MB208" in out and "certs issue" not in out  # the fix is in --wide
    assert "fixes: add --wide" in captured.err and "fixes:" not in out  # stdout stays the table alone
    assert main(["lint", "--wide"]) == 0
    captured = capsys.readouterr()
    assert "run 'meshbridge certs issue'" in captured.out and "fixes:" not in captured.err


def test_the_article_with_its_openssl_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    files = {}
    for role, state in (("server", "Zamunda"), ("client", "Wakanda")):
        cert, key = openssl_self_signed(state)
        files[role] = (tmp_path / f"{role}.crt", tmp_path / f"{role}.key")
        files[role][0].write_bytes(cert)
        files[role][1].write_bytes(key)
    (server_crt, server_key), (client_crt, client_key) = files["server"], files["client"]
    spec = tmp_path / "bridge.yaml"
    spec.write_text((Path(__file__).resolve().parents[2] / "examples" / "seed" / "bridge.yaml").read_text())
    code = main(
        [
            "lint",
            "-f",
            str(spec),
            "--mesh",
            f"eks={ARTICLE / 'eks.yaml'}",
            "--mesh",
            f"gke={ARTICLE / 'gke.yaml'}",
            "--cert",
            f"gke:key={client_key}",
            "--cert",
            f"gke:cert={client_crt}",
            "--cert",
            f"gke:cacert={server_crt}",
            "--cert",
            f"eks/istio-ingress/mtls-credential:key={server_key}",
            "--cert",
            f"eks/istio-ingress/mtls-credential:cert={server_crt}",
            "--cert",
            f"eks/istio-ingress/mtls-credential:cacert={client_crt}",
            "--json",
        ]
    )
    assert code == 0  # warnings only
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["error"] == 0
    codes = {f["code"] for f in doc["findings"]}
    assert {"MB407", "MB504", "MB506"} <= codes
    first = doc["findings"][0]
    assert set(first) == {"code", "severity", "title", "objects", "message", "symptom", "fix"}
    assert set(first["objects"][0]) == {"mesh", "kind", "namespace", "name", "field", "source"}


def test_an_error_exits_1_and_ignore_can_waive_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = render_bridge(seed_bridge(), None)
    for mesh, ms in sets.items():
        docs = list(ms)
        if mesh == "gke":
            dr = next(d for d in docs if d["metadata"]["name"] == "dr-lambda-ext")
            dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["sni"] = "ingress.eks.example.com"
        (tmp_path / mesh).mkdir()
        (tmp_path / mesh / "all.yaml").write_text(yaml.safe_dump_all(docs))
    spec = tmp_path / "bridge.yaml"
    spec.write_text(yaml.safe_dump(seed_bridge().model_dump(by_alias=True, mode="json")))
    args = ["lint", "-f", str(spec), "--mesh", f"eks={tmp_path / 'eks'}", "--mesh", f"gke={tmp_path / 'gke'}"]
    assert main([*args, "--wide"]) == 1  # one finding per line, for grep
    out = capsys.readouterr().out
    assert "MB303" in out and "ingress.eks.example.com" in out
    assert main(args) == 1
    assert all(len(line) <= 100 for line in capsys.readouterr().out.splitlines())  # a terminal's width
    assert main([*args, "--ignore", "MB303"]) == 0
    assert "1 ignored" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mesh", "eks"], "expected NAME=PATH"),
        (["--mesh", "eks=/no/such/file.yaml"], "no such file or folder"),
        (["--mesh", f"gke={ARTICLE / 'gke.yaml'}"], "HOST_GW_CLUSTER2"),
        (["--mesh", f"eks={ARTICLE / 'eks.yaml'}", "--cert", "eks-cert"], "MESH[/NAMESPACE/NAME]:KEY=FILE"),
        (["--mesh", f"eks={ARTICLE / 'eks.yaml'}", "--cert", "eks:cert=/no/such.pem"], "cannot read"),
        (["--mesh", f"eks={ARTICLE / 'eks.yaml'}", "--ignore", "MB999"], "no such lint code"),
    ],
)
def test_bad_input_exits_2_with_the_fix(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HOST_GW_CLUSTER2", raising=False)
    assert main(["lint", *args]) == 2
    assert message in capsys.readouterr().err


def test_json_prints_a_document_for_an_invalid_manifest_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    manifests = tmp_path / "eks.yaml"
    manifests.write_text((ARTICLE / "eks.yaml").read_text().replace("mode: MUTUAL", "mode: MUTAL", 1))
    args = ["lint", "--mesh", f"eks={manifests}", "--json"]
    assert main(args) == 2  # still bad input
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # a document, not nothing: 'lint --json | jq -e .error' sees the error
    assert doc["findings"] == [] and doc["summary"]["error"] == 0 and doc["error"]["exit_code"] == 2
    assert "spec.servers[0].tls.mode" in doc["error"]["message"]  # lint's own form of a field path
    assert "Gateway istio-ingress/" in doc["error"]["message"] and "Fix:" in doc["error"]["message"]
    assert "spec.servers[0].tls.mode" in captured.err and "servers.0" not in captured.err  # the stderr line stays
    assert main(args[:-1]) == 2  # without --json: stdout holds nothing but the table, and there is none
    assert capsys.readouterr().out == ""
    manifests.write_text((ARTICLE / "eks.yaml").read_text())  # the twin: the mode spelled right
    assert main(args) != 2
    assert "error" not in json.loads(capsys.readouterr().out)


def test_a_mesh_folder_without_yaml_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "README.md").write_text("not a manifest\n")
    assert main(["lint", "--mesh", f"eks={folder}"]) == 2
    err = capsys.readouterr().err
    assert f"the folder {folder} holds no *.yaml or *.yml file" in err and "Fix:" in err
    (folder / "eks.yaml").write_text((ARTICLE / "eks.yaml").read_text())  # the twin: a manifest in it
    assert main(["lint", "--mesh", f"eks={folder}"]) != 2
    assert "holds no" not in capsys.readouterr().err


def test_cert_key_must_be_a_listed_secret_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, _ = openssl_self_signed("Wakanda")
    pem = tmp_path / "client.crt"
    pem.write_bytes(cert)
    mesh = ["--mesh", f"eks={ARTICLE / 'eks.yaml'}"]
    assert main(["lint", *mesh, "--cert", f"eks:foo={pem}"]) == 2
    err = capsys.readouterr().err
    assert "'foo' is not a Secret key" in err
    assert "cert, key, cacert, crl, tls.crt, tls.key, ca.crt, ca.crl" in err
    assert main(["lint", *mesh, "--cert", f"eks:cert={pem}"]) != 2  # the twin: a listed key
    assert "not a Secret key" not in capsys.readouterr().err


def test_a_long_message_reads_under_its_row_in_full_lines_and_not_in_a_narrow_column() -> None:
    note = "no bridge spec: lint assumed " + " ".join(f"gateway-{i} with labels {{app: gw-{i}}}" for i in range(8))
    obj = ObjectRef("eks", "VirtualService", "istio-ingress", "a-rather-long-virtual-service-name", "spec.http[0]")
    lines = LintReport((finding("MB001", [obj], note, "pass -f bridge.yaml"),)).table().splitlines()
    assert all(len(line) <= 100 for line in lines)
    notes = [line for line in lines if line.startswith("    ") and line[4] != " "]
    assert len(notes) <= len(note) // 80 + 2 and " ".join(n.strip() for n in notes) == note
    assert note not in LintReport((finding("MB001", [obj], note, "x"),)).table().splitlines()[1]  # twin: not inline
    wide = LintReport((finding("MB001", [obj], note, "x"),)).table(wide=True).splitlines()
    assert wide[0].split()[5:] == ["MESSAGE", "SYMPTOM", "FIX"] and note in wide[1]  # --wide unchanged


def test_report_table_and_json_forms() -> None:
    a = ObjectRef("gke", "DestinationRule", "istio-egress", "dr", "spec.trafficPolicy.tls.sni", "gke.yaml#1")
    b = ObjectRef("eks", "Gateway", "istio-ingress", "gw")
    report = LintReport(
        (
            finding("MB303", [a], "sni does not match", "set sni"),
            finding("MB506", [b], "no client SAN pins", "pin them"),
        )
    )
    assert all(len(line) <= 100 for line in report.table().splitlines())
    assert report.table().splitlines()[2] == "    sni does not match"  # the message under its row
    lines = report.table(wide=True).splitlines()  # one finding per line
    assert lines[1].split()[:6] == [
        "error",
        "MB303",
        "gke",
        "DestinationRule",
        "istio-egress/dr",
        "spec.trafficPolicy.tls.sni",
    ]
    assert lines[2].split()[5] == "-"  # no field
    wide = lines[0].split()
    assert wide[-2:] == ["SYMPTOM", "FIX"]
    doc = json.loads(report.to_json())
    assert doc["summary"] == {"error": 1, "warning": 1, "info": 0, "ignored": 0}
    assert doc["findings"][0]["title"] == CODES["MB303"].title
    assert doc["findings"][0]["symptom"] == CODES["MB303"].symptom
    assert report.exit_code == 1 and report.summary() == "1 error, 1 warning, 0 info"
    assert str(report.findings[0]).startswith("error MB303 [gke] DestinationRule istio-egress/dr spec.trafficPolicy")


def test_render_output_folders_lint_clean(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    assert main(["render", "-o", "out"]) == 0
    capsys.readouterr()
    assert main(["lint", "-f", "bridge.yaml", "--mesh", "eks=out/eks", "--mesh", "gke=out/gke"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "0 errors, 0 warnings, 0 info" in captured.err


def test_manifests_beside_a_bridge_file_not_read_say_how_to_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gke.yaml").write_text(yaml.safe_dump_all(list(render_bridge(seed_bridge(), None)["gke"])))
    monkeypatch.chdir(tmp_path)
    main(["lint", "--mesh", "gke=gke.yaml"])
    assert "add -f bridge.yaml" not in capsys.readouterr().err  # no bridge file here: nothing to say
    (tmp_path / "bridge.yaml").write_text(yaml.safe_dump(seed_bridge().model_dump(by_alias=True, mode="json")))
    main(["lint", "--mesh", "gke=gke.yaml"])
    err = " ".join(capsys.readouterr().err.split())
    assert "note: bridge.yaml is in this folder but --mesh without -f does not read it" in err
    assert "To lint them in its world: add -f bridge.yaml" in err
    main(["lint", "-f", "bridge.yaml", "--mesh", "gke=gke.yaml"])
    assert "does not read it" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("principal", "code"),
    [
        ("gke.example.com/ns/other/sa/someone", 1),
        ("gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account", 0),
    ],
)
def test_the_exporter_alone_is_linted_against_the_spec_rendered_importer(
    workdir: Path, capsys: pytest.CaptureFixture[str], principal: str, code: int
) -> None:
    assert main(["render", "--mesh", "eks", "--no-secrets", "-o", "out"]) == 0
    (policy,) = (workdir / "out" / "eks").glob("*-authorizationpolicy-*.yaml")
    text = policy.read_text()
    policy.write_text(text.replace("gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account", principal))
    capsys.readouterr()
    assert main(["lint", "-f", "bridge.yaml", "--mesh", "eks=out/eks"]) == code  # the twin: the importer admitted
    captured = capsys.readouterr()
    assert ("MB312" in captured.out) == bool(code)
    assert "(eks; gke as the spec renders it, for the cross-mesh walk)" in captured.err


def test_manifests_is_lints_mesh_option_under_local_ups_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gke.yaml").write_text(yaml.safe_dump_all(list(render_bridge(seed_bridge(), None)["gke"])))
    monkeypatch.chdir(tmp_path)
    assert main(["lint", "--manifests", "gke=gke.yaml", "--json"]) == main(["lint", "--mesh", "gke=gke.yaml", "--json"])
    first, second = capsys.readouterr().out.split("\n{", 1)
    assert json.loads(first) == json.loads("{" + second)
    assert main(["lint", "--manifest", "gke=gke.yaml"]) == 2  # a name that is neither: refused


@pytest.mark.parametrize(("port", "code"), [(8080, 1), (80, 0)])
def test_the_importer_alone_is_linted_against_the_spec_rendered_exporter(
    workdir: Path, capsys: pytest.CaptureFixture[str], port: int, code: int
) -> None:
    assert main(["render", "--mesh", "gke", "--no-secrets", "-o", "out"]) == 0
    (rule,) = [p for p in (workdir / "out" / "gke").glob("*.yaml") if "name: dr-lambda-ext" in p.read_text()]
    doc = yaml.safe_load(rule.read_text())
    doc["spec"]["trafficPolicy"]["portLevelSettings"][0]["port"]["number"] = port  # the ServiceEntry's port is 80
    rule.write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert main(["lint", "-f", "bridge.yaml", "--mesh", "gke=out/gke", "--wide"]) == code  # the twin: port 80
    captured = capsys.readouterr()
    assert ("MB306" in captured.out) == bool(code) and "MB302" not in captured.out  # the exporter side was checked
    assert "(gke; eks as the spec renders it, for the cross-mesh walk)" in captured.err
