"""Fixtures the unit tests of the command line share: the seed bridge as the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The seed bridge (``meshbridge init``) as the working directory; no certificates yet."""
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    return tmp_path


@pytest.fixture
def issued_workdir(workdir: Path) -> Path:
    """:func:`workdir` with the seed's certificates issued (``meshbridge certs issue``)."""
    assert main(["certs", "issue"]) == 0
    return workdir
