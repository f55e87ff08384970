"""The ALB ↔ Lambda contract, pure: every case kind A01-A07 in both modes, and every 502 cause of the
response contract (ELB-DOC "Respond to the load balancer"). Each positive case has a negative twin beside it."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import pytest

from meshbridge.alb.contract import (
    MAX_REQUEST_BODY_BYTES,
    MAX_RESPONSE_HEADER_BYTES,
    MAX_RESPONSE_JSON_BYTES,
    AlbRequest,
    AlbResponse,
    TargetGroup,
    alb_error,
    amzn_trace_id,
    build_event,
    function_error,
    is_text_media_type,
    new_trace_root,
    read_response,
    target_group_arn,
    trace_root_of,
)

ARN = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/orders-tg/0a1b2c3d4e5f6071"
ROOT = "1-6750a1b2-0123456789abcdef01234567"


def request(
    target: str = "/",
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    raw_headers: Sequence[tuple[bytes, bytes]] = (),
    client_ip: str = "10.0.3.17",
) -> AlbRequest:
    lines = [(n.encode("latin-1"), v.encode("utf-8")) for n, v in headers] + list(raw_headers)
    return AlbRequest(method, target, lines, body, client_ip)


def event(
    req: AlbRequest, *, multi: bool = False, protocol: str = "HTTPS", port: int = 443
) -> dict[str, Any] | AlbResponse:
    return build_event(
        req,
        protocol="HTTPS" if protocol == "HTTPS" else "HTTP",
        advertised_port=port,
        target_group=TargetGroup(ARN, multi),
        trace_root=ROOT,
    )


def ok_event(req: AlbRequest, **kw: Any) -> dict[str, Any]:
    result = event(req, **kw)
    assert not isinstance(result, AlbResponse), result
    return result


def refused(req: AlbRequest, **kw: Any) -> AlbResponse:
    result = event(req, **kw)
    assert isinstance(result, AlbResponse), result
    return result


def respond(doc: Any, *, multi: bool = False) -> AlbResponse:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return read_response(payload, multi_value_headers=multi)


def header(resp: AlbResponse, name: str) -> list[str]:
    return [v for n, v in resp.headers if n.lower() == name.lower()]


def is_invalid(resp: AlbResponse) -> bool:
    return resp.status == 502 and resp.error_reason == "LambdaInvalidResponse"


# -- two example events, reproduced exactly ---------------------------------------------------------------


def test_example_event_default_mode_is_reproduced_exactly() -> None:
    req = request(
        "/orders/caf%C3%A9?tag=a&q=a+b%26c&tag=b",
        headers=[
            ("Accept", "*/*"),
            ("Host", "internal-orders-alb-123456789.eu-west-1.elb.amazonaws.com"),
            ("User-Agent", "curl/8.5.0"),
            ("X-Custom", "first"),
            ("X-Custom", "second"),
        ],
    )
    assert ok_event(req) == {
        "requestContext": {"elb": {"targetGroupArn": ARN}},
        "httpMethod": "GET",
        "path": "/orders/caf%C3%A9",
        "queryStringParameters": {"q": "a+b%26c", "tag": "b"},
        "headers": {
            "accept": "*/*",
            "host": "internal-orders-alb-123456789.eu-west-1.elb.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-amzn-trace-id": f"Root={ROOT}",
            "x-custom": "second",
            "x-forwarded-for": "10.0.3.17",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "body": "",
        "isBase64Encoded": False,
    }


def test_example_event_multi_value_mode_is_reproduced_exactly() -> None:
    req = request(
        "/orders/caf%C3%A9?tag=a&q=a+b%26c&tag=b",
        headers=[("Accept", "*/*"), ("X-Custom", "first"), ("X-Custom", "second")],
    )
    assert ok_event(req, multi=True) == {
        "requestContext": {"elb": {"targetGroupArn": ARN}},
        "httpMethod": "GET",
        "path": "/orders/caf%C3%A9",
        "multiValueQueryStringParameters": {"q": ["a+b%26c"], "tag": ["a", "b"]},
        "multiValueHeaders": {
            "accept": ["*/*"],
            "x-amzn-trace-id": [f"Root={ROOT}"],
            "x-custom": ["first", "second"],
            "x-forwarded-for": ["10.0.3.17"],
            "x-forwarded-port": ["443"],
            "x-forwarded-proto": ["https"],
        },
        "body": "",
        "isBase64Encoded": False,
    }


def test_example_form_post_is_base64() -> None:
    req = request(
        "/orders",
        method="POST",
        headers=[("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "20")],
        body=b"name=caf%C3%A9&qty=2",
    )
    ev = ok_event(req)
    assert ev["queryStringParameters"] == {}
    assert ev["body"] == "bmFtZT1jYWYlQzMlQTkmcXR5PTI="
    assert ev["isBase64Encoded"] is True


# -- A01 query decoding: nothing is decoded ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/p?q=a%20b&x=1+2", {"q": "a%20b", "x": "1+2"}),  # the case itself
        ("/p?foo%5Ba%5D=foo%5B", {"foo%5Ba%5D": "foo%5B"}),  # encoded keys stay encoded [field]
        ("/p?multi%C2%A5Value=red+%C2%A5+apple", {"multi%C2%A5Value": "red+%C2%A5+apple"}),
        ("/p?greeting=Hello+World%3A+%C2%A5", {"greeting": "Hello+World%3A+%C2%A5"}),  # form GET [field]
        ("/p?flag", {"flag": ""}),  # no "=" [infer]
        ("/p?a=b=c", {"a": "b=c"}),  # split on the first "=" only
        ("/p?=x", {"": "x"}),
        ("/p?a=1&&b=2&", {"a": "1", "b": "2"}),  # empty parts skipped [infer]
        ("/p?", {}),
        ("/p", {}),  # no query: {} [field]
    ],
)
def test_query_values_are_raw_in_both_modes(target: str, expected: dict[str, str]) -> None:
    assert ok_event(request(target))["queryStringParameters"] == expected
    assert ok_event(request(target), multi=True)["multiValueQueryStringParameters"] == {
        k: [v] for k, v in expected.items()
    }


def test_query_twin_decoded_values_never_appear() -> None:
    params = ok_event(request("/p?q=a%20b&x=1+2&k=%2F"))["queryStringParameters"]
    assert "a b" not in params.values() and "1 2" not in params.values() and "/" not in params.values()


@pytest.mark.parametrize("path", ["/pp%C2%A5pp", "/orders/caf%C3%A9", "/a%2Fb/c", "/with+plus", "/"])
def test_path_is_raw(path: str) -> None:
    assert ok_event(request(path + "?x=1"))["path"] == path


def test_path_twin_is_not_decoded() -> None:
    assert ok_event(request("/a%20b"))["path"] != "/a b"


# -- A02 multi-value mode ------------------------------------------------------------------------------------


def test_multi_value_mode_lists_every_value_and_drops_single_value_fields() -> None:
    ev = ok_event(request("/p?k=1&k=2", headers=[("X-H", "veg,pea"), ("X-H", "veg,celery")]), multi=True)
    assert ev["multiValueQueryStringParameters"] == {"k": ["1", "2"]}
    assert ev["multiValueHeaders"]["x-h"] == ["veg,pea", "veg,celery"]  # commas are never split [field]
    assert "queryStringParameters" not in ev and "headers" not in ev


def test_default_mode_twin_keeps_the_last_value_and_has_no_multi_value_fields() -> None:
    ev = ok_event(request("/p?k=1&k=2", headers=[("X-H", "veg,pea"), ("X-H", "veg,celery")]))
    assert ev["queryStringParameters"] == {"k": "2"}
    assert ev["headers"]["x-h"] == "veg,celery"
    assert "multiValueQueryStringParameters" not in ev and "multiValueHeaders" not in ev


def test_default_mode_keeps_only_the_last_cookie_line() -> None:
    ev = ok_event(request(headers=[("Cookie", "a=1"), ("Cookie", "b=2")]))
    assert ev["headers"]["cookie"] == "b=2"


def test_multi_value_response_reads_multi_value_headers() -> None:
    resp = respond(
        {
            "statusCode": 200,
            "multiValueHeaders": {"Content-Type": ["text/plain"], "Set-Cookie": ["a=1; Path=/", "b=2; Path=/"]},
            "body": "ok",
        },
        multi=True,
    )
    assert resp.status == 200 and resp.body == b"ok"
    assert header(resp, "Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert header(resp, "Content-Type") == ["text/plain"]


def test_multi_value_response_loses_headers_set_only_in_headers() -> None:
    resp = respond({"statusCode": 200, "headers": {"Content-Type": "text/plain", "X-A": "1"}}, multi=True)
    assert resp.status == 200
    assert header(resp, "X-A") == []
    assert header(resp, "Content-Type") == ["application/octet-stream"]


def test_default_mode_response_twin_keeps_headers_and_ignores_multi_value_headers() -> None:
    resp = respond({"statusCode": 200, "headers": {"X-A": "1"}, "multiValueHeaders": {"X-B": ["2"]}})
    assert header(resp, "X-A") == ["1"]
    assert header(resp, "X-B") == []


def test_the_ignored_header_field_is_not_validated() -> None:
    assert respond({"statusCode": 200, "headers": {"X-A": 1}}, multi=True).status == 200
    assert respond({"statusCode": 200, "multiValueHeaders": {"X-A": [1]}}).status == 200


# -- A03 header value types ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [12, 1.5, True, None, ["a"], {"a": "b"}])
def test_non_string_header_value_is_502(value: Any) -> None:
    resp = respond({"statusCode": 200, "headers": {"content-length": value}})
    assert is_invalid(resp)
    assert "content-length" in resp.detail


def test_string_header_value_twin_is_200() -> None:
    resp = respond({"statusCode": 200, "headers": {"x-n": "12"}})
    assert resp.status == 200 and header(resp, "x-n") == ["12"]


@pytest.mark.parametrize("values", ["text/plain", [12], [None], [True], [["a"]]])
def test_multi_value_header_must_be_a_list_of_strings(values: Any) -> None:
    assert is_invalid(respond({"statusCode": 200, "multiValueHeaders": {"X-A": values}}, multi=True))


def test_multi_value_header_twin_list_of_strings_is_200() -> None:
    resp = respond({"statusCode": 200, "multiValueHeaders": {"X-A": ["1", "2"], "X-Empty": []}}, multi=True)
    assert resp.status == 200 and header(resp, "X-A") == ["1", "2"] and header(resp, "X-Empty") == []


@pytest.mark.parametrize("headers", [None, [], "x", 1])
def test_header_field_that_is_not_an_object_is_502(headers: Any) -> None:
    assert is_invalid(respond({"statusCode": 200, "headers": headers}))
    assert is_invalid(respond({"statusCode": 200, "multiValueHeaders": headers}, multi=True))


@pytest.mark.parametrize(
    "headers", [{"Bad Name": "x"}, {"": "x"}, {"X-A": "a\r\nX-Injected: 1"}, {"X-A": "a\nb"}, {"X-A": "a\0"}]
)
def test_unsendable_header_is_502(headers: dict[str, str]) -> None:
    assert is_invalid(respond({"statusCode": 200, "headers": headers}))


# -- A04 status code type ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc", [{"statusCode": "200"}, {}, {"statusCode": 200.0}, {"statusCode": True}, {"statusCode": None}]
)
def test_status_code_must_be_a_json_integer(doc: dict[str, Any]) -> None:
    resp = respond({**doc, "body": "x"})
    assert is_invalid(resp)
    assert "statusCode" in resp.detail


@pytest.mark.parametrize("code", [99, 100, 101, 199, 600, 1000, -1])
def test_status_code_outside_200_599_is_502(code: int) -> None:
    assert is_invalid(respond({"statusCode": code}))


@pytest.mark.parametrize("code", [200, 201, 302, 404, 500, 599])
def test_status_code_twin_integer_passes_through(code: int) -> None:
    resp = respond({"statusCode": code, "body": "x"})
    assert resp.status == code and resp.error_reason is None


def test_function_500_is_passed_through_not_an_alb_error() -> None:
    resp = respond({"statusCode": 500, "body": "oops"})
    assert (resp.status, resp.body, resp.error_reason) == (500, b"oops", None)


# -- A05 size limits ------------------------------------------------------------------------------------------


def _payload_of_size(size: int) -> bytes:
    shell = json.dumps({"statusCode": 200, "body": ""}).encode()
    payload = json.dumps({"statusCode": 200, "body": "x" * (size - len(shell))}).encode()
    assert len(payload) == size
    return payload


def test_response_json_over_1_mib_is_502_too_large() -> None:
    resp = read_response(_payload_of_size(MAX_RESPONSE_JSON_BYTES + 1), multi_value_headers=False)
    assert (resp.status, resp.error_reason) == (502, "LambdaResponseTooLarge")


def test_response_json_of_exactly_1_mib_twin_is_200() -> None:
    assert read_response(_payload_of_size(MAX_RESPONSE_JSON_BYTES), multi_value_headers=False).status == 200


def test_request_body_over_1_mib_is_413_before_any_invoke() -> None:
    resp = refused(request(method="POST", body=b"x" * (MAX_REQUEST_BODY_BYTES + 1)))
    assert (resp.status, resp.error_reason) == (413, "LambdaRequestTooLarge")


def test_request_body_of_exactly_1_mib_twin_is_invoked() -> None:
    ev = ok_event(request(method="POST", body=b"x" * MAX_REQUEST_BODY_BYTES))
    assert base64.b64decode(ev["body"]) == b"x" * MAX_REQUEST_BODY_BYTES


def test_response_headers_over_32k_are_502() -> None:
    big = {f"X-{i}": "v" * 1000 for i in range(33)}
    assert is_invalid(respond({"statusCode": 200, "headers": big}))


def test_response_headers_under_32k_twin_pass() -> None:
    fits = {f"X-{i}": "v" * 1000 for i in range(30)}
    assert sum(len(k) + len(v) + 4 for k, v in fits.items()) < MAX_RESPONSE_HEADER_BYTES
    assert respond({"statusCode": 200, "headers": fits}).status == 200


# -- A06 request body encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("application/x-www-form-urlencoded", False),  # the case
        ("multipart/form-data; boundary=x", False),  # [field]
        ("application/octet-stream", False),
        ("image/png", False),
        ("application/ld+json", False),  # not in the documented list
        ("application/vnd.api+json", False),
        (None, False),  # no content type with a body [field]
        ("application/json", True),  # the case
        ("application/json; charset=utf-8", True),  # parameters ignored [infer]
        ("Application/JSON", True),  # case ignored [infer]
        ("text/plain", True),
        ("text/html;charset=ISO-8859-1", True),
        ("text/csv", True),
        ("application/javascript", True),
        ("application/xml", True),
    ],
)
def test_body_is_base64_unless_the_content_type_is_text(content_type: str | None, text: bool) -> None:
    body = b'{"name": "caf\xc3\xa9"}'
    headers = [("Content-Type", content_type)] if content_type else []
    ev = ok_event(request(method="POST", headers=headers, body=body))
    assert ev["isBase64Encoded"] is (not text)
    assert ev["body"] == (body.decode() if text else base64.b64encode(body).decode())
    assert is_text_media_type(content_type) is text


@pytest.mark.parametrize("encoding", ["gzip", "br", "identity", ""])
def test_any_content_encoding_forces_base64_even_for_json(encoding: str) -> None:
    body = b'{"a": 1}'
    ev = ok_event(
        request(
            method="POST", headers=[("Content-Type", "application/json"), ("Content-Encoding", encoding)], body=body
        )
    )
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == body


def test_without_content_encoding_twin_json_is_text() -> None:
    ev = ok_event(request(method="POST", headers=[("Content-Type", "application/json")], body=b'{"a": 1}'))
    assert (ev["body"], ev["isBase64Encoded"]) == ('{"a": 1}', False)


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json", None])
def test_empty_body_is_empty_text_in_both_modes(multi: bool, content_type: str | None) -> None:
    headers = [("Content-Type", content_type), ("Content-Encoding", "gzip")] if content_type else []
    ev = ok_event(request(method="POST", headers=headers), multi=multi)
    assert (ev["body"], ev["isBase64Encoded"]) == ("", False)


def test_text_body_that_is_not_utf8_is_400_bad_request() -> None:
    resp = refused(request(method="POST", headers=[("Content-Type", "text/plain")], body=b"caf\xe9"))
    assert (resp.status, resp.error_reason) == (400, "LambdaBadRequest")


def test_binary_body_that_is_not_utf8_twin_is_base64() -> None:
    ev = ok_event(request(method="POST", headers=[("Content-Type", "image/png")], body=b"\x89PNG\xff"))
    assert base64.b64decode(ev["body"]) == b"\x89PNG\xff"


def test_header_value_that_is_not_utf8_is_400_bad_request() -> None:
    resp = refused(request(raw_headers=[(b"X-Name", b"caf\xe9")]))
    assert (resp.status, resp.error_reason) == (400, "LambdaBadRequest")


def test_header_value_in_utf8_twin_passes() -> None:
    assert ok_event(request(raw_headers=[(b"X-Name", b"caf\xc3\xa9")]))["headers"]["x-name"] == "café"


# -- A07 event shape: only the ALB's ------------------------------------------------------------------------


@pytest.mark.parametrize("multi", [False, True])
def test_event_has_the_seven_alb_keys_and_nothing_of_api_gateway(multi: bool) -> None:
    ev = ok_event(request("/p?a=1", method="POST", headers=[("Content-Type", "text/plain")], body=b"hi"), multi=multi)
    names = ("multiValueQueryStringParameters", "multiValueHeaders") if multi else ("queryStringParameters", "headers")
    assert set(ev) == {"requestContext", "httpMethod", "path", *names, "body", "isBase64Encoded"}
    assert ev["requestContext"] == {"elb": {"targetGroupArn": ARN}}
    for api_gateway_key in ("version", "rawPath", "rawQueryString", "routeKey", "cookies", "resource", "stage"):
        assert api_gateway_key not in ev


def test_method_is_passed_as_sent() -> None:
    assert ok_event(request(method="PATCH"))["httpMethod"] == "PATCH"
    assert ok_event(request(method="GET"))["httpMethod"] != "PATCH"


# -- headers the ALB adds, and header casing ----------------------------------------------------------------


def test_header_names_are_lowercased() -> None:
    names = ok_event(request(headers=[("X-Custom-Thing", "1"), ("ACCEPT", "*/*")]))["headers"]
    assert "x-custom-thing" in names and "accept" in names
    assert all(n == n.lower() for n in names)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ([], "10.0.3.17"),
        ([("X-Forwarded-For", "203.0.113.7")], "203.0.113.7, 10.0.3.17"),
        ([("X-Forwarded-For", "203.0.113.7, 198.51.100.1")], "203.0.113.7, 198.51.100.1, 10.0.3.17"),
        (
            [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.1")],
            "203.0.113.7, 198.51.100.1, 10.0.3.17",
        ),
    ],
)
def test_x_forwarded_for_appends_the_client_ip(sent: list[tuple[str, str]], expected: str) -> None:
    assert ok_event(request(headers=sent))["headers"]["x-forwarded-for"] == expected
    assert ok_event(request(headers=sent), multi=True)["multiValueHeaders"]["x-forwarded-for"] == [expected]


def test_x_forwarded_for_with_more_than_30_addresses_is_463() -> None:
    many = ", ".join(f"10.0.0.{i}" for i in range(31))
    assert refused(request(headers=[("X-Forwarded-For", many)])).status == 463


def test_x_forwarded_for_with_30_addresses_twin_passes() -> None:
    thirty = ", ".join(f"10.0.0.{i}" for i in range(30))
    assert ok_event(request(headers=[("X-Forwarded-For", thirty)]))["headers"]["x-forwarded-for"].count(",") == 30


@pytest.mark.parametrize(("protocol", "port", "proto"), [("HTTPS", 443, "https"), ("HTTP", 80, "http")])
def test_x_forwarded_proto_and_port_are_the_listeners_and_replace_the_clients(
    protocol: str, port: int, proto: str
) -> None:
    spoofed = [("X-Forwarded-Proto", "gopher"), ("X-Forwarded-Port", "1")]
    ev = ok_event(request(headers=spoofed), protocol=protocol, port=port)
    assert ev["headers"]["x-forwarded-proto"] == proto
    assert ev["headers"]["x-forwarded-port"] == str(port)


def test_x_forwarded_port_is_the_advertised_port_not_a_bound_one() -> None:
    assert ok_event(request(), port=443)["headers"]["x-forwarded-port"] == "443"
    assert ok_event(request(), port=18443)["headers"]["x-forwarded-port"] != "443"


@pytest.mark.parametrize(
    ("incoming", "forwarded"),
    [
        (None, f"Root={ROOT}"),
        ("Root=1-67891233-abcdef012345678912345678", f"Self={ROOT};Root=1-67891233-abcdef012345678912345678"),
        (
            "Root=1-67891233-abcdef012345678912345678;CalledFrom=app",
            f"Self={ROOT};Root=1-67891233-abcdef012345678912345678;CalledFrom=app",
        ),
        (
            "Self=1-67891233-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678",
            f"Self={ROOT};Root=1-67891233-abcdef012345678912345678",
        ),
        ("CalledFrom=app", f"Root={ROOT}"),
    ],
)
def test_x_amzn_trace_id_follows_the_request_tracing_rules(incoming: str | None, forwarded: str) -> None:
    assert amzn_trace_id(incoming, ROOT) == forwarded
    headers = [("X-Amzn-Trace-Id", incoming)] if incoming else []
    assert ok_event(request(headers=headers))["headers"]["x-amzn-trace-id"] == forwarded


def test_x_amzn_trace_id_is_rewritten_when_headers_exceed_7_kb() -> None:
    headers = [("X-Amzn-Trace-Id", "Root=1-67891233-abcdef012345678912345678"), ("X-Pad", "p" * 7200)]
    assert ok_event(request(headers=headers))["headers"]["x-amzn-trace-id"] == f"Root={ROOT}"


def test_trace_root_helpers() -> None:
    assert new_trace_root(0x6750A1B2, 0x0123456789ABCDEF01234567) == ROOT
    assert trace_root_of(f"Self=1-00000000-000000000000000000000000;Root={ROOT}") == ROOT
    assert trace_root_of("Root=garbage") is None


# -- refusals before any invoke ----------------------------------------------------------------------------


def test_trace_method_is_405() -> None:
    assert refused(request(method="TRACE")).status == 405


def test_websocket_upgrade_is_400() -> None:
    resp = refused(request(headers=[("Connection", "Upgrade"), ("Upgrade", "websocket")]))
    assert (resp.status, resp.error_reason) == (400, "LambdaWebsocketNotSupported")


def test_other_upgrade_twin_is_forwarded() -> None:
    assert ok_event(request(headers=[("Upgrade", "h2c")]))["headers"]["upgrade"] == "h2c"


@pytest.mark.parametrize(
    "req",
    [
        request("/" + "a" * 16_400),  # request line over 16 K
        request(headers=[("X-Big", "b" * 16_400)]),  # one header over 16 K
        request(headers=[(f"X-{i}", "b" * 8_000) for i in range(9)]),  # all headers over 64 K
    ],
)
def test_oversized_request_head_is_400(req: AlbRequest) -> None:
    assert refused(req).status == 400


def test_request_head_within_limits_twin_passes() -> None:
    ok_event(request("/" + "a" * 16_000, headers=[(f"X-{i}", "b" * 8_000) for i in range(7)]))


# -- the rest of the response contract -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"hello", b"", b"{", b"null", b'"hello"', b"[]", b"200", b"true"])
def test_payload_that_is_not_a_json_object_is_502(payload: bytes) -> None:
    assert is_invalid(read_response(payload, multi_value_headers=False))


def test_bare_status_code_twin_is_an_empty_200_with_alb_defaults() -> None:
    resp = respond({"statusCode": 200})
    assert (resp.status, resp.reason, resp.body) == (200, "OK", b"")
    assert header(resp, "Content-Type") == ["application/octet-stream"]
    assert header(resp, "Server") == ["awselb/2.0"]


def test_raw_bytes_posted_by_awslambdaric_are_parsed_like_any_payload() -> None:
    assert read_response(b'{"statusCode": 204}', multi_value_headers=False).status == 204


@pytest.mark.parametrize("body", [None, 1, {"a": 1}, ["x"], True])
def test_body_that_is_not_a_string_is_502(body: Any) -> None:
    assert is_invalid(respond({"statusCode": 200, "body": body}))


def test_body_string_twin_is_sent_as_utf8() -> None:
    assert respond({"statusCode": 200, "body": "café"}).body == "café".encode()


def test_body_with_a_lone_surrogate_is_502() -> None:
    assert is_invalid(read_response(b'{"statusCode": 200, "body": "\\ud800"}', multi_value_headers=False))


@pytest.mark.parametrize("description", [None, 200, ["200 OK"]])
def test_status_description_that_is_not_a_string_is_502(description: Any) -> None:
    assert is_invalid(respond({"statusCode": 200, "statusDescription": description}))


@pytest.mark.parametrize(
    ("code", "description", "reason"),
    [
        (200, "200 OK", "OK"),
        (201, "201 Created", "Created"),
        (299, "299 Custom Thing", "Custom Thing"),
        (404, "Not found at all", "Not Found"),  # no leading code: the standard phrase [infer]
        (418, "200 OK", "I'm a Teapot"),  # another code: the standard phrase [infer]
    ],
)
def test_status_description_gives_the_reason_phrase(code: int, description: str, reason: str) -> None:
    resp = respond({"statusCode": code, "statusDescription": description})
    assert (resp.status, resp.reason) == (code, reason)


@pytest.mark.parametrize("flag", [None, "true", 1, 0])
def test_is_base64_encoded_that_is_not_a_boolean_is_502(flag: Any) -> None:
    assert is_invalid(respond({"statusCode": 200, "isBase64Encoded": flag, "body": "aGVsbG8="}))


def test_base64_body_twin_is_decoded() -> None:
    resp = respond(
        {"statusCode": 200, "isBase64Encoded": True, "headers": {"Content-Type": "image/png"}, "body": "iVBORw0KGgo="}
    )
    assert resp.body == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("body", ["aGVs\nbG8=", "aGVsbG8", "aGVs bG8=", "a$==", "aGVsbG8=\n"])
def test_base64_body_that_is_not_strict_rfc4648_is_502(body: str) -> None:
    assert is_invalid(respond({"statusCode": 200, "isBase64Encoded": True, "body": body}))


def test_base64_flag_with_empty_body_is_an_empty_body() -> None:
    assert respond({"statusCode": 200, "isBase64Encoded": True}).body == b""


def test_unknown_top_level_keys_are_tolerated() -> None:
    assert respond({"statusCode": 200, "cookies": ["a=1"], "extra": None}).status == 200


def test_hop_by_hop_and_content_length_from_the_function_are_dropped() -> None:
    resp = respond(
        {
            "statusCode": 200,
            "headers": {"Connection": "close", "Transfer-Encoding": "chunked", "Content-Length": "999", "X-Keep": "1"},
            "body": "ok",
        }
    )
    for dropped in ("Connection", "Transfer-Encoding", "Content-Length"):
        assert header(resp, dropped) == []
    assert header(resp, "X-Keep") == ["1"]


def test_function_header_case_is_kept_and_its_server_and_content_type_win() -> None:
    resp = respond({"statusCode": 200, "headers": {"content-TYPE": "text/plain", "Server": "mine", "X-MiXeD": "1"}})
    assert ("content-TYPE", "text/plain") in resp.headers and ("X-MiXeD", "1") in resp.headers
    assert header(resp, "Server") == ["mine"]
    assert header(resp, "Content-Type") == ["text/plain"]


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_for_204_and_304(code: int) -> None:
    assert respond({"statusCode": code, "body": "x"}).body == b""


# -- invoke failures and the ALB's own pages ----------------------------------------------------------------


@pytest.mark.parametrize(
    "error_type",
    [
        "ValueError",
        "Sandbox.Timedout",
        "Runtime.ExitError",
        "Runtime.ImportModuleError",
        "Function.ResponseSizeTooLarge",
    ],
)
def test_function_errors_are_502_lambda_unhandled(error_type: str) -> None:
    resp = function_error(error_type, "boom")
    assert (resp.status, resp.error_reason) == (502, "LambdaUnhandled")
    assert b"boom" not in resp.body  # the function's error never reaches the client


def test_throttling_is_502_lambda_throttling() -> None:
    assert (function_error("Throttled", "x").status, function_error("Throttled", "x").error_reason) == (
        502,
        "LambdaThrottling",
    )


def test_alb_error_page_has_the_alb_shape() -> None:
    page = alb_error(502, "LambdaInvalidResponse", "why")
    assert page.body == (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    assert page.headers == (("Server", "awselb/2.0"), ("Content-Type", "text/html"))
    assert b"why" not in page.body


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (503, "503 Service Temporarily Unavailable"),
        (504, "504 Gateway Time-out"),
        (413, "413 Request Entity Too Large"),
        (400, "400 Bad Request"),
        (405, "405 Method Not Allowed"),
    ],
)
def test_alb_error_page_titles(status: int, title: str) -> None:
    assert f"<title>{title}</title>".encode() in alb_error(status, None, "").body


def test_target_group_arn_format() -> None:
    assert target_group_arn("eu-west-1", "111122223333", "orders-tg", "0a1b2c3d4e5f6071") == ARN
