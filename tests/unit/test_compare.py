"""The comparison with istiod's configuration (pure): facts, presence, and each documented difference's bounds."""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.compare import DOCUMENTED, Difference, compare, facts, snake_keys
from meshbridge.envoy.routes import duration

ENTRIES = {e.id: e for e in DOCUMENTED}


def _cluster(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "EDS", "lb_policy": "LEAST_REQUEST", **extra}


def test_snake_keys_keeps_the_names_protobuf_maps_hold() -> None:
    raw = {"typedExtensionProtocolOptions": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {"autoSni": 1}}}
    assert snake_keys(raw) == {
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {"auto_sni": 1}}
    }


def test_an_object_only_one_side_has_is_one_difference() -> None:
    ours = facts([], [], [_cluster("a")], [], [])
    theirs = facts([], [], [_cluster("a"), _cluster("b")], [], [])
    assert [d.path for d in compare(ours, theirs)] == ["cluster b"]


def test_the_same_configuration_has_no_difference() -> None:
    one = facts([], [], [_cluster("a", connect_timeout="10s")], [], [])
    assert compare(one, dict(one)) == []


def test_a_changed_setting_is_a_difference_no_entry_explains() -> None:
    ours = facts([], [], [_cluster("a", connect_timeout="10s")], [], [])
    theirs = facts([], [], [_cluster("a", connect_timeout="2s")], [], [])
    (d,) = compare(ours, theirs)
    assert (d.path, d.ours, d.istiod, d.documented) == ("cluster a connect_timeout", "10s", "2s", "")


def test_fd01_covers_typed_dns_and_uri_twins_of_each_untyped_name_only() -> None:
    fd01 = ENTRIES["FD01"]
    path = "cluster a tls subject_alt_names"
    both = ["DNS exact:x.example", "URI exact:x.example"]
    assert fd01.covers(Difference(path, both, ["exact:x.example"]))
    assert not fd01.covers(Difference(path, ["DNS exact:x.example"], ["exact:x.example"]))  # URI missing
    assert not fd01.covers(Difference(path, both, ["exact:y.example"]))  # another name


def test_fd02_covers_one_other_vip_and_nothing_else() -> None:
    fd02 = ENTRIES["FD02"]
    path = "route 80 vhost a:80 domains"
    assert fd02.covers(Difference(path, ["240.240.0.1", "a"], ["240.240.7.9", "a"]))
    assert not fd02.covers(Difference(path, ["240.240.0.1", "a"], ["240.240.7.9", "b"]))
    assert not fd02.covers(Difference(path, ["a"], ["240.240.7.9", "a"]))


def test_fd04_is_about_sidecars_only() -> None:
    fd04 = ENTRIES["FD04"]
    missing = Difference("listener 0.0.0.0_443", None, "present")
    assert fd04.covers(missing, "sidecar")
    assert not fd04.covers(missing, "router")
    assert not fd04.covers(Difference("listener 0.0.0.0_443", "present", None), "sidecar")  # ours extra


def test_fd07_needs_istiods_cluster_to_be_original_dst() -> None:
    fd07 = ENTRIES["FD07"]
    d = Difference("cluster outbound|389||ldap.example", None, "present")
    istiod = {"cluster outbound|389||ldap.example type": "ORIGINAL_DST"}
    assert fd07.covers(d, "sidecar", {}, istiod)
    assert not fd07.covers(d, "sidecar", {}, {"cluster outbound|389||ldap.example type": "EDS"})


def test_fd08_covers_the_cors_filter_but_no_other() -> None:
    fd08 = ENTRIES["FD08"]
    path = "route 80 vhost a:80 route[0] filters"
    assert fd08.covers(Difference(path, [], ["envoy.filters.http.cors"]))
    assert not fd08.covers(Difference(path, [], ["envoy.filters.http.fault"]))  # translated: a difference is a bug
    assert not fd08.covers(Difference(path, [], ["envoy.filters.http.rbac"]))


def test_durations_are_written_as_protobuf_json_writes_them() -> None:
    assert [duration(v) for v in ("5s", "0.8s", "100ms", "1m", "1.5us", "250ms")] == [
        "5s",
        "0.800s",
        "0.100s",
        "60s",
        "0.000001500s",
        "0.250s",
    ]


def _route(action: dict[str, Any], per_filter: dict[str, Any] | None = None) -> dict[str, Any]:
    route: dict[str, Any] = {"match": {"prefix": "/"}, "route": {"cluster": "a", **action}}
    if per_filter is not None:
        route["typed_per_filter_config"] = per_filter
    return {"name": "80", "virtual_hosts": [{"name": "h:80", "domains": ["h"], "routes": [route]}]}


def _mirror(numerator: int, denominator: str | None) -> dict[str, Any]:
    fraction: dict[str, Any] = {"numerator": numerator}
    if denominator is not None:
        fraction["denominator"] = denominator
    return {"request_mirror_policies": [{"cluster": "m", "runtime_fraction": {"default_value": fraction}}]}


def _fault(percentage: dict[str, Any]) -> dict[str, Any]:
    fault = {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}
    return {"envoy.filters.http.fault": {**fault, "abort": {"http_status": 503, "percentage": percentage}}}


def test_a_mirror_fraction_is_one_percentage_whichever_denominator() -> None:
    million = facts([], [_route(_mirror(1_000_000, "MILLION"))], [], [], [])
    hundred = facts([], [_route(_mirror(100, None))], [], [], [])
    assert compare(million, hundred) == []
    tenth = facts([], [_route(_mirror(1000, "MILLION"))], [], [], [])
    assert compare(tenth, facts([], [_route(_mirror(10, "TEN_THOUSAND"))], [], [], [])) == []
    # the twin: a really different share still differs, and says so in percent
    (d,) = compare(facts([], [_route(_mirror(500_000, "MILLION"))], [], [], []), hundred)
    assert (d.path, d.ours, d.istiod) == ("route 80 vhost h:80 route[0] action", _mirrors(50.0), _mirrors(100.0))


def _mirrors(share: float) -> dict[str, Any]:
    return {"cluster": "a", "mirrors": [("m", share)]}


def test_a_fault_percentage_without_numerator_is_zero() -> None:
    zero = facts([], [_route({}, _fault({"numerator": 0, "denominator": "MILLION"}))], [], [], [])
    absent = facts([], [_route({}, _fault({"denominator": "MILLION"}))], [], [], [])
    assert compare(zero, absent) == []
    # the twin: a fault that aborts some requests is not one that aborts none
    some = facts([], [_route({}, _fault({"numerator": 5}))], [], [], [])
    (d,) = compare(some, absent)
    assert d.path == "route 80 vhost h:80 route[0] fault"
    assert (d.ours["abort"]["percentage"], d.istiod["abort"]["percentage"]) == (5.0, 0.0)
