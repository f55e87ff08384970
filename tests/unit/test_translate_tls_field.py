"""Where the translation's warnings about a DestinationRule's client TLS point: the ``tls`` block it read,
top level, port level or a subset's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.istio_builders import Docs, seed_path

PORT_LEVEL = {"portLevelSettings": [{"port": {"number": 80}, "tls": {"mode": "SIMPLE", "credentialName": "client"}}]}
TOP_LEVEL = {"tls": {"mode": "SIMPLE", "credentialName": "client"}}
MUTUAL_WITHOUT_CERT = {"portLevelSettings": [{"port": {"number": 80}, "tls": {"mode": "MUTUAL"}}]}


def _sidecar_rule(policy: dict[str, Any]) -> Any:
    def edit(docs: Docs) -> None:
        docs["gke"].append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "theirs", "namespace": "sleep"},
                "spec": {"host": "lambda.external", "trafficPolicy": policy},
            }
        )

    return edit


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (PORT_LEVEL, "spec.trafficPolicy.portLevelSettings[0].tls.credentialName"),
        (TOP_LEVEL, "spec.trafficPolicy.tls.credentialName"),
        (MUTUAL_WITHOUT_CERT, "spec.trafficPolicy.portLevelSettings[0].tls"),
    ],
)
def test_a_warning_names_the_tls_block_the_sidecar_read(tmp_path: Path, policy: dict[str, Any], field: str) -> None:
    sidecar = seed_path(tmp_path, _sidecar_rule(policy))["gke/sleep"]
    assert [w.field for w in sidecar.warnings if w.name == "theirs"] == [field]


def test_a_rule_the_sidecar_reads_without_credential_name_warns_nothing(tmp_path: Path) -> None:
    sidecar = seed_path(tmp_path, _sidecar_rule({"tls": {"mode": "SIMPLE"}}))["gke/sleep"]
    assert [w for w in sidecar.warnings if w.name == "theirs"] == []
