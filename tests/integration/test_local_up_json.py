"""``local up --json`` says what its text says: the ``try`` command only when the path check predicts no stop,
else the predicted stop (on real Envoy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.cli.main import main
from meshbridge.render import render_bridge
from meshbridge.spec import load_bridge

pytestmark = pytest.mark.integration


def _seed(tmp: Path) -> str:
    for name in SEED_FILES:
        (tmp / name).write_text(seed_text(name))
    return str(tmp / "bridge.yaml")


def test_up_json_gives_the_predicted_stop_and_no_try_when_the_path_check_predicts_a_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's eks manifests with the route sent to a host nobody defines: the call would stop (NC)."""
    file = _seed(tmp_path)
    docs = render_bridge(load_bridge(Path(file)), None)
    eks = [dict(d) for d in docs["eks"]]
    (vs,) = [d for d in eks if d["kind"] == "VirtualService"]
    route = {"destination": {"host": "nowhere.example", "port": {"number": 443}}}
    vs["spec"]["http"] = [{"match": [{"uri": {"prefix": "/a"}}], "route": [route]}]
    (tmp_path / "eks.yaml").write_text(yaml.safe_dump_all(eks))
    (tmp_path / "gke.yaml").write_text(yaml.safe_dump_all(docs["gke"]))
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["local", "up", "--json", "--manifests", "eks=eks.yaml", "--manifests", "gke=gke.yaml"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["try"] is None
        stop = doc["stop"]
        assert (stop["requests"], stop["export"], stop["flag"]) == (1, "lambda", "NC")
        assert stop["proxy"].startswith("eks/")
        assert stop["see"] == "meshbridge local curl -v http://lambda.external/a"
        assert any("nowhere.example" in n for n in doc["notes"])
    finally:
        main(["local", "down"])


def test_up_json_of_the_seed_has_its_try_and_no_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Negative twin: the seed's path reaches the Lambda, so 'try' is the command to run and 'stop' is null."""
    file = _seed(tmp_path)
    try:
        assert main(["local", "up", "--json", "-f", file]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["stop"] is None
        assert doc["try"] == f"meshbridge local curl -i http://lambda.external/hello-world --bridge {file}"
    finally:
        main(["local", "down", "-f", file])
