"""The ALB ↔ Lambda contract, pure: the event an ALB sends to a Lambda target group, and how it turns the
function's response into HTTP.

No I/O, no clock, no randomness: the caller passes the raw request (``AlbRequest``), the listener and target
group facts, and a fresh trace id; it gets back the event (a JSON-able dict) or the ALB's own error response.
For the way back, ``read_response`` validates the function's payload and returns the HTTP response the client
gets, or the ALB error page. Every ALB-generated response carries the ``error_reason`` code AWS writes in the
access log (``LambdaInvalidResponse``, ``LambdaResponseTooLarge``, …).

Sources:

* ELB-DOC: the ALB user guide, "Lambda functions as targets" (event, response, base64 and multi-value rules,
  1 MB limits), "Troubleshoot your Application Load Balancers" (502/503/504/413/463), "Access logs"
  (``error_reason`` codes), "X-Forwarded headers", "Request tracing", "Quotas" (header size limits).
* field: events and responses captured from real ALBs and posted in public issues (cited per rule below).
* ``[infer]``: not documented; the emulator's choice, also listed in ``docs/alb-lambda.md``.
"""

from __future__ import annotations

import base64
import binascii
import http
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ListenerProtocol = Literal["HTTP", "HTTPS"]
"""Protocol of an ALB listener (ELB-DOC: HTTP or HTTPS; an ALB has no other listener protocols)."""

ErrorReason = Literal[
    "LambdaBadRequest",
    "LambdaConnectionTimeout",
    "LambdaInvalidResponse",
    "LambdaRequestTooLarge",
    "LambdaResponseTooLarge",
    "LambdaServiceException",
    "LambdaThrottling",
    "LambdaUnhandled",
    "LambdaWebsocketNotSupported",
]
"""``error_reason`` codes of the ALB access log for Lambda targets (ELB-DOC load-balancer-access-logs)."""

MAX_REQUEST_BODY_BYTES = 1_048_576
"""Request body limit: ELB-DOC says "1 MB"; the byte count is not documented, 1 MiB is the choice [infer]."""
MAX_RESPONSE_JSON_BYTES = 1_048_576
"""Limit on the function's serialized response JSON: ELB-DOC "1 MB", counted as 1 MiB [infer]."""
MAX_REQUEST_LINE_BYTES = 16_384
"""ELB-DOC quotas: request line at most 16 K; over it the ALB answers 400."""
MAX_HEADER_LINE_BYTES = 16_384
"""ELB-DOC quotas: a single request header at most 16 K; over it 400."""
MAX_REQUEST_HEADER_BYTES = 65_536
"""ELB-DOC quotas: the whole request header at most 64 K; over it 400."""
MAX_RESPONSE_HEADER_BYTES = 32_768
"""ELB-DOC quotas: the whole response header at most 32 K; over it 502 (``LambdaInvalidResponse`` [infer])."""
MAX_FORWARDED_FOR_ADDRESSES = 30
"""ELB-DOC troubleshooting, HTTP 463: an ``X-Forwarded-For`` with more than 30 addresses is refused."""
TRACE_HEADER_REWRITE_BYTES = 7_168
"""ELB-DOC request tracing: with HTTP headers over 7 KB the ALB rewrites ``X-Amzn-Trace-Id`` with a new Root."""

TEXT_MEDIA_TYPES = frozenset({"application/json", "application/javascript", "application/xml"})
"""Besides ``text/*``, the content types whose body the ALB sends as is (ELB-DOC "Receive events")."""

SERVER_HEADER = "awselb/2.0"
"""The ``Server`` header of the ALB's own responses and of Lambda responses that set none."""
DEFAULT_CONTENT_TYPE = "application/octet-stream"
"""Content type the ALB sends when the function sets none (field: fujiwara/ridge#9)."""

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
# ELB-DOC: the ALB computes Content-Length and ignores hop-by-hop headers the function sets. The list beyond
# Connection and Transfer-Encoding is RFC 9110 §7.6.1's [infer].
_DROPPED_RESPONSE_HEADERS = _HOP_BY_HOP | {"content-length"}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_TRACE_ROOT = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}\Z")
# The ALB's own pages use nginx-style reason phrases (field: VWS-Python/vws-python-mock exceptions.py).
_ALB_REASONS = {
    400: "Bad Request",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    463: "",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


@dataclass(frozen=True)
class AlbRequest:
    """One HTTP request as the ALB listener received it, nothing decoded.

    Attributes:
        method: the method as sent, e.g. ``GET``.
        target: the raw request target: path and query exactly as on the request line, percent-encoding
            kept, e.g. ``/p?q=a%20b&x=1+2``.
        headers: the header lines in arrival order, duplicates kept, as raw bytes ``(name, value)``.
        body: the body bytes; the I/O layer stops reading at ``MAX_REQUEST_BODY_BYTES + 1`` bytes, so a
            longer body is seen as too large without being held in memory.
        client_ip: the address of the peer that connected to the listener, e.g. ``10.0.3.17``.
    """

    method: str
    target: str
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    client_ip: str


@dataclass(frozen=True)
class TargetGroup:
    """The Lambda target group a listener forwards to.

    Attributes:
        arn: ``arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<16 hex>``; the event's
            ``requestContext.elb.targetGroupArn``.
        multi_value_headers: the target group attribute ``lambda.multi_value_headers.enabled`` (AWS default
            false). It switches both the event's field names and which response header field is read.
    """

    arn: str
    multi_value_headers: bool = False


@dataclass(frozen=True)
class AlbResponse:
    """The HTTP response the client receives.

    Attributes:
        status: HTTP status code, e.g. 200.
        reason: the reason phrase of the status line, e.g. ``OK``.
        headers: ``(name, value)`` lines in order, repeated names kept (``Set-Cookie``); names keep the
            function's case. ``Date`` and ``Content-Length`` are added by the HTTP server when sent.
        body: the body bytes.
        error_reason: set when the ALB generated this response (the access log's ``error_reason``);
            ``None`` for a response that came from the function.
        detail: why, for the operator's log; never sent to the client (ELB-DOC: the function's error JSON
            never reaches the client).
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    error_reason: ErrorReason | None = None
    detail: str = ""


def target_group_arn(region: str, account_id: str, name: str, suffix: str) -> str:
    """The ARN of a target group, in AWS's format.

    Args:
        region: e.g. ``eu-west-1``.
        account_id: 12 digits.
        name: the target group name (1-32 characters of letters, digits and hyphens).
        suffix: 16 lowercase hex digits (AWS assigns them at creation; callers derive a stable value).

    Returns:
        e.g. ``arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/orders-tg/0a1b2c3d4e5f6071``.
    """
    return f"arn:aws:elasticloadbalancing:{region}:{account_id}:targetgroup/{name}/{suffix}"


def new_trace_root(epoch_seconds: int, random_96: int) -> str:
    """A trace id value ``1-<8 hex epoch seconds>-<24 hex random>`` (ELB-DOC request tracing, Syntax).

    Args:
        epoch_seconds: the current Unix time in seconds.
        random_96: 96 random bits.
    """
    return f"1-{epoch_seconds & 0xFFFFFFFF:08x}-{random_96 & ((1 << 96) - 1):024x}"


def amzn_trace_id(incoming: str | None, trace_root: str) -> str:
    """The ``X-Amzn-Trace-Id`` the ALB forwards, given the one the client sent (ELB-DOC request tracing).

    * No header, or one without a ``Root`` field: ``Root=<trace_root>``.
    * A ``Root`` field: ``Self=<trace_root>`` is inserted in front; the other fields (custom ones too) are
      kept in order. An existing ``Self`` field has its value updated in place.

    Args:
        incoming: the client's header value, or ``None``.
        trace_root: a fresh id from ``new_trace_root``.
    """
    if not incoming:
        return f"Root={trace_root}"
    fields = [f.strip() for f in incoming.split(";") if f.strip()]
    names = [f.partition("=")[0].strip() for f in fields]
    if "Root" not in names:
        return f"Root={trace_root}"
    if "Self" in names:
        fields[names.index("Self")] = f"Self={trace_root}"
        return ";".join(fields)
    return ";".join([f"Self={trace_root}", *fields])


def trace_root_of(trace_header: str) -> str | None:
    """The ``Root`` value of an ``X-Amzn-Trace-Id`` header when it is a well-formed ``1-…-…`` id."""
    for field in trace_header.split(";"):
        name, _, value = field.strip().partition("=")
        if name == "Root" and _TRACE_ROOT.match(value):
            return value
    return None


def build_event(
    request: AlbRequest,
    *,
    protocol: ListenerProtocol,
    advertised_port: int,
    target_group: TargetGroup,
    trace_root: str,
) -> dict[str, Any] | AlbResponse:
    """The event the ALB sends to the Lambda function, or the ALB's refusal made before any invoke.

    The event (ELB-DOC "Receive events from the load balancer"):

    * seven keys: ``requestContext.elb.targetGroupArn``, ``httpMethod``, ``path``, ``queryStringParameters``
      and ``headers`` (or, in multi-value mode, ``multiValueQueryStringParameters`` and ``multiValueHeaders``
      instead), ``body``, ``isBase64Encoded``;
    * ``path`` and the query are raw: nothing is percent-decoded, ``+`` stays ``+``; the query is split on
      ``&`` and each part on its first ``=`` (``?flag`` gives ``{"flag": ""}`` [infer]; empty parts are
      skipped [infer]);
    * header names are lowercased; a repeated header or query key keeps its **last** value in default mode and
      every value, in order, in multi-value mode; commas inside values are never split; keys are sorted, as
      in captured events (cosmetic);
    * the ALB adds ``x-forwarded-for`` (the client's value, if any, then ``, <client ip>``: the default
      ``append`` mode; repeated client lines are joined with ``", "`` first [infer]), ``x-forwarded-proto``
      and ``x-forwarded-port`` (the listener's, replacing the client's), and ``x-amzn-trace-id``
      (``amzn_trace_id``);
    * the body is base64-encoded (``isBase64Encoded: true``) when a ``content-encoding`` header is present,
      or when the content type is not ``text/*``, ``application/json``, ``application/javascript`` or
      ``application/xml``, a missing content type included; media-type parameters and case are ignored
      when matching [infer]. An empty body is ``""`` with ``isBase64Encoded: false`` in every case
      [field for GET; infer with content-encoding].

    Refusals, each an ``AlbResponse`` with the ALB's HTML page (ELB-DOC troubleshooting and quotas):

    * ``TRACE`` → 405; a WebSocket upgrade → 400 ``LambdaWebsocketNotSupported``;
    * request line or one header over 16 K, or all headers over 64 K → 400;
    * an ``X-Forwarded-For`` with more than 30 addresses → 463;
    * a body over ``MAX_REQUEST_BODY_BYTES`` → 413 ``LambdaRequestTooLarge``;
    * a header value, or a text-typed body, that is not UTF-8 → 400 ``LambdaBadRequest`` (the status is
      not documented [infer]).

    Args:
        request: the raw request.
        protocol: the listener's protocol; gives ``x-forwarded-proto`` (``http``/``https``).
        advertised_port: the port clients dialed (e.g. 443), which may differ from the port bound locally;
            gives ``x-forwarded-port``.
        target_group: the ARN and the multi-value attribute.
        trace_root: a fresh id from ``new_trace_root``.

    Returns:
        The event as a JSON-able dict, or the ALB's error response (the function is not invoked).
    """
    refused = _refuse_request(request)
    if refused is not None:
        return refused
    read = _header_lines(request)
    if isinstance(read, AlbResponse):
        return read
    lines, header_bytes = read
    upgrade = _last(lines, "upgrade")
    if upgrade is not None and upgrade.strip().lower() == "websocket":
        return alb_error(400, "LambdaWebsocketNotSupported", "WebSocket upgrades cannot reach a Lambda target")
    forwarded = [v for n, v in lines if n == "x-forwarded-for"]
    addresses = [a.strip() for v in forwarded for a in v.split(",") if a.strip()]
    if len(addresses) > MAX_FORWARDED_FOR_ADDRESSES:
        return alb_error(463, None, f"X-Forwarded-For holds {len(addresses)} addresses, over 30")
    incoming_trace = None if header_bytes > TRACE_HEADER_REWRITE_BYTES else _last(lines, "x-amzn-trace-id")
    added = {
        "x-amzn-trace-id": amzn_trace_id(incoming_trace, trace_root),
        "x-forwarded-for": ", ".join([*forwarded, request.client_ip]) if forwarded else request.client_ip,
        "x-forwarded-port": str(advertised_port),
        "x-forwarded-proto": protocol.lower(),
    }
    lines = [(n, v) for n, v in lines if n not in added] + list(added.items())
    body_field, is_base64 = _event_body(
        request.body, _last(lines, "content-type"), _last(lines, "content-encoding") is not None
    )
    if body_field is None:
        return alb_error(400, "LambdaBadRequest", "the text-typed request body is not UTF-8; Lambda takes UTF-8 only")
    return _event(request, target_group, lines, body_field, is_base64)


def _refuse_request(request: AlbRequest) -> AlbResponse | None:
    """The ALB's refusal of a ``TRACE``, a request line or a body over its limits; ``None`` when none."""
    if request.method == "TRACE":
        return alb_error(405, None, "the ALB refuses TRACE requests")
    if len(request.method) + len(request.target) + len(" HTTP/1.1") > MAX_REQUEST_LINE_BYTES:
        return alb_error(400, None, f"request line over {MAX_REQUEST_LINE_BYTES} bytes")
    if len(request.body) > MAX_REQUEST_BODY_BYTES:
        return alb_error(
            413,
            "LambdaRequestTooLarge",
            f"request body over {MAX_REQUEST_BODY_BYTES} bytes; the function is not invoked",
        )
    return None


def _header_lines(request: AlbRequest) -> tuple[list[tuple[str, str]], int] | AlbResponse:
    """The request's header lines (names lowercased, values UTF-8) and their size in bytes, or the ALB's
    refusal of a line or of all lines over the limits, or of a value that is not UTF-8."""
    header_bytes = 0
    lines: list[tuple[str, str]] = []
    for raw_name, raw_value in request.headers:
        line_size = len(raw_name) + len(raw_value) + 4  # "name: value\r\n"
        if line_size > MAX_HEADER_LINE_BYTES:
            return alb_error(400, None, f"header {raw_name.decode('latin-1')!r} over {MAX_HEADER_LINE_BYTES} bytes")
        header_bytes += line_size
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            return alb_error(
                400, "LambdaBadRequest", f"header {raw_name.decode('latin-1')!r} is not UTF-8; Lambda takes UTF-8 only"
            )
        lines.append((raw_name.decode("latin-1").lower(), value))
    if header_bytes > MAX_REQUEST_HEADER_BYTES:
        return alb_error(400, None, f"request headers over {MAX_REQUEST_HEADER_BYTES} bytes")
    return lines, header_bytes


def _last(lines: list[tuple[str, str]], name: str) -> str | None:
    """The last value of header ``name`` (lowercase) among ``lines``; ``None`` when absent."""
    found = None
    for n, v in lines:
        if n == name:
            found = v
    return found


def _event(
    request: AlbRequest, target_group: TargetGroup, lines: list[tuple[str, str]], body_field: str, is_base64: bool
) -> dict[str, Any]:
    """The event's seven keys, the query and the headers in the target group's mode (see :func:`build_event`)."""
    path, _, query = request.target.partition("?")
    pairs = _query_pairs(query)
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": target_group.arn}},
        "httpMethod": request.method,
        "path": path,
    }
    if target_group.multi_value_headers:
        event["multiValueQueryStringParameters"] = _multi(pairs)
        event["multiValueHeaders"] = _multi(lines)
    else:
        event["queryStringParameters"] = _single(pairs)
        event["headers"] = _single(lines)
    event["body"] = body_field
    event["isBase64Encoded"] = is_base64
    return event


def _event_body(body: bytes, content_type: str | None, has_content_encoding: bool) -> tuple[str | None, bool]:
    """(body field, isBase64Encoded); the field is ``None`` when a text body is not UTF-8."""
    if not body:
        return "", False
    if not has_content_encoding and is_text_media_type(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            return None, False
    return base64.b64encode(body).decode("ascii"), True


def is_text_media_type(content_type: str | None) -> bool:
    """True when the ALB passes a body of this ``Content-Type`` as text, not base64.

    ``text/*`` and the three types of ``TEXT_MEDIA_TYPES`` (ELB-DOC); parameters such as ``; charset=utf-8``
    and letter case are ignored [infer]; ``application/ld+json`` and other ``+json`` types are **not** text
    (the doc lists exact types). ``None`` (no header) is not text.
    """
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in TEXT_MEDIA_TYPES


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((key, value))
    return pairs


def _single(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for k, v in pairs:
        values[k] = v  # the last value wins (ELB-DOC: "uses the last value")
    return dict(sorted(values.items()))


def _multi(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for k, v in pairs:
        values.setdefault(k, []).append(v)
    return dict(sorted(values.items()))


def alb_error(status: int, error_reason: ErrorReason | None, detail: str) -> AlbResponse:
    """A response the ALB generates itself: its HTML page, ``Server: awselb/2.0``, ``Content-Type: text/html``.

    The page's shape, CRLF line ends included, is the one recorded from real ALBs (field:
    VWS-Python/vws-python-mock ``_services_validators/exceptions.py``):
    ``<html>\\r\\n<head><title>502 Bad Gateway</title></head>\\r\\n<body>\\r\\n<center><h1>502 Bad Gateway</h1>…``.

    Args:
        status: 400, 405, 413, 463, 502, 503 or 504 (others get the standard reason phrase).
        error_reason: the access log's ``error_reason``, or ``None`` where AWS logs ``-``.
        detail: the cause, for the operator's log only.
    """
    reason = _ALB_REASONS.get(status, _standard_reason(status))
    title = f"{status} {reason}".rstrip()
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode("ascii")
    headers = (("Server", SERVER_HEADER), ("Content-Type", "text/html"))
    return AlbResponse(status, reason, headers, page, error_reason, detail)


def function_error(error_type: str, detail: str) -> AlbResponse:
    """The ALB's answer when the invoke itself failed (ELB-DOC troubleshooting).

    * ``Throttled`` (Lambda answered 429 ``TooManyRequestsException``: reserved concurrency reached, or 0)
      → 502 ``LambdaThrottling``; ALB does not queue or retry.
    * Anything else is a function error (``X-Amz-Function-Error: Unhandled``): an unhandled exception, a
      timeout (``Sandbox.Timedout``), a runtime exit (``Runtime.ExitError``), an init error
      (``Runtime.ImportModuleError``, …), an oversized response (``Function.ResponseSizeTooLarge``)
      → 502 ``LambdaUnhandled`` (the reason code for the non-exception cases is [infer]).

    Args:
        error_type: ``Throttled``, or the ``errorType`` of the function error.
        detail: the error message, for the operator's log.
    """
    if error_type == "Throttled":
        return alb_error(502, "LambdaThrottling", detail)
    return alb_error(502, "LambdaUnhandled", f"{error_type}: {detail}")


def read_response(payload: bytes, *, multi_value_headers: bool) -> AlbResponse:
    """Validate a function's response payload and turn it into the client's HTTP response.

    The contract (ELB-DOC "Respond to the load balancer"):

    * the payload, at most ``MAX_RESPONSE_JSON_BYTES`` (else 502 ``LambdaResponseTooLarge``), must be a JSON
      object; ``null`` (a handler returning ``None``), a string, a list or unparsable bytes → 502
      ``LambdaInvalidResponse``. Unknown extra keys are tolerated [infer].
    * ``statusCode``: required, a JSON integer (``"200"``, ``200.0`` or ``true`` → 502); outside 200-599
      → 502 [infer: 1xx cannot be a final response].
    * ``statusDescription``: optional string ``"<code> <reason>"``; the reason phrase sent is the text after
      ``"<code> "``, or the standard phrase when the description does not start that way [infer]. ``null``
      → 502 (field: aws/aws-lambda-dotnet#507).
    * ``headers`` (default mode) or ``multiValueHeaders`` (multi-value mode): optional; an object of
      string → string, or string → list of strings. A non-string value (a number, ``true``, ``null``, a
      list in default mode) → 502 (field: jeremydaly/lambda-api#117); ``null`` for the object → 502. The
      field of the other mode is ignored without being read (field: aws/serverless-java-container#347).
      A name that is not an HTTP token, or a value with CR, LF or NUL, → 502 [infer].
    * ``body``: optional string; ``null`` or a non-string → 502 (field: powertools-lambda-python#4671).
    * ``isBase64Encoded``: optional boolean (``null`` or ``"true"`` → 502 [infer from the null rule]); when
      true the body must be strict RFC 4648 base64, line breaks and missing padding → 502 (field:
      aws/serverless-java-container#339).
    * The ALB drops hop-by-hop headers and ``Content-Length`` (it computes its own), adds
      ``Content-Type: application/octet-stream`` when the function sets none, and ``Server: awselb/2.0``
      when the function sets no ``Server`` [infer: proxies add it only when absent]. A response header over
      32 K → 502. 204 and 304 responses carry no body [infer: RFC 9110].

    Args:
        payload: the bytes Lambda returned (awslambdaric posts ``bytes`` return values raw, with
            content type ``application/unknown``; they are parsed like any other payload).
        multi_value_headers: the target group attribute ``lambda.multi_value_headers.enabled``.

    Returns:
        The function's response, or the ALB's 502 page with its ``error_reason``.
    """
    if len(payload) > MAX_RESPONSE_JSON_BYTES:
        return alb_error(
            502, "LambdaResponseTooLarge", f"response JSON is {len(payload)} bytes, over {MAX_RESPONSE_JSON_BYTES}"
        )
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as e:
        return _invalid(f"the response is not JSON ({e})")
    if not isinstance(doc, dict):
        return _invalid(f"the response is JSON {_json_kind(doc)}, not an object with a statusCode")

    status_line = _status_line(doc)
    if isinstance(status_line, str):
        return _invalid(status_line)
    status, reason = status_line
    body = _response_body(doc)
    if isinstance(body, str):
        return _invalid(body)
    field = "multiValueHeaders" if multi_value_headers else "headers"
    lines = _response_headers(doc, field, multi_value_headers)
    if isinstance(lines, str):
        return _invalid(lines)
    headers = _client_headers(lines)
    if isinstance(headers, str):
        return _invalid(headers)
    if status in (204, 304):
        body = b""
    return AlbResponse(status, reason, headers, body)


def _status_line(doc: Mapping[str, Any]) -> tuple[int, str] | str:
    """The response's status code and reason phrase (``statusCode``, ``statusDescription``), or the reason
    they are invalid."""
    status = doc.get("statusCode")
    if type(status) is not int:
        if "statusCode" not in doc:
            return "statusCode is missing"
        return f"statusCode must be a JSON integer, got {_json_kind(status)} {json.dumps(status)}"
    if not 200 <= status <= 599:
        return f"statusCode {status} is outside 200-599"
    reason = _standard_reason(status)
    if "statusDescription" in doc:
        description = doc["statusDescription"]
        if not isinstance(description, str):
            return f"statusDescription must be a string, got {_json_kind(description)}"
        if _has_control(description):
            return "statusDescription holds CR, LF or NUL"
        code, _, text = description.partition(" ")
        if code == str(status) and text:
            reason = text
    return status, reason


def _response_body(doc: Mapping[str, Any]) -> bytes | str:
    """The response's body bytes (``body``, decoded when ``isBase64Encoded``), or the reason it is invalid."""
    is_base64 = doc.get("isBase64Encoded", False)
    if not isinstance(is_base64, bool):
        return f"isBase64Encoded must be a boolean, got {_json_kind(is_base64)}"
    body_field = doc.get("body", "")
    if not isinstance(body_field, str):
        return f"body must be a string, got {_json_kind(body_field)}"
    if is_base64:
        try:
            return base64.b64decode(body_field.encode("ascii"), validate=True)
        except (ValueError, binascii.Error):
            return "isBase64Encoded is true but body is not strict base64 (RFC 4648, no line breaks)"
    try:
        return body_field.encode("utf-8")
    except UnicodeEncodeError:
        return "body holds a lone UTF-16 surrogate and cannot be encoded as UTF-8"


def _client_headers(lines: list[tuple[str, str]]) -> tuple[tuple[str, str], ...] | str:
    """The headers the client gets: the function's without the ones the ALB drops, ``Server`` and
    ``Content-Type`` added when the function sets none; or the reason they are over the size limit."""
    kept: list[tuple[str, str]] = []
    names: set[str] = set()
    size = 0
    for name, value in lines:
        lower = name.lower()
        if lower in _DROPPED_RESPONSE_HEADERS:
            continue
        kept.append((name, value))
        names.add(lower)
        size += len(name) + len(value.encode("utf-8")) + 4
    if size > MAX_RESPONSE_HEADER_BYTES:
        return f"response headers are {size} bytes, over {MAX_RESPONSE_HEADER_BYTES}"
    added: list[tuple[str, str]] = []
    if "server" not in names:
        added.append(("Server", SERVER_HEADER))
    if "content-type" not in names:
        added.append(("Content-Type", DEFAULT_CONTENT_TYPE))
    return (*added, *kept)


def _response_headers(doc: Mapping[str, Any], field: str, multi: bool) -> list[tuple[str, str]] | str:
    """The header lines of ``doc[field]``, or the reason they are invalid."""
    if field not in doc:
        return []
    raw = doc[field]
    if not isinstance(raw, dict):
        return f"{field} must be an object, got {_json_kind(raw)}"
    lines: list[tuple[str, str]] = []
    for name, value in raw.items():
        if not _TOKEN.match(name):
            return f"{field} has an invalid header name {name!r}"
        if multi and not isinstance(value, list):
            return f"{field}[{name!r}] must be a list of strings, got {_json_kind(value)}"
        for v in value if multi else [value]:
            if not isinstance(v, str):
                return f"{field}[{name!r}] must hold strings only, got {_json_kind(v)} {json.dumps(v)}"
            if _has_control(v):
                return f"{field}[{name!r}] holds CR, LF or NUL"
            lines.append((name, v))
    return lines


def _invalid(detail: str) -> AlbResponse:
    return alb_error(502, "LambdaInvalidResponse", detail)


def _has_control(text: str) -> bool:
    return "\r" in text or "\n" in text or "\0" in text


def _standard_reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
