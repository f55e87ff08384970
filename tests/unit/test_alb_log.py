"""The ALB's log in the local twin read back as ``lambda serve`` prints it, and the entries of one request."""

from __future__ import annotations

import json
import time
from pathlib import Path

from meshbridge.alb.server import InvocationLog
from meshbridge.local.alb_log import AlbLogs, readable

FAILED = InvocationLog(
    listener="HTTPS:443",
    client_ip="127.0.0.1",
    method="GET",
    target="/boom",
    status=502,
    error_reason="LambdaUnhandled",
    request_id="r-1",
    cold=False,
    init_duration_ms=None,
    duration_ms=1.0,
    total_ms=1.5,
    error_type="ValueError",
    detail="ValueError: bad input",
    output='[ERROR] ValueError: bad input\rTraceback (most recent call last):\r\u00a0\u00a0File "h.py", line 5\n',
)


def alb_log(path: Path, *entries: InvocationLog) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"event": "ready", "urls": ["http://127.0.9.13:80/"], "ports": [80]})]
    lines += [json.dumps({"event": "invocation", **e.to_dict()}) for e in entries]
    with path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def test_an_alb_line_reads_as_lambda_serve_prints_it() -> None:
    line = json.dumps({"event": "invocation", **FAILED.to_dict()})
    assert readable(line) == [
        "502 GET /boom 1.5 ms warm LambdaUnhandled ValueError req=r-1 (ValueError: bad input)",
        "  | [ERROR] ValueError: bad input",
        "  |     Traceback (most recent call last):",
        '  |       File "h.py", line 5',
    ]
    assert readable(line, output=False) == readable(line)[:1]
    assert readable('{"event": "ready", "urls": ["http://a:80/"]}') == ["ready: listening on http://a:80/"]
    # negative twin: a line that is not the ALB's JSON is printed as it is
    assert readable("error: handler cannot initialize") == ["error: handler cannot initialize"]


def test_the_alb_entries_of_a_request_are_found_after_the_mark(tmp_path: Path) -> None:
    log = alb_log(tmp_path / "alb.log", FAILED)
    marks = AlbLogs.mark({"eks/alb-lambda": log, "eks/alb-other": tmp_path / "none.log"})
    assert marks.invocations("GET", "/boom", wait=0) == []  # written before the mark: not this request
    ok = InvocationLog("HTTP:80", "127.0.0.1", "GET", "/hello", 200, None, "r-2", False, None, 1.0, 1.2)
    alb_log(log, ok, FAILED)
    assert marks.invocations("GET", "/boom", wait=0) == [("eks/alb-lambda", FAILED)]
    assert marks.invocations("POST", "/boom", wait=0) == []  # two entries, none of them a POST
    started = time.monotonic()
    assert marks.invocations("GET", "/other", wait=0.2) == [] and time.monotonic() - started >= 0.2


def test_an_entry_round_trips_and_anything_else_is_none() -> None:
    assert InvocationLog.from_dict({"event": "invocation", **FAILED.to_dict()}) == FAILED
    assert InvocationLog.from_dict({"event": "ready", "urls": []}) is None  # negative twin
