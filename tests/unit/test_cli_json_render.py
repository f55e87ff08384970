"""``render -o DIR --json``: what each mesh's folder got, as one JSON document; stdout stays the YAML documents
without -o (for kubectl), so ``--json`` there is refused with the error document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main


def test_render_json_lists_each_folder_its_files_and_what_it_pruned(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (issued_workdir / "out" / "eks").mkdir(parents=True)
    (issued_workdir / "out" / "eks" / "99-mine.yaml").write_text("kind: ConfigMap\n")  # the user's: left alone
    capsys.readouterr()
    assert main(["render", "-o", "out", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    eks, gke = doc["meshes"]
    assert eks["mesh"] == "eks" and gke["mesh"] == "gke" and eks["folder"] == "out/eks"
    assert eks["left"] == ["out/eks/99-mine.yaml"] and eks["removed"] == [] and eks["istioctl_only"] == []
    assert eks["documents"] == len(eks["files"]) - 1  # and the kustomization.yaml
    assert all(Path(f).is_file() for f in eks["files"]) and "out/eks/kustomization.yaml" in eks["files"]
    kinds = {yaml.safe_load(Path(f).read_text())["kind"] for f in gke["files"]}
    assert {"Gateway", "ServiceEntry", "DestinationRule", "VirtualService", "Secret"} <= kinds


def test_render_install_json_names_the_istioctl_only_documents_and_the_helm_releases(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["render", "--install", "--format", "istioctl", "-o", "ops", "--json"]) == 0
    eks = json.loads(capsys.readouterr().out)["meshes"][0]
    assert eks["istioctl_only"] and all(p in eks["files"] for p in eks["istioctl_only"])
    assert main(["render", "--install", "-o", "helm", "--json"]) == 0
    eks = json.loads(capsys.readouterr().out)["meshes"][0]
    assert eks["folder"] == "helm/eks/helm" and eks["releases"] == 3 and eks["files"][-1].endswith("install.sh")


def test_render_json_without_a_folder_is_refused_and_stdout_stays_yaml(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["render", "--mesh", "eks", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["error"] and doc["error"]["message"].startswith("--json describes the folders -o writes")
    assert "Fix: add -o DIR, or drop --json" in doc["error"]["message"]
    assert main(["render", "--mesh", "eks", "--no-secrets"]) == 0  # the twin: the documents, for kubectl
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert docs and all("kind" in d for d in docs if d)
    assert main(["render", "-o", "out"]) == 0  # and -o without --json: the lines on stderr, stdout empty
    captured = capsys.readouterr()
    assert captured.out == "" and "eks: " in captured.err and "documents → out/eks" in captured.err
