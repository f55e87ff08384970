"""Golden files of the translation: what istiod would push to each proxy of the seed and of the multi-export bridge.

Each proxy's static bootstrap (what ``meshbridge translate --proxy <mesh>/<workload>`` prints) is locked in
``tests/golden/translate/<bridge>/<mesh>/<workload>.yaml``, so a change to the translation shows as a diff in
review; ``pytest --update-golden`` rewrites them (:mod:`tests.golden`, as for the rendered manifests). The files
are stable: the placement is fixed (the plan ``local up`` would make in ``127.0.10.0/24`` for a state folder
named ``state``, unprivileged), and the certificates, issued afresh by each run (at a fixed time: a CA's name holds
it), are written as their subjects.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from meshbridge.envoy.translate import REDACTED, translate
from meshbridge.local.plan import LocalPlan, plan_topology
from meshbridge.local.twin import mesh_configs
from meshbridge.pki import PkiStore
from meshbridge.spec import Bridge
from meshbridge.world import all_proxies, workloads
from tests.builders import SEED, bridge_from, scratch_dir, seed_bridge, two_exports_three_meshes
from tests.golden import check_golden

SUBNET = "127.0.10.0/24"
STATE = Path("state")  # relative: no path of the machine that ran the tests
ISSUED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # the CAs' names hold their issue time
BRIDGES = {"seed": seed_bridge, "multi": lambda: bridge_from(two_exports_three_meshes())}


def _pem_subjects(value: str) -> str | None:
    """``<certificates: subject; …>`` for base64 PEM certificates, else ``None``."""
    try:
        pem = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        return None
    return "<certificates: " + "; ".join(c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(pem)) + ">"


def _stable(value: Any) -> Any:
    """``value`` with every inline PEM certificate written as its subjects (the keys are redacted already)."""
    if isinstance(value, dict):
        return {
            k: (_pem_subjects(v) or v) if k == "inline_bytes" and isinstance(v, str) else _stable(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@functools.cache
def _plan(bridge_name: str) -> tuple[Bridge, LocalPlan]:
    bridge = BRIDGES[bridge_name]()
    return bridge, plan_topology(bridge, STATE, SUBNET, privileged=False)


@functools.cache
def translations(bridge_name: str) -> dict[str, dict[str, Any]]:
    """Proxy name → its static bootstrap, as ``meshbridge translate`` builds it, with the certificates issued."""
    bridge, plan = _plan(bridge_name)
    with scratch_dir("meshbridge-test-golden-") as tmp:  # the store (CA keys) is gone once translated
        store = PkiStore(tmp)
        store.issue(bridge, now=ISSUED)
        configs, _ = mesh_configs(bridge, SEED.parent, store, {})
    return {
        p.name: _stable(
            translate(
                configs[p.mesh], p.proxy, plan.placements[p.name], workloads(bridge, p.mesh, plan.addresses)
            ).static_bootstrap()
        )
        for p in all_proxies(bridge)
        if p.name in plan.placements  # not an egress gateway of a mesh that imports nothing: it runs no proxy
    }


# every proxy the twin runs: (bridge, <mesh>/<workload>)
CASES = [(b, name) for b in BRIDGES for name in _plan(b)[1].placements]


@pytest.mark.parametrize(("bridge_name", "proxy"), CASES, ids=[f"{b}-{p}" for b, p in CASES])
def test_golden_translation(bridge_name: str, proxy: str, update_golden: bool) -> None:
    check_golden(f"translate/{bridge_name}/{proxy}.yaml", [translations(bridge_name)[proxy]], update_golden)


def test_a_changed_translation_fails_its_golden_and_says_how_to_update() -> None:
    changed = dict(translations("seed")["eks/istio-ingressgateway"])
    changed["node"] = {**changed["node"], "cluster": "changed"}
    with pytest.raises(AssertionError) as failure:
        check_golden("translate/seed/eks/istio-ingressgateway.yaml", [changed], update=False)
    assert "output differs from" in str(failure.value)
    assert "translate/seed/eks/istio-ingressgateway.yaml" in str(failure.value)
    assert "run 'pytest --update-golden' if the change is intended" in str(failure.value)


def test_the_golden_files_hold_no_path_of_the_machine_and_no_key() -> None:
    for bridge_name in BRIDGES:
        for name, bootstrap in translations(bridge_name).items():
            text = repr(bootstrap)
            assert str(Path.cwd()) not in text and str(SEED.parent) not in text and "/tmp" not in text, name
            for secret in bootstrap["static_resources"]["secrets"]:
                if "tls_certificate" in secret:
                    assert secret["tls_certificate"]["private_key"] == {"inline_bytes": REDACTED}, name
                    assert secret["tls_certificate"]["certificate_chain"]["inline_bytes"].startswith("<certificates: ")
