"""Two exports behind one internal ALB (the seed's lambda and an orders export on the same backend host), on the
twin with real Envoy: the exporter's gateway gets one backend cluster for the host, shared by both routes, and
both exports answer; before, two ServiceEntries for the host made Envoy reject a duplicate cluster. The negative
twin: without orders' own VirtualService the exporter's gateway has no route for it, while lambda still answers."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.render import render_bridge, to_yaml
from meshbridge.spec import load_bridge
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
PAGE = b"<title>Hello World!</title>"


def _two_exports(tmp: Path) -> Path:
    """The seed's folder with a second export, orders → orders.external, on the seed's backend host."""
    file, _ = seed_folder(tmp)
    data = yaml.safe_load(file.read_text())
    orders = copy.deepcopy(data["spec"]["exports"][0])
    orders.update({"name": "orders", "host": "orders.external"})
    data["spec"]["exports"].append(orders)
    file.write_text(yaml.safe_dump(data))
    return file


def test_two_exports_on_one_backend_host_both_answer(tmp_path: Path) -> None:
    file = _two_exports(tmp_path)
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up()
        assert [s.name for s in twin.status() if s.name.startswith("eks/alb-")] == ["eks/alb-lambda"]  # one ALB
        for url in ("http://lambda.external/hello-world", "http://orders.external/hello-world"):
            r = curl(twin.app_view(), url)
            assert (r.status, r.header("server")) == (200, "envoy") and PAGE in r.body, (url, r.status, r.body)
    finally:
        twin.down()


def test_negative_twin_without_orders_route_only_lambda_answers(tmp_path: Path) -> None:
    file = _two_exports(tmp_path)
    bridge = load_bridge(file)
    docs = [d for d in render_bridge(bridge, None)["eks"] if d["metadata"]["name"] != "vs-orders"]
    eks = tmp_path / "eks.yaml"
    eks.write_text(to_yaml([d for d in docs if d["kind"] != "Secret"]))
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up({"eks": [eks]})
        assert curl(twin.app_view(), "http://lambda.external/hello-world").status == 200
        r = curl(twin.app_view(), "http://orders.external/hello-world")
        assert r.status == 404 and PAGE not in r.body
    finally:
        twin.down()
