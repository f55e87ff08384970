"""verify names the AuthorizationPolicy the exporter's gateway really runs: the user's own, from --manifests, not
the one meshbridge would render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.verify.local import verify_local
from tests.integration.test_verify_runs import _rendered_manifests
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration


def _renamed(docs: dict[str, list[dict[str, Any]]]) -> None:
    policy = next(d for d in docs["eks"] if d["kind"] == "AuthorizationPolicy")
    policy["metadata"]["name"] = "edge-allow"


def test_exporter_authorizes_names_the_users_own_policy(tmp_path: Path) -> None:
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up({"eks": _rendered_manifests(tmp_path, bridge, store, _renamed)["eks"]})
        (authz,) = [c for c in verify_local(twin) if c.check == "ExporterAuthorizes"]
        assert authz.status == "True", authz
        assert "(AuthorizationPolicy istio-ingress/edge-allow)" in authz.message
        assert "istio-ingressgateway-importers" not in authz.message
    finally:
        twin.down()
    # the negative twin: the twin on what meshbridge renders names the rendered policy
    try:
        twin.up()
        (authz,) = [c for c in verify_local(twin) if c.check == "ExporterAuthorizes"]
        assert "(AuthorizationPolicy istio-ingress/istio-ingressgateway-importers)" in authz.message
    finally:
        twin.down()
