"""The CLI in-process (``main([...])``): init → certs → render, exit codes, help on every command."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import app, main
from meshbridge.pki import PkiStore
from meshbridge.pki.x509 import issue_leaf, utcnow


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("meshbridge ")


def _commands(typer_app: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    from typer.main import get_command

    cmd = get_command(typer_app)  # type: ignore[arg-type]
    out = []

    def walk(c: object, path: tuple[str, ...]) -> None:
        out.append(path)
        for name, sub in getattr(c, "commands", {}).items():
            walk(sub, (*path, name))

    walk(cmd, prefix)
    return out


def test_every_command_has_help_that_explains_it(capsys: pytest.CaptureFixture[str]) -> None:
    for path in _commands(app):
        assert main([*path, "--help"]) == 0, path
        text = capsys.readouterr().out
        assert "Usage:" in text and len(text.split()) > 12, path


def test_init_refuses_to_overwrite(workdir: Path) -> None:
    assert main(["init"]) == 2
    assert main(["init", "--force"]) == 0


def test_certs_issue_show_check(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    assert main(["certs", "show"]) == 0
    shown = capsys.readouterr().out
    assert "DNS:lambda.external" in shown and "serverAuth" in shown and "PRIVATE KEY" not in shown
    assert main(["certs", "check"]) == 0


def test_certs_show_fits_100_columns_and_wide_adds_subject_issuer_and_serial(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["certs", "show"]) == 0
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 100
    assert table.split("\n", 1)[0].split() == ["NAME", "EKU", "SANS", "NOT", "AFTER", "DAYS", "LEFT"]
    assert "istio-egressgateway-service-account" in table  # the SPIFFE ID wraps, it is not cut
    assert main(["certs", "show", "--wide"]) == 0
    wide = capsys.readouterr().out
    serial = PkiStore(workdir / ".meshbridge").load("gke", "client").serial  # type: ignore[union-attr]
    assert f"{serial:x}" in wide and "SUBJECT" in wide and "ISSUER" in wide
    assert max(len(line) for line in wide.splitlines()) > 100  # the negative twin: --wide is one line each
    assert f"{serial:x}" not in table


def test_certs_show_json_lists_every_certificate_and_no_key(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["certs", "show", "--json"]) == 0
    text = capsys.readouterr().out
    assert "PRIVATE KEY" not in text
    doc = json.loads(text)
    by = {c["name"]: c for c in doc["certificates"]}
    assert list(by) == ["eks/ca", "eks/server", "gke/ca", "gke/client"]
    client = by["gke/client"]
    assert client["ekus"] == ["clientAuth"] and client["is_ca"] is False and client["imported"] is False
    assert client["sans"] == ["URI:spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"]
    assert int(client["serial"], 16) == PkiStore(workdir / ".meshbridge").load("gke", "client").serial  # type: ignore[union-attr]
    assert client["issuer"] == by["gke/ca"]["subject"] and client["key_type"] == "ECDSA_P256"
    assert client["file"].endswith("pki/gke/client.crt") and 0 < client["days_left"] <= 90


def test_certs_check_json_and_a_table_that_fits_100_columns(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["certs", "check", "--json"]) == 0  # the twin: all valid
    assert json.loads(capsys.readouterr().out) == {
        "passed": True,
        "findings": [],
        "summary": {"error": 0, "warning": 0},
    }
    (workdir / ".meshbridge" / "pki" / "eks" / "server.key").unlink()
    assert main(["certs", "check", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] is False and doc["summary"] == {"error": 1, "warning": 0}
    [finding] = doc["findings"]
    assert finding["severity"] == "error" and finding["certificate"] == "eks/server"
    assert "server.key is missing" in finding["problem"] and "'meshbridge certs issue'" in finding["fix"]
    assert main(["certs", "check"]) == 1
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 100
    assert "\n                         fix: run 'meshbridge certs issue'" in table
    assert main(["certs", "check", "--wide"]) == 1
    wide = capsys.readouterr().out.splitlines()
    assert wide[0].split() == ["SEVERITY", "CERTIFICATE", "PROBLEM", "FIX"] and len(wide) == 2  # one line each


def test_every_certs_command_that_prints_a_table_prints_json_instead(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from typer.main import get_command

    from meshbridge.cli.certs_cmd import app as certs_app

    group = get_command(certs_app)
    tables = {"issue", "push", "show", "check", "rotate", "revoke"}
    assert tables | {"import"} == set(group.commands)  # type: ignore[attr-defined]  # a new command: decide
    for name in tables:
        assert "--json" in {o for p in group.commands[name].params for o in p.opts}, name  # type: ignore[attr-defined]
    capsys.readouterr()
    assert main(["certs", "issue", "--json"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert [(c["mesh"], c["slot"], c["action"]) for c in issued["certificates"]] == [
        ("eks", "ca", "issued"),
        ("eks", "server", "issued"),
        ("gke", "ca", "issued"),
        ("gke", "client", "issued"),
    ]
    assert issued["warnings"] == [] and issued["pushed"] == []
    assert main(["certs", "rotate", "--leaf", "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["dry_run"] is True and [s["mesh"] for s in planned["steps"]] == ["eks", "gke"]
    assert main(["certs", "rotate", "--leaf", "--json"]) == 0
    rotated = capsys.readouterr()
    done = json.loads(rotated.out)
    assert [r["ok"] for r in done["results"]] == [None, None] and "nothing is running here" in rotated.err
    assert main(["certs", "revoke", "--mesh", "gke", "--current", "client", "--json"]) == 0
    revoked = capsys.readouterr()
    doc = json.loads(revoked.out)
    assert doc["holder"] == "client" and [c["action"] for c in doc["cas"]] == ["revoked"]
    assert "recorded in the store only" in revoked.err  # the notes, on stderr
    # the negative twin: without --json, the same command prints its table
    assert main(["certs", "issue"]) == 0
    assert capsys.readouterr().out.split()[:5] == ["MESH", "CERTIFICATE", "ACTION", "WHY", "FILE"]


def test_certs_check_fails_on_an_expired_leaf(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    store = PkiStore(workdir / ".meshbridge")
    ca = store.load("eks", "ca")
    assert ca is not None
    old = issue_leaf(
        ca,
        "server",
        common_name="x",
        dns_names=["lambda.external"],
        not_before=utcnow() - dt.timedelta(days=10),
        days=1,
    )
    store.save("eks", "server", old)
    capsys.readouterr()
    assert main(["certs", "check"]) == 1
    assert "eks/server" in capsys.readouterr().out


def test_certs_import_validates_before_writing(workdir: Path, tmp_path: Path) -> None:
    assert main(["certs", "issue"]) == 0
    store = PkiStore(workdir / ".meshbridge")
    ca = store.load("gke", "ca")
    assert ca is not None
    wrong = issue_leaf(ca, "client", common_name="x", uris=["spiffe://gke.example.com/ns/istio-egress/sa/wrong"])
    crt, key = wrong.write_to(tmp_path / "byo", "client")
    before = store.path("gke", "client").read_bytes()
    args = ["certs", "import", "--mesh", "gke", "--slot", "client", "--cert", str(crt), "--key", str(key)]
    assert main(args) == 2
    assert store.path("gke", "client").read_bytes() == before
    right = issue_leaf(
        ca,
        "client",
        common_name="x",
        uris=["spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"],
    )
    crt, key = right.write_to(tmp_path / "byo", "client")
    assert main([*args[:-4], "--cert", str(crt), "--key", str(key)]) == 0
    assert store.path("gke", "client").read_bytes() == right.cert_pem


def test_render_needs_a_destination(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--no-secrets"]) == 2
    assert "--mesh NAME prints one mesh to stdout" in capsys.readouterr().err


def test_render_without_certs_says_to_issue_them(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--mesh", "eks"]) == 2
    assert "meshbridge certs issue" in capsys.readouterr().err


def test_render_mesh_to_stdout_is_kubectl_input(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["render", "--mesh", "gke"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert {d["kind"] for d in docs} == {
        "Namespace",
        "Secret",
        "ServiceEntry",
        "DestinationRule",
        "Gateway",
        "VirtualService",
    }


def test_render_output_dir(workdir: Path) -> None:
    assert main(["render", "--no-secrets", "-o", "out"]) == 0
    assert (workdir / "out" / "eks" / "kustomization.yaml").exists()
    assert (workdir / "out" / "gke" / "kustomization.yaml").exists()


def test_render_output_dir_names_the_users_files_it_leaves(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--no-secrets", "-o", "out"]) == 0
    mine = workdir / "out" / "eks" / "10-configmap-mine.yaml"
    mine.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n")
    capsys.readouterr()
    assert main(["render", "--no-secrets", "-o", "out"]) == 0
    assert mine.exists() and "eks: 7 documents → out/eks; left 1 file(s) it did not write: 10-configmap-mine.yaml" in (
        capsys.readouterr().err
    )
    # negative twin: a render that writes fewer documents removes its own, and only those
    assert main(["render", "--no-secrets", "-o", "out", "--mesh", "eks", "--install", "--format", "istioctl"]) == 0
    err = capsys.readouterr().err
    assert "stale file(s) it had written" in err and mine.exists()
    assert not (workdir / "out" / "eks" / "05-virtualservice-istio-ingress-vs-lambda.yaml").exists()


def test_render_unknown_mesh(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--mesh", "aks", "--no-secrets"]) == 2
    assert "meshes: eks, gke" in capsys.readouterr().err


def test_spec_errors_exit_2_with_the_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (workdir / "bridge.yaml").read_text().replace("port: 80 ", "port: eighty ")
    (workdir / "bridge.yaml").write_text(text)
    assert main(["render", "--mesh", "eks", "--no-secrets"]) == 2
    assert "bridge.yaml:" in capsys.readouterr().err
    assert os.path.exists(workdir / "bridge.yaml")


@pytest.mark.parametrize(
    ("name", "kind"),
    [("r", "routes"), ("route", "routes"), ("Cluster", "clusters"), ("l", "listeners"), ("secrets", "secret")],
)
def test_proxy_config_takes_istioctls_names_for_a_table(name: str, kind: str) -> None:
    from meshbridge.envoy.proxyconfig import proxy_config_kind

    assert proxy_config_kind(name) == kind


@pytest.mark.parametrize("command", ["local", "proxy-config"])
def test_proxy_config_refuses_an_unknown_table_before_touching_a_proxy(
    workdir: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["local", "proxy-config"] if command == "local" else ["proxy-config"]
    assert main([*args, "endpoints", "eks/istio-ingressgateway"]) == 2
    message = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "'endpoints' is not a proxy-config kind; use routes, clusters, listeners or secret" in message
    assert "Value error" not in message
    assert main([*args, "routes", "eks/istio-ingressgateway", "-o", "yamlx"]) == 2
    message = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "'yamlx' is not an output format; use short, wide or json" in message and "Value error" not in message


def _long_names(command: object) -> list[str]:
    names: list[str] = []
    for param in getattr(command, "params", []):
        names += [o for o in (*param.opts, *getattr(param, "secondary_opts", [])) if o.startswith("--")]
    return names


def _in_names_column(text: str, name: str) -> bool:
    """``name`` starts a cell of the options panel (not only mentioned in some help text), whole."""
    for line in text.splitlines():
        cell = line.strip("│ ").removeprefix("*").strip()
        if cell == name or cell.startswith((f"{name} ", f"{name},")):
            return True
    return False


def test_help_at_80_columns_shows_every_option_name_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from typer.main import get_command

    monkeypatch.setenv("COLUMNS", "80")
    root = get_command(app)
    checked = 0
    for path in _commands(app):
        command: object = root
        for part in path:
            command = command.commands[part]  # type: ignore[attr-defined]
        assert main([*path, "--help"]) == 0, path
        text = capsys.readouterr().out
        assert max(len(line) for line in text.splitlines()) <= 80, path
        for name in _long_names(command):
            assert _in_names_column(text, name), (path, name)
            checked += 1
    assert checked > 100


def test_help_at_80_columns_negative_twin_a_truncated_name_is_caught() -> None:
    text = "│    --advertised-p…    <int>   The port clients │\n│ --help, -h  <bool>  Show this. │"
    assert not _in_names_column(text, "--advertised-port")
    assert _in_names_column(text, "--help")


def test_help_shows_no_value_type_for_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "curl", "--help"]) == 0
    text = capsys.readouterr().out
    assert "<bool>" not in text and "--include, -i" in text
    assert "<str>" in text  # an option that takes a value keeps its type


def test_certs_rotate_ca_with_nowhere_to_push_runs_stage_1_only_and_says_how_to_continue(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["certs", "rotate", "--ca"]) == 0
    text = capsys.readouterr().out
    rows = [line.split()[-2:] for line in text.splitlines() if "stage 1:" in line and "ca-next" in line]
    assert rows == [["not", "run"], ["not", "run"]] and "stage 2: reissue" not in text and " ok" not in text
    flat = " ".join(text.split())
    assert "eks: stopped after stage 1, the old and the new CA stay trusted side by side" in flat
    assert "'meshbridge certs rotate --ca --mesh gke --stage 2'" in flat and "certs push --context" in flat
    assert main(["certs", "rotate", "--ca", "--mesh", "eks", "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert [s["what"] for s in planned["steps"]] == ["eks: stage 2: reissue the leaves from the new CA"]


def test_certs_rotate_ca_with_a_cluster_to_push_to_plans_every_stage(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    contexts = ["--context", "eks=kind-eks", "--context", "gke=kind-gke"]
    assert main(["certs", "rotate", "--ca", "--dry-run", "--json", *contexts]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert [s["mesh"] for s in planned["steps"]] == ["eks"] * 3 + ["gke"] * 3 and planned["held"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--leaf", "--ca"], "--leaf and --ca together. Fix: pass exactly one of"),
        ([], "nothing to rotate. Fix: pass exactly one of"),
        (["--leaf", "--stage", "2"], "--stage applies to --ca only"),
    ],
)
def test_certs_rotate_says_what_to_pass(
    workdir: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "rotate", *args]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_certs_show_gives_the_hours_of_a_leaf_under_a_day(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = workdir / "bridge.yaml"
    spec.write_text(spec.read_text().replace("leafValidityDays: 90", "leafValidityDays: 1"))
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["certs", "show"]) == 0
    leaves = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("eks/server", "gke/client"))]
    assert leaves and all(re.search(r" 0 \(2[0-4] h\)$", line.rstrip()) for line in leaves), leaves
    assert main(["certs", "show", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["certificates"]
    assert {c["days_left"] for c in listed if c["name"] in ("eks/server", "gke/client")} == {0}  # a number in JSON
    # the negative twin: a CA of years shows whole days only
    assert main(["certs", "show"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("eks/ca") and " h)" in line]
