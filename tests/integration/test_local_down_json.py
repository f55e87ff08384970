"""``local down --json`` on a real twin: the components it stopped, then, run again, nothing (on real Envoy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.cli.main import main
from meshbridge.local.process import ProcessId

pytestmark = pytest.mark.integration


def test_down_json_names_what_it_stopped_and_a_second_down_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in SEED_FILES:
        (tmp_path / name).write_text(seed_text(name))
    file = str(tmp_path / "bridge.yaml")
    try:
        assert main(["local", "up", "-f", file, "--json"]) == 0
        started = json.loads(capsys.readouterr().out)
        pids = [ProcessId.of(c["pid"]) for c in started["components"] if c.get("pid")]
        assert main(["local", "down", "-f", file, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["stopped"][0] == "supervisor" and doc["state_dir"] == str(tmp_path / ".meshbridge")
        assert doc["running_elsewhere"] == [] and pids and not any(p.alive() for p in pids)
    finally:
        main(["local", "down", "-f", file])
    capsys.readouterr()
    assert main(["local", "down", "-f", file, "--json"]) == 0  # the twin: nothing left to stop
    assert json.loads(capsys.readouterr().out)["stopped"] == []
