"""verify and local up judge the backend the running routes send to: the user's VirtualService to a Service no pod
serves is a 503 UH predicted at up and BackendAnswers False for verify, not the spec's ALB answering 200."""

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


def _to_service(docs: dict[str, list[dict[str, Any]]]) -> None:
    docs["eks"].append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"selector": {"app": "hello"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        }
    )
    vs = next(d for d in docs["eks"] if d["kind"] == "VirtualService")
    vs["spec"]["http"][0]["route"] = [
        {"destination": {"host": "hello.default.svc.cluster.local", "port": {"number": 80}}}
    ]


def test_a_route_to_a_service_with_no_pods_is_judged_there_not_on_the_specs_backend(tmp_path: Path) -> None:
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    manifests = _rendered_manifests(tmp_path, bridge, store, _to_service)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        report = twin.up({"eks": manifests["eks"]})
        assert [(h.proxy, h.result.response_flag) for h in report.stopped] == [("eks/istio-ingressgateway", "UH")]
        found = {c.check: c for c in verify_local(twin)}
        backend = found["BackendAnswers"]
        assert (backend.status, backend.reason) == ("False", "NoEndpoints"), backend
        assert "to outbound|80||hello.default.svc.cluster.local, which has no endpoints" in backend.message
        assert (
            "503 UH" in backend.message and "Fix: route the export's VirtualService to its backend" in backend.message
        )
        assert found["AppReachesExport"].reason == "NotRunWithoutBackendAnswers"  # not 'the bridge gave 503'
    finally:
        twin.down()
    # the negative twin: the same manifests routed to the export's backend: the ALB is asked, and answers
    manifests = _rendered_manifests(tmp_path, bridge, store, lambda _: None)
    try:
        assert twin.up({"eks": manifests["eks"]}).stopped == []
        backend = next(c for c in verify_local(twin) if c.check == "BackendAnswers")
        assert (backend.status, backend.reason) == ("True", "HTTP200"), backend
    finally:
        twin.down()
