"""The exporter's own AuthorizationPolicy admits the importer by its principal and the address it connects from
(``ipBlocks``), on real Envoy: the twin's egress gateway connects from 127.0.0.1, so a block around it admits the
curl (200) and a block elsewhere (10.0.0.0/8) refuses it (403 ``RBAC: access denied``), as istiod's
``direct_remote_ip`` principal does; 'local up' predicts that stop instead of 'Try:'. Before, the twin dropped the
block and admitted both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.verify.local import verify_local
from tests.integration.test_verify_runs import _rendered_manifests
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration

URL = "http://lambda.external/hello-world"


def _from_block(block: str) -> Any:
    def edit(docs: dict[str, list[dict[str, Any]]]) -> None:
        policy = next(d for d in docs["eks"] if d["kind"] == "AuthorizationPolicy")
        rule = policy["spec"]["rules"][0]
        rule["from"][0]["source"]["ipBlocks"] = [block]

    return edit


def _up(tmp_path: Path, block: str) -> tuple[LocalTwin, list[str]]:
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    eks = _rendered_manifests(tmp_path, bridge, store, _from_block(block))["eks"]
    for written in eks:
        written.chmod(0o600)  # the rendered Secrets hold the ingress gateway's private key
    report = twin.up({"eks": eks})
    return twin, [str(h) for h in report.stopped]


def test_an_address_outside_the_block_is_refused_and_predicted(tmp_path: Path) -> None:
    twin, stopped = _up(tmp_path, "10.0.0.0/8")
    try:
        (stop,) = stopped
        assert stop.startswith("eks/istio-ingressgateway:")
        assert "at 127.0.0.1" in stop  # the address the twin's egress gateway connects from
        r = curl(twin.app_view(), URL)
        assert (r.status, r.body) == (403, b"RBAC: access denied")
        (app,) = [c for c in verify_local(twin) if c.check == "AppReachesExport"]
        assert app.status == "False"  # verify passed before: the twin dropped the block
    finally:
        twin.down()


def test_negative_twin_an_address_inside_the_block_is_admitted(tmp_path: Path) -> None:
    twin, stopped = _up(tmp_path, "127.0.0.0/8")
    try:
        assert stopped == []
        assert curl(twin.app_view(), URL).status == 200
        (app,) = [c for c in verify_local(twin) if c.check == "AppReachesExport"]
        assert app.status == "True", app.message
    finally:
        twin.down()
