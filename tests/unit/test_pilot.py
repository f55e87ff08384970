"""tools/istiod (istiod and pilot-agent from the pinned Istio) as a Go tool, and istiod's environment for the twin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshbridge import gotools
from meshbridge.gotools import require_module
from meshbridge.istiod import oracle
from meshbridge.istiod.pilot import ISTIOD, ControlPlaneUnavailable, ensure_pilot
from meshbridge.local.controlplane import UPSTREAM_ENVOY_ENV, istiod_env
from tests.builders import seed_bridge
from tests.unit.test_gotools import fake_go


@pytest.fixture
def no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for b in ISTIOD.binaries:
        monkeypatch.delenv(b.env, raising=False)
    return tmp_path / "cache" / "meshbridge" / "tools"


def test_istiod_is_the_istio_the_oracle_pins() -> None:
    """The control plane the twin runs and the oracle that judges translations are one Istio commit."""
    pinned = require_module(oracle.TOOL_DIR, "istio.io/istio")
    assert pinned and require_module(ISTIOD.directory, "istio.io/istio") == pinned
    assert oracle.istio_line(ISTIOD.directory) == oracle.istio_line()
    assert not list(ISTIOD.directory.rglob("*.go"))  # upstream's commands, no main of ours


def test_both_commands_come_from_one_go_build_with_istios_version(
    no_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = fake_go(tmp_path / "bin")
    monkeypatch.setattr(gotools.shutil, "which", lambda _: str(go))
    monkeypatch.setenv("FAKE_GO_LOG", str(tmp_path / "go.json"))
    found = ensure_pilot()
    assert set(found) == {"pilot-discovery", "pilot-agent"}
    run = json.loads((tmp_path / "go.json").read_text())
    assert run["args"][-2:] == ["istio.io/istio/pilot/cmd/pilot-discovery", "istio.io/istio/pilot/cmd/pilot-agent"]
    flags = run["args"][run["args"].index("-ldflags") + 1]
    commit = require_module(ISTIOD.directory, "istio.io/istio").rsplit("-", 1)[-1]
    assert f"pkg/version.buildVersion={oracle.istio_line()}-dev" in flags  # the agent's ISTIO_VERSION to istiod
    assert f"pkg/version.buildGitRevision={commit}" in flags
    assert run["cwd"] == str(ISTIOD.directory)


def test_without_go_istiod_is_one_line_naming_what_to_install(no_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin of the above: no Go and nothing cached."""
    monkeypatch.setattr(gotools.shutil, "which", lambda _: None)
    with pytest.raises(ControlPlaneUnavailable) as e:
        ensure_pilot()
    assert "\n" not in str(e.value)
    assert "istiod and pilot-agent: needs the Go toolchain" in str(e.value) and "make istiod" in str(e.value)


def test_istiod_keeps_its_output_within_upstream_envoy_over_the_specs_pilot_env(tmp_path: Path) -> None:
    mesh = seed_bridge().spec.meshes["eks"]
    given = mesh.model_copy(
        update={
            "istio": mesh.istio.model_copy(
                update={"pilot_env": {"PILOT_ENABLE_ALPN_FILTER": "true", "PILOT_HTTP10": "true"}}
            )
        }
    )
    env = istiod_env(given, tmp_path)
    assert env["PILOT_ENABLE_ALPN_FILTER"] == "false"  # istio.alpn is not in upstream Envoy
    assert env["PILOT_HTTP10"] == "true"  # the spec's other settings stay
    assert env["REVISION"] == "1-17" and env["ROOT_CA_DIR"] == str(tmp_path / "cacerts")
    assert all(env[k] == v for k, v in UPSTREAM_ENVOY_ENV.items())


def test_without_a_revision_istiod_is_the_default_revision(tmp_path: Path) -> None:
    """The twin of the above for the revision: a mesh without one runs istiod as revision ``default``."""
    mesh = seed_bridge().spec.meshes["eks"]
    plain = mesh.model_copy(update={"istio": mesh.istio.model_copy(update={"revision": None})})
    env = istiod_env(plain, tmp_path)
    assert env["REVISION"] == "default" and env["POD_NAME"] == "istiod-twin"
