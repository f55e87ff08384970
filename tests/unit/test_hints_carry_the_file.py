"""An error's command hints carry the ``-f FILE`` the user gave, so they run as printed from where the user is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshbridge.cli.common import out
from meshbridge.cli.main import accepts, main
from meshbridge.hints import invoked, with_options
from tests.builders import SEED


def test_a_hint_gets_the_users_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "elsewhere" / "bridge.yaml"
    spec.parent.mkdir()
    spec.write_text(SEED.read_text())
    assert main(["render", "-f", str(spec), "-o", str(tmp_path / "out")]) == 2
    assert f"Fix: run 'meshbridge certs issue -f {spec}'" in capsys.readouterr().err


def test_without_f_hints_stay_as_they_are() -> None:
    message = "Fix: run 'meshbridge certs issue' (or render with --no-secrets)"
    assert with_options(message, ["render", "-o", "out"]) == message


def test_a_peer_hint_is_left_alone() -> None:
    message = "the importer runs 'meshbridge peer accept OFFER', the exporter 'meshbridge peer admit REPLY'"
    assert with_options(message, ["render", "-f", "mine/bridge.yaml"]) == message


def test_a_hint_that_names_a_file_or_pipes_is_left_alone() -> None:
    message = (
        "run 'meshbridge peer admit reply.yaml -f other.yaml' or 'meshbridge render --mesh gke | kubectl apply -f -'"
    )
    assert with_options(message, ["plan", "-f", "b.yaml"]) == message
    assert (
        with_options("'meshbridge certs issue'", ["plan", "--file", "a b.yaml"])
        == "'meshbridge certs issue -f \"a b.yaml\"'"
    )


def test_a_hint_on_stdout_gets_the_users_file_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "elsewhere" / "bridge.yaml"
    spec.parent.mkdir()
    spec.write_text(SEED.read_text())
    assert main(["certs", "issue", "-f", str(spec)]) == 0
    assert main(["certs", "rotate", "--leaf", "-f", str(spec)]) == 0
    assert f"start the twin with 'meshbridge local up -f {spec}'" in capsys.readouterr().out


def test_a_json_document_keeps_its_hints_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """The twin of the test above: a ``--json`` document is a script's input (a quoted path would break its
    string); its hints are left as the command wrote them."""
    document = json.dumps({"fix": "run 'meshbridge certs issue'"})
    with invoked(["lint", "-f", "my folder/bridge.yaml", "--json"]):
        out.print(document)
        out.print("fix: run 'meshbridge certs issue'")
    printed = capsys.readouterr().out.splitlines()
    assert json.loads(printed[0]) == {"fix": "run 'meshbridge certs issue'"}
    assert printed[1] == "fix: run 'meshbridge certs issue -f \"my folder/bridge.yaml\"'"


CLUSTER_RUN = ["apply", "-f", "b.yaml", "--kubeconfig", "kc", "--context", "eks=arn:aws:eks:x:1:cluster/a"]
CLUSTER_RUN += ["--context", "gke=gke_p_z_b"]


def test_a_cluster_hint_carries_the_users_contexts_and_kubeconfig() -> None:
    """A hint to re-run a cluster command names the clusters the user named, in place of a placeholder too."""
    with invoked(CLUSTER_RUN, accepts):
        assert with_options("Fix: 'meshbridge apply --no-wait'") == (
            "Fix: 'meshbridge apply --no-wait -f b.yaml --context eks=arn:aws:eks:x:1:cluster/a --context "
            "gke=gke_p_z_b --kubeconfig kc'"
        )
        assert with_options("push with 'meshbridge certs push --context MESH=CONTEXT ...'") == (
            "push with 'meshbridge certs push --context eks=arn:aws:eks:x:1:cluster/a --context gke=gke_p_z_b "
            "-f b.yaml --kubeconfig kc'"
        )


def test_a_hint_gets_only_the_options_its_command_takes() -> None:
    """The twin of the test above: 'certs issue' takes no --context or --kubeconfig, lint's --context would read
    the live mesh instead of the rendered one, a peer command is the other owner's; without cluster options a
    hint gets none."""
    with invoked(CLUSTER_RUN, accepts):
        assert with_options("run 'meshbridge certs issue'") == "run 'meshbridge certs issue -f b.yaml'"
        assert with_options("see 'meshbridge lint'") == "see 'meshbridge lint -f b.yaml'"
        assert with_options("'meshbridge peer offer'") == "'meshbridge peer offer'"
    with invoked(["apply", "-f", "b.yaml"], accepts):
        assert with_options("Fix: 'meshbridge apply --no-wait'") == "Fix: 'meshbridge apply --no-wait -f b.yaml'"


def test_a_missing_bridge_file_names_the_folder_and_a_fix_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """'meshbridge init' takes a folder, not -f: the hint names the folder of the missing bridge.yaml."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert main(["lint", "-f", "sub/bridge.yaml"]) == 2
    said = capsys.readouterr().err
    assert f"sub/bridge.yaml: no such bridge file (looked in {tmp_path / 'sub'})" in said
    assert f"Fix: run 'meshbridge init {tmp_path / 'sub'}' to write one" in said
    assert main(["lint"]) == 2  # its twin: here, plain 'meshbridge init'
    assert "Fix: run 'meshbridge init' to write one" in capsys.readouterr().err
