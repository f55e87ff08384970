"""On real Envoy: a twin started with the user's --manifests, stopped, then a 'local up' with another file that
Istio's validation refuses: 'local curl' names the start that just failed, not the twin before it; once a start
succeeds again (the negative twin), the hint is that twin's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.local.plan import lb_address
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
URL = "http://lambda.external/hello-world"
REFUSED = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: x.y, namespace: default}\nspec: {}\n"


def _curl_hint(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["local", "curl", URL]) == 7
    return " ".join(capsys.readouterr().err.split())


def test_curl_names_the_up_that_just_failed_then_the_twin_that_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _, bridge = seed_folder(tmp_path)
    PkiStore(tmp_path / ".meshbridge").issue(bridge)
    rendered = render_bridge(
        bridge, None, addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports}
    )
    (tmp_path / "eks.yaml").write_text(yaml.safe_dump_all([dict(d) for d in rendered["eks"]]))
    (tmp_path / "istio-docs.yaml").write_text(REFUSED)
    try:
        assert main(["local", "up", "--manifests", "eks=eks.yaml"]) == 0
        assert main(["local", "down"]) == 0
        assert main(["local", "up", "--manifests", "eks=istio-docs.yaml"]) == 2
        hint = _curl_hint(capsys)
        assert (
            "the last 'local up' failed. Fix what it said, then: meshbridge local up --manifests eks=istio-docs.yaml"
            in hint
        )
        assert "eks=eks.yaml" not in hint
        assert main(["local", "up", "--manifests", "eks=eks.yaml"]) == 0  # the negative twin: a start that runs
        assert main(["local", "down"]) == 0
        hint = _curl_hint(capsys)
        assert "(it was stopped). Fix: meshbridge local up --manifests eks=eks.yaml" in hint and "failed" not in hint
    finally:
        main(["local", "down"])
