"""Istio's own validation (the oracle parses its input as the admission webhook does) on the exporter Gateway:
what meshbridge renders for exports on two gateway ports is taken; two servers named alike are refused, in the
words meshbridge's own refusal quotes (tests/unit/test_gateway_validation.py); so is each rule of
tests/unit/test_gateway_validation_rules.py (hosts, protocol, port, bind, tls), and its valid twin is taken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.errors import TranslateError
from meshbridge.istiod.oracle import run_oracle
from meshbridge.istiod.request import OracleRequest
from meshbridge.render import render_bridge
from tests.builders import bridge_from
from tests.unit.test_gateway_validation import DUPLICATE, two_gateway_ports
from tests.unit.test_gateway_validation_rules import HOSTS, RULES, SEVERAL, SEVERAL_SAID, Rule, gateway
from tests.unit.test_gateway_validation_rules import server as https_server

pytestmark = pytest.mark.oracle


def _istiod_takes(oracle: Path, docs: list[dict[str, Any]]) -> None:
    """Raises TranslateError with istiod's words when its validation refuses one of ``docs``."""
    config = yaml.safe_dump_all([d for d in docs if ".istio.io/" in d["apiVersion"]])
    run_oracle(OracleRequest(config=config, kubernetes="", mesh_config="", env={}), oracle)


def test_istiod_takes_the_gateway_rendered_for_exports_ontwo_gateway_ports(oracle: Path) -> None:
    _istiod_takes(oracle, list(render_bridge(bridge_from(two_gateway_ports()), None)["eks"]))


def test_negative_twin_istiod_refuses_its_servers_named_alike(oracle: Path) -> None:
    docs = list(render_bridge(bridge_from(two_gateway_ports()), None)["eks"])
    (gw,) = [d for d in docs if d["kind"] == "Gateway"]
    for server in gw["spec"]["servers"]:
        server["port"]["name"] = "https"  # what meshbridge rendered before
    with pytest.raises(TranslateError, match=DUPLICATE):
        _istiod_takes(oracle, docs)


def _istiod_says(oracle: Path, gw: dict[str, Any]) -> str:
    """istiod's refusal of ``gw``, whitespace as one space ('' when its validation takes it)."""
    try:
        _istiod_takes(oracle, [gw])
    except TranslateError as e:
        return " ".join(str(e).split())
    return ""


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_istiod_refuses_each_rule_in_the_words_meshbridge_quotes(oracle: Path, rule: Rule) -> None:
    said = _istiod_says(oracle, rule.bad)
    assert said and all(part in said for part in rule.said.split("; ")), said


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_negative_twin_istiod_takes_each_valid_form(oracle: Path, rule: Rule) -> None:
    assert _istiod_says(oracle, rule.good) == ""


@pytest.mark.parametrize(("host", "errors"), HOSTS, ids=[h for h, _ in HOSTS])
def test_istiod_judges_each_host_form_as_meshbridge_does(oracle: Path, host: str, errors: list[str]) -> None:
    said = _istiod_says(oracle, gateway(https_server(hosts=[host])))
    assert all(e in said for e in errors) and bool(said) == bool(errors), said


def test_istiod_lists_every_error_of_a_gateway_as_meshbridge_does(oracle: Path) -> None:
    said = _istiod_says(oracle, SEVERAL)
    assert all(line.split(": ", 1)[1] in said for line in SEVERAL_SAID), said
