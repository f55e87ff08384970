"""The Bridge spec: the seed validates, and every kind of bad input gets a message with line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.cli.common import seed_text
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
    """MB112 at the spec level: a server on 443 needs a Service port 443 on the selected gateway."""
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = [{"name": "http2", "port": 80, "targetPort": 8080}]
    (issue,) = _error(d).issues
    assert issue.path == "spec.exports[0].gatewayPort"
    assert "exposes no port 443 (it has [80])" in issue.problem
    assert "add it to ingressGateway.ports" in issue.fix


def test_credential_name_must_not_end_in_cacert() -> None:
    """MB203: istiod reserves the -cacert suffix, in spec.tls and in a mesh's own credentialName."""
    d = seed_dict()
    d["spec"]["tls"]["credentialName"] = "mtls-cacert"
    d["spec"]["meshes"]["gke"]["credentialName"] = "gke-cacert"
    issues = {i.path: i for i in _error(d).issues}
    assert set(issues) == {"spec.tls.credentialName", "spec.meshes.gke.credentialName"}
    assert (
        "'gke-cacert' ends in '-cacert', a suffix istiod reserves for CA bundles"
        in issues["spec.meshes.gke.credentialName"].problem
    )
    assert issues["spec.tls.credentialName"].fix == "pick a name without it, e.g. 'mtls-credential'"


def test_each_mesh_may_name_its_own_credential() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["gke"]["credentialName"] = "gke-egress-mtls"
    b = bridge_from(d)
    assert (b.credential_name("gke"), b.credential_name("eks")) == ("gke-egress-mtls", "mtls-credential")
    # negative twin: without its own name a mesh uses spec.tls.credentialName, and a bad one is refused
    assert bridge_from(seed_dict()).credential_name("gke") == "mtls-credential"
    d["spec"]["meshes"]["gke"]["credentialName"] = "Gke_Mtls"
    (issue,) = _error(d).issues
    assert issue.path == "spec.meshes.gke.credentialName" and "not a DNS-1123 label" in issue.problem


def _aliased(**export: object) -> dict:
    d = seed_dict()
    d["spec"]["exports"][0].update({"host": "c2.example.com", "port": 5000, **export})
    return d


def test_apps_may_call_another_name_than_the_exported_host() -> None:
    ex = bridge_from(_aliased(importAs={"host": "hw.sleep.svc.cluster.local"}, egressGatewayPort=80)).export("lambda")
    assert (ex.import_host, ex.host, ex.port, ex.egress_port) == (
        "hw.sleep.svc.cluster.local",
        "c2.example.com",
        5000,
        80,
    )
    # negative twin: without importAs apps call the exported host
    assert bridge_from(seed_dict()).export("lambda").import_host == "lambda.external"


def test_a_short_import_name_is_refused_with_the_name_in_full() -> None:
    """A VirtualService reads 'hw' as hw.<its namespace>.svc.cluster.local, a ServiceEntry as 'hw'."""
    (issue,) = _error(_aliased(importAs={"host": "hw"}, egressGatewayPort=80)).issues
    assert issue.path == "spec.exports[0].importAs.host"
    assert "'hw' is a short name: a VirtualService reads it as 'hw.<its namespace>.svc.cluster.local'" in issue.problem
    assert issue.fix.startswith("write the name in full, e.g. 'hw.sleep.svc.cluster.local'")


def test_an_import_name_equal_to_the_host_or_taken_by_another_export_is_refused() -> None:
    (issue,) = _error(_aliased(importAs={"host": "c2.example.com"}, egressGatewayPort=80)).issues
    assert (
        issue.path == "spec.exports[0].importAs.host"
        and "is the exported host 'c2.example.com' itself" in issue.problem
    )
    assert issue.fix.startswith("remove importAs")
    d = two_exports_three_meshes()
    d["spec"]["exports"][1]["importAs"] = {"host": "lambda.external"}
    (issue,) = _error(d).issues
    assert issue.path == "spec.exports[1].importAs.host"
    assert issue.problem == "mesh 'gke' imports host 'lambda.external' twice (also from export 'lambda')"


def test_the_apps_port_need_not_be_a_port_of_the_egress_gateway_service() -> None:
    """Apps call 5000; the egress gateway's Service has Istio's chart ports: egressGatewayPort picks one of them."""
    (issue,) = _error(_aliased()).issues
    assert issue.path == "spec.exports[0].port"
    assert (
        "istio-egress/istio-egressgateway of mesh 'gke' exposes no port 5000 (it has [80, 443, 15021])" in issue.problem
    )
    assert issue.fix == (
        "set egressGatewayPort to one of its ports, e.g. 80 (apps keep calling 5000), or add 5000 to "
        "egressGateway.ports"
    )
    assert bridge_from(_aliased(egressGatewayPort=80)).export("lambda").egress_port == 80
    # negative twin: an egressGatewayPort the Service truly lacks is still refused, as is one of Istio's own
    (issue,) = _error(_aliased(egressGatewayPort=8080)).issues
    assert issue.path == "spec.exports[0].egressGatewayPort"
    assert "exposes no port 8080 (it has [80, 443, 15021])" in issue.problem
    assert issue.fix == "add it to egressGateway.ports or set egressGatewayPort to one of its ports, e.g. 80"
    (issue,) = _error(_aliased(egressGatewayPort=15021)).issues
    assert issue.path == "spec.exports[0].egressGatewayPort" and "Istio's health-check port" in issue.problem


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
    with pytest.raises(SpecError) as e:
        load_bridge(tmp_path / "bridge.yaml")
    assert f"run 'meshbridge init {tmp_path}' to write one" in str(e.value)


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


# -- YAML booleans are not numbers ---------------------------------------------------------------------


def _number_fields() -> list[tuple[type, str, str]]:
    """(model, field name, YAML key) of every int or float field of every spec model."""
    from pydantic import BaseModel

    from meshbridge.spec import models

    return [
        (cls, name, field.alias or name)
        for cls in vars(models).values()
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == models.__name__
        for name, field in cls.model_fields.items()
        if models._number_shape(field.annotation) is not None
    ]


def test_a_yaml_boolean_in_a_number_field_is_refused_with_line_path_and_fix() -> None:
    """``leafValidityDays: true`` (or ``yes``) used to issue 1-day leaves: pydantic's lax mode reads true as 1."""
    text = SEED.read_text().replace("leafValidityDays: 90", "leafValidityDays: yes")
    (issue,) = _error(text).issues
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "leafValidityDays" in ln)
    assert (issue.line, issue.path) == (line, "spec.tls.leafValidityDays")
    assert issue.problem == "must be a number, got a boolean (yes)"
    assert issue.fix == "write a number, e.g. 90"
    d = seed_dict()
    d["spec"]["tls"]["leafValidityDays"] = True
    (issue,) = _error(d).issues
    assert str(issue) == (
        f"bridge.yaml:{issue.line}: spec.tls.leafValidityDays: must be a number, got a boolean (true). "
        "Fix: write a number, e.g. 90"
    )
    # negative twin: a number is a number
    d["spec"]["tls"]["leafValidityDays"] = 30
    assert bridge_from(d).spec.tls.leaf_validity_days == 30


def test_a_boolean_port_is_refused_as_such_not_as_a_missing_port_1() -> None:
    d = seed_dict()
    d["spec"]["exports"][0]["port"] = True
    (issue,) = _error(d).issues  # and no "exposes no port 1"
    assert (issue.path, issue.problem) == ("spec.exports[0].port", "must be a number, got a boolean (true)")
    assert issue.fix == "write a number, e.g. 80"
    d["spec"]["exports"][0]["port"] = 80
    assert bridge_from(d).export("lambda").port == 80


def test_booleans_are_refused_in_optional_number_fields_and_in_list_items() -> None:
    d = seed_dict()
    d["spec"]["exports"][0]["timeout"] = False
    (issue,) = _error(d).issues
    assert (issue.path, issue.problem) == ("spec.exports[0].timeout", "must be a number, got a boolean (false)")
    assert issue.fix == "write a number, e.g. 30"
    d["spec"]["exports"][0]["timeout"] = 30
    assert bridge_from(d).export("lambda").timeout == 30.0
    # a list of ports: the item is named, with its line
    d = seed_dict()
    ports = [
        {"name": "status-port", "port": 15021, "targetPort": 15021},
        {"name": "https", "port": 443, "targetPort": True},
    ]
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = ports
    (issue,) = _error(d).issues
    assert issue.path == "spec.meshes.eks.ingressGateway.ports[1].targetPort"
    assert (issue.problem, issue.fix) == ("must be a number, got a boolean (true)", "write a number, e.g. 8443")
    ports[1]["targetPort"] = 8443
    assert bridge_from(d).spec.meshes["eks"].ingress_gateway.target_port(443) == 8443  # type: ignore[union-attr]


def test_booleans_are_refused_inside_lists_and_maps_of_numbers() -> None:
    """The base model checks numbers wherever a field's type holds them (no spec field is a list of ints yet)."""
    from pydantic import ValidationError

    from meshbridge.spec.models import PortNumber, _Model

    class Ports(_Model):
        ports: list[PortNumber]
        weights: dict[str, float] | None = None

    with pytest.raises(ValidationError) as exc:
        Ports.model_validate({"ports": [443, True], "weights": {"a": 1.5, "b": False}})
    errors = {e["loc"]: e for e in exc.value.errors()}
    assert errors[("ports",)]["type"] == "bool_not_number" and errors[("ports",)]["ctx"]["at"] == (1,)
    assert errors[("weights",)]["ctx"]["at"] == ("b",)
    ok = Ports.model_validate({"ports": [443, 8443], "weights": {"a": 1.5, "b": 0}})
    assert ok.ports == [443, 8443] and ok.weights == {"a": 1.5, "b": 0.0}


@pytest.mark.parametrize(("model", "name", "key"), _number_fields(), ids=lambda v: getattr(v, "__name__", v))
def test_every_number_field_refuses_a_boolean_and_has_an_example_for_the_fix(model: type, name: str, key: str) -> None:
    from pydantic import ValidationError

    from meshbridge.spec.models import _number_fields as number_fields

    example = number_fields(model)[name][1]
    assert example is not None, f"{model.__name__}.{name}: give it a numeric default or Field(examples=[...])"
    for boolean in (True, False):
        with pytest.raises(ValidationError) as exc:
            model.model_validate({key: boolean})  # type: ignore[attr-defined]
        assert any(e["loc"] == (key,) and e["type"] == "bool_not_number" for e in exc.value.errors())
    try:  # negative twin: the example itself is accepted for that field (other fields may be missing)
        model.model_validate({key: example})  # type: ignore[attr-defined]
    except ValidationError as e:
        assert all(err["loc"][:1] != (key,) for err in e.errors()), e


def test_numbers_written_as_strings_are_read_as_numbers_as_before() -> None:
    """Kept: ``port: "443"`` means 443 (a quoted number is not a silent change of meaning)."""
    d = seed_dict()
    d["spec"]["exports"][0]["backend"]["port"] = "443"
    d["spec"]["tls"]["leafValidityDays"] = "90"
    b = bridge_from(d)
    assert (b.export("lambda").backend.port, b.spec.tls.leaf_validity_days) == (443, 90)


@pytest.mark.parametrize(
    ("path", "value", "problem", "fix"),
    [
        (("exports", 0, "port"), "http", "must be a whole number (got 'http')", "write a whole number"),
        (("exports", 0, "port"), 80.5, "must be a whole number (got 80.5)", "write a whole number"),
        (("exports", 0, "timeout"), "soon", "must be a number (got 'soon')", "write a number"),
        (("exports", 0, "timeout"), 0, "must be > 0 (got 0)", "use a value > 0"),
        (("exports", 0, "to"), [], "needs at least 1 item (it has 0)", "add more"),
        (("exports", 0, "to"), "gke", "must be a list (got 'gke')", "write it as a list, e.g. [gke]"),
        (("exports", 0, "backend", "tls", "mode"), "simple", "must be 'DISABLE' or 'SIMPLE' (got 'simple')", None),
        (("tls",), "x", "must be a mapping (key: value lines) (got 'x')", None),
        (
            ("aws", "vpcId"),
            "vpc-XYZ",
            "is not of the expected form (got 'vpc-XYZ')",
            "match the pattern ^vpc-[0-9a-f]+$",
        ),
        (("meshes", "eks", "istio", "pilotEnv"), {"X": True}, "must be a string, got a boolean (true)", None),
        (("meshes", "eks", "istio", "version"), 1.2, "must be a string, got a number (1.2)", 'quote it: "1.2"'),
    ],
)
def test_pydantic_wording_never_reaches_the_user(path: tuple, value: object, problem: str, fix: str | None) -> None:
    d = seed_dict()
    parent = d["spec"]
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    (issue,) = _error(d).issues
    assert issue.problem == problem
    if fix is not None:
        assert issue.fix.startswith(fix)
    for theirs in ("Input should", "should be", "should have", "Value error", "valid integer", "after validation"):
        assert theirs not in str(issue)


def test_a_quoted_fix_for_an_unquoted_yaml_boolean_in_a_string_field() -> None:
    text = SEED.read_text().replace('version: "1.17.2"', 'version: "1.17.2"\n        revision: yes', 1)
    text = text.replace('        revision: "1-17"\n', "", 1)
    (issue,) = _error(text).issues
    assert issue.path == "spec.meshes.eks.istio.revision"
    assert (issue.problem, issue.fix) == (
        "must be a string, got a boolean (yes)",
        'quote it: "yes" (unquoted, YAML reads true/yes/on/off as booleans)',
    )


def test_a_cross_field_problem_does_not_repeat_its_fix() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = [{"name": "http2", "port": 80, "targetPort": 8080}]
    (issue,) = _error(d).issues
    assert (
        issue.problem.endswith("(it has [80])") and issue.fix == "add it to ingressGateway.ports or change gatewayPort"
    )


# -- Istio's own ports are not for the bridge's traffic ------------------------------------------------


def _chart_ports(*extra: dict) -> list[dict]:
    return [{"name": "status-port", "port": 15021, "targetPort": 15021}, *extra]


def test_gateway_port_15021_is_refused_as_istios_health_check_port() -> None:
    """gatewayPort 15021 validated and ``local up`` started, but the health listener answered the traffic."""
    d = seed_dict()
    d["spec"]["exports"][0]["gatewayPort"] = 15021  # the default ingress ports do list 15021 (status-port)
    (issue,) = _error(d).issues
    assert issue.path == "spec.exports[0].gatewayPort"
    assert issue.problem.startswith("15021 is Istio's health-check port: the exporter's ingress gateway serves it")
    assert issue.fix.startswith("pick another port, e.g. 443 or 8443")
    # negative twin: 8443, a Service port of the gateway
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = _chart_ports(
        {"name": "https", "port": 8443, "targetPort": 8443}
    )
    d["spec"]["exports"][0]["gatewayPort"] = 8443
    assert bridge_from(d).export("lambda").gateway_port == 8443


def test_an_exports_importer_side_port_may_not_be_an_istio_port() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["gke"]["egressGateway"]["ports"] = [{"name": "http", "port": 15001, "targetPort": 8080}]
    d["spec"]["exports"][0]["port"] = 15001
    issues = _error(d).issues
    by_path = {i.path: i for i in issues}
    assert by_path["spec.exports[0].port"].problem.startswith("15001 is the sidecar's outbound capture port")
    assert by_path["spec.exports[0].port"].fix.startswith("pick another port, e.g. 80")
    assert "spec.meshes.gke.egressGateway.ports[0].port" in by_path  # 15001→8080 is refused as well
    # negative twin
    d["spec"]["meshes"]["gke"]["egressGateway"]["ports"] = [{"name": "http", "port": 8080, "targetPort": 8080}]
    d["spec"]["exports"][0]["port"] = 8080
    assert bridge_from(d).export("lambda").port == 8080


@pytest.mark.parametrize(
    ("gateway", "mesh", "entry", "path", "start"),
    [
        (
            "ingressGateway",
            "eks",
            {"name": "https", "port": 443, "targetPort": 15021},
            "targetPort",
            "15021 is Istio's health-check port",
        ),
        (
            "ingressGateway",
            "eks",
            {"name": "https", "port": 15021, "targetPort": 8443},
            "port",
            "15021 is Istio's health-check port",
        ),
        (
            "egressGateway",
            "gke",
            {"name": "http2", "port": 80, "targetPort": 15006},
            "targetPort",
            "15006 is the sidecar's inbound",
        ),
        (
            "egressGateway",
            "gke",
            {"name": "http2", "port": 15090, "targetPort": 8080},
            "port",
            "15090 is Envoy's Prometheus",
        ),
    ],
)
def test_gateway_service_ports_may_not_send_traffic_to_or_from_an_istio_port(
    gateway: str, mesh: str, entry: dict, path: str, start: str
) -> None:
    d = seed_dict()
    d["spec"]["meshes"][mesh][gateway]["ports"] = [entry]
    issues = [i for i in _error(d).issues if i.path == f"spec.meshes.{mesh}.{gateway}.ports[0].{path}"]
    (issue,) = issues
    assert issue.problem.startswith(start)
    assert issue.fix.startswith("pick another")


def test_istios_own_service_ports_mapped_to_themselves_are_kept() -> None:
    """The charts' status-port 15021→15021 (and istiod's 15012 on an east-west gateway): no bridge traffic there.

    The rendered install keeps listing them (tests/golden/install/*.yaml).
    """
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["ports"] = _chart_ports(
        {"name": "tls-istiod", "port": 15012, "targetPort": 15012},
        {"name": "https", "port": 443, "targetPort": 8443},
    )
    ig = bridge_from(d).spec.meshes["eks"].ingress_gateway
    assert ig is not None and [(p.port, p.target_port) for p in ig.ports] == [
        (15021, 15021),
        (15012, 15012),
        (443, 8443),
    ]
    default = bridge_from(seed_dict()).spec.meshes["gke"].egress_gateway
    assert default is not None and default.target_port(15021) == 15021  # the default ports, unchanged


def test_the_reserved_ports_are_istios_documented_list() -> None:
    from meshbridge.spec.models import ISTIO_PORTS

    assert sorted(ISTIO_PORTS) == [
        15000,
        15001,
        15004,
        15006,
        15008,
        15009,
        15010,
        15012,
        15014,
        15017,
        15020,
        15021,
        15053,
        15090,
    ]
    assert ISTIO_PORTS[15021] == "Istio's health-check port"


def test_empty_labels_of_a_gateway_or_an_app_are_refused_with_the_field_and_the_fix() -> None:
    """``labels: {}`` would render ``selector: {}``, ``matchLabels: {}`` and ``workloadSelector.labels: {}``: each
    matches every pod (an ALLOW AuthorizationPolicy on every workload of the namespace)."""
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["labels"] = {}
    d["spec"]["meshes"]["gke"]["egressGateway"]["labels"] = {}
    d["spec"]["meshes"]["gke"]["apps"][0]["labels"] = {}
    issues = {i.path: i for i in _error(d).issues}
    assert set(issues) == {
        "spec.meshes.eks.ingressGateway.labels",
        "spec.meshes.gke.egressGateway.labels",
        "spec.meshes.gke.apps[0].labels",
    }
    ingress = issues["spec.meshes.eks.ingressGateway.labels"]
    assert ingress.problem.startswith("an empty map selects every pod: the rendered Gateway (selector: {})")
    assert "ALLOW AuthorizationPolicy (matchLabels: {})" in ingress.problem
    assert "EnvoyFilter (workloadSelector.labels: {})" in ingress.problem
    assert ingress.fix == "set the pods' own labels, e.g. {app: istio-ingressgateway, istio: ingressgateway}"
    assert issues["spec.meshes.gke.apps[0].labels"].fix == "set the pods' own labels, e.g. {app: sleep}"


def test_one_label_is_enough_and_a_bad_one_is_still_named() -> None:
    """The twin of the test above: a single label selects; an invalid key is refused as before."""
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["labels"] = {"istio": "ingressgateway"}
    d["spec"]["meshes"]["gke"]["apps"][0]["labels"] = {"app": "sleep"}
    bridge = bridge_from(d)
    assert bridge.spec.meshes["eks"].ingress_gateway is not None
    assert bridge.spec.meshes["eks"].ingress_gateway.labels == {"istio": "ingressgateway"}
    d["spec"]["meshes"]["gke"]["egressGateway"]["labels"] = {"bad key!": "x"}
    (issue,) = _error(d).issues
    assert issue.path == "spec.meshes.gke.egressGateway.labels"
    assert "is not a valid Kubernetes label key" in issue.problem


def test_a_mesh_listed_twice_in_to_is_one_problem_with_the_list_to_write() -> None:
    d = seed_dict()
    d["spec"]["exports"][0]["to"] = ["gke", "gke"]
    (issue,) = _error(d).issues
    assert issue.path == "spec.exports[0].to"
    assert (issue.problem, issue.fix) == ("mesh 'gke' is listed twice", "list each mesh once: to: [gke]")


def test_negative_twin_one_mesh_importing_one_host_from_two_exports_is_still_said() -> None:
    d = two_exports_three_meshes()
    d["spec"]["exports"][1]["host"] = d["spec"]["exports"][0]["host"]
    err = _error(d)
    assert any("imports host" in i.problem and "twice (also from export" in i.problem for i in err.issues)
