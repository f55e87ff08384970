"""``certs rotate --ca`` on the local twin (real Envoy, real TLS): every stage pushed and checked while the twin runs;
with nothing running, each mesh stops after its next stage and says how to go on."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.cli.main import main
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.spec import load_bridge

pytestmark = pytest.mark.integration


def test_a_ca_rollover_runs_every_stage_on_the_running_twin_and_stops_after_one_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in SEED_FILES:
        (tmp_path / name).write_text(seed_text(name))
    file = tmp_path / "bridge.yaml"
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up()
        capsys.readouterr()
        assert main(["certs", "rotate", "--ca", "--mesh", "gke", "-f", str(file)]) == 0
        shown = capsys.readouterr()
        rows = [line.split() for line in shown.out.splitlines() if line.startswith("gke ") and "local twin" in line]
        assert len(rows) == 3 and all(row[-1] == "ok" for row in rows), shown.out
        assert "stopped after" not in shown.out and "not run" not in shown.out
        assert max(map(len, shown.out.splitlines())) <= 100, shown.out  # long steps and pushes wrap in their columns
    finally:
        twin.down()
    # twin: nothing runs now; eks's rollover stops after stage 1, its check not run
    assert main(["certs", "rotate", "--ca", "--mesh", "eks", "-f", str(file)]) == 0
    text = capsys.readouterr().out
    assert "eks: stopped after stage 1, the old and the new CA stay trusted side by side" in " ".join(text.split())
    assert [line.split()[-2:] for line in text.splitlines() if line.startswith("eks ")] == [["not", "run"]]
    assert [PkiStore(tmp_path / ".meshbridge").rollover_stage(m) for m in ("eks", "gke")] == [1, 0]
