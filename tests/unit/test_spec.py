"""The Bridge spec: the seed validates, and every kind of bad input gets a message with line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.cli.init_cmd import seed_text
from meshbridge.errors import SpecError
from meshbridge.spec import load_bridge, parse_bridge
from tests.builders import ROOT, SEED, bridge_from, seed_dict, two_exports_three_meshes


def _error(data: dict | str) -> SpecError:
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(SpecError) as exc:
        parse_bridge(text, source="bridge.yaml")
    return exc.value


def test_seed_validates_as_the_article() -> None:
    b = load_bridge(SEED)
    ex = b.export("lambda")
    assert (ex.host, ex.port, ex.gateway_port, ex.from_, ex.to) == ("lambda.external", 80, 443, "eks", ["gke"])
    assert b.spec.meshes["eks"].ingress_gateway is not None
    assert b.spec.meshes["eks"].ingress_gateway.target_port(443) == 8443
    assert b.spec.meshes["gke"].egress_gateway is not None
    assert b.spec.meshes["gke"].egress_gateway.target_port(80) == 8080
    assert b.spec.meshes["eks"].istio.networking_api_version == "networking.istio.io/v1beta1"


def test_init_writes_the_shipped_example() -> None:
    for name in ("bridge.yaml", "handler.py"):
        assert seed_text(name) == (ROOT / "examples" / "seed" / name).read_text()


def test_several_exports_and_importers_are_expressible() -> None:
    b = bridge_from(two_exports_three_meshes())
    assert [e.name for e in b.exports_from("eks")] == ["lambda", "orders"]
    assert [e.name for e in b.exports_to("gke")] == ["lambda", "orders"]
    assert [e.name for e in b.exports_to("aks")] == ["lambda"]


def test_unknown_key_names_file_line_path_and_suggests_the_right_one() -> None:
    text = SEED.read_text().replace("      gatewayPort: 443", "      gatewayPort: 443\n      gatewayPrt: 443")
    err = _error(text)
    (issue,) = err.issues
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "gatewayPrt" in ln)
    assert (issue.source, issue.line, issue.path) == ("bridge.yaml", line, "spec.exports[0].gatewayPrt")
    assert "unknown field 'gatewayPrt'" in issue.problem
    assert "did you mean 'gatewayPort'?" in issue.fix
    assert f"bridge.yaml:{line}: spec.exports[0].gatewayPrt" in str(err)


def test_unknown_key_inside_a_mesh_lists_that_models_fields() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["adress"] = "x.example.com"
    (issue,) = _error(d).issues
    assert issue.path == "spec.meshes.eks.ingressGateway.adress"
    assert "did you mean 'address'?" in issue.fix


def test_value_out_of_range_says_the_bound() -> None:
    d = seed_dict()
    d["spec"]["exports"][0]["backend"]["port"] = 70000
    (issue,) = _error(d).issues
    assert issue.path == "spec.exports[0].backend.port"
    assert "got 70000" in issue.problem and "≤ 65535" in issue.fix


def test_missing_required_field() -> None:
    d = seed_dict()
    del d["spec"]["exports"][0]["host"]
    (issue,) = _error(d).issues
    assert issue.path == "spec.exports[0].host"
    assert "required field 'host' is missing" in issue.problem


def test_invalid_yaml_points_at_the_line() -> None:
    err = _error("apiVersion: meshbridge.io/v1alpha1\nkind: Bridge\nmetadata: {name: x\n")
    assert err.issues[0].line is not None and "not valid YAML" in err.issues[0].problem


def test_wrong_api_version_and_kind() -> None:
    d = seed_dict()
    d["apiVersion"] = "meshbridge.io/v1"
    d["kind"] = "Link"
    paths = {i.path for i in _error(d).issues}
    assert paths == {"apiVersion", "kind"}


def test_export_to_an_undefined_mesh() -> None:
    d = seed_dict()
    d["spec"]["exports"][0]["to"] = ["gcp"]
    (issue,) = _error(d).issues
    assert issue.path == "spec.exports[0].to[0]"
    assert "mesh 'gcp' is not defined in spec.meshes (defined: eks, gke)" in issue.problem


def test_exporter_without_ingress_gateway_and_importer_without_egress_gateway() -> None:
    d = seed_dict()
    del d["spec"]["meshes"]["eks"]["ingressGateway"]
    del d["spec"]["meshes"]["gke"]["egressGateway"]
    problems = [i.problem for i in _error(d).issues]
    assert any("has no ingressGateway" in p for p in problems)
    assert any("has no egressGateway" in p for p in problems)


def test_gateway_service_must_expose_the_server_port() -> None:
    """Case L07 at the spec level: a server on 443 needs a Service port 443 on the selected gateway."""
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = [{"name": "http2", "port": 80, "targetPort": 8080}]
    (issue,) = _error(d).issues
    assert issue.path == "spec.exports[0].gatewayPort"
    assert "exposes no port 443 (it has [80])" in issue.problem
    assert "add it to ingressGateway.ports" in issue.fix


def test_credential_name_must_not_end_in_cacert() -> None:
    """Case L03: istiod reserves the -cacert suffix."""
    d = seed_dict()
    d["spec"]["tls"]["credentialName"] = "mtls-cacert"
    (issue,) = _error(d).issues
    assert issue.path == "spec.tls"
    assert "reserves for CA bundles" in issue.problem


def test_hosts_must_be_lowercase_dns_names() -> None:
    d = seed_dict()
    d["spec"]["exports"][0]["host"] = "Lambda.External"
    assert "must be lowercase" in _error(d).issues[0].problem
    d["spec"]["exports"][0]["host"] = "*.external"
    assert "not a valid DNS host name" in _error(d).issues[0].problem


def test_handler_form() -> None:
    d = seed_dict()
    d["spec"]["exports"][0]["backend"]["local"]["handler"] = "handler.lambda_handler"
    assert "FILE.py:FUNCTION" in _error(d).issues[0].problem


def test_duplicate_export_names_and_hosts() -> None:
    d = seed_dict()
    d["spec"]["exports"].append(dict(d["spec"]["exports"][0]))
    problems = [i.problem for i in _error(d).issues]
    assert any("used twice" in p for p in problems)
    assert any("imports host 'lambda.external' twice" in p for p in problems)


def test_aws_section_needs_an_export_when_there_are_several() -> None:
    d = two_exports_three_meshes()
    d["spec"]["aws"] = seed_dict()["spec"]["aws"]
    del d["spec"]["aws"]["export"]
    (issue,) = _error(d).issues
    assert issue.path == "spec.aws.export"


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="run 'meshbridge init'"):
        load_bridge(tmp_path / "bridge.yaml")


def test_every_field_is_documented() -> None:
    from pydantic import BaseModel

    from meshbridge.spec import models

    undocumented = [
        f"{cls.__name__}.{name}"
        for cls in vars(models).values()
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == models.__name__
        for name, field in cls.model_fields.items()
        if not field.description
    ]
    assert undocumented == []


def test_docs_spec_reference_is_up_to_date() -> None:
    from meshbridge.spec.reference import spec_reference

    assert (ROOT / "docs" / "spec.md").read_text() == spec_reference() + "\n", (
        "docs/spec.md is stale: python -m meshbridge.spec.reference > docs/spec.md"
    )


def test_a_leaf_cannot_outlive_its_ca() -> None:
    d = seed_dict()
    d["spec"]["tls"].update({"leafValidityDays": 300, "caValidityDays": 100})
    (issue,) = _error(d).issues
    assert issue.path == "spec.tls" and "cannot outlive the CA" in issue.problem
    assert "shorten leafValidityDays" in issue.fix


def test_a_key_given_twice_is_an_error_not_a_silent_override() -> None:
    text = SEED.read_text().replace("      port: 80 ", "      port: 81\n      port: 80 ")
    (issue,) = _error(text).issues
    assert issue.path == "spec.exports[0].port"
    assert "given twice (first at line" in issue.problem
