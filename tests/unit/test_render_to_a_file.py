"""``render`` into a shell redirect: the gateway Secrets' keys land in a file, and the user is told to keep it 0600."""

from __future__ import annotations

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
