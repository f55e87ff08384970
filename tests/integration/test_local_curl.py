"""``local curl`` speaks curl (-f, -o, -w, -m, -L, -s, -v), says why a Lambda failed, and ``local logs`` of the
ALB reads like ``lambda serve``; ``local env`` gives the real curl line. One twin, real Envoy, real Lambda."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.cli.main import main
from meshbridge.local.twin import LocalTwin
from meshbridge.spec import load_bridge

pytestmark = pytest.mark.integration
PAGE = "<p>hello</p>"
URL = "http://lambda.external"

HANDLER = """
import time


def lambda_handler(event, context):
    path = event["path"]
    if path == "/boom":
        raise ValueError("bad input: boom")
    if path == "/invalid":
        return {"statusCode": "abc"}
    if path == "/timeout":
        time.sleep(3)
    if path == "/slow":
        time.sleep(0.8)
    if path == "/redirect":
        return {"statusCode": 302, "headers": {"Location": "/hello"}, "body": ""}
    if path == "/missing":
        return {"statusCode": 404, "headers": {"Content-Type": "text/plain"}, "body": "no such page"}
    return {"statusCode": 200, "headers": {"Content-Type": "text/html"}, "body": "<p>hello</p>"}
"""


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The seed with a handler whose path picks what it does, and a Lambda timeout of 1 s."""
    work = tmp_path_factory.mktemp("curl")
    for name in SEED_FILES:
        (work / name).write_text(seed_text(name))
    (work / "handler.py").write_text(HANDLER)
    file = work / "bridge.yaml"
    data = yaml.safe_load(file.read_text())
    data["spec"]["exports"][0]["backend"]["local"]["timeout"] = 1
    file.write_text(yaml.safe_dump(data))
    twin = LocalTwin(load_bridge(file), file, work / ".meshbridge")
    try:
        twin.up()
        yield file
    finally:
        twin.down()


def run(capsys: pytest.CaptureFixture[str], bridge: Path, *args: str) -> tuple[int, str, str]:
    code = main(["local", "curl", *args, "--bridge", str(bridge)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_fail_exits_22_without_the_body(bridge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, bridge, "-f", f"{URL}/missing")
    assert (code, out) == (22, "")
    assert "curl: (22) The requested URL returned error: 404" in err
    assert run(capsys, bridge, "-sf", f"{URL}/missing") == (22, "", "")  # -s: not a word
    code, out, _ = run(capsys, bridge, "--fail-with-body", f"{URL}/missing")
    assert (code, out) == (22, "no such page")
    # negative twins: without -f a 404 exits 0 with its body; with -f a 200 exits 0
    assert run(capsys, bridge, f"{URL}/missing")[:2] == (0, "no such page")
    assert run(capsys, bridge, "-f", f"{URL}/hello")[:2] == (0, PAGE)


def test_output_and_write_out(bridge: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    fmt = r"%{http_code} %{size_download} %{time_total} %header{content-type}\n"
    code, out, _ = run(capsys, bridge, "-s", "-o", str(page), "-w", fmt, f"{URL}/hello")
    assert code == 0 and page.read_text() == PAGE
    status, size, total, kind = out.rstrip("\n").split(" ")
    assert (status, size, kind) == ("200", str(len(PAGE)), "text/html")
    assert 0 < float(total) < 10 and len(total.split(".")[1]) == 6  # seconds, six decimals as curl prints
    # -f with -o: no file is left behind for the error
    missing = tmp_path / "missing.txt"
    assert run(capsys, bridge, "-sf", "-o", str(missing), "-w", "%{http_code}", f"{URL}/missing")[:2] == (22, "404")
    assert not missing.exists()
    # negative twin: without -o the body is on stdout, before what -w writes
    assert run(capsys, bridge, "-w", "[%{http_code}]", f"{URL}/hello")[:2] == (0, PAGE + "[200]")


def test_max_time_gives_up_with_28(bridge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, bridge, "-m", "0.3", "-w", "%{http_code}", f"{URL}/slow")
    assert (code, out) == (28, "000") and "curl: (28) Operation timed out after" in err
    assert run(capsys, bridge, "-m", "5", f"{URL}/slow")[:2] == (0, PAGE)  # negative twin: time enough


def test_location_follows_redirects(bridge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, bridge, "-L", "-w", " %{num_redirects} %{url_effective}", f"{URL}/redirect")
    assert (code, out) == (0, f"{PAGE} 1 {URL}/hello")
    code, out, _ = run(capsys, bridge, "-iL", f"{URL}/redirect")
    assert out.startswith("HTTP/1.1 302 Found\r\n") and "\r\n\r\nHTTP/1.1 200 OK\r\n" in out
    # negative twin: without -L the redirect itself is the answer
    code, out, _ = run(capsys, bridge, "-w", "%{http_code} %{redirect_url}", f"{URL}/redirect")
    assert (code, out) == (0, f"302 {URL}/hello")


def test_verbose_shows_why_the_lambda_failed(bridge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, bridge, "-v", f"{URL}/boom")
    assert code == 0 and "502 Bad Gateway" in out
    assert "< HTTP/1.1 502 Bad Gateway" in err and "> GET /boom HTTP/1.1" in err
    lines = err.splitlines()
    cause = next(line for line in lines if line.startswith("* eks/alb-lambda: 502 GET /boom"))
    assert "LambdaUnhandled ValueError" in cause and "(ValueError: bad input: boom)" in cause
    assert "*   | [ERROR] ValueError: bad input: boom" in lines
    assert "*   |     Traceback (most recent call last):" in lines  # the traceback's lines, each on its own
    assert any(line.strip().endswith('raise ValueError("bad input: boom")') for line in lines)
    assert "\r" not in err
    code, _, err = run(capsys, bridge, "-v", f"{URL}/invalid")
    assert "LambdaInvalidResponse" in err and 'statusCode must be a JSON integer, got string "abc"' in err
    code, _, err = run(capsys, bridge, "-v", f"{URL}/timeout")
    assert "LambdaUnhandled Sandbox.Timedout" in err and "Task timed out after 1.00 seconds" in err
    # without -v: one note that says why and how to see more; with -s, nothing
    code, _, err = run(capsys, bridge, f"{URL}/boom")
    err = " ".join(err.split())
    assert "note: eks/alb-lambda answered 502 LambdaUnhandled ValueError (ValueError: bad input: boom)" in err
    assert f"meshbridge local curl -v {URL}/boom --bridge {bridge}" in err
    assert run(capsys, bridge, "-s", f"{URL}/boom")[2] == ""
    # negative twin: a request that succeeds says nothing without -v, and its ALB line with -v
    assert run(capsys, bridge, f"{URL}/hello")[2] == ""
    err = run(capsys, bridge, "-v", f"{URL}/hello")[2]
    assert "* eks/alb-lambda: 200 GET /hello " in err and "Lambda" not in err.split("200 GET /hello", 1)[1]


def test_alb_logs_read_like_lambda_serve(bridge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, bridge, f"{URL}/boom")
    args = ["-f", str(bridge)]
    assert main(["local", "logs", "eks/alb-lambda", *args]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert any(line.startswith("ready: listening on http://") for line in lines)
    assert any(line.startswith("502 GET /boom ") and "LambdaUnhandled ValueError" in line for line in lines)
    assert "  |     Traceback (most recent call last):" in lines and "\r" not in text and '{"event"' not in text
    assert main(["local", "logs", "lambda", *args]) == 0  # the ALB by its export's name
    assert capsys.readouterr().out == text
    # negative twin: --raw is the file as it is, one JSON object per line
    assert main(["local", "logs", "eks/alb-lambda", "--raw", *args]) == 0
    raw = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]  # stderr lines too
    assert raw and all(json.loads(line)["event"] in ("ready", "invocation") for line in raw)
    assert any("\\r" in line for line in raw)  # the runtime joined the traceback's lines with \r


def test_the_bridge_file_option_of_local_curl(bridge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for option in ("--bridge", "-F", "--file"):
        assert main(["local", "curl", option, str(bridge), f"{URL}/hello"]) == 0
        assert capsys.readouterr().out == PAGE
    # the old habit: -f is --fail now, and the error says where the bridge file goes
    assert main(["local", "curl", "-f", str(bridge), f"{URL}/hello"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is not a URL: in 'local curl', -f is curl's --fail, and the bridge file is given with --bridge" in err
    assert f"Fix: meshbridge local curl --bridge {shlex.quote(str(bridge))} {URL}/hello" in err


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_env_gives_a_real_curl_line_that_works(bridge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "env", "-f", str(bridge)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("app gke/sleep (mesh gke): its sidecar listens on 127.")
    [line, *_] = [x.strip() for x in text.splitlines() if x.strip().startswith("curl ")]
    assert "lambda.external" in line and ("--resolve" in line or "--connect-to" in line)
    done = subprocess.run([*shlex.split(line.replace(f"{URL}/hello-world", f"{URL}/hello")), "-s"], capture_output=True)
    assert done.returncode == 0 and done.stdout.decode().endswith(PAGE)
    assert done.stdout.decode().startswith("HTTP/1.1 200 OK")
    assert main(["local", "env", "--json", "-f", str(bridge)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["app"] == "gke/sleep" and doc["requests"][0]["curl"][0] == line
    # negative twin: the same curl without the sidecar's address does not reach the twin
    bare = subprocess.run(["curl", "-s", "-m", "3", f"{URL}/hello"], capture_output=True)
    assert bare.returncode != 0


def test_up_json_prints_the_components_as_status_json_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in SEED_FILES:
        (tmp_path / name).write_text(seed_text(name))
    file = str(tmp_path / "bridge.yaml")
    try:
        assert main(["local", "up", "--json", "-f", file]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["running"] is True and doc["seconds"] > 0 and doc["notes"] == []
        assert doc["try"] == f"meshbridge local curl -i {URL}/hello-world --bridge {file}"
        assert {c["name"] for c in doc["components"]} >= {"dns", "gke/sleep", "eks/alb-lambda"}
        assert all(c["ready"] for c in doc["components"])
        # negative twin: the status table, not JSON, without --json
        assert main(["local", "status", "-f", file]) == 0
        assert capsys.readouterr().out.startswith("COMPONENT")
    finally:
        main(["local", "down", "-f", file])
