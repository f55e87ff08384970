"""A sidecar that originates TLS with a credentialName (istio.io's egress TLS origination "at sidecar": a
DestinationRule with workloadSelector app: sleep, its Secret beside the app): istiod serves that sidecar the Secret
only from its own namespace (MB207, worded for a sidecar), and only if its ServiceAccount may read Secrets (MB212)."""

from __future__ import annotations

from typing import Any

from meshbridge.lint.findings import Finding
from tests.unit.test_lint_codes import Docs, _mesh_leg_removed, dr_out, run


def _at_sidecar(secret_ns: str) -> Any:
    """The importer's rule moves to the app's namespace (sleep) and selects it; its Secret goes to ``secret_ns``."""

    def change(docs: Docs) -> None:
        _mesh_leg_removed(docs)
        dr = dr_out(docs)
        dr["metadata"]["namespace"] = "sleep"
        dr["spec"].pop("exportTo", None)
        dr["spec"]["workloadSelector"] = {"matchLabels": {"app": "sleep"}}
        for d in docs["gke"]:
            if d["kind"] == "Secret":
                d["metadata"]["namespace"] = secret_ns

    return change


def _findings(change: Any, code: str) -> list[Finding]:
    return [f for f in run(change, None, True, ("eks", "gke")).findings if f.code == code]


def test_mb207_on_a_sidecar_speaks_of_the_sidecar_not_of_a_gateway() -> None:
    (f,) = _findings(_at_sidecar("istio-egress"), "MB207")
    assert f.message == (
        "gke/sleep runs in namespace sleep and reads credentialName 'mtls-credential' there, but the Secret is in "
        "istio-egress: istiod serves a sidecar only the Secrets of its own namespace"
    )
    assert f.fix == (
        "create the Secret mtls-credential in namespace sleep (the sidecar workload's namespace, not the namespace of "
        "the resource that names it)"
    )
    assert "gateway" not in f.message + f.fix
    # negative twin: the Secret beside the app is served to its sidecar
    assert _findings(_at_sidecar("sleep"), "MB207") == []
