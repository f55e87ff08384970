"""verify --header: an exporter whose AuthorizationPolicy admits the importer only with a header (a partner key in
'when') is verified with that header on every request of the checks; without it, the exporter's 403 is what
verify reports."""

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
THROUGH_THE_BRIDGE = ("ExporterAcceptsImporterCert", "AppReachesExport")


def _partner_key(docs: dict[str, list[dict[str, Any]]]) -> None:
    policy = next(d for d in docs["eks"] if d["kind"] == "AuthorizationPolicy")
    for rule in policy["spec"]["rules"]:
        rule["when"] = [{"key": "request.headers[x-partner-key]", "values": ["acme-7"]}]


def test_a_policy_wanting_a_header_passes_with_it_and_refuses_without(tmp_path: Path) -> None:
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    manifests = _rendered_manifests(tmp_path, bridge, store, _partner_key)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up({"eks": manifests["eks"]})
        found = {c.check: c for c in verify_local(twin, headers=(("X-Partner-Key", "acme-7"),))}
        assert all(found[check].status == "True" for check in THROUGH_THE_BRIDGE), found
        assert found["ExporterAuthorizes"].status == "True"  # another host is still refused, key or not
        # the negative twin: the same twin verified without the key: the exporter's RBAC refuses the importer
        without = {c.check: c for c in verify_local(twin)}
        assert [without[check].status for check in THROUGH_THE_BRIDGE] == ["False", "False"]
        assert "403" in without["ExporterAcceptsImporterCert"].message
        wrong = {c.check: c for c in verify_local(twin, headers=(("X-Partner-Key", "other"),))}
        assert wrong["AppReachesExport"].status == "False"
    finally:
        twin.down()
