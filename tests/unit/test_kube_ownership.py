"""Taking over what a client-side ``kubectl apply`` made, and a 409 in one line (pure); the real server's side is
tests/cluster/test_real_server_defects.py."""

from __future__ import annotations

import datetime as dt

from meshbridge.kube.ownership import (
    LAST_APPLIED,
    client_side_managers,
    co_owned,
    conflict_summary,
    taken_fields,
    takeover_patch,
)

CSA_FIELDS = {
    "f:metadata": {
        "f:annotations": {".": {}, f"f:{LAST_APPLIED}": {}},
        "f:labels": {".": {}, "f:meshbridge.io/bridge": {}},
    },
    "f:spec": {".": {}, "f:exportTo": {}, "f:host": {}},
}


def made_by_kubectl(**extra: object) -> dict[str, object]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {
            "name": "dr",
            "namespace": "ns",
            "resourceVersion": "42",
            "annotations": {LAST_APPLIED: "{}", "team": "a"},
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "networking.istio.io/v1beta1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": CSA_FIELDS,
                },
                *extra.get("more", []),  # type: ignore[misc]
            ],
        },
    }


NOW = dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC)


def test_the_client_side_fields_move_to_meshbridges_apply_entry_and_the_annotation_goes() -> None:
    ops = takeover_patch(made_by_kubectl(), now=NOW)
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}
    assert ops[2] == {"op": "remove", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"}
    (entry,) = ops[1]["value"]
    assert entry["manager"] == "meshbridge" and entry["operation"] == "Apply"
    assert entry["apiVersion"] == "networking.istio.io/v1beta1" and entry["time"] == "2026-12-06T20:00:00Z"
    fields = entry["fieldsV1"]
    assert fields["f:spec"] == {".": {}, "f:exportTo": {}, "f:host": {}}
    assert "f:annotations" not in fields["f:metadata"]  # only the last-applied annotation was kubectl's


def test_meshbridges_own_entry_is_extended_and_other_managers_are_kept() -> None:
    mine = {
        "manager": "meshbridge",
        "operation": "Apply",
        "apiVersion": "networking.istio.io/v1",
        "fieldsV1": {"f:spec": {"f:trafficPolicy": {}}},
    }
    other = {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:subsets": {}}}}
    ops = takeover_patch(made_by_kubectl(more=[mine, other]), now=NOW)
    entries = ops[1]["value"]
    assert [e["manager"] for e in entries] == ["meshbridge", "kubectl-edit"]
    assert entries[0]["fieldsV1"]["f:spec"] == {"f:trafficPolicy": {}, ".": {}, "f:exportTo": {}, "f:host": {}}


def test_nothing_to_take_over_without_a_client_side_manager() -> None:
    doc = made_by_kubectl()
    doc["metadata"]["managedFields"] = [{"manager": "meshbridge", "operation": "Apply"}]  # type: ignore[index]
    assert takeover_patch(doc) == [] and client_side_managers(doc) == [] and co_owned(doc) == ""
    assert client_side_managers(made_by_kubectl()) == ["kubectl-client-side-apply"]
    assert co_owned(made_by_kubectl()).startswith("co-owned with kubectl-client-side-apply")


def test_a_409_in_one_line_names_the_manager_and_its_fields() -> None:
    server = (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using networking.istio.io/v1beta1:'
        "\n- .spec.host\n- .spec.trafficPolicy.portLevelSettings"
    )
    with_causes = (
        server + ' (.spec.host: conflict with "kubectl-client-side-apply" using networking.istio.io/v1beta1; '
        '.spec.trafficPolicy.portLevelSettings: conflict with "kubectl-client-side-apply" using '
        "networking.istio.io/v1beta1)"
    )
    expected = (
        "kubectl-client-side-apply (a client-side 'kubectl apply') owns .spec.host, "
        ".spec.trafficPolicy.portLevelSettings"
    )
    assert conflict_summary(with_causes) == expected
    assert conflict_summary(server) == expected
    one = 'Apply failed with 1 conflict: conflict with "kubectl-edit" using networking.istio.io/v1: .spec.servers'
    assert conflict_summary(one) == "kubectl-edit owns .spec.servers"
    assert conflict_summary("something else") == "something else"


VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "vs-lambda", "namespace": "istio-ingress", "labels": {"meshbridge.io/bridge": "b"}},
    "spec": {"hosts": ["lambda.external"], "http": [{"route": [{"destination": {"host": "lambda"}}]}]},
}
MESHBRIDGE = {
    "manager": "meshbridge",
    "operation": "Apply",
    "fieldsV1": {
        "f:metadata": {"f:labels": {"f:meshbridge.io/bridge": {}}},
        "f:spec": {"f:hosts": {}, "f:http": {}},
    },
}


def live_vs(*entries: dict[str, object]) -> dict[str, object]:
    return {**VS, "metadata": {**VS["metadata"], "managedFields": [MESHBRIDGE, *entries]}}  # type: ignore[dict-item]


def test_a_field_another_manager_took_over_is_named_with_its_path() -> None:
    # an admin's PUT added timeout: 1s to the route: the whole atomic list .spec.http is now the editor's
    edit = {"manager": "OpenAPI-Generator", "operation": "Update", "fieldsV1": {"f:spec": {"f:http": {}}}}
    assert taken_fields(live_vs(edit), VS) == {"OpenAPI-Generator": [".spec.http"]}
    label = {"manager": "kubectl-label", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}
    label["fieldsV1"]["f:metadata"]["f:labels"]["f:meshbridge.io/bridge"] = {}
    assert taken_fields(live_vs(label), VS) == {"kubectl-label": [".metadata.labels.meshbridge.io/bridge"]}


def test_fields_meshbridge_does_not_render_or_a_client_side_apply_are_not_taken() -> None:
    assert taken_fields(live_vs(), VS) == {}
    note = {"manager": "kubectl-annotate", "operation": "Update", "fieldsV1": {"f:metadata": {"f:annotations": {}}}}
    istiod = {"manager": "pilot-discovery", "operation": "Update", "subresource": "status"}
    istiod["fieldsV1"] = {"f:status": {}}
    csa = {"manager": "kubectl-client-side-apply", "operation": "Update", "fieldsV1": {"f:spec": {"f:http": {}}}}
    assert taken_fields(live_vs(note, istiod, csa), VS) == {}
