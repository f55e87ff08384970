"""The version matrix: render, lint and translate on the article's Istio and on each supported line.

The version-dependent rules are one table (``meshbridge.istio.changes.CHANGES``); these tests hold what the seed
renders and translates on each release of ``MATRIX`` to those rules, and the fidelity page to the table. The
oracle tier judges the seed on 1.30 with Istio's compatibility profile (``tests/oracle``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.istio.changes import (
    ARTICLE_RELEASE,
    CHANGES,
    MATRIX,
    SUPPORTED_LINES,
    compatibility_env,
    line,
    minor,
)
from meshbridge.istio.config import MeshSettings
from meshbridge.releases import CURRENT_ISTIO
from meshbridge.render import render_bridge
from tests.builders import ROOT, bridge_from, seed_at
from tests.istio_builders import proxy_config, rendered_config
from tests.lint_builders import NOW, credentials, from_bridge, lint

FIDELITY = ROOT / "docs" / "fidelity.md"


# -- the table's rules -------------------------------------------------------------------------------------


def test_a_default_follows_its_release_and_its_flag() -> None:
    sni = CHANGES["auto-sni"]
    assert not sni.on(20) and sni.on(21)
    assert sni.on(20, {"ENABLE_AUTO_SNI": "true"})  # an opt-in before the default changed
    assert not sni.on(23, {"ENABLE_AUTO_SNI": "false"})  # an opt-out after


def test_a_removed_flag_no_longer_turns_the_behaviour_off() -> None:
    assert CHANGES["auto-sni"].on(26, {"ENABLE_AUTO_SNI": "false"})
    assert CHANGES["verify-certificate-at-client"].on(24, {"VERIFY_CERTIFICATE_AT_CLIENT": "false"})


def test_a_flag_that_did_not_exist_yet_turns_nothing_on() -> None:
    assert not CHANGES["external-name-alias"].on(20, {"ENABLE_EXTERNAL_NAME_ALIAS": "true"})
    assert not CHANGES["send-unhealthy-endpoints"].on(30, {"PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS": "true"})


def test_the_compatibility_profile_of_1_30_is_istios() -> None:
    # manifests/helm-profiles/compatibility-version-1.30.yaml of the pinned module (checked there by the oracle
    # tier): 1.31's behavioural changes, each turned off
    assert compatibility_env(30) == {
        "PILOT_ENABLE_STRICT_GATEWAY_MERGING": "false",
        "PILOT_SPAWN_UPSTREAM_SPAN_FOR_GATEWAY": "false",
        "PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS": "false",
    }


def test_no_profile_for_the_pinned_line_nor_for_releases_older_than_istio_keeps() -> None:
    assert compatibility_env(31) == {}
    assert compatibility_env(17) == {}
    assert compatibility_env(24) == {}


def test_the_matrix_is_the_article_and_every_supported_line() -> None:
    assert MATRIX[0] == ARTICLE_RELEASE
    assert [line(v) for v in MATRIX[1:]] == list(SUPPORTED_LINES)


# -- render, lint, translate on every release of the matrix --------------------------------------------------


@pytest.mark.parametrize("version", MATRIX)
def test_render_uses_the_api_versions_of_the_release(version: str) -> None:
    rendered = render_bridge(bridge_from(seed_at(version)), None)
    istio = [d for docs in rendered.values() for d in docs if ".istio.io/" in d["apiVersion"]]
    groups = {d["apiVersion"] for d in istio if d["kind"] != "EnvoyFilter"}  # EnvoyFilter has only v1alpha3
    suffix = "v1" if minor(version) >= 22 else "v1beta1"
    assert groups == {f"networking.istio.io/{suffix}"} | ({f"security.istio.io/{suffix}"} & groups)
    assert any(g.startswith("networking.") for g in groups)


@pytest.mark.parametrize("version", MATRIX)
def test_the_seed_lints_clean_on_the_release(version: str) -> None:
    b = bridge_from(seed_at(version))
    report = lint(from_bridge(b, credentials(b), now=NOW))
    assert report.findings == (), report.table(wide=True)


def test_lint_still_fails_a_broken_seed_on_every_release() -> None:
    for version in MATRIX:
        data = seed_at(version)
        data["spec"]["meshes"]["gke"]["istio"]["proxyMetadata"] = {}  # no DNS capture: lambda.external unresolvable
        b = bridge_from(data)
        assert "MB101" in lint(from_bridge(b, credentials(b), now=NOW)).codes(), version


def _translated(version: str, tmp: Path) -> dict[str, Any]:
    b = bridge_from(seed_at(version))
    ingress = proxy_config(rendered_config("eks", b, secrets=True), "eks/istio-ingressgateway", tmp, b)
    egress = proxy_config(rendered_config("gke", b, secrets=True), "gke/istio-egressgateway", tmp, b)
    (route,) = ingress.route_configs[0]["virtual_hosts"][0]["routes"]
    (to_exporter,) = [c for c in egress.clusters if c["name"] == "outbound|80||lambda.external"]
    return {"route": route["route"], "cluster": to_exporter}


@pytest.mark.parametrize("version", MATRIX)
def test_translate_follows_the_release(version: str, tmp_path: Path) -> None:
    got = _translated(version, tmp_path)
    m = minor(version)
    retry_503 = got["route"]["retry_policy"].get("retriable_status_codes") == [503]
    assert retry_503 is (m < 24)
    (threshold,) = got["cluster"]["circuit_breakers"]["thresholds"]
    assert ("track_remaining" in threshold) is (m < 29)
    panic = got["cluster"].get("common_lb_config", {}).get("healthy_panic_threshold")
    assert (panic == {"value": 0} or panic == {}) is (m >= 31)


def test_a_flag_in_pilot_env_overrides_the_release_default(tmp_path: Path) -> None:
    data = seed_at("1.31.4")
    for mesh in data["spec"]["meshes"].values():
        mesh["istio"]["pilotEnv"] = {**mesh["istio"].get("pilotEnv", {}), "DISABLE_TRACK_REMAINING_CB_METRICS": "0"}
    b = bridge_from(data)
    egress = proxy_config(rendered_config("gke", b, secrets=True), "gke/istio-egressgateway", tmp_path, b)
    (to_exporter,) = [c for c in egress.clusters if c["name"] == "outbound|80||lambda.external"]
    assert to_exporter["circuit_breakers"]["thresholds"][0]["track_remaining"] is True


def test_mesh_settings_answer_through_the_table() -> None:
    old, new = MeshSettings(istio_version="1.17.2"), MeshSettings(istio_version="1.31.4")
    assert (old.auto_sni, new.auto_sni) == (False, True)
    assert (old.retry_503, new.retry_503) == (True, False)
    assert (old.stat_suffix, new.stat_suffix) == ("", ";")
    assert (old.shadow_host_suffix, new.shadow_host_suffix) == (True, False)


# -- the fidelity page holds the table ---------------------------------------------------------------------


def versions_table() -> str:
    """The version-dependent rules as the fidelity page shows them (Markdown)."""
    rows = ["| change | default from | istiod flag | at 1.31 | meshbridge | source |", "|" + "---|" * 6]
    for c in CHANGES.values():
        flag = f"`{c.flag}`" + (f" (gone from 1.{c.always_from})" if c.always_from else "") if c.flag else "none"
        followed = f"not modelled: {c.modelled}" if c.modelled else "follows it"
        rows.append(f"| {c.behaviour} | {c.release} | {flag} | {c.oracle} | {followed} | {c.source} |")
    return "\n".join(rows) + "\n"


def test_the_fidelity_page_holds_the_version_table() -> None:
    assert versions_table() in FIDELITY.read_text(), (
        "docs/fidelity.md's version table is stale: print it with 'python -m tests.unit.test_version_matrix'"
    )


if __name__ == "__main__":
    print(versions_table(), end="")


# -- a release newer than the table ----------------------------------------------------------------------------


def test_a_release_newer_than_the_table_is_named_with_how_it_is_modelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main

    spec = tmp_path / "bridge.yaml"
    for version, noted in (("1.99.0", True), (CURRENT_ISTIO, False), (ARTICLE_RELEASE, False)):
        spec.write_text(yaml.safe_dump(seed_at(version)))
        assert main(["render", "-f", str(spec), "--no-secrets", "-o", str(tmp_path / "out")]) == 0
        said = capsys.readouterr().err
        assert ("note: mesh eks declares Istio 1.99.0, newer than the releases meshbridge knows" in said) is noted
        assert ("it is modelled as 1.31" in said) is noted
