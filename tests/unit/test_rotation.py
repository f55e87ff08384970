"""A rotation that cannot finish says where it stopped: which step, where it was pushed, which steps were not run.

On real API servers (tests/cluster/test_rotation.py) the push goes to two clusters; here the push and the check are
played, so that each way a step can stop is shown next to a rotation that runs to its end."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.errors import KubeError
from meshbridge.rotation import RotationError, hold_stages, plan_rotation, rotate
from meshbridge.verify.report import Condition
from tests.builders import issued_store, seed_bridge

SERVED = Condition("GatewaysServeCurrentCerts", "True", "Current", "every gateway pod serves the store", "clusters")


def _refused() -> list[str]:
    raise KubeError("cluster 'gke': apply Secret istio-egress/mtls-credential failed: 403 Forbidden")


def _unreadable() -> list[Condition]:
    raise KubeError("cluster 'eks': port-forward to port 15000 of pod istio-ingress/gw failed")


def test_a_rotation_whose_pushes_and_checks_pass_runs_every_step(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    steps = plan_rotation(store, bridge, "leaf", ["eks", "gke"], None)
    results = rotate(bridge, store, steps, push=lambda: ["eks (eks: 1 Secret(s))"], check=lambda: [SERVED])
    assert [(r.step.mesh, r.ok, r.pushed) for r in results] == [
        ("eks", True, ["eks (eks: 1 Secret(s))"]),
        ("gke", True, ["eks (eks: 1 Secret(s))"]),
    ]


def test_a_push_that_fails_names_the_step_and_the_steps_not_run(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    before = store.load("gke", "client")
    steps = plan_rotation(store, bridge, "leaf", ["eks", "gke"], None)
    with pytest.raises(RotationError) as e:
        rotate(bridge, store, steps, push=_refused, check=lambda: [SERVED])
    assert str(e.value) == (
        "step 1 of 2 (reissue the leaves of eks from its current CA): the store holds its new certificates, but "
        "pushing them failed; not run: step 2 (reissue the leaves of gke from its current CA):\n"
        "cluster 'gke': apply Secret istio-egress/mtls-credential failed: 403 Forbidden\n"
        "Where it stands: the store holds the certificates of step 1, written only where said above. To resume once "
        "the cause is fixed: 'meshbridge certs push' delivers and checks what the store holds, then 'meshbridge "
        "certs rotate --leaf --mesh gke' (rotating eks again would reissue its leaves once more)"
    )
    after = store.load("gke", "client")
    assert before is not None and after is not None and after.serial == before.serial  # step 2 did not run


def test_a_check_that_cannot_run_names_where_the_step_was_pushed(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    steps = plan_rotation(store, bridge, "leaf", ["eks"], None)
    pushed = ["eks (eks: 1 Secret(s))", "gke (gke: 1 Secret(s))"]
    with pytest.raises(RotationError) as e:
        rotate(bridge, store, steps, push=lambda: pushed, check=_unreadable)
    assert str(e.value) == (
        "step 1 of 1 (reissue the leaves of eks from its current CA) was pushed to eks (eks: 1 Secret(s)), "
        "gke (gke: 1 Secret(s)), but the check after it could not run:\n"
        "cluster 'eks': port-forward to port 15000 of pod istio-ingress/gw failed\n"
        "Where it stands: the store holds the certificates of step 1, written only where said above. To resume once "
        "the cause is fixed: 'meshbridge certs push' delivers and checks what the store holds"  # the last step
    )


def test_a_ca_rollover_with_nowhere_to_push_stops_after_each_meshs_next_stage(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    steps = plan_rotation(store, bridge, "ca", ["eks", "gke"], None)
    now, held = hold_stages(steps, delivered=False, peers=[])
    assert [(s.mesh, s.stage) for s in now] == [("eks", 1), ("gke", 1)]
    assert len(held) == 2 and held[0].startswith("eks: stopped after stage 1, the old and the new CA stay trusted")
    assert (
        "certs push --context MESH=CONTEXT" in held[0]
        and "'meshbridge certs rotate --ca --mesh eks --stage 2'" in held[0]
    )
    assert "peer offer" not in held[0]
    results = rotate(bridge, store, now, push=list, check=_unreadable)  # pushed nowhere: the check is not run
    assert [(r.checked, r.pushed) for r in results] == [(False, []), (False, [])]
    assert [store.rollover_stage(m) for m in ("eks", "gke")] == [1, 1]
    later, _ = hold_stages(plan_rotation(store, bridge, "ca", ["eks"], None), delivered=False, peers=[])
    assert [s.stage for s in later] == [2]  # the next run continues one stage on


def test_a_ca_rollover_pushed_somewhere_runs_every_stage_and_checks_each(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    steps = plan_rotation(store, bridge, "ca", ["eks", "gke"], None)
    now, held = hold_stages(steps, delivered=True, peers=[])
    assert now == steps and held == [] and len(steps) == 6
    results = rotate(bridge, store, now, push=lambda: ["local twin (3 proxies reloaded)"], check=lambda: [SERVED])
    assert [(r.checked, r.ok) for r in results] == [(True, True)] * 6


def test_a_ca_rollover_with_a_peer_stops_after_stage_1_until_the_peer_trusts_both_cas(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    now, held = hold_stages(plan_rotation(store, bridge, "ca", ["eks"], None), delivered=True, peers=["gke"])
    assert [s.stage for s in now] == [1] and len(held) == 1
    assert "send gke a new 'meshbridge peer offer'" in held[0] and "carries both CAs" in held[0]
    assert "certs push" not in held[0] and held[0].endswith("'meshbridge certs rotate --ca --mesh eks --stage 2'")
    store.rollover(bridge, "eks", 1)  # the peer got both CAs: stages 2 and 3 go on together
    now, held = hold_stages(plan_rotation(store, bridge, "ca", ["eks"], None), delivered=True, peers=["gke"])
    assert [s.stage for s in now] == [2, 3] and held == []
