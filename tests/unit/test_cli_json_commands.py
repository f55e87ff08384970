"""``--json`` on the commands that print a summary (init, local down, certs import, peer, render -o), and the error
document every ``--json`` command prints on stdout when an error stops it (an input error, a refused file
operation, a usage error): ``{"error": {"message": ..., "exit_code": 2}}``, with the exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshbridge.cli.main import main
from meshbridge.pki import PkiStore
from meshbridge.pki.x509 import issue_leaf


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """``meshbridge argv``: its exit code, its stdout parsed as one JSON document, its stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return True
    return False


def test_init_json_lists_the_files_written_and_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, doc, _ = _run(capsys, "init", "--json", "mybridge")
    assert code == 0
    assert doc == {
        "wrote": ["mybridge/bridge.yaml", "mybridge/handler.py"],
        "next": "cd mybridge && meshbridge local up",
    }
    assert main(["init", "mybridge", "--force"]) == 0  # the twin: without --json, the lines a person reads
    text = capsys.readouterr().out
    assert text.startswith("wrote mybridge/bridge.yaml\n") and _not_json(text)


def test_init_json_refusing_to_overwrite_is_an_error_document_and_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, err = _run(capsys, "init", "--json")
    assert code == 2
    assert doc["error"]["exit_code"] == 2 and "already exist; nothing was written" in doc["error"]["message"]
    assert "Fix: pass --force" in doc["error"]["message"] and "error:" in err  # the line on stderr stays
    assert main(["init"]) == 2  # the twin: without --json, nothing on stdout
    assert capsys.readouterr().out == ""


def test_a_usage_error_with_json_is_an_error_document(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, err = _run(capsys, "lint", "--json", "--expiry-days", "-3")
    assert code == 2 and doc == {
        "error": {
            "message": "Invalid value for '--expiry-days': Input should be greater than or equal to 0",
            "exit_code": 2,
        }
    }
    assert "Usage: meshbridge lint" in err
    code, doc, _ = _run(capsys, "init", "--json", "--bogus")
    assert code == 2 and doc["error"]["message"] == "No such option: --bogus"
    assert main(["lint", "--expiry-days", "-3"]) == 2  # the twins: no --json, or a command without it
    assert main(["local", "curl", "--json", "http://lambda.external/"]) == 2
    assert capsys.readouterr().out == ""


def test_lint_json_a_refused_file_operation_is_an_error_document(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crt = issued_workdir / ".meshbridge" / "pki" / "eks" / "server.crt"
    crt.unlink()
    crt.mkdir()  # the store's certificate is a folder: reading it is refused (IsADirectoryError)
    code, doc, err = _run(capsys, "lint", "--json")
    assert code == 2 and doc["findings"] == []
    assert doc["error"] == {"message": f"{crt}: is a folder, not a file. Fix: give a file", "exit_code": 2}
    assert f"error: {crt}: is a folder" in err
    crt.rmdir()  # the twin: the certificate is missing, which lint reports as a finding, not an input error
    code, doc, _ = _run(capsys, "lint", "--json")
    assert "error" not in doc and doc["findings"]


def test_local_down_json_says_what_it_stopped(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = _run(capsys, "local", "down", "--json")
    assert code == 0
    assert doc == {"stopped": [], "state_dir": str(workdir / ".meshbridge"), "running_elsewhere": []}
    assert main(["local", "down"]) == 0  # the twin: the sentence
    text = capsys.readouterr().out
    assert text.startswith("stopped 0 process(es)") and _not_json(text)


def _client_leaf(workdir: Path, account: str) -> list[str]:
    """``certs import`` of a client leaf for gke, issued by gke's CA for the SPIFFE identity of ``account``."""
    ca = PkiStore(workdir / ".meshbridge").load("gke", "ca")
    assert ca is not None
    leaf = issue_leaf(ca, "client", common_name="x", uris=[f"spiffe://gke.example.com/ns/istio-egress/sa/{account}"])
    crt, key = leaf.write_to(workdir / "byo", "client")
    return ["certs", "import", "--mesh", "gke", "--slot", "client", "--cert", str(crt), "--key", str(key)]


def test_certs_import_json_says_what_was_stored(issued_workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, doc, _ = _run(capsys, *_client_leaf(issued_workdir, "istio-egressgateway-service-account"), "--json")
    assert code == 0 and doc["findings"] == []
    assert doc["imported"] == {
        "mesh": "gke",
        "slot": "client",
        "from": str(issued_workdir / "byo" / "client.crt"),
        "file": str(PkiStore(issued_workdir / ".meshbridge").path("gke", "client")),
        "intermediates": 0,
        "key": True,
    }
    assert main(_client_leaf(issued_workdir, "istio-egressgateway-service-account")) == 0  # the twin: the line
    text = capsys.readouterr().out
    assert text.startswith("imported ") and _not_json(text)


def test_certs_import_json_refused_lists_the_findings_and_the_error(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = PkiStore(issued_workdir / ".meshbridge")
    before = store.path("gke", "client").read_bytes()
    capsys.readouterr()
    code, doc, err = _run(capsys, *_client_leaf(issued_workdir, "wrong"), "--json")
    assert code == 2 and store.path("gke", "client").read_bytes() == before
    assert doc["error"]["exit_code"] == 2 and "was not imported: 1 problem(s) listed" in doc["error"]["message"]
    [finding] = doc["findings"]
    assert finding["severity"] == "error" and "client.crt" in finding["certificate"], finding
    assert "spiffe://gke.example.com/ns/istio-egress/sa/wrong" in finding["problem"] + finding["fix"], finding
    assert "imported" not in doc and "was not imported" in err
    aks = [("aks" if word == "gke" else word) for word in _client_leaf(issued_workdir, "wrong")]
    code, doc, _ = _run(capsys, *aks, "--json")
    assert code == 2 and doc["findings"] == []  # refused before any check: no findings
    assert doc["error"]["message"] == "mesh 'aks' is not in bridge.yaml (meshes: eks, gke)"


def test_every_json_command_stopped_by_an_error_prints_the_error_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no bridge.yaml here
    for argv in (["certs", "show"], ["verify"], ["render", "-o", "out"], ["peer", "offer"], ["aws", "status"]):
        code, doc, err = _run(capsys, *argv, "--json")
        assert code == 2 and list(doc) == ["error"], argv
        assert doc["error"]["message"].startswith("bridge.yaml: no such bridge file"), argv
        assert "error: bridge.yaml: no such bridge file" in err, argv
    code, doc, _ = _run(capsys, "local", "status", "--json")  # needs only the state folder: it was never made
    assert code == 2 and doc["error"]["message"].startswith("the local twin was never started")
    assert main(["certs", "show"]) == 2  # the twin: without --json, stdout stays empty
    assert capsys.readouterr().out == ""


def test_the_help_shows_each_json_shape_whole(capsys: pytest.CaptureFixture[str]) -> None:
    """rich reads '[files]' in a help text as markup and drops it: '{"wrote": , ...}' is what it left."""
    for argv in (["init"], ["local", "down"], ["certs", "import"], ["peer", "offer"], ["peer", "accept"], ["render"]):
        assert main([*argv, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--json" in text and '": ,' not in text and '": }' not in text, argv
