"""``meshbridge translate --against-istiod`` as a user runs it (in process)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.cli.main import main
from meshbridge.envoy import compare as compare_module

pytestmark = pytest.mark.oracle


@pytest.fixture
def seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oracle: Path) -> Path:
    for name in SEED_FILES:
        (tmp_path / name).write_text(seed_text(name))
    monkeypatch.chdir(tmp_path)
    assert main(["certs", "issue"]) == 0
    return tmp_path / "bridge.yaml"


def test_the_seed_differs_from_istiod_only_where_the_fidelity_page_says(
    seed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["translate", "--against-istiod", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["istio"] == "1.31"
    names = [p["name"] for p in doc["proxies"]]
    assert names == ["eks/istio-ingressgateway", "gke/istio-egressgateway", "gke/sleep"]
    for p in doc["proxies"]:
        assert p["facts"]["identical"] > 0
        assert all(d["fidelity"] for d in p["differences"])


def test_one_proxy_table_fits_a_terminal(seed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["translate", "--against-istiod", "--proxy", "eks/istio-ingressgateway"]) == 0
    captured = capsys.readouterr()
    assert "FD01" in captured.out
    assert max(len(line) for line in captured.out.splitlines()) <= 100
    found = re.search(
        r"eks/istio-ingressgateway: (\d+) of istiod's (\d+) facts identical; the other (\d+) fall under 2 "
        r"difference\(s\) \(an object only one side has is one difference, its facts with it\), 0 not explained",
        " ".join(captured.err.split()),
    )
    assert found and int(found[1]) + int(found[3]) == int(found[2])  # every fact of istiod's is accounted for


def test_an_unexplained_difference_exits_1(
    seed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The negative twin: with no fidelity entry, the seed's typed SAN matchers are unexplained."""
    monkeypatch.setattr(compare_module, "DOCUMENTED", ())
    real = compare_module.compare
    monkeypatch.setattr(
        "meshbridge.istiod.judge.compare", lambda ours, istiod, proxy_kind=None: real(ours, istiod, (), proxy_kind)
    )
    capsys.readouterr()
    assert main(["translate", "--against-istiod", "--proxy", "eks/istio-ingressgateway"]) == 1
    assert "UNDOCUMENTED" in capsys.readouterr().out
