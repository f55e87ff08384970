"""An importer VirtualService that binds the egress Gateway but not ``mesh``: the app's sidecar sends the exported
host itself, by the ServiceEntry alone (plain HTTP to the exporter's mutual-TLS port), as istiod builds it (oracle case
``importer-virtual-service-without-mesh``). Lint says MB122 on the VirtualService with the fix, and up's path check
predicts the stop the curl gets; with ``mesh`` listed, or the sidecars' half in a VirtualService without
``gateways``, neither says anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshbridge.envoy.pathsim import path_findings
from meshbridge.lint import LintReport
from tests.builders import seed_bridge
from tests.istio_builders import Docs, doc_named, seed_path
from tests.lint_builders import lint_docs, seed_docs

VS = "direct-lambda-through-egress-gateway"


def _vs(docs: Docs) -> dict[str, Any]:
    return doc_named(docs, "gke", "VirtualService", VS)


def egress_gateway_only(docs: Docs) -> None:
    """The one-VirtualService form, ``gateways`` without ``mesh`` (its ``match.gateways: [mesh]`` route kept)."""
    _vs(docs)["spec"]["gateways"] = ["istio-egress/istio-egressgateway"]


def mesh_listed(docs: Docs) -> None:
    _vs(docs)["spec"]["gateways"] = ["mesh", "istio-egress/istio-egressgateway"]


def mesh_half_missing(docs: Docs) -> None:
    """The two-VirtualService form with only the gateway's half."""
    spec = _vs(docs)["spec"]
    spec["http"] = spec["http"][1:]
    spec["gateways"] = ["istio-egress/istio-egressgateway"]


def mesh_half_without_gateways(docs: Docs) -> None:
    """The two-VirtualService form whole: the sidecars' half omits ``gateways``, which means ``mesh``."""
    route = _vs(docs)["spec"]["http"][0]["route"]
    mesh_half_missing(docs)
    spec = {"hosts": ["lambda.external"], "http": [{"match": [{"port": 80}], "route": route}]}
    meta = {"name": "lambda-from-sidecars", "namespace": "istio-egress"}
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta, "spec": spec}
    docs["gke"].append(vs)


def _lint(edit: Callable[[Docs], None]) -> LintReport:
    docs = seed_docs()
    edit(docs)
    return lint_docs(docs)


@pytest.mark.parametrize("edit", [egress_gateway_only, mesh_half_missing], ids=["one-vs", "two-vs"])
def test_lint_names_the_virtual_service_and_says_add_mesh_before_anything_else(edit: Callable[[Docs], None]) -> None:
    report = _lint(edit)
    first = report.findings[0]
    assert first.code == "MB122", report.table(wide=True)
    (obj,) = first.objects
    assert (obj.mesh, obj.kind, obj.namespace, obj.name, obj.field) == (
        "gke",
        "VirtualService",
        "istio-egress",
        VS,
        "spec.gateways",
    )
    assert first.message == (
        "gateways [istio-egress/istio-egressgateway] does not list mesh, so the VirtualService binds no sidecar: the "
        "sidecar of gke/sleep sends lambda.external:80 to outbound|80||lambda.external (the ServiceEntry's route) "
        "instead of through gke/istio-egressgateway"
    )
    assert first.fix.startswith("add mesh to its gateways (gateways: [mesh, istio-egress/istio-egressgateway])")
    assert "503 UC" in first.symptom
    # the private DestinationRule is not the sidecar's to use: no 'export the DR' (MB106), no MB306 on the sidecar
    assert not {"MB106", "MB306"} & set(report.codes()), report.table(wide=True)
    assert [f.code for f in report.errors] == ["MB122"]


@pytest.mark.parametrize("edit", [mesh_listed, mesh_half_without_gateways], ids=["mesh-listed", "gateways-omitted"])
def test_lint_is_clean_when_the_sidecars_are_bound(edit: Callable[[Docs], None]) -> None:
    report = _lint(edit)
    assert report.findings == (), report.table(wide=True)


def _lint_importer_alone(edit: Callable[[Docs], None]) -> LintReport:
    """Lint the importer's manifests alone, without a spec: no link says lambda.external is imported."""
    docs = seed_docs()
    edit(docs)
    return lint_docs({"gke": docs["gke"]}, world=False)


def test_without_a_spec_the_mesh_half_missing_is_found_by_the_tls_the_gateway_would_add() -> None:
    report = _lint_importer_alone(mesh_half_missing)
    (found,) = [f for f in report.findings if f.code == "MB122"]
    assert found.objects[0].name == VS
    assert "MB106" not in report.codes(), report.table(wide=True)


@pytest.mark.parametrize("edit", [mesh_half_without_gateways, mesh_listed], ids=["gateways-omitted", "mesh-listed"])
def test_without_a_spec_the_bound_sidecars_are_not_found(edit: Callable[[Docs], None]) -> None:
    assert "MB122" not in _lint_importer_alone(edit).codes()


def test_without_a_spec_a_gateway_that_adds_no_tls_is_not_gone_around_harmfully() -> None:
    def plain_egress(docs: Docs) -> None:
        mesh_half_missing(docs)
        docs["gke"].remove(doc_named(docs, "gke", "DestinationRule", "dr-lambda-ext"))

    assert "MB122" not in _lint_importer_alone(plain_egress).codes()


def test_lint_leaves_a_gateway_only_virtual_service_for_a_host_no_app_is_meant_to_send_alone() -> None:
    # the exporter's VirtualService binds its ingress Gateway only, for a host it does not import: no MB122
    report = _lint(lambda _: None)
    assert "MB122" not in report.codes()


@pytest.mark.parametrize("edit", [egress_gateway_only, mesh_half_missing], ids=["one-vs", "two-vs"])
def test_the_path_check_predicts_the_stop_at_the_exporter_that_the_curl_gets(
    tmp_path: Path, edit: Callable[[Docs], None]
) -> None:
    (stop,) = path_findings(seed_bridge(), seed_path(tmp_path, edit))
    assert (stop.app, stop.proxy) == ("gke/sleep", "eks/istio-ingressgateway")
    assert not stop.request.tls  # plain HTTP from the sidecar, as its ServiceEntry cluster sends it
    assert (stop.result.error, stop.result.response_flag) == ("NoFilterChain", "NR")
    assert str(stop).endswith(
        "; gke/sleep sent it there itself (outbound|80||lambda.external), not through gke/istio-egressgateway: no "
        "VirtualService bound to the sidecars (gateways: mesh, or none) routes the host to the egress gateway (lint "
        "MB122) (export lambda, app gke/sleep)"
    )


@pytest.mark.parametrize("edit", [mesh_listed, mesh_half_without_gateways], ids=["mesh-listed", "gateways-omitted"])
def test_the_path_check_passes_when_the_sidecars_are_bound(tmp_path: Path, edit: Callable[[Docs], None]) -> None:
    configs = seed_path(tmp_path, edit)
    assert path_findings(seed_bridge(), configs) == []
