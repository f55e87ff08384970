"""A proxy of the local twin is ready only when its Envoy took every resource it was given (without Envoy:
its counters, config_dump entries and log lines as Envoy 1.40 writes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshbridge.errors import LocalError
from meshbridge.local import twin as twin_module
from meshbridge.local.readiness import (
    Problem,
    Tracker,
    judge,
    mentions,
    parse_stats,
    rejection_messages,
    subscription,
)
from meshbridge.local.twin import ComponentStatus, LocalTwin
from tests.builders import seed_bridge

HEALTHY = {
    "listener_manager.lds.update_rejected": 0,
    "listener_manager.lds.update_success": 1,
    "listener_manager.total_listeners_warming": 0,
    "cluster_manager.cds.update_rejected": 0,
    "cluster_manager.cds.update_success": 1,
    "cluster_manager.warming_clusters": 0,
    "http.outbound_0.0.0.0_8080.rds.http.8080.update_rejected": 0,
    "http.outbound_0.0.0.0_8080.rds.http.8080.update_success": 1,
    "sds.kubernetes_mtls-credential.update_rejected": 0,
    "sds.kubernetes_mtls-credential.update_success": 1,
    "sds.kubernetes_mtls-credential-cacert.update_rejected": 0,
    "sds.kubernetes_mtls-credential-cacert.update_success": 1,
    "cluster.BlackHoleCluster.update_success": 0,  # a static cluster: no subscription, never "never delivered"
}
LOG_PREFIX = "[2026-12-06 19:15:32.738][29273][warning][config] [source/extensions/config_subscription/filesystem/"
MISSING_LINE = (
    LOG_PREFIX + "filesystem_subscription_impl.cc:81] Filesystem config update rejected: Missing SDS resources for "
    "kubernetes://mtls-credential in onConfigUpdate()"
)


def _dump(**groups: list[dict[str, Any]]) -> Any:
    def read(resource: str) -> list[dict[str, Any]]:
        return groups.get(resource, [])

    return read


def test_a_healthy_envoy_has_no_problem_and_no_config_dump_is_read() -> None:
    def never(resource: str) -> list[dict[str, Any]]:
        raise AssertionError(f"read {resource} though every counter was clean")

    assert judge(HEALTHY, Tracker(), never, []) == []


def test_a_secret_that_never_came_is_missing_with_envoys_message() -> None:
    stats = {
        **HEALTHY,
        "sds.kubernetes_mtls-credential.update_rejected": 1,
        "sds.kubernetes_mtls-credential.update_success": 0,
    }
    dump = _dump(dynamic_warming_secrets=[{"name": "kubernetes://mtls-credential", "version_info": "uninitialized"}])
    (problem,) = judge(stats, Tracker(), dump, rejection_messages(MISSING_LINE))
    assert problem == Problem(
        "secret",
        "kubernetes://mtls-credential",
        "missing",
        "Missing SDS resources for kubernetes://mtls-credential in onConfigUpdate()",
    )
    assert str(problem).startswith("secret kubernetes://mtls-credential: never delivered")


def test_a_rejected_route_configuration_is_named_with_envoys_message() -> None:
    stats = {**HEALTHY, "http.outbound_0.0.0.0_8080.rds.http.8080.update_rejected": 1}
    stats["http.outbound_0.0.0.0_8080.rds.http.8080.update_success"] = 0
    rejected = "filesystem_subscription_impl.cc:81] Filesystem config update rejected: "
    log = f"{LOG_PREFIX}{rejected}invalid perl operator: (?="
    (problem,) = judge(stats, Tracker(), _dump(), rejection_messages(log))
    assert (problem.kind, problem.name, problem.state) == ("route", "http.8080", "rejected")
    assert problem.envoy == "invalid perl operator: (?="


def test_a_rejected_listener_is_named_from_its_error_state() -> None:
    stats = {**HEALTHY, "listener_manager.lds.update_rejected": 1}
    failed = {
        "name": "broken_listener",
        "error_state": {"failed_configuration": {"name": "broken_listener"}, "details": "malformed IP: not-an-ip"},
    }
    (problem,) = judge(stats, Tracker(), _dump(dynamic_listeners=[failed, {"name": "0.0.0.0_8080"}]), [])
    assert problem == Problem("listener", "broken_listener", "rejected", "malformed IP: not-an-ip")


def test_warming_listeners_and_clusters_are_named() -> None:
    stats = {**HEALTHY, "listener_manager.total_listeners_warming": 1, "cluster_manager.warming_clusters": 1}
    dump = _dump(
        dynamic_listeners=[{"name": "0.0.0.0_8443", "warming_state": {}}, {"name": "x", "active_state": {}}],
        dynamic_warming_clusters=[{"cluster": {"name": "outbound|443||alb.internal.example.com"}}],
    )
    assert [(p.kind, p.name, p.state) for p in judge(stats, Tracker(), dump, [])] == [
        ("listener", "0.0.0.0_8443", "warming"),
        ("cluster", "outbound|443||alb.internal.example.com", "warming"),
    ]


def test_a_rejection_lasts_until_a_later_update_is_accepted() -> None:
    """Envoy's counters only grow: the tracker remembers a rejection, and forgets it on the next success."""
    key = "sds.kubernetes_mtls-credential"
    tracker = Tracker()
    assert tracker.update({f"{key}.update_rejected": 0, f"{key}.update_success": 1}) == set()
    assert tracker.update({f"{key}.update_rejected": 1, f"{key}.update_success": 1}) == {key}
    assert tracker.update({f"{key}.update_rejected": 1, f"{key}.update_success": 1}) == {key}  # still the last
    assert tracker.update({f"{key}.update_rejected": 1, f"{key}.update_success": 2}) == set()
    # both grew between two probes: the resource's state now decides
    assert tracker.update({f"{key}.update_rejected": 2, f"{key}.update_success": 3}, lambda _: True) == {key}
    assert tracker.update({f"{key}.update_rejected": 3, f"{key}.update_success": 4}, lambda _: False) == set()


def test_stat_prefixes_name_their_resources() -> None:
    assert subscription("listener_manager.lds") == ("listener", "")
    assert subscription("cluster_manager.cds") == ("cluster", "")
    assert subscription("http.outbound_0.0.0.0_8080.rds.http.8080") == ("route", "http.8080")
    assert subscription("sds.kubernetes_mtls-credential") == ("secret", "kubernetes_mtls-credential")
    assert subscription("cluster.outbound|80||lambda.external") == ("endpoints", "outbound|80||lambda.external")
    assert parse_stats("a.b: 3\nc: No recorded values\nd.e: 0\n") == {"a.b": 3, "d.e": 0}


def test_a_message_about_the_ca_secret_is_not_one_about_the_certificate() -> None:
    about_ca = "Missing SDS resources for kubernetes://cred-cacert in onConfigUpdate()"
    assert mentions("kubernetes://cred-cacert", about_ca)
    assert not mentions("kubernetes://cred", about_ca)
    assert mentions("kubernetes://cred", "Missing SDS resources for kubernetes://cred in onConfigUpdate()")


def test_a_multi_line_rejection_is_one_message() -> None:
    log = (
        f"{LOG_PREFIX}filesystem_subscription_impl.cc:81] Filesystem config update rejected: Invalid duration: "
        "Expected positive duration: goo.gle/debugstr\nseconds: -5\n\n"
        "[2026-12-06 19:16:22.399][32706][warning][main] [source/server/server.cc:1059] There is no limit\n"
    )
    assert rejection_messages(log) == ["Invalid duration: Expected positive duration: goo.gle/debugstr seconds: -5"]


def _status(problems: tuple[Problem, ...], live: bool = True) -> ComponentStatus:
    return ComponentStatus(
        "gke/istio-egressgateway", "gke", "envoy", "127.0.0.11", 42, False, 0, "log", None, (), live, problems
    )


def test_a_proxy_missing_a_secret_is_not_ready_unless_a_scenario_allows_it_by_name() -> None:
    missing = _status((Problem("secret", "kubernetes://mtls-credential", "missing"),))
    assert not missing.ready and not missing.ready_for()
    assert missing.ready_for(allow_missing_secrets=True)
    # the negative twins: a rejection, a warming listener or a process that does not answer is never allowed
    for problems in (
        (Problem("secret", "kubernetes://mtls-credential", "rejected"),),
        (Problem("listener", "0.0.0.0_8443", "warming"),),
        (Problem("secret", "kubernetes://a", "missing"), Problem("route", "http.8080", "rejected")),
    ):
        assert not _status(problems).ready_for(allow_missing_secrets=True), problems
    assert not _status(missing.problems, live=False).ready_for(allow_missing_secrets=True)


def _twin_with_status(tmp_path: Path, components: list[dict[str, Any]]) -> LocalTwin:
    twin = LocalTwin(seed_bridge(), tmp_path / "bridge.yaml", tmp_path / "state")
    twin.root.mkdir(parents=True)
    (twin.root / "status.json").write_text(json.dumps({"components": components}))
    return twin


def _component(name: str, ready: bool, problems: list[Problem]) -> dict[str, Any]:
    return {
        "name": name,
        "address": "127.0.0.10",
        "ready": ready,
        "live": True,
        "problems": [p.to_dict() for p in problems],
        "log": f"/state/{name}/envoy.log",
    }


def test_up_fails_naming_the_proxy_the_resource_envoys_message_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twin_module, "READY_SETTLE_S", 0.1)
    missing = Problem(
        "secret", "kubernetes://other-cred", "missing", "Missing SDS resources for kubernetes://other-cred"
    )
    route = Problem("route", "http.8080", "rejected", "invalid perl operator: (?=")
    twin = _twin_with_status(
        tmp_path,
        [_component("dns", True, []), _component("gke/istio-egressgateway", False, [missing, route])],
    )
    with pytest.raises(LocalError) as e:
        twin._wait_ready(lambda _: None)
    text = str(e.value)
    assert "cannot start (everything was stopped)" in text and "gke/istio-egressgateway is live but not ready" in text
    assert 'secret kubernetes://other-cred: never delivered: Envoy still waits for it (Envoy: "Missing SDS' in text
    assert "Fix: the twin gave it" in text and "certs push" in text  # no translation known: the file changed
    assert "route http.8080: Envoy rejected its update" in text and '"invalid perl operator: (?="' in text
    assert "--proxy gke/istio-egressgateway --validate" in text and "meshbridge lint -f" in text


def test_up_waits_for_a_proxy_that_becomes_ready_and_names_no_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The negative twin: a live proxy without problems is waited for; once ready, 'up' returns."""
    monkeypatch.setattr(twin_module, "READY_SETTLE_S", 0.1)
    twin = _twin_with_status(tmp_path, [_component("gke/istio-egressgateway", True, [])])
    seen: list[str] = []
    twin._wait_ready(seen.append)
    assert seen == ["  ready: gke/istio-egressgateway (127.0.0.10)"]
