"""Tables fit a normal terminal (100 columns) on long names and long state paths: a three-mesh spec, the store
under pytest's (long) temporary folder, the working folder elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.tabwriter import TERMINAL_WIDTH
from tests.builders import two_exports_three_meshes


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
