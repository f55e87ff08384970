"""The local API servers' files and process handling, without starting a server: keys private, one kubeconfig
context per mesh and user, and a recorded pid signalled only while it still runs the recorded binary."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from meshbridge.kube import envtest
from meshbridge.kube.binaries import KubeServersUnavailable
from meshbridge.kube.envtest import ADMIN, USER, Clusters


def test_each_cluster_gets_its_own_ca_keys_and_tokens(tmp_path: Path) -> None:
    eks = envtest._prepare("eks", tmp_path / "eks")
    gke = envtest._prepare("gke", tmp_path / "gke")
    keys = sorted(p.name for p in (tmp_path / "eks" / "pki").glob("*.key"))
    assert keys == ["apiserver.key", "ca.key", "etcd-client.key", "etcd.key", "sa.key", "user.key"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in tmp_path.rglob("*.key"))
    tokens = (tmp_path / "eks" / "pki" / "tokens.csv").read_text().splitlines()
    assert tokens == [f'{eks.admin_token},{ADMIN},uid-{ADMIN},"system:masters"', f"{eks.user_token},{USER},uid-{USER}"]
    assert eks.admin_token != gke.admin_token and len({eks.port, eks.etcd_port, gke.port, gke.etcd_port}) >= 3
    assert (tmp_path / "eks" / "pki" / "ca.crt").read_bytes() != (tmp_path / "gke" / "pki" / "ca.crt").read_bytes()


def test_the_kubeconfig_has_three_contexts_per_mesh(tmp_path: Path) -> None:
    run = Clusters(tmp_path, {m: envtest._prepare(m, tmp_path / m) for m in ("eks", "gke")}, tmp_path / "kubeconfig")
    config = yaml.safe_load(envtest.write_kubeconfig(run).read_text())
    contexts = {c["name"]: c["context"]["user"] for c in config["contexts"]}
    assert contexts == {
        "eks": "eks-meshbridge",
        "eks-cert": "eks-meshbridge-cert",
        "eks-admin": "eks-admin",
        "gke": "gke-meshbridge",
        "gke-cert": "gke-meshbridge-cert",
        "gke-admin": "gke-admin",
    }
    assert run.kubeconfig.stat().st_mode & 0o077 == 0
    cert_user = next(u for u in config["users"] if u["name"] == "gke-meshbridge-cert")["user"]
    assert cert_user["client-key"] == str(tmp_path / "gke" / "pki" / "user.key")


def test_a_recorded_pid_is_signalled_only_while_it_runs_the_recorded_binary(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["/bin/sleep", "30"])
    try:
        # until the child has exec'd, its command line is still this Python's: wait for it (a bounded poll)
        deadline = time.monotonic() + 5
        while not envtest._runs(stranger.pid, "/bin/sleep") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert envtest._runs(stranger.pid, "/bin/sleep")
        assert not envtest._runs(stranger.pid, str(tmp_path / "etcd-0123"))
        # a pid reused by someone else's process is never signalled
        assert envtest._stop_process(stranger.pid, None, "eks etcd", str(tmp_path / "etcd-0123")) == []
        assert stranger.poll() is None
        # a state file that recorded no binary (an older one): the process is recognised by the binary's name
        assert envtest._command_of(stranger.pid, "sleep") == "/bin/sleep"
        assert envtest._command_of(stranger.pid, "etcd") == ""
        # its own process is stopped
        assert envtest._stop_process(stranger.pid, stranger, "eks etcd", "/bin/sleep") == []
        assert stranger.returncode == -15
    finally:
        stranger.kill()
        stranger.wait()


def test_down_without_clusters_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(KubeServersUnavailable, match=r"no clusters recorded in .*make clusters-up"):
        Clusters.load(tmp_path)
    assert envtest._main(["down", "--dir", str(tmp_path)]) == 0


def test_the_ready_plan_says_apply_needs_no_wait_on_servers_without_a_kubelet(tmp_path: Path) -> None:
    plan = envtest.ready_plan(Path("b.yaml"), tmp_path / "kubeconfig", ["eks", "gke"]).splitlines()
    options = f"--kubeconfig {tmp_path / 'kubeconfig'} --context eks=eks --context gke=gke"
    apply = next(line for line in plan if "meshbridge apply" in line)
    assert apply.startswith(f"  meshbridge apply -f b.yaml {options} --no-wait   # no kubelet")
    # the negative twin: plan waits for nothing, so its line has no --no-wait (an option plan does not take)
    assert next(line for line in plan if "meshbridge plan" in line) == f"  meshbridge plan -f b.yaml {options}"
