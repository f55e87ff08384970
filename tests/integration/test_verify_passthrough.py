"""An exporter Gateway server in PASSTHROUGH (TLS not terminated, so no client identity for the
AuthorizationPolicy's principals): the network RBAC closes the connection; verify's check says what the running
configuration predicts, not only that its own client could not complete the request."""

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


def _passthrough(docs: dict[str, list[dict[str, Any]]]) -> None:
    for d in docs["eks"]:
        if d["kind"] == "Gateway":
            for server in d["spec"]["servers"]:
                server["port"]["protocol"] = "TLS"
                server["tls"] = {"mode": "PASSTHROUGH"}
        if d["kind"] == "VirtualService":
            d["spec"].pop("http")
            d["spec"]["tls"] = [
                {
                    "match": [{"port": 443, "sniHosts": ["lambda.external"]}],
                    "route": [{"destination": {"host": "alb.internal.example.com", "port": {"number": 443}}}],
                }
            ]


def test_a_passthrough_exporter_refused_by_network_rbac_is_explained(tmp_path: Path) -> None:
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        report = twin.up({"eks": _rendered_manifests(tmp_path, bridge, store, _passthrough)["eks"]})
        assert [h.proxy for h in report.stopped] == ["eks/istio-ingressgateway"]
        accepted = next(c for c in verify_local(twin) if c.check == "ExporterAcceptsImporterCert")
        assert accepted.status != "True"
        assert "the running configuration predicts why: eks/istio-ingressgateway:" in accepted.message, accepted
        assert str(report.stopped[0]).split(" → ", 1)[1].split(":")[0] in accepted.message
    finally:
        twin.down()


def test_negative_twin_nothing_is_predicted_for_a_path_that_runs(tmp_path: Path) -> None:
    from meshbridge.verify.local import _predicted_stop

    file, bridge = seed_folder(tmp_path)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        assert twin.up().stopped == []
        (ex,) = bridge.spec.exports
        assert _predicted_stop(twin, ex, "eks/istio-ingressgateway") == ""
    finally:
        twin.down()
