"""``render`` into a shell redirect: the gateway Secrets' keys land in a file, and the user is told to keep it 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from meshbridge.cli.main import main
from tests.builders import SEED

MESHBRIDGE = str(Path(sys.executable).parent / "meshbridge")
NOTE = "note: this output holds private keys"


def _issued(tmp: Path) -> Path:
    spec = tmp / "bridge.yaml"
    spec.write_text(SEED.read_text())
    assert main(["certs", "issue", "-f", str(spec)]) == 0
    return spec


def test_a_redirect_to_a_file_is_told_to_keep_the_keys_private(tmp_path: Path) -> None:
    spec = _issued(tmp_path)
    with (tmp_path / "eks.yaml").open("w") as out:
        done = subprocess.run(
            [MESHBRIDGE, "render", "-f", str(spec), "--mesh", "eks"], stdout=out, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 0 and NOTE in done.stderr
    assert "kind: Secret" in (tmp_path / "eks.yaml").read_text()


def test_a_pipe_gets_no_note(tmp_path: Path) -> None:
    spec = _issued(tmp_path)
    done = subprocess.run([MESHBRIDGE, "render", "-f", str(spec), "--mesh", "eks"], capture_output=True, text=True)
    assert done.returncode == 0 and NOTE not in done.stderr and "kind: Secret" in done.stdout


def _redirect(tmp: Path, spec: Path, umask: int) -> int:
    """``render --mesh eks > eks.yaml`` under ``umask``: the mode the shell's file gets."""
    previous = os.umask(umask)
    try:
        with (tmp / "eks.yaml").open("w") as out:
            subprocess.run([MESHBRIDGE, "render", "-f", str(spec), "--mesh", "eks"], stdout=out, check=True)
    finally:
        os.umask(previous)
    return stat.S_IMODE((tmp / "eks.yaml").stat().st_mode)


def test_a_redirect_leaves_the_file_as_the_umask_makes_it_as_the_readme_says(tmp_path: Path) -> None:
    spec = _issued(tmp_path)
    assert _redirect(tmp_path, spec, 0o022) == 0o644  # render does not chmod the user's file: the note says to
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert "A redirect (`> eks.yaml`) works too, but the file is as your umask makes it (0644 by default)" in readme
    assert "only into a pipe" not in readme


def test_a_redirect_under_umask_077_is_private(tmp_path: Path) -> None:
    spec = _issued(tmp_path)
    (tmp_path / "eks.yaml").unlink(missing_ok=True)
    assert _redirect(tmp_path, spec, 0o077) == 0o600
