"""CLI behaviour a new user meets first: Ctrl-C, a folder given as the bridge file, revoking an unknown serial,
stable proxy-config tables; and the local twin's commands without a running twin (no Envoy started here)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from meshbridge.cli.local_cmd import _body
from meshbridge.cli.main import main
from meshbridge.envoy.proxyconfig import format_proxy_config
from meshbridge.errors import LocalError
from meshbridge.local.curl import AppView, CurlError, curl
from meshbridge.local.process import start_time
from meshbridge.local.twin import started_twins
from meshbridge.pki import PkiStore

# -- Ctrl-C ------------------------------------------------------------------------------------------------


def test_ctrl_c_inside_a_command_is_one_line_and_130(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("meshbridge.cli.local_cmd.twin_state", interrupted)
    capsys.readouterr()
    assert main(["local", "status"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
    signal.signal(signal.SIGINT, signal.default_int_handler)  # main ignores a second Ctrl-C once interrupted


def test_a_command_that_is_not_interrupted_keeps_its_exit_code(workdir: Path) -> None:
    assert main(["local", "status"]) == 2  # never started here: an error, not an interruption
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3, 0.6])
def test_ctrl_c_during_imports_never_prints_a_traceback(delay: float, tmp_path: Path) -> None:
    """The console script's path: ``run`` imports the CLI (~1 s: typer, rich, every command) and runs."""
    code = "from meshbridge.cli.main import run; print('ready', flush=True); run()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "local", "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    if delay < 0.3:  # certainly still importing
        assert (proc.returncode, err) == (130, "interrupted\n")
    else:  # or already done: 'local status' of nothing exits 2
        assert (proc.returncode, err) == (130, "interrupted\n") or proc.returncode == 2


# -- -f FOLDER ---------------------------------------------------------------------------------------------


def test_a_folder_as_the_bridge_file_says_it_is_one(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "show", "-f", str(workdir)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is a directory" in err and f"-f {workdir / 'bridge.yaml'}" in err and "permissions" not in err


def test_an_unreadable_bridge_file_still_says_permissions_and_encoding(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "bad.yaml").write_bytes(b"\xff\xfe not utf-8")
    assert main(["certs", "show", "-f", str(workdir / "bad.yaml")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "permissions and encoding" in err and "directory" not in err


# -- certs revoke --serial ---------------------------------------------------------------------------------


def test_revoke_refuses_a_serial_meshbridge_never_issued(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    store = PkiStore(workdir / ".meshbridge")
    client = store.load("gke", "client")
    assert client is not None
    capsys.readouterr()
    assert main(["certs", "revoke", "--mesh", "gke", "--serial", "01"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not a certificate of mesh 'gke' that meshbridge knows" in err and "--force" in err
    assert f"{client.serial:x} (client leaf)" in err
    assert store.revoked("gke") == []  # nothing written
    # the eks server leaf is not gke's: the serial must belong to the mesh named
    server = store.load("eks", "server")
    assert server is not None
    assert main(["certs", "revoke", "--mesh", "gke", "--serial", f"{server.serial:x}"]) == 2


def test_revoke_takes_a_known_serial_and_force_takes_any(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue"]) == 0
    store = PkiStore(workdir / ".meshbridge")
    client = store.load("gke", "client")
    assert client is not None
    assert main(["certs", "revoke", "--mesh", "gke", "--serial", f"{client.serial:x}"]) == 0
    assert main(["certs", "revoke", "--mesh", "gke", "--serial", "01", "--force"]) == 0
    assert store.revoked("gke") == [client.serial, 1]
    capsys.readouterr()
    assert main(["certs", "revoke", "--mesh", "gke", "--serial", "01"]) == 0  # on the CRL: known now
    assert "already revoked" in capsys.readouterr().out
    assert main(["certs", "revoke", "--help"]) == 0
    assert "--force" in capsys.readouterr().out


# -- proxy-config tables -----------------------------------------------------------------------------------


def _static_backend(match: str) -> dict[str, Any]:
    return {
        "route_config": {
            "virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [{"match": {"prefix": match}}]}]
        }
    }


def _dump(static: list[dict[str, Any]], dynamic: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "static_route_configs": static,
                "dynamic_route_configs": dynamic,
            }
        ]
    }


def _vhost(name: str, domains: list[str], *matches: str) -> dict[str, Any]:
    return {"name": name, "domains": domains, "routes": [{"match": {"prefix": m}} for m in matches]}


def test_routes_table_is_the_same_whatever_order_envoy_dumps_in() -> None:
    static = [_static_backend("/stats/prometheus"), _static_backend("/healthz/ready")]
    dynamic = [
        {"route_config": {"name": "https.443.b", "virtual_hosts": [_vhost("b:443", ["b"], "/")]}},
        {"route_config": {"name": "80", "virtual_hosts": [_vhost("z:80", ["z"], "/"), _vhost("a:80", ["a"], "/")]}},
        {"route_config": {"name": "8080", "virtual_hosts": [_vhost("c", ["c"], "/x", "/")]}},
    ]
    one = format_proxy_config("routes", _dump(static, dynamic))
    two = format_proxy_config("routes", _dump(static[::-1], dynamic[::-1]))
    assert one == two
    rows = [line.split() for line in one.splitlines()[1:]]
    assert [r[0] for r in rows[:5]] == ["80", "80", "8080", "8080", "https.443.b"]  # numeric names by value
    assert [r[1] for r in rows[:2]] == ["a:80", "z:80"]  # then by domain
    assert [r[-1] for r in rows[2:4]] == ["/x*", "/*"]  # a virtual host's routes keep Envoy's (matching) order
    assert [r[-1] for r in rows[-2:]] == ["/healthz/ready*", "/stats/prometheus*"]  # static last, by match


def test_routes_table_negative_twin_different_routes_give_different_tables() -> None:
    a = format_proxy_config("routes", _dump([_static_backend("/healthz/ready")], []))
    b = format_proxy_config("routes", _dump([_static_backend("/stats/prometheus")], []))
    assert a != b


def test_secrets_table_is_sorted_by_resource_name() -> None:
    dump = {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
                "dynamic_active_secrets": [{"name": n, "secret": {}} for n in ("kubernetes://b", "kubernetes://a")],
            }
        ]
    }
    rows = format_proxy_config("secret", dump).splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["kubernetes://a", "kubernetes://b"]


# -- the local twin's commands from the state folder alone -------------------------------------------------


def _fake_state(
    state: Path,
    *,
    supervisor_pid: int,
    running: bool = True,
    bridge: Path | None = None,
    manifests: dict[str, list[Path]] | None = None,
) -> None:
    """A status.json and plan.json as a twin whose processes are gone would leave them (a live
    ``supervisor_pid`` plays a running supervisor)."""
    local = state / "local"
    local.mkdir(parents=True)
    started = start_time(supervisor_pid) or 1
    dead = {"pid": supervisor_pid, "started": started, "running": running}
    comps = [
        {
            "name": n,
            "address": "127.9.9.10",
            "pid": None,
            "started": None,
            "ready": False,
            "restarts": 0,
            "log": str(local / n / "envoy.log"),
            "mesh": n.split("/")[0],
            "kind": k,
        }
        for n, k in (("eks/istio-ingressgateway", "envoy"), ("eks/alb-lambda", "alb"), ("dns", "dns"))
    ]
    (local / "status.json").write_text(json.dumps({"supervisor": dead, "components": comps}))
    inputs = [{"path": str(bridge), "sha256": "-"}] if bridge else []
    used = {m: [str(p) for p in ps] for m, ps in (manifests or {}).items()}
    (local / "plan.json").write_text(
        json.dumps({"proxies": {}, "inputs": inputs, "up_at": time.time(), "subnet": "127.9.9.0/24", "manifests": used})
    )


def test_down_and_status_need_only_the_state_folder(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_state(workdir / ".meshbridge", supervisor_pid=_dead_pid())
    (workdir / "bridge.yaml").rename(workdir / "moved.yaml")
    capsys.readouterr()
    assert main(["local", "status"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "not running" in err and "supervisor" in err and "local down" in err and "local up" in err
    assert main(["local", "down"]) == 0
    assert "stopped 0 process(es)" in capsys.readouterr().out
    assert main(["local", "status"]) == 1
    assert "not running" in capsys.readouterr().err
    elsewhere = workdir / "elsewhere"
    _fake_state(elsewhere, supervisor_pid=_dead_pid())
    assert main(["local", "down", "--state-dir", str(elsewhere)]) == 0
    assert main(["local", "down", "--state-dir", str(workdir / "nothing")]) == 0  # nothing ran: nothing to stop


def test_status_of_a_twin_never_started_says_to_run_up(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "status"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"never started with the state folder {workdir / '.meshbridge'} (nothing in" in err
    assert "Fix: give the -f (or --state-dir) that 'local up' was given, or start the twin: meshbridge local up" in err


# -- hints repeat the -f / --state-dir the user gave; "never started" names the folder ---------------------


@pytest.mark.parametrize(
    "command",
    [
        ["local", "status"],
        ["local", "logs", "dns"],
        ["local", "curl", "http://a/"],
        ["local", "proxy-config", "r", "x"],
    ],
)
def test_never_started_names_the_folder_looked_in_and_the_twin_started_below(
    command: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's path: 'local up -f examples/article/bridge.yaml', then a command without -f."""
    article = workdir / "examples" / "article"
    article.mkdir(parents=True)
    _fake_state(article / ".meshbridge", supervisor_pid=_dead_pid(), bridge=article / "bridge.yaml")
    assert main(command) == 2
    err = " ".join(capsys.readouterr().err.split())
    flag = "--bridge" if command[1] == "curl" else "-f"  # local curl's -f is curl's --fail
    assert f"never started with the state folder {workdir / '.meshbridge'} (nothing in" in err
    assert f"beside its bridge file ({flag}), not where commands run" in err
    assert f"Twins started below this folder: {flag} examples/article/bridge.yaml (stopped)" in err
    assert (
        f"Fix: add {flag} examples/article/bridge.yaml (or the option of the one you mean) to "
        f"'meshbridge {command[0]} {command[1]}'" in err
    )
    # negative twin: with the option it found, the state folder is the one 'local up' used: no such error
    assert main([*command, flag, "examples/article/bridge.yaml"]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "never started" not in err and "Twins started below" not in err


def test_a_twin_kept_elsewhere_is_suggested_by_its_state_dir(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_state(workdir / "runs" / ".meshbridge", supervisor_pid=_dead_pid(), bridge=workdir / "bridge.yaml")
    assert main(["local", "status"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Twins started below this folder: --state-dir runs/.meshbridge (stopped)" in err


def test_hints_repeat_the_options_that_chose_the_twin(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", "status", "--state-dir", "state"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"never started with the state folder state (nothing in {Path('state') / 'local'}), the --state-dir" in err
    assert "start the twin: meshbridge local up --state-dir state" in err
    _fake_state(workdir / "state", supervisor_pid=_dead_pid(), running=False)
    assert main(["local", "curl", "http://lambda.external/", "--state-dir", "state"]) == 7
    assert "(it was stopped). Fix: meshbridge local up --state-dir state" in capsys.readouterr().err
    (workdir / "b").mkdir()
    (workdir / "bridge.yaml").rename(workdir / "b" / "my bridge.yaml")
    _fake_state(workdir / "b" / ".meshbridge", supervisor_pid=_dead_pid(), manifests={"eks": [workdir / "eks.yaml"]})
    assert main(["local", "status", "-f", "b/my bridge.yaml"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    up = "meshbridge local up -f 'b/my bridge.yaml' --manifests eks=eks.yaml"
    assert f"Fix: meshbridge local down -f 'b/my bridge.yaml' && {up}" in err
    assert main(["local", "logs", "--access", "dns", "-f", "b/my bridge.yaml"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Fix: meshbridge local logs dns -f 'b/my bridge.yaml' (without --access) prints its own log" in err
    assert main(["local", "curl", "http://lambda.external/", "--state-dir", str(workdir / "state")]) == 7
    assert f"Fix: meshbridge local up --state-dir {workdir / 'state'}" in capsys.readouterr().err  # as given
    monkeypatch.chdir(workdir / "b")  # a manifest outside the working folder is shown whole
    (workdir / "b" / "my bridge.yaml").rename(workdir / "b" / "bridge.yaml")
    assert main(["local", "status", "-f", "bridge.yaml"]) == 1  # negative twin: the default, nothing to repeat
    err = " ".join(capsys.readouterr().err.split())
    assert f"Fix: meshbridge local down && meshbridge local up --manifests eks={workdir / 'eks.yaml'}" in err


def test_down_in_the_wrong_folder_points_to_the_twin_that_still_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        article = workdir / "examples" / "article"
        article.mkdir(parents=True)
        _fake_state(article / ".meshbridge", supervisor_pid=sleeper.pid, bridge=article / "bridge.yaml")
        capsys.readouterr()
        assert main(["local", "down"]) == 0
        captured = capsys.readouterr()
        assert f"nothing was running with the state folder {workdir / '.meshbridge'}" in captured.out
        err = " ".join(captured.err.split())
        assert "twins still run below this folder: -f examples/article/bridge.yaml" in err
        assert "Fix: meshbridge local down -f examples/article/bridge.yaml" in err
        assert sleeper.poll() is None  # the other twin was left alone
    finally:
        sleeper.kill()
        sleeper.wait()
    assert main(["local", "down"]) == 0
    assert "twins still run" not in capsys.readouterr().err  # negative twin: it is no longer running


def test_logs_before_up_says_the_twin_is_not_running(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "logs", "foo"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "meshbridge local up" in err and "components: " not in err


def test_access_logs_are_only_for_proxies(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_state(workdir / ".meshbridge", supervisor_pid=_dead_pid())
    for component in ("eks/alb-lambda", "dns"):
        assert main(["local", "logs", "--access", component]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "only proxies" in err and f"meshbridge local logs {component}" in err, err
        assert "no request has reached" not in err
    assert main(["local", "logs", "--access", "eks/istio-ingressgateway"]) == 2  # a proxy without a log yet
    assert "no request has reached this proxy" in capsys.readouterr().err
    assert main(["local", "logs", "nope"]) == 2
    assert "components: eks/istio-ingressgateway, eks/alb-lambda, dns" in " ".join(capsys.readouterr().err.split())


def test_curl_with_the_supervisor_gone_says_the_twin_is_not_running(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_state(workdir / ".meshbridge", supervisor_pid=_dead_pid())
    assert main(["local", "curl", "http://lambda.external/hello-world"]) == 7
    err = " ".join(capsys.readouterr().err.split())
    assert "not running" in err and "local down" in err and "local up" in err


def test_up_validates_the_handler_before_issuing_certificates(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "handler.py").unlink()
    assert main(["local", "up"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "handler" in err and "handler.py" in err
    assert not (workdir / ".meshbridge" / "pki").exists()  # no certificate was issued


def test_up_validates_manifest_variables_before_issuing_certificates(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HOST_GW_CLUSTER2", raising=False)
    (workdir / "eks.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: ${HOST_GW_CLUSTER2}}\n"
    )
    assert main(["local", "up", "--manifests", "eks=eks.yaml"]) == 2
    assert "${HOST_GW_CLUSTER2}" in capsys.readouterr().err
    assert main(["local", "up", "--manifests", "eks=missing.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err
    (workdir / "bin.yaml").write_bytes(b"\xff\xfe")
    assert main(["local", "up", "--manifests", "eks=bin.yaml"]) == 2
    assert "bin.yaml" in capsys.readouterr().err
    assert not (workdir / ".meshbridge" / "pki").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- what local curl refuses before sending, and the one-line errors of file operations ----------------------------

_VIEW = AppView("gke/sleep", "127.0.0.2", 0, {}, ("127.0.0.1", 9), (80,))  # its DNS server does not answer


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "BAD METHOD"}, "not an HTTP method"),
        ({"method": ""}, "not an HTTP method"),
        ({"headers": [("X", "a\r\nInjected: 1")]}, "would inject a header"),
        ({"headers": [("X", "a\0")]}, "would inject a header"),
        ({"headers": [("Bad Name", "x")]}, "not a header name"),
    ],
)
def test_curl_refuses_a_request_http_cannot_carry(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LocalError, match=message):
        curl(_VIEW, "http://lambda.external/", **kwargs)


def test_curl_sends_a_valid_method_and_header_on_to_dns() -> None:
    with pytest.raises(CurlError) as e:  # past the checks: the (silent) DNS server is asked
        curl(_VIEW, "http://lambda.external/", method="PATCH", headers=[("X-Trace", "a b; c=d")])
    assert e.value.code == 6


@pytest.mark.parametrize("url", ["http://lambda.external:99999/", "http://lambda.external:0/", "http://[::1/"])
def test_curl_rejects_a_malformed_url_with_code_3(url: str) -> None:
    with pytest.raises(CurlError) as e:
        curl(_VIEW, url)
    assert e.value.code == 3 and "URL rejected" in str(e.value)


def test_curl_data_from_a_file_drops_line_breaks_as_curl_does(tmp_path: Path) -> None:
    (tmp_path / "body.txt").write_bytes(b"a=1\r\n&b=2\n")
    assert _body(f"@{tmp_path / 'body.txt'}") == b"a=1&b=2"
    assert _body("a=1\n") == b"a=1\n"  # text given inline is sent as it is
    assert _body(None) is None
    with pytest.raises(LocalError, match="cannot read"):
        _body(f"@{tmp_path / 'missing.txt'}")


def test_init_into_a_file_says_it_needs_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bridge.yaml").write_text("x")
    assert main(["init", str(tmp_path / "bridge.yaml")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "new")]) == 0  # a folder that does not exist yet is created


def test_a_refused_file_operation_is_one_line_with_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main(["init", str(blocker / "sub")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{blocker / 'sub'}: a part of the path is a file, not a folder. Fix:" in err and "Traceback" not in err


def test_manifests_without_routing_resources_are_noticed(tmp_path: Path) -> None:
    from meshbridge.local.twin import mesh_configs
    from tests.builders import seed_bridge

    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: y}\n")
    (tmp_path / "vs.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: y}\n"
        "spec: {hosts: [a.example]}\n"
    )
    _, notices = mesh_configs(seed_bridge(), tmp_path, None, {"eks": [tmp_path / "cm.yaml"]})
    assert any("hold no Gateway, VirtualService" in n and n.startswith("eks:") for n in notices), notices
    _, notices = mesh_configs(seed_bridge(), tmp_path, None, {"eks": [tmp_path / "vs.yaml"]})
    assert not any("hold no Gateway" in n for n in notices), notices


def test_a_known_kind_under_a_wrong_api_version_says_which_one() -> None:
    from meshbridge.istio.parse import build_config

    cfg = build_config([("x.yaml#0", {"kind": "VirtualService", "metadata": {"name": "v"}})])
    (w,) = cfg.warnings
    assert "apiVersion (missing) is not networking.istio.io/v1" in str(w) and "Fix: apiVersion:" in str(w)


# -- local logs without a component; local status: ports, --json, 100 columns ----------------------------------


def test_logs_without_any_access_log_suggest_no_access(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The twin of the test below: on the real control plane no component writes an access log (Istio's default
    mesh config keeps none), so the list suggests no '--access' that would be refused."""
    state = workdir / ".meshbridge"
    _fake_state(state, supervisor_pid=_dead_pid())
    status = json.loads((state / "local" / "status.json").read_text())
    for c in status["components"]:
        c["kind"] = "pilot-agent" if c["kind"] == "envoy" else c["kind"]
    (state / "local" / "status.json").write_text(json.dumps(status))
    capsys.readouterr()
    assert main(["local", "logs", "-f", "bridge.yaml"]) == 0
    out = capsys.readouterr().out
    assert "pick one: meshbridge local logs COMPONENT   (-F follows it)" in out
    assert "--access" not in out.split("logs are under")[1] and "e.g." not in out


def test_logs_without_a_component_lists_them_and_how_to_pick_one(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_state(workdir / ".meshbridge", supervisor_pid=_dead_pid())
    (workdir / ".meshbridge" / "local" / "dns").mkdir()
    (workdir / ".meshbridge" / "local" / "dns" / "envoy.log").write_text("the DNS server's own line\n")
    capsys.readouterr()
    assert main(["local", "logs", "-f", "bridge.yaml"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["COMPONENT", "KIND", "LOG", "WITH", "--access"]
    assert lines[1].split() == ["eks/istio-ingressgateway", "envoy", "eks/istio-ingressgateway/envoy.log", "access.log"]
    assert lines[2].split() == ["eks/alb-lambda", "alb", "eks/alb-lambda/envoy.log", "-"]
    assert f"logs are under {workdir / '.meshbridge' / 'local'}" in out
    assert "pick one: meshbridge local logs COMPONENT" in out
    assert "e.g.: meshbridge local logs eks/istio-ingressgateway --access" in " ".join(out.split())
    assert "the DNS server's own line" not in out  # a list, not every log
    assert max(map(len, lines)) <= 100
    # negative twin: with a component, its log and nothing else
    assert main(["local", "logs", "dns"]) == 0
    assert capsys.readouterr().out == "the DNS server's own line\n"


def test_logs_of_a_twin_never_started_without_a_component_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", "logs"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"never started with the state folder {workdir / '.meshbridge'}" in err and "COMPONENT" not in err


def test_logs_of_a_short_name_shared_by_two_meshes_asks_for_the_whole_name(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _running_state(
        workdir / ".meshbridge", os.getpid(), [("eks/istio-ingressgateway", []), ("gke/istio-ingressgateway", [])]
    )
    assert main(["local", "logs", "istio-ingressgateway"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'istio-ingressgateway' names 2 components" in err
    assert "components: eks/istio-ingressgateway, gke/istio-ingressgateway" in err
    assert "Fix: name one, e.g. meshbridge local logs eks/istio-ingressgateway" in err


def _port(name: str, address: str, port: int, advertised: int | None = None) -> dict[str, Any]:
    return {"name": name, "address": address, "port": port, "advertised": port if advertised is None else advertised}


def _running_state(state: Path, pid: int, components: list[tuple[str, list[dict[str, Any]]]], **extra: Any) -> None:
    """status.json of a running twin whose supervisor and components are the live process ``pid``."""
    local = state / "local"
    local.mkdir(parents=True)
    me = {"pid": pid, "started": start_time(pid), "running": True}
    comps = [
        {
            "name": name,
            "address": ports[0]["address"] if ports else "127.9.9.10",
            "pid": pid,
            "started": start_time(pid),
            "ready": True,
            "restarts": 0,
            "last_exit": None,
            "log": str(local / name / "envoy.log"),
            "mesh": name.split("/")[0] if "/" in name else "",
            "kind": "dns" if name == "dns" else "alb" if "alb-" in name else "envoy",
            "ports": ports,
            **extra,
        }
        for name, ports in components
    ]
    (local / "status.json").write_text(json.dumps({"supervisor": me, "components": comps}))
    (local / "plan.json").write_text(json.dumps({"proxies": {}, "inputs": [], "subnet": "127.234.255.0/24"}))


def _worst_case_seed(state: Path, pid: int) -> None:
    """The seed's components as a non-root user gets them, in the widest /24, each restarted 123 times."""
    net = "127.234.255"
    _running_state(
        state,
        pid,
        [
            ("dns", [_port("dns eks", f"{net}.53", 10053, 53), _port("dns gke", f"{net}.54", 10053, 53)]),
            (
                "eks/istio-ingressgateway",
                [_port("0.0.0.0_8443", f"{net}.10", 8443, 443), _port("admin", f"{net}.10", 15000)],
            ),
            ("gke/istio-egressgateway", [_port("0.0.0.0_8080", f"{net}.11", 8080), _port("admin", f"{net}.11", 15000)]),
            ("gke/sleep", [_port("0.0.0.0_80", f"{net}.12", 10080, 80), _port("admin", f"{net}.12", 15000)]),
            ("eks/alb-lambda", [_port("HTTP", f"{net}.13", 10080, 80), _port("HTTPS", f"{net}.13", 10443, 443)]),
        ],
        restarts=123,
        last_exit=-9,
    )


def test_status_shows_each_components_ports_within_100_columns(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _worst_case_seed(workdir / ".meshbridge", os.getpid())
    capsys.readouterr()
    assert main(["local", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["COMPONENT", "KIND", "ADDRESS", "PORTS", "READY", "RESTARTS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "127.234.255.53, .54   10053 (53)" not in rows["dns"]
    assert " 127.234.255.53, .54 " in rows["dns"] and " 53→10053 " in rows["dns"]
    assert " 443→8443, admin 15000 " in rows["eks/istio-ingressgateway"]
    assert " 8080, admin 15000 " in rows["gke/istio-egressgateway"]
    assert " 80→10080, admin 15000 " in rows["gke/sleep"]
    assert " 80→10080, 443→10443 " in rows["eks/alb-lambda"]
    assert rows["gke/sleep"].endswith(" yes     123")
    assert max(map(len, lines)) <= 100, "\n".join(lines)
    # negative twin: --wide adds what the default leaves out (and may be wider)
    assert main(["local", "status", "--wide"]) == 0
    wide = capsys.readouterr().out.splitlines()
    header = ["COMPONENT", "MESH", "KIND", "ADDRESS", "PORTS", "READY", "RESTARTS", "PID", "LAST", "EXIT", "LOG"]
    assert wide[0].split() == header
    assert f" 123        {os.getpid()}   SIGKILL " in wide[1] and max(map(len, wide)) > 100


def test_status_json_has_every_field_and_each_port(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _worst_case_seed(workdir / ".meshbridge", os.getpid())
    capsys.readouterr()
    assert main(["local", "status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is True and doc["state_dir"] == str(workdir / ".meshbridge") and "problem" not in doc
    by_name = {c["name"]: c for c in doc["components"]}
    assert list(by_name) == [
        "dns",
        "eks/istio-ingressgateway",
        "gke/istio-egressgateway",
        "gke/sleep",
        "eks/alb-lambda",
    ]
    ingress = by_name["eks/istio-ingressgateway"]
    assert ingress["ports"] == [
        {"name": "0.0.0.0_8443", "address": "127.234.255.10", "port": 8443, "advertised": 443},
        {"name": "admin", "address": "127.234.255.10", "port": 15000, "advertised": 15000},
    ]
    assert {k: ingress[k] for k in ("mesh", "kind", "pid", "ready", "restarts", "last_exit")} == {
        "mesh": "eks",
        "kind": "envoy",
        "pid": os.getpid(),
        "ready": True,
        "restarts": 123,
        "last_exit": -9,
    }
    assert by_name["dns"]["mesh"] is None and [p["address"] for p in by_name["dns"]["ports"]] == [
        "127.234.255.53",
        "127.234.255.54",
    ]


def test_status_json_of_a_stopped_twin_says_running_false_and_why(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_state(workdir / ".meshbridge", supervisor_pid=_dead_pid())
    assert main(["local", "status", "--json"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["running"] is False and "supervisor" in doc["problem"] and "Fix: meshbridge local down" in doc["problem"]
    assert [c["pid"] for c in doc["components"]] == [None, None, None]
    assert "not running" in captured.err


def test_logs_after_a_start_stopped_before_any_component_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = workdir / ".meshbridge" / "local"
    local.mkdir(parents=True)
    (local / "plan.json").write_text(json.dumps({"proxies": {}, "inputs": [], "manifests": {}}))  # no status.json
    assert main(["local", "logs"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "stopped before it started any component, so there is no log. Fix: meshbridge local up" in err
    assert "never started" not in err


def test_every_running_twin_is_named_before_the_stopped_ones(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run from a busy folder (/tmp): stopped twins sort first by name, the running ones must still be named."""
    for name in ("a1", "a2", "a3", "a4"):
        _fake_state(workdir / name / ".meshbridge", supervisor_pid=_dead_pid(), bridge=workdir / name / "bridge.yaml")
    for name in ("z1", "z2"):
        _fake_state(workdir / name / ".meshbridge", supervisor_pid=os.getpid(), bridge=workdir / name / "bridge.yaml")
    assert main(["local", "status"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "Twins started below this folder: -f z1/bridge.yaml (running), -f z2/bridge.yaml (running), "
        "-f a1/bridge.yaml (stopped) and 3 more, stopped. Fix: add -f z1/bridge.yaml" in err
    )
    # negative twin: none running, three stopped ones named and the rest counted
    for name in ("z1", "z2"):
        shutil.rmtree(workdir / name)
    assert main(["local", "status"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "-f a1/bridge.yaml (stopped), -f a2/bridge.yaml (stopped), -f a3/bridge.yaml (stopped) and 1 more" in err


def test_a_busy_subtree_does_not_hide_a_shallow_twin(workdir: Path) -> None:
    for i in range(30):
        (workdir / "a-cache" / f"d{i}" / "e").mkdir(parents=True)
    _fake_state(workdir / "z" / ".meshbridge", supervisor_pid=os.getpid(), bridge=workdir / "z" / "bridge.yaml")
    found = started_twins(workdir, budget=5)  # level by level: the top folder, a-cache, z
    assert [(t.state_dir, t.running) for t in found] == [(workdir / "z" / ".meshbridge", True)]
    # negative twin: a budget spent before z's level is read finds nothing (and says nothing wrong)
    assert started_twins(workdir, budget=2) == []


def test_a_twin_in_a_state_folder_of_another_name_is_found(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'local up --state-dir st1' from a folder below: 'local status' here names it with its --state-dir."""
    _fake_state(workdir / "seed" / "st1", supervisor_pid=os.getpid(), bridge=workdir / "seed" / "bridge.yaml")
    found = started_twins(workdir)
    assert [(t.state_dir, t.running) for t in found] == [(workdir / "seed" / "st1", True)]
    (workdir / "bridge.yaml").unlink(missing_ok=True)
    capsys.readouterr()
    assert main(["local", "status"]) == 2
    assert "--state-dir seed/st1 (running)" in " ".join(capsys.readouterr().err.split())


def test_negative_twin_a_folder_named_local_without_a_plan_is_no_twin(workdir: Path) -> None:
    (workdir / "src" / "local").mkdir(parents=True)
    assert started_twins(workdir) == []
