"""``local curl`` as curl (pure parts: -w, the hints, the options), the ALB's log read back, and ``local env``,
from a state folder alone: no Envoy started here."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.local.alb_log import readable
from meshbridge.local.curl import CurlResult, redirect_url
from meshbridge.local.process import start_time
from meshbridge.local.twin import TwinState
from meshbridge.local.writeout import Transfer, write_out
from tests.builders import ROOT
from tests.unit.test_alb_log import FAILED, alb_log

# -- -w --------------------------------------------------------------------------------------------------


def result(status: int = 200, body: bytes = b"<p>hi</p>", **kwargs: object) -> CurlResult:
    headers = [("content-type", "text/html"), *kwargs.pop("extra", [])]  # type: ignore[misc]
    return CurlResult(
        status,
        "OK",
        "HTTP/1.1",
        headers,
        body,
        [],
        url=str(kwargs.pop("url", "http://lambda.external/hello")),
        remote=("127.0.9.12", 80),
        time_namelookup=0.001,
        time_starttransfer=0.01,
        time_total=0.0125,
        size_header=80,
    )


def test_write_out_has_curls_variables_and_escapes() -> None:
    fmt = r"%{http_code} %{size_download} %{time_total}\t%header{Content-Type} %% %{remote_ip}:%{remote_port}\n"
    pieces, warnings = write_out(fmt, Transfer([result()], "http://lambda.external/hello"))
    assert pieces == [("stdout", "200 9 0.012500\ttext/html % 127.0.9.12:80\n")] and warnings == []
    pieces, _ = write_out("%{json}", Transfer([result()], "http://lambda.external/hello"))
    assert '"http_code":200,' in pieces[0][1]  # curl's own spacing: jq and grep see the same text
    doc = json.loads(pieces[0][1])
    assert doc["http_code"] == 200 and doc["num_redirects"] == 0 and doc["exitcode"] == 0
    assert doc["remote_port"] == 80 and doc["size_download"] == 9 and doc["time_total"] == 0.0125
    assert doc["content_type"] == "text/html" and doc["http_version"] == "1.1" and doc["remote_ip"] == "127.0.9.12"
    assert doc["redirect_url"] is None and doc["errormsg"] is None  # curl's null: no redirect, no error


def test_write_out_json_negative_twin_a_failed_transfer_keeps_curls_types() -> None:
    failed = Transfer([], "http://lambda.external/", 28, "Operation timed out after 300 milliseconds")
    doc = json.loads(write_out("%{json}", failed)[0][0][1])
    assert doc["http_code"] == 0 and doc["exitcode"] == 28 and doc["time_total"] == 0.0  # "000" is a number: 0
    assert doc["errormsg"] == "Operation timed out after 300 milliseconds" and doc["content_type"] is None


def test_write_out_after_redirects_and_errors() -> None:
    first = result(302, b"", extra=[("location", "/hello")], url="http://lambda.external/old")
    transfer = Transfer([first, result()], "http://lambda.external/old")
    pieces, _ = write_out("%{num_redirects} %{url_effective} %{time_total} %{time_redirect}", transfer)
    assert pieces == [("stdout", "1 http://lambda.external/hello 0.025000 0.012500")]
    assert redirect_url(first) == "http://lambda.external/hello" and redirect_url(result()) == ""
    failed = Transfer([], "http://lambda.external/", 28, "Operation timed out after 300 milliseconds")
    pieces, _ = write_out("%{http_code} %{exitcode}%{stderr} %{errormsg}", failed)
    assert pieces == [("stdout", "000 28"), ("stderr", " Operation timed out after 300 milliseconds")]
    # %{onerror}: what follows only when the transfer failed
    assert write_out("ok%{onerror} failed", Transfer([result()], "u"))[0] == [("stdout", "ok")]
    assert write_out("ok%{onerror} failed", failed)[0] == [("stdout", "ok failed")]


def test_write_out_negative_twin_an_unknown_variable_prints_nothing_and_warns() -> None:
    pieces, warnings = write_out("[%{http_cod}]", Transfer([result()], "u"))
    assert pieces == [("stdout", "[]")] and warnings == ["unknown --write-out variable: 'http_cod'"]


# -- the twin from a state folder --------------------------------------------------------------------------


def running_twin(workdir: Path, offset: int) -> Path:
    """A state folder as 'local up' leaves it, with this process as the supervisor: the seed's app sidecar at
    127.0.9.12, ports below 1024 moved up by ``offset``, and the ALB's log."""
    local = workdir / ".meshbridge" / "local"
    log = alb_log(local / "eks" / "alb-lambda" / "alb.log", FAILED)
    me = {"pid": os.getpid(), "started": start_time(os.getpid()), "running": True}
    comps = [
        {"name": "gke/sleep", "address": "127.0.9.12", "pid": None, "started": None, "ready": True, "restarts": 0,
         "log": str(local / "gke" / "sleep" / "envoy.log"), "mesh": "gke", "kind": "envoy"},
        {"name": "eks/alb-lambda", "address": "127.0.9.13", "pid": None, "started": None, "ready": True,
         "restarts": 0, "log": str(log), "mesh": "eks", "kind": "alb"},
    ]  # fmt: skip
    (local / "status.json").write_text(json.dumps({"supervisor": me, "components": comps}))
    sleep = {
        **{"address": "127.0.9.12", "admin": "127.0.9.12:15000", "mesh": "gke", "role": "app", "namespace": "sleep"},
        **{"low_port_offset": offset, "agent_dns": {"lambda.external": ["240.240.0.1"]}, "listener_ports": [80]},
    }
    plan = {
        "proxies": {"gke/sleep": sleep},
        "dns_servers": {"eks": "127.0.9.53:53", "gke": "127.0.9.54:53"},
        "endpoint_ports": [],
        "inputs": [{"path": str(workdir / "bridge.yaml"), "sha256": "-"}],
        "subnet": "127.0.9.0/24",
        "manifests": {},
    }
    (local / "plan.json").write_text(json.dumps(plan))
    return log


def test_env_gives_the_sidecar_and_a_real_curl_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    running_twin(workdir, offset=10000)  # not root: port 80 binds as 10080
    capsys.readouterr()
    assert main(["local", "env"]) == 0
    text = capsys.readouterr().out
    assert "app gke/sleep (mesh gke): its sidecar listens on 127.0.9.12, port(s) 80 (bound as 10080)" in text
    assert "  curl -i --connect-to lambda.external:80:127.0.9.12:10080 http://lambda.external/hello-world" in text
    resolve = "--resolve lambda.external:10080:127.0.9.12 -H 'Host: lambda.external' http://lambda.external:10080/"
    assert resolve in text
    assert all(line.strip().endswith("/hello-world") for line in text.splitlines() if "curl " in line)  # whole
    assert main(["local", "env", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sidecar"] == {"address": "127.0.9.12", "ports": [{"port": 80, "bound": 10080}]}
    assert doc["requests"][0]["url"] == "http://lambda.external/hello-world"


def test_env_as_root_needs_only_resolve(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    running_twin(workdir, offset=0)
    capsys.readouterr()
    assert main(["local", "env"]) == 0
    curls = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("curl ")]
    assert curls == ["curl -i --resolve lambda.external:80:127.0.9.12 http://lambda.external/hello-world"]


def test_env_of_a_twin_never_started_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "env"]) == 2
    assert "never started" in capsys.readouterr().err


def test_logs_of_the_alb_read_like_lambda_serve(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = running_twin(workdir, offset=0)
    capsys.readouterr()
    for name in ("eks/alb-lambda", "alb-lambda", "lambda"):  # the whole name, the short one, the export's
        assert main(["local", "logs", name]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "ready: listening on http://127.0.9.13:80/",
            *readable(json.dumps({"event": "invocation", **FAILED.to_dict()})),
        ]
    # negative twin: --raw prints the file as it is
    assert main(["local", "logs", "eks/alb-lambda", "--raw"]) == 0
    assert capsys.readouterr().out == log.read_text()


# -- options and hints -------------------------------------------------------------------------------------


def test_hints_for_local_curl_name_the_bridge_file_with_bridge() -> None:
    twin = TwinState(Path(".meshbridge"), " -f my.yaml --state-dir s")
    assert (
        twin.command("local curl -i http://x/") == "meshbridge local curl -i http://x/ --bridge my.yaml --state-dir s"
    )
    assert twin.command("local down") == "meshbridge local down -f my.yaml --state-dir s"  # negative twin
    assert TwinState(Path("s"), " --state-dir s").command("local curl u") == "meshbridge local curl u --state-dir s"


CURL_OPTIONS = ("-f", "--fail", "-o", "-w", "-m", "--max-time", "-L", "-s", "-i", "-v", "-H", "-d", "-X", "--bridge")


def test_local_curl_help_and_the_readme_agree_on_curls_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "curl", "--help"]) == 0
    names = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", capsys.readouterr().out))
    assert set(CURL_OPTIONS) <= names and {"-F", "--file", "--fail-with-body", "-I"} <= names
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**`local curl` is curl**") : readme.index("**The real curl**")]
    words = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", section.replace("kubectl exec deploy/sleep --", ""))
    mentioned = {f"-{c}" for w in words if not w.startswith("--") for c in w[1:]} | {w for w in words if w[1] == "-"}
    assert set(CURL_OPTIONS) <= mentioned, set(CURL_OPTIONS) - mentioned
    others = {"--raw"}  # 'local logs --raw', in the same paragraph
    assert mentioned - others <= names, mentioned - others - names  # negative twin: no option the help lacks


def test_logs_json_lists_the_components_and_their_logs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = running_twin(workdir, offset=0)
    capsys.readouterr()
    assert main(["local", "logs", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["components"][1] == {"name": "eks/alb-lambda", "kind": "alb", "log": str(log), "access_log": None}
    assert doc["components"][0]["access_log"].endswith("gke/sleep/access.log")
    # negative twin: with a component, --json is refused with the two ways that exist
    assert main(["local", "logs", "eks/alb-lambda", "--json"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Fix: meshbridge local logs --json, or meshbridge local logs eks/alb-lambda --raw" in err
