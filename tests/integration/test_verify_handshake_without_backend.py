"""verify on an export whose backend is a Kubernetes Service the twin does not run (the exporter's gateway answers
503 UH): ExporterAcceptsImporterCert is judged on the HTTP answer that came through the mutual TLS connection (the
handshake passed), not left 'not run'. Negative twin: the exporter also refuses the importer's certificate (its
Gateway pins another SAN), so no HTTP answer comes back and the check stays 'not run'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.verify.local import verify_local
from tests.integration.test_verify_routed_backend import _to_service
from tests.integration.test_verify_runs import _rendered_manifests
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration


def _pinning_another_san(docs: dict[str, list[dict[str, Any]]]) -> None:
    _to_service(docs)
    gateway = next(d for d in docs["eks"] if d["kind"] == "Gateway")
    gateway["spec"]["servers"][0]["tls"]["subjectAltNames"] = ["spiffe://other.example.com/ns/x/sa/y"]


@pytest.mark.parametrize("refused", [False, True], ids=["accepted", "refused"])
def test_the_exporters_503_uh_proves_the_handshake_and_no_answer_proves_nothing(tmp_path: Path, refused: bool) -> None:
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    manifests = _rendered_manifests(tmp_path, bridge, store, _pinning_another_san if refused else _to_service)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up({"eks": manifests["eks"]})
        found = {c.check: c for c in verify_local(twin)}
        assert (found["BackendAnswers"].status, found["BackendAnswers"].reason) == ("False", "NoEndpoints")
        accepted = found["ExporterAcceptsImporterCert"]
        if refused:
            assert (accepted.status, accepted.reason) == ("Unknown", "NotRunWithoutBackendAnswers"), accepted
        else:
            assert (accepted.status, accepted.reason) == ("True", "HandshakePassed"), accepted
            assert "the gateway answered HTTP 503 (server: istio-envoy" in accepted.message, accepted.message
            assert "through the mutual TLS connection, so the handshake passed" in accepted.message
        assert found["ExporterRefusesForeignCA"].status == "True"  # the refusals are tried either way
    finally:
        twin.down()
