"""The Kubernetes Gateway API form of the exporter on its way to istiod (the oracle) and the twin: the model keeps
its objects as written (ConfigSet.cluster_objects) and says it does not read them, the oracle's request carries
them as Kubernetes objects with the ServiceEntries they target, and the twin serves the ``kubernetes-gateway://``
secrets istiod names for its listeners. What istiod builds from them: tests/oracle/test_gateway_api.py."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.envoy.names import parse_gateway_sds_name, sds_ca_name, sds_credential, sds_name
from meshbridge.envoy.secrets import sds_resource
from meshbridge.errors import LocalError
from meshbridge.inputs import mesh_configs
from meshbridge.istio.config import ConfigSet
from meshbridge.istiod.request import build_request
from meshbridge.local.twin import LocalTwin
from meshbridge.world import proxies
from tests.builders import bridge_from, issued_store, seed_dict


def _configs(tmp_path: Path, api: str = "gateway-api") -> dict[str, ConfigSet]:
    d = seed_dict()
    eks = d["spec"]["meshes"]["eks"]
    eks["istio"]["version"] = "1.31.0"
    if api != "istio":
        eks["ingressGateway"]["api"] = api
    bridge = bridge_from(d)
    return mesh_configs(bridge, issued_store(tmp_path, bridge).credentials(bridge))[0]


def test_the_model_keeps_gateway_api_objects_as_written_and_says_it_does_not_read_them(tmp_path: Path) -> None:
    cfg = _configs(tmp_path)["eks"]
    assert sorted(d["kind"] for d in cfg.cluster_objects) == ["BackendTLSPolicy", "Gateway", "HTTPRoute"]
    said = [w for w in cfg.warnings if w.kind in ("Gateway", "HTTPRoute", "BackendTLSPolicy")]
    assert sorted((w.kind, w.name) for w in said) == [
        ("BackendTLSPolicy", "lambda-backend"),
        ("Gateway", "eastwestgateway"),
        ("HTTPRoute", "lambda"),
    ]
    assert all("sent to istiod's own translation" in w.message for w in said)
    assert not cfg.gateways and not cfg.virtual_services  # nothing of it is modelled


def test_the_istio_form_has_no_cluster_objects(tmp_path: Path) -> None:
    cfg = _configs(tmp_path, api="istio")["eks"]
    assert not cfg.cluster_objects
    assert [g.metadata.name for g in cfg.gateways] == ["eastwestgateway"]


def _kubernetes(cfg: ConfigSet) -> list[dict[str, Any]]:
    bridge = bridge_from(seed_dict())
    request = build_request("eks", cfg, [p.proxy for p in proxies(bridge, "eks")])
    return [d for d in yaml.safe_load_all(request.kubernetes) if d]


def test_the_oracle_gets_them_as_kubernetes_objects_with_the_service_entries_they_target(tmp_path: Path) -> None:
    kinds = [(d["kind"], d["metadata"]["name"]) for d in _kubernetes(_configs(tmp_path)["eks"])]
    assert ("Gateway", "eastwestgateway") in kinds
    assert ("BackendTLSPolicy", "lambda-backend") in kinds
    assert ("ServiceEntry", "se-lambda-backend") in kinds  # istiod's BackendTLSPolicy finds its target there


def test_without_gateway_api_objects_service_entries_stay_istio_config_only(tmp_path: Path) -> None:
    kinds = {d["kind"] for d in _kubernetes(_configs(tmp_path, api="istio")["eks"])}
    assert not kinds & {"ServiceEntry", "Gateway", "HTTPRoute"}


def test_a_gateway_api_listeners_sds_names() -> None:
    name = "kubernetes-gateway://istio-ingress/mtls-credential"
    assert parse_gateway_sds_name(name) == ("istio-ingress", "mtls-credential", False)
    assert parse_gateway_sds_name(name + "-cacert") == ("istio-ingress", "mtls-credential", True)
    assert sds_credential(name + "-cacert") == (name, True)
    assert (sds_name(name), sds_ca_name(name)) == (name, name + "-cacert")  # istiod's names come back
    assert parse_gateway_sds_name("kubernetes://mtls-credential") is None
    assert sds_credential("kubernetes://mtls-credential") == ("mtls-credential", False)
    assert sds_credential("ROOTCA") is None


def test_the_twin_serves_a_listeners_secret_only_in_its_own_namespace(tmp_path: Path) -> None:
    cfg = _configs(tmp_path)["eks"]
    name = "kubernetes-gateway://istio-ingress/mtls-credential"
    served = sds_resource(cfg, "istio-ingress", name, None)
    assert served is not None and served["name"] == name
    chain = base64.b64decode(served["tls_certificate"]["certificate_chain"]["inline_bytes"])
    assert b"BEGIN CERTIFICATE" in chain
    trust = sds_resource(cfg, "istio-ingress", name + "-cacert", None)
    assert trust is not None and "trusted_ca" in trust["validation_context"]
    # istiod serves a listener's reference to a gateway of the Secret's namespace only
    assert sds_resource(cfg, "other", name, None) is None
    assert sds_resource(cfg, "istio-ingress", "kubernetes-gateway://other/mtls-credential", None) is None


def test_local_up_on_meshbridges_translation_refuses_a_gateway_api_exporter_with_the_fix(tmp_path: Path) -> None:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["api"] = "gateway-api"
    d["spec"]["meshes"]["eks"]["istio"]["version"] = "1.31.0"
    file = tmp_path / "bridge.yaml"
    file.write_text(yaml.safe_dump(d))
    twin = LocalTwin(bridge_from(d), file, tmp_path / ".meshbridge")
    with pytest.raises(LocalError) as e:
        twin.up()
    assert "mesh eks's ingress gateway is rendered in the Kubernetes Gateway API" in str(e.value)
    assert "--translator istiod" in str(e.value)
    assert not (tmp_path / ".meshbridge").exists()  # refused before anything is written
    # its twin: the mesh's own manifests are not the spec's rendering, so nothing is refused for it
    twin._check_translatable({"eks": [file]})
