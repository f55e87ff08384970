"""Rotation under constant load: no request lost, no Envoy restarted, the SDS counters move (S13, S14)."""

from __future__ import annotations

import time

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.verify.local import served_certificates, verify_local
from tests.reliability.conftest import Load, envoy_pids, error_lines, p99_ms, record, sds_updates, sent_and_failed

pytestmark = pytest.mark.reliability
GATEWAYS = ("eks/istio-ingressgateway", "gke/istio-egressgateway")


def _push(twin: LocalTwin) -> None:
    twin.refresh_secrets()
    served = served_certificates(twin)
    assert served.passed, served.message


def test_leaf_rotation_of_both_sides_loses_no_request(twin: LocalTwin) -> None:
    store = PkiStore(twin.state_dir)
    before_pids, before_sds = envoy_pids(twin), {g: sds_updates(twin, g) for g in GATEWAYS}
    old = {m: store.load(m, s).serial for m, s in (("eks", "server"), ("gke", "client"))}  # type: ignore[union-attr]
    with Load(twin, seconds=6) as load:
        t0 = time.monotonic()
        store.rotate_leaves(twin.bridge, ["eks", "gke"])
        _push(twin)
        pushed_in = time.monotonic() - t0
    r = load.result
    assert r is not None and r.sent == 300
    assert (r.ok, r.errors) == (r.sent, {})
    assert envoy_pids(twin) == before_pids  # nothing restarted
    assert all(sds_updates(twin, g) > before_sds[g] for g in GATEWAYS)  # reloaded through SDS
    assert {m: store.load(m, s).serial for m, s in (("eks", "server"), ("gke", "client"))} != old  # type: ignore[union-attr]
    record(
        "leaf rotation of both sides",
        sent=r.sent,
        failed=r.sent - r.ok,
        rotated_and_served_in_s=round(pushed_in, 2),
        envoys_restarted=sum(envoy_pids(twin)[n] != pid for n, pid in before_pids.items()),
        sds_updates={g: sds_updates(twin, g) - before_sds[g] for g in GATEWAYS},
        p99_ms=p99_ms(r),
    )


def test_staged_ca_rollover_of_both_meshes_loses_no_request(twin: LocalTwin) -> None:
    store = PkiStore(twin.state_dir)
    before_pids, before_sds = envoy_pids(twin), {g: sds_updates(twin, g) for g in GATEWAYS}
    old_cas = {m: store.load(m, "ca").subject for m in ("eks", "gke")}  # type: ignore[union-attr]
    with Load(twin, seconds=10) as load:
        for stage in (1, 2, 3):
            for mesh in ("eks", "gke"):
                store.rollover(twin.bridge, mesh, stage)
                _push(twin)
            if stage == 2:  # both meshes mid-rollover: leaves from the new CAs, both CAs trusted
                failed = [f"{c.check}: {c.message}" for c in verify_local(twin) if not c.passed]
                assert failed == []
    r = load.result
    assert r is not None and (r.ok, r.errors) == (r.sent, {}), error_lines(twin)
    assert envoy_pids(twin) == before_pids
    assert all(sds_updates(twin, g) > before_sds[g] for g in GATEWAYS)  # reloaded through SDS
    assert {m: store.load(m, "ca").subject for m in ("eks", "gke")} != old_cas  # type: ignore[union-attr]
    assert all(store.rollover_stage(m) == 0 for m in ("eks", "gke"))
    record(
        "staged CA rollover of both meshes (stages 1-3)",
        sent=r.sent,
        failed=r.sent - r.ok,
        envoys_restarted=sum(envoy_pids(twin)[n] != pid for n, pid in before_pids.items()),
        sds_updates={g: sds_updates(twin, g) - before_sds[g] for g in GATEWAYS},
        p99_ms=p99_ms(r),
    )


def test_out_of_order_rollover_is_refused(twin: LocalTwin) -> None:
    from meshbridge.errors import PkiError

    with pytest.raises(PkiError, match="the next stage is 1, not 3"):
        PkiStore(twin.state_dir).rollover(twin.bridge, "eks", 3)


SIDECAR = "gke/sleep"
TO_EGRESS = "cluster.outbound|80|lambda|istio-egressgateway.istio-egress.svc.cluster.local"


def test_narrowing_the_egress_upstream_trust_keeps_the_sidecar_connections(twin: LocalTwin) -> None:
    """A revocation on the exporter's CRL narrows what the egress accepts upstream, and nothing else: the
    connections the sidecar keeps to the egress (plain HTTP, no certificate) have no reason to close."""
    closed = f"{TO_EGRESS}.upstream_cx_destroy_remote"
    with Load(twin, seconds=4) as load:
        time.sleep(1)
        before = twin.stats(SIDECAR)[closed]
        PkiStore(twin.state_dir).revoke("eks", 0x5EED)
        assert "drained" in twin.refresh_secrets()["gke/istio-egressgateway"]
        time.sleep(2)  # the egress's drain time is 1 s
        after = twin.stats(SIDECAR)[closed]
    sent, failed = sent_and_failed(load)
    assert after == before, (
        f"the egress closed {after - before} of the sidecar's connections; {failed} of {sent} requests failed: "
        f"{error_lines(twin)}"
    )
    record(
        "trust narrowing at the egress (a revocation on the exporter's CRL)",
        sent=sent,
        failed=failed,
        errors=load.result.errors if load.result else {},
        sidecar_connections_closed_by_the_egress=after - before,
        p99_ms=p99_ms(load.result),
    )
