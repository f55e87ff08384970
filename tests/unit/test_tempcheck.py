"""The check that no private key outlives the test run in the system's temporary directory (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from meshbridge.pki import issue_ca
from tests import builders
from tests.builders import ROOT, issued_store, scratch_dir, seed_bridge
from tests.tempcheck import leftover_keys


def test_a_store_left_in_a_temporary_folder_is_found(tmp_path: Path) -> None:
    issued_store(tmp_path / "left", seed_bridge())
    ca = issue_ca("x")
    assert ca.key_pem is not None
    (tmp_path / "left" / "bundle.pem").write_bytes(ca.cert_pem + ca.key_pem)  # a key under another name
    found = leftover_keys(tmp_path)
    names = {p.relative_to(tmp_path / "left").as_posix() for p in found}
    assert names == {
        "bundle.pem",
        "state/pki/eks/ca.key",
        "state/pki/eks/server.key",
        "state/pki/gke/ca.key",
        "state/pki/gke/client.key",
    }


def test_certificates_alone_and_ignored_folders_are_no_leftover(tmp_path: Path) -> None:
    """The negative twin: public material, or keys in a folder the check leaves to pytest, pass."""
    store = issued_store(tmp_path / "pytest-own", seed_bridge())
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "ca.crt").write_bytes(store.path("eks", "ca").read_bytes())
    os.mkfifo(tmp_path / "public" / "fifo")  # never opened: reading it would block
    assert leftover_keys(tmp_path, ignore=[tmp_path / "pytest-own"]) == []
    assert leftover_keys(tmp_path / "missing") == []


def test_the_run_writes_its_temporary_files_in_a_folder_of_its_own() -> None:
    """What the check searches: tempfile's default (and TMPDIR for child processes) is the run's folder, and
    the builders' scratch folders are under pytest's."""
    run = Path(tempfile.gettempdir())
    assert run.name.startswith("meshbridge-tests-") and os.environ["TMPDIR"] == str(run)
    assert builders.SCRATCH is not None and run not in builders.SCRATCH.parents
    with scratch_dir() as tmp:
        assert builders.SCRATCH in tmp.parents
    assert not tmp.exists()


LEAK = """
import tempfile
from pathlib import Path


def test_writes_a_store(tmp_path):
    folder = {where}
    (folder / "pki").mkdir()
    (folder / "pki" / "ca.key").write_text("-----BEGIN PRIVATE KEY-----\\nMIG...\\n-----END PRIVATE KEY-----\\n")
"""


def _session(tmp_path: Path, where: str) -> subprocess.CompletedProcess[str]:
    """A pytest session of one test that writes a key into ``where``, with this suite's conftest as a plugin."""
    (tmp_path / "test_leak.py").write_text(LEAK.format(where=where))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "--basetemp",  # its tmp_path in this test's: removed as this one is
            str(tmp_path / "basetemp"),
            str(tmp_path / "test_leak.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_session_that_leaves_a_key_in_the_temporary_directory_fails_and_leaves_nothing(tmp_path: Path) -> None:
    run = _session(tmp_path, "Path(tempfile.mkdtemp(prefix='leaky-'))")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "left 1 private key file(s) in the system's temporary directory" in run.stdout
    assert "/pki/ca.key" in run.stdout and "leaky-" in run.stdout
    assert not list(Path(tempfile.gettempdir()).glob("meshbridge-tests-*")), "the session's folder was removed"


def test_a_session_that_writes_its_keys_into_tmp_path_passes(tmp_path: Path) -> None:
    """The negative twin: the same key, in pytest's tmp_path."""
    run = _session(tmp_path, "tmp_path")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "private key" not in run.stdout
