"""The local ALB over real HTTP and HTTPS, with real awslambdaric processes behind it: the seed article's
page, every case kind A01-A07 end to end, the 413/502/503/504 answers, TLS with the issued certificate
(a wrong CA refused), and clean shutdown of the process entry points."""

from __future__ import annotations

import asyncio
import base64
import gzip
import importlib.util
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from meshbridge.alb.function import FunctionConfig
from meshbridge.alb.server import (
    AlbConfig,
    AlbServer,
    FunctionInitError,
    InvocationLog,
    ListenerConfig,
    issue_listener_certificate,
)
from meshbridge.cli.main import main as cli_main
from meshbridge.errors import LambdaError
from tests.integration.support import (
    SEED_HANDLER,
    Reply,
    children,
    function,
    gone,
    raw_request,
    run,
    send,
    wait_gone,
)

pytestmark = pytest.mark.integration

HTTP = ListenerConfig(port=0, advertised_port=80)
ROOT = Path(__file__).resolve().parents[2]


def alb(
    fn: FunctionConfig | None = None, *, multi: bool = False, listeners: Sequence[ListenerConfig] = (HTTP,), **kw: Any
) -> AlbConfig:
    return AlbConfig(
        listeners=tuple(listeners),
        function=fn if fn is not None else function("respond.py:handler"),
        multi_value_headers=multi,
        **kw,
    )


def ask(response: Any) -> bytes:
    """A POST asking the ``respond`` handler to return ``response``."""
    return raw_request(
        "/", [("Content-Type", "application/json")], method="POST", body=json.dumps({"response": response}).encode()
    )


def seed_page() -> str:
    spec = importlib.util.spec_from_file_location("seed_handler", SEED_HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.lambda_handler({}, None)["body"])


def is_alb_page(reply: Reply, status: int) -> bool:
    return (
        reply.status == status
        and reply.header("Server") == ["awselb/2.0"]
        and reply.header("Content-Type") == ["text/html"]
        and f"<title>{status} ".encode() in reply.body
    )


# -- the seed article -------------------------------------------------------------------------------------


def test_seed_handler_answers_with_the_articles_page() -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        config = alb(FunctionConfig(handler=f"{SEED_HANDLER}:lambda_handler"))
        async with AlbServer(config, log=logs.append) as server:
            first = await send(server.ports[0], raw_request("/hello-world"))
            second = await send(server.ports[0], raw_request("/hello-world"))
        for reply in (first, second):
            assert (reply.status, reply.reason) == (200, "OK")
            assert reply.body.decode() == seed_page()
            assert reply.header("Content-Type") == ["text/html; charset=utf-8"]
            assert reply.header("Content-Length") == ["258"]  # as in the article's transcript
            assert reply.header("Server") == ["awselb/2.0"] and reply.header("Date")
        assert [(e.status, e.cold) for e in logs] == [(200, True), (200, False)]
        assert logs[0].init_duration_ms is not None and logs[0].request_id

    run(scenario())


def test_a_kept_connection_is_announced_as_the_alb_does() -> None:
    async def scenario() -> None:
        config = alb(FunctionConfig(handler=f"{SEED_HANDLER}:lambda_handler"))
        async with AlbServer(config) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.ports[0])
            writer.write(b"GET /hello-world HTTP/1.1\r\nHost: alb.test\r\n\r\n")
            head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
            writer.close()
            closing = await send(server.ports[0], raw_request("/hello-world"))  # sends Connection: close
        assert "\r\nconnection: keep-alive\r\n" in head
        assert closing.status == 200 and closing.header("Connection") != ["keep-alive"]

    run(scenario())


def test_seed_handler_twin_in_multi_value_mode_loses_its_content_type() -> None:
    """A02: in multi-value mode the ALB reads only multiValueHeaders; the seed handler sets headers."""

    async def scenario() -> None:
        config = alb(FunctionConfig(handler=f"{SEED_HANDLER}:lambda_handler"), multi=True)
        async with AlbServer(config) as server:
            reply = await send(server.ports[0], raw_request("/hello-world"))
        assert reply.status == 200 and reply.body.decode() == seed_page()
        assert reply.header("Content-Type") == ["application/octet-stream"]

    run(scenario())


# -- A01, A02: the event on the wire ----------------------------------------------------------------------


def test_event_reaches_the_handler_raw_in_default_mode() -> None:
    async def scenario() -> None:
        config = alb()
        request = raw_request(
            "/p%20a/caf%C3%A9?q=a%20b&x=1+2&k=1&k=2",
            [("X-Custom", "first"), ("X-Custom", "second"), ("X-Forwarded-For", "203.0.113.7")],
        )
        async with AlbServer(config) as server:
            reply = await send(server.ports[0], request)
            bound = server.ports[0]
        event = reply.json()
        assert event["path"] == "/p%20a/caf%C3%A9"
        assert event["queryStringParameters"] == {"k": "2", "q": "a%20b", "x": "1+2"}
        headers = event["headers"]
        assert headers["x-custom"] == "second" and headers["host"] == "alb.test"
        assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
        assert (headers["x-forwarded-proto"], headers["x-forwarded-port"]) == ("http", "80")
        assert bound != 80
        assert headers["x-amzn-trace-id"].startswith("Root=1-")
        assert event["requestContext"] == {"elb": {"targetGroupArn": config.target_group_arn}}
        assert "multiValueHeaders" not in event

    run(scenario())


def test_event_twin_in_multi_value_mode_lists_every_value() -> None:
    async def scenario() -> None:
        request = raw_request("/p?k=1&k=2", [("X-Custom", "first"), ("X-Custom", "second")])
        async with AlbServer(alb(multi=True)) as server:
            event = (await send(server.ports[0], request)).json()
        assert event["multiValueQueryStringParameters"] == {"k": ["1", "2"]}
        assert event["multiValueHeaders"]["x-custom"] == ["first", "second"]
        assert "headers" not in event and "queryStringParameters" not in event

    run(scenario())


def test_multi_value_response_sends_each_value_as_its_own_header_line() -> None:
    async def scenario() -> None:
        response = {"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": "ok"}
        async with AlbServer(alb(multi=True)) as server:
            reply = await send(server.ports[0], ask(response))
        assert reply.header("Set-Cookie") == ["a=1", "b=2"]

    run(scenario())


# -- A03, A04, A05: the response contract ------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        {"statusCode": 200, "headers": {"content-length": 12}},  # A03
        {"statusCode": 200, "headers": {"x-flag": True}},
        {"statusCode": "200"},  # A04
        {"body": "no status"},
        {"statusCode": 200, "body": None},
        {"statusCode": 200, "statusDescription": None},
        {"statusCode": 200, "isBase64Encoded": True, "body": "aGVs\nbG8="},
        None,  # a handler returning None
        "hello",
    ],
)
def test_invalid_response_is_a_502_alb_page(response: Any) -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(), log=logs.append) as server:
            reply = await send(server.ports[0], ask(response))
        assert is_alb_page(reply, 502) and reply.reason == "Bad Gateway"
        assert (logs[0].error_reason, logs[0].error_type) == ("LambdaInvalidResponse", None)
        assert logs[0].request_id  # the function ran; the ALB refused what it returned

    run(scenario())


def test_valid_response_twin_passes_through() -> None:
    async def scenario() -> None:
        response = {
            "statusCode": 201,
            "statusDescription": "201 Created",
            "headers": {"content-length": "12", "X-Flag": "true", "Location": "/orders/42"},
            "isBase64Encoded": True,
            "body": base64.b64encode(b"\x89PNG binary").decode(),
        }
        async with AlbServer(alb()) as server:
            reply = await send(server.ports[0], ask(response))
        assert (reply.status, reply.reason, reply.body) == (201, "Created", b"\x89PNG binary")
        assert reply.header("Content-Length") == ["11"]  # computed by the ALB, the function's value dropped
        assert reply.header("Location") == ["/orders/42"] and reply.header("X-Flag") == ["true"]

    run(scenario())


def test_raw_bytes_returned_by_a_handler_are_read_as_the_response_json() -> None:
    async def scenario() -> None:
        body = json.dumps({"raw": json.dumps({"statusCode": 202, "body": "from bytes"})}).encode()
        not_json = json.dumps({"raw": "plain text"}).encode()
        async with AlbServer(alb()) as server:
            good = await send(server.ports[0], raw_request("/", method="POST", body=body))
            bad = await send(server.ports[0], raw_request("/", method="POST", body=not_json))
        assert (good.status, good.body) == (202, b"from bytes")
        assert is_alb_page(bad, 502)

    run(scenario())


def test_response_json_over_1_mb_is_502_response_too_large() -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(), log=logs.append) as server:
            big = await send(server.ports[0], raw_request("/", method="POST", body=b'{"size": 1100000}'))
            small = await send(server.ports[0], raw_request("/", method="POST", body=b'{"size": 1000000}'))
        assert is_alb_page(big, 502) and logs[0].error_reason == "LambdaResponseTooLarge"
        assert small.status == 200 and len(small.body) == 1_000_000

    run(scenario())


def test_request_body_over_1_mb_is_413_and_the_function_is_not_invoked() -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(), log=logs.append) as server:
            reply = await send(server.ports[0], raw_request("/length", method="POST", body=b"x" * (1_048_576 + 1)))
            assert server.pool is not None and server.pool.environments == 0
            fits = await send(server.ports[0], raw_request("/length", method="POST", body=b"x" * 1_048_576))
        assert is_alb_page(reply, 413) and reply.reason == "Request Entity Too Large"
        assert (logs[0].error_reason, logs[0].request_id) == ("LambdaRequestTooLarge", None)
        assert (fits.status, fits.body) == (200, b"1048576")

    run(scenario())


# -- A06: request body encoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "base64_encoded"),
    [
        ([("Content-Type", "application/x-www-form-urlencoded")], b"name=caf%C3%A9&qty=2", True),
        ([("Content-Type", "application/json")], b'{"a": 1}', False),
        ([("Content-Type", "application/json"), ("Content-Encoding", "gzip")], gzip.compress(b'{"a": 1}'), True),
        ([], b"no content type", True),
    ],
)
def test_request_body_is_base64_by_the_alb_rules(
    headers: list[tuple[str, str]], body: bytes, base64_encoded: bool
) -> None:
    async def scenario() -> None:
        async with AlbServer(alb()) as server:
            event = (await send(server.ports[0], raw_request("/", headers, method="POST", body=body))).json()
        assert event["isBase64Encoded"] is base64_encoded
        sent = base64.b64decode(event["body"]) if base64_encoded else event["body"].encode()
        assert sent == body  # a gzip body reaches the function still compressed

    run(scenario())


# -- A07: a handler written for another event shape --------------------------------------------------------


def test_api_gateway_v2_handler_fails_behind_the_alb() -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(function("apigw_v2.py:handler")), log=logs.append) as server:
            reply = await send(server.ports[0], raw_request("/orders"))
        assert is_alb_page(reply, 502) and b"KeyError" not in reply.body
        assert (logs[0].error_reason, logs[0].error_type) == ("LambdaUnhandled", "KeyError")
        assert "[ERROR] KeyError: 'http'" in logs[0].output

    run(scenario())


# -- the start-up init check -------------------------------------------------------------------------------

BROKEN = {
    "missing function": ("def other(event, context):\n    return {}\n", "Runtime.HandlerNotFound"),
    "syntax error": ("def handler(event, context)\n    return {}\n", "Runtime.UserCodeSyntaxError"),
    "failing import": ("import no_such_module_xyz\n", "Runtime.ImportModuleError"),
}
GOOD = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"


def _handler(tmp_path: Path, source: str) -> FunctionConfig:
    (tmp_path / "app.py").write_text(source)
    return FunctionConfig(handler="app.py:handler", task_root=tmp_path)


def test_a_good_handler_passes_the_init_check_and_its_first_request_is_still_cold(tmp_path: Path) -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(_handler(tmp_path, GOOD)), log=logs.append) as server:
            assert server.init_check_ms is not None and server.init_check_ms > 0
            assert server.pool is not None and server.pool.pids == []  # the checked environment is gone
            first = await send(server.ports[0], raw_request())
            second = await send(server.ports[0], raw_request())
        assert first.status == second.status == 200
        assert [(e.cold, e.init_duration_ms is not None) for e in logs] == [(True, True), (False, False)]

    run(scenario())


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_init_check_twin_a_broken_handler_stops_the_start_before_any_listener(tmp_path: Path, case: str) -> None:
    source, error_type = BROKEN[case]

    async def scenario() -> None:
        server = AlbServer(alb(_handler(tmp_path, source)))
        with pytest.raises(FunctionInitError) as caught:
            await server.start()
        assert caught.value.error_type == error_type
        assert server.ports == [] and server.pool is not None and server.pool.pids == []

    run(scenario())


def test_a_handler_broken_after_the_start_still_fails_at_request_time_as_on_aws(tmp_path: Path) -> None:
    """The check only runs at the start; a cold start that fails later is AWS's 502 ``LambdaUnhandled``."""

    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(_handler(tmp_path, GOOD)), log=logs.append) as server:
            (tmp_path / "app.py").write_text("# handler renamed\ndef renamed(event, context):\n    return {}\n")
            reply = await send(server.ports[0], raw_request())
        assert is_alb_page(reply, 502)
        assert (logs[0].error_reason, logs[0].error_type, logs[0].cold) == (
            "LambdaUnhandled",
            "Runtime.HandlerNotFound",
            True,
        )

    run(scenario())


# -- invoke failures ---------------------------------------------------------------------------------------


def test_timeout_is_502_lambda_unhandled_and_the_next_request_is_a_cold_start() -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(function("respond.py:handler", timeout_s=0.3)), log=logs.append) as server:
            slow = await send(server.ports[0], raw_request("/", method="POST", body=b'{"sleep": 30}'))
            after = await send(server.ports[0], raw_request("/", method="POST", body=b"{}"))
        assert is_alb_page(slow, 502)
        assert (logs[0].error_reason, logs[0].error_type) == ("LambdaUnhandled", "Sandbox.Timedout")
        assert after.status == 200 and logs[1].cold

    run(scenario())


def test_throttled_request_is_502_lambda_throttling_and_never_queued() -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(function("respond.py:handler", concurrency=1)), log=logs.append) as server:
            slow = raw_request("/", method="POST", body=b'{"sleep": 1}')
            replies = await asyncio.gather(send(server.ports[0], slow), send(server.ports[0], slow))
            again = await send(server.ports[0], slow)
        assert sorted(r.status for r in replies) == [200, 502]
        assert sorted(e.error_reason or "" for e in logs[:2]) == ["", "LambdaThrottling"]
        assert again.status == 200  # the environment is free again

    run(scenario())


def test_reserved_concurrency_zero_throttles_every_request() -> None:
    async def scenario() -> None:
        async with AlbServer(alb(function("respond.py:handler", concurrency=0))) as server:
            assert is_alb_page(await send(server.ports[0], raw_request()), 502)

    run(scenario())


def test_empty_target_group_is_503() -> None:
    async def scenario() -> None:
        async with AlbServer(AlbConfig(listeners=(HTTP,), function=None)) as server:
            reply = await send(server.ports[0], raw_request())
        assert is_alb_page(reply, 503) and reply.reason == "Service Temporarily Unavailable"

    run(scenario())


def test_idle_timeout_gives_504_while_the_invoke_runs_on() -> None:
    async def scenario() -> None:
        config = alb(function("respond.py:handler", timeout_s=5), idle_timeout_s=0.2)
        logs: list[InvocationLog] = []
        async with AlbServer(config, log=logs.append) as server:
            slow = await send(server.ports[0], raw_request("/", method="POST", body=b'{"sleep": 0.6}'))
            quick = await send(server.ports[0], raw_request("/", method="POST", body=b"{}"))
        assert is_alb_page(slow, 504) and logs[0].error_reason == "LambdaConnectionTimeout"
        assert quick.status == 200

    run(scenario())


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (raw_request("/", method="TRACE"), 405, None),
        (
            raw_request("/chat", [("Connection", "Upgrade"), ("Upgrade", "websocket")]),
            400,
            "LambdaWebsocketNotSupported",
        ),
        (raw_request("/", [("X-Big", "x" * 17_000)]), 400, None),  # one header over 16 K
        (raw_request("/", [("X-Big", "x" * 70_000)]), 400, None),  # over 64 K: the ALB's page, not aiohttp's
        (raw_request("/" + "p" * 17_000), 400, None),  # request line over 16 K
    ],
)
def test_requests_the_alb_refuses_before_invoking(request_bytes: bytes, status: int, reason: str | None) -> None:
    async def scenario() -> None:
        logs: list[InvocationLog] = []
        async with AlbServer(alb(), log=logs.append) as server:
            reply = await send(server.ports[0], request_bytes)
            assert server.pool is not None and server.pool.environments == 0
        assert is_alb_page(reply, status) and logs[0].error_reason == reason
        assert logs[0].detail and f"({logs[0].detail})" in logs[0].line()  # the operator sees why

    run(scenario())


# -- listeners: HTTP and HTTPS on one address, TLS checks ---------------------------------------------------


def test_http_and_https_listeners_on_one_address_with_the_issued_certificate(tmp_path: Path) -> None:
    ca, cert, key = issue_listener_certificate(["alb.test"], tmp_path)
    https = ListenerConfig(port=0, protocol="HTTPS", advertised_port=443, cert_file=cert, key_file=key)
    trusting = ssl.create_default_context(cafile=str(ca))

    async def scenario() -> None:
        async with AlbServer(alb(listeners=(HTTP, https))) as server:
            plain = (await send(server.ports[0], raw_request())).json()["headers"]
            secure = (await send(server.ports[1], raw_request(), tls=trusting, server_hostname="alb.test")).json()
            assert server.urls[0].startswith("http://127.0.0.1:") and server.urls[1].startswith("https://127.0.0.1:")
        assert (plain["x-forwarded-proto"], plain["x-forwarded-port"]) == ("http", "80")
        assert (secure["headers"]["x-forwarded-proto"], secure["headers"]["x-forwarded-port"]) == ("https", "443")

    run(scenario())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_https_twin_a_client_with_another_ca_or_another_name_is_refused(tmp_path: Path) -> None:
    _, cert, key = issue_listener_certificate(["alb.test"], tmp_path / "alb")
    other_ca, _, _ = issue_listener_certificate(["alb.test"], tmp_path / "other")
    https = ListenerConfig(port=0, protocol="HTTPS", cert_file=cert, key_file=key)
    foreign = ssl.create_default_context(cafile=str(other_ca))
    trusting = ssl.create_default_context(cafile=str(tmp_path / "alb" / "ca.crt"))

    async def scenario() -> None:
        async with AlbServer(alb(listeners=(https,))) as server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await send(server.ports[0], raw_request(), tls=foreign, server_hostname="alb.test")
            with pytest.raises(ssl.SSLCertVerificationError):
                await send(server.ports[0], raw_request(), tls=trusting, server_hostname="other.test")
            old = ssl.create_default_context(cafile=str(tmp_path / "alb" / "ca.crt"))
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            with pytest.raises(ssl.SSLError):
                await send(server.ports[0], raw_request(), tls=old, server_hostname="alb.test")

    run(scenario())


def test_start_errors_are_lambda_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    bad_tls = ListenerConfig(port=0, protocol="HTTPS", cert_file=tmp_path / "bad.pem", key_file=tmp_path / "bad.pem")
    _, crt, key = issue_listener_certificate(["alb.test"], tmp_path / "one")
    _, _, other_key = issue_listener_certificate(["alb.test"], tmp_path / "two")
    mismatched = ListenerConfig(port=0, protocol="HTTPS", cert_file=crt, key_file=other_key)
    matched = ListenerConfig(port=0, protocol="HTTPS", cert_file=crt, key_file=key)

    async def scenario() -> None:
        with pytest.raises(LambdaError, match="cannot load certificate"):
            await AlbServer(alb(listeners=(bad_tls,))).start()
        with pytest.raises(LambdaError, match=r"is not the private key of .*their public keys differ"):
            await AlbServer(alb(listeners=(mismatched,))).start()
        async with AlbServer(alb(listeners=(matched,))):  # negative twin: the key of that certificate
            pass
        async with AlbServer(alb()) as first:
            taken = ListenerConfig(port=first.ports[0])
            with pytest.raises(LambdaError, match="cannot listen"):
                await AlbServer(alb(listeners=(taken,))).start()

    run(scenario())
    with pytest.raises(LambdaError, match="needs cert_file and key_file"):
        ListenerConfig(protocol="HTTPS")
    with pytest.raises(LambdaError, match="ALB config"):
        AlbConfig.from_json('{"listeners": [{"port": 1, "colour": "blue"}]}')


def test_a_failing_log_sink_does_not_change_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(entry: InvocationLog) -> None:
        raise BrokenPipeError("reader gone")

    async def scenario() -> tuple[Reply, Reply]:
        config = alb(FunctionConfig(handler=f"{SEED_HANDLER}:lambda_handler"))
        async with AlbServer(config, log=broken) as failing, AlbServer(config) as plain:
            return await send(failing.ports[0], raw_request()), await send(plain.ports[0], raw_request())

    with_broken_sink, without_sink = run(scenario())
    assert (
        (with_broken_sink.status, with_broken_sink.body)
        == (without_sink.status, without_sink.body)
        == (
            200,
            seed_page().encode(),
        )
    )
    assert "log sink failed: BrokenPipeError" in capsys.readouterr().err


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = alb(function(memory_mb=256, environment={"A": "1"}), multi=True, idle_timeout_s=5.0)
    assert AlbConfig.from_json(config.to_json()) == config


# -- the process entry points: no child left behind --------------------------------------------------------


def _start(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen[str], sig: int | None) -> tuple[int, str, str]:
    """Send ``sig`` (``None``: none, let it end by itself) and collect the exit code and output."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def test_module_entry_serves_json_lines_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = alb(FunctionConfig(handler=f"{SEED_HANDLER}:lambda_handler"))
    (tmp_path / "alb.json").write_text(config.to_json())
    proc = _start([sys.executable, "-m", "meshbridge.alb.server", str(tmp_path / "alb.json")], tmp_path)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready"
        reply = run(send(ready["ports"][0], raw_request("/hello-world")))
        assert reply.status == 200 and reply.body.decode() == seed_page()
        logged = json.loads(proc.stdout.readline())
        assert (logged["event"], logged["status"], logged["cold"]) == ("invocation", 200, True)
        runtimes = children(proc.pid)
        assert runtimes
    finally:
        code, _, err = _stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert all(run(wait_gone(pid)) for pid in runtimes)


def test_module_entry_twin_bad_config_exits_2(tmp_path: Path) -> None:
    (tmp_path / "alb.json").write_text('{"function": {"handler": "missing.py:handler"}}')
    proc = _start([sys.executable, "-m", "meshbridge.alb.server", str(tmp_path / "alb.json")], tmp_path)
    code, _, err = _stop(proc, None)
    assert code == 2 and "missing.py does not exist" in err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_module_entry_twin_a_broken_handler_exits_3_without_listening(tmp_path: Path, case: str) -> None:
    source, error_type = BROKEN[case]
    port = _free_port()
    config = alb(_handler(tmp_path, source), listeners=(ListenerConfig(port=port),))
    (tmp_path / "alb.json").write_text(config.to_json())
    proc = _start([sys.executable, "-m", "meshbridge.alb.server", str(tmp_path / "alb.json")], tmp_path)
    accepted = False
    while proc.poll() is None and not accepted:  # the twin's supervisor probes readiness so
        with socket.socket() as probe:
            accepted = probe.connect_ex(("127.0.0.1", port)) == 0
        time.sleep(0.01)
    code, out, err = _stop(proc, signal.SIGTERM if accepted else None)
    assert not accepted and out == ""
    assert code == 3
    (line,) = err.splitlines()
    assert line.startswith(f"error: handler app.py:handler cannot initialize: {error_type}: ") and " Fix: " in line


def test_lambda_serve_twin_a_broken_handler_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "h.py").write_text("def handler(event, context):\n    return {}\n")
    assert cli_main(["lambda", "serve", "--handler", "h.py:nope", "--listen", "127.0.0.1:0"]) == 2
    captured = capsys.readouterr()
    assert "Listening" not in captured.out
    (line,) = captured.err.splitlines()
    assert line == (
        "error: handler h.py:nope cannot initialize: Runtime.HandlerNotFound: Handler 'nope' missing on module 'h' "
        "(every request would get 502 LambdaUnhandled). Fix: define nope(event, context) in h.py, or name a "
        "function it defines"
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_lambda_serve_https_answers_curl_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    argv = [
        sys.executable,
        "-c",
        "from meshbridge.cli.main import run; run()",
        "lambda",
        "serve",
        "--handler",
        f"{SEED_HANDLER}:lambda_handler",
        "--listen",
        "127.0.0.1:0",
        "--https",
        "--host-name",
        "alb.test",
        "--cert-dir",
        str(tmp_path / "alb"),
        "--advertised-port",
        "443",
    ]
    proc = _start(argv, tmp_path)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        assert f"--cacert {tmp_path / 'alb' / 'ca.crt'}" in lines[0]
        assert "init checked in" in lines[1]
        assert lines[2].startswith("Listening on https://alb.test:")
        url = lines[3].split()[-1]  # the ready-made curl line
        port = url.rsplit(":", 1)[1].strip("/")
        curl = ["curl", "-s", "--cacert", str(tmp_path / "alb" / "ca.crt"), "--resolve", f"alb.test:{port}:127.0.0.1"]
        page = subprocess.run([*curl, url + "hello-world"], capture_output=True, text=True, timeout=30)
        assert page.returncode == 0 and page.stdout == seed_page()
        refused = subprocess.run(
            [*curl[:2], "--resolve", f"alb.test:{port}:127.0.0.1", url], capture_output=True, timeout=30
        )
        assert refused.returncode == 60  # curl: the certificate is not trusted without --cacert
        logged = proc.stdout.readline()
        assert logged.startswith("200 GET /hello-world ") and " cold (init " in logged
        runtimes = children(proc.pid)
        assert runtimes
    finally:
        code, out, err = _stop(proc, signal.SIGINT)
    assert code == 0, err
    assert "Stopped; every Lambda environment was shut down." in out
    assert all(gone(pid) or run(wait_gone(pid)) for pid in runtimes)
