"""tools/istiod (istiod and pilot-agent from the pinned Istio) as a Go tool, and istiod's environment for the twin."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from meshbridge import gotools
from meshbridge.gotools import require_module
from meshbridge.istiod import oracle
from meshbridge.istiod.pilot import ISTIOD, ControlPlaneUnavailable, ensure_pilot
from meshbridge.kube.envtest import Cluster
from meshbridge.local.controlplane import UPSTREAM_ENVOY_ENV, istiod_env, start_istiod
from meshbridge.local.meshca import mesh_ca
from meshbridge.pki import CertBundle
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


def _fake_istiod(folder: Path, *, serve: bool) -> Path:
    """A ``pilot-discovery`` stand-in: answers ``/ready`` on its ``--httpAddr`` (``serve``), or fails at once."""
    exe = folder / "pilot-discovery"
    body = (
        "import sys, http.server\n"
        "addr = [a.split('=', 1)[1] for a in sys.argv if a.startswith('--httpAddr=')][0]\n"
        "host, port = addr.rsplit(':', 1)\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/ready' else 404); self.end_headers()\n"
        "http.server.HTTPServer((host, int(port)), H).serve_forever()\n"
        if serve
        else "import sys\nprint('Error: failed to create discovery service: no kube client')\nsys.exit(1)\n"
    )
    exe.write_text(f"#!{sys.executable}\n{body}")
    exe.chmod(0o755)
    return exe


def _cluster(tmp_path: Path) -> Cluster:
    return Cluster("eks", tmp_path / "cluster", 2379, 6443, "admin-token", "user-token")


def test_istiod_starts_with_its_kubeconfig_cacerts_and_mesh_config(tmp_path: Path) -> None:
    mesh = seed_bridge().spec.meshes["eks"]
    ca = mesh_ca(tmp_path / "ca", "eks")
    istiod = start_istiod(
        "eks", mesh, _cluster(tmp_path), ca, tmp_path / "istiod", binary=_fake_istiod(tmp_path, serve=True)
    )
    try:
        root = istiod.root
        assert (root / "kubeconfig").stat().st_mode & 0o077 == 0  # the cluster admin's token
        assert (root / "cacerts" / "ca-key.pem").stat().st_mode & 0o077 == 0
        assert (root / "cacerts" / "root-cert.pem").read_bytes() == ca.cert_pem
        kubeconfig = yaml.safe_load((root / "kubeconfig").read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
        assert yaml.safe_load((root / "mesh").read_text())["trustDomain"] == mesh.trust_domain
        assert istiod.address == f"localhost:{istiod.ports['secure_grpc']}"
    finally:
        istiod.stop()
    assert istiod.process.poll() is not None


def test_an_istiod_that_exits_while_starting_is_named_with_its_log(tmp_path: Path) -> None:
    """The twin of the above: the process exits at once; the error says which istiod and quotes its log."""
    mesh = seed_bridge().spec.meshes["eks"]
    ca = mesh_ca(tmp_path / "ca", "eks")
    with pytest.raises(ControlPlaneUnavailable) as e:
        start_istiod(
            "eks", mesh, _cluster(tmp_path), ca, tmp_path / "istiod", binary=_fake_istiod(tmp_path, serve=False)
        )
    assert "istiod of mesh eks exited with status 1 while starting" in str(e.value)
    assert "failed to create discovery service: no kube client" in str(e.value)


def test_a_mesh_ca_without_its_key_cannot_sign_for_istiod(tmp_path: Path) -> None:
    mesh = seed_bridge().spec.meshes["eks"]
    ca = mesh_ca(tmp_path / "ca", "eks")
    public = CertBundle(ca.cert_pem, None)
    with pytest.raises(ControlPlaneUnavailable, match="has no private key; istiod's CA needs it to sign"):
        start_istiod(
            "eks", mesh, _cluster(tmp_path), public, tmp_path / "istiod", binary=_fake_istiod(tmp_path, serve=True)
        )
