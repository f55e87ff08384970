"""KubeClient's own logic, on answers played by a stand-in for the official client's ``ApiClient``: paging with
``continue`` tokens and bounded retries that honour ``Retry-After``.

The same behaviours are checked on real API servers in tests/cluster/test_load.py (a real server's pages, a real
429 from API Priority and Fairness) and on the recording fake API server in tests/integration."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from urllib3 import HTTPHeaderDict

from meshbridge.kube.client import PAGE_SIZE, RETRIES, RETRY_AFTER_CAP, KubeClient, retry_pause
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.resources import resource_type

SECRETS = resource_type("v1", "Secret")


@dataclass
class Answer:
    """One answer of the stand-in server, shaped as the official client's ``RESTResponse``."""

    status: int
    body: Any = None
    header_values: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def headers(self) -> HTTPHeaderDict:
        return HTTPHeaderDict(self.header_values)

    def read(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


class Api:
    """Plays ``ApiClient.param_serialize`` + ``call_api``: records each request's method, path and query, and
    answers with ``answers`` in turn."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []

    def param_serialize(self, *, method: str, resource_path: str, query_params: list[tuple[str, str]], **_: Any) -> Any:
        return (method, resource_path + ("?" + urlencode(query_params) if query_params else ""))

    def call_api(self, method: str, url: str, **_: Any) -> Answer:
        self.sent.append(f"{method} {url}")
        return self.answers.pop(0)


def client(answers: list[Answer], **kwargs: Any) -> tuple[KubeClient, Api, list[float]]:
    api = Api(answers)
    pauses: list[float] = []
    return KubeClient(api, "eks", sleep=pauses.append, **kwargs), api, pauses  # type: ignore[arg-type]


def page(names: list[str], token: str = "") -> Answer:
    items = [{"metadata": {"name": n}} for n in names]
    return Answer(200, {"kind": "SecretList", "apiVersion": "v1", "metadata": {"continue": token}, "items": items})


# -- paging ----------------------------------------------------------------------------------------------


def test_a_list_follows_continue_tokens_until_the_server_sends_none() -> None:
    c, api, _ = client([page(["a", "b"], "t1"), page(["c", "d"], "t2"), page(["e"])], page_size=2)
    found = c.list_objects(SECRETS, namespace="ns", label_selector="x=y")
    assert [d["metadata"]["name"] for d in found] == ["a", "b", "c", "d", "e"]
    assert all(d["kind"] == "Secret" and d["apiVersion"] == "v1" for d in found)  # list items lack them
    assert api.sent == [
        "GET /api/v1/namespaces/ns/secrets?labelSelector=x%3Dy&limit=2",
        "GET /api/v1/namespaces/ns/secrets?labelSelector=x%3Dy&limit=2&continue=t1",
        "GET /api/v1/namespaces/ns/secrets?labelSelector=x%3Dy&limit=2&continue=t2",
    ]


def test_one_page_is_one_request_and_the_default_page_is_500() -> None:
    """The twin: without a continue token nothing more is asked; a client asks for 500 a page by default."""
    c, api, _ = client([page(["a"])])
    assert [d["metadata"]["name"] for d in c.list_objects(SECRETS)] == ["a"]
    assert PAGE_SIZE == 500 and api.sent == ["GET /api/v1/secrets?limit=500"]


# -- retries ---------------------------------------------------------------------------------------------

THROTTLED = Answer(429, b"Too many requests, please try again later.\n", {"Retry-After": "2"}, "Too Many Requests")


def test_a_429_is_retried_after_the_retry_after_the_server_asked_for() -> None:
    lines: list[str] = []
    c, api, pauses = client([THROTTLED, THROTTLED, Answer(200, {"gitVersion": "v1.37.2"})], notify=lines.append)
    assert c.version()["gitVersion"] == "v1.37.2"
    assert pauses == [2.0, 2.0] and len(api.sent) == 3
    assert lines[0] == (
        "cluster 'eks': get the API server version (/version): 429 Too Many Requests: Too many requests, please "
        f"try again later.; retrying in 2 s (retry 1 of {RETRIES})"
    )


def test_a_429_that_never_lifts_fails_after_the_bounded_retries_naming_throttling_and_the_fix() -> None:
    c, api, pauses = client([THROTTLED] * (RETRIES + 1))
    with pytest.raises(KubeApiError) as e:
        c.version()
    assert len(api.sent) == RETRIES + 1 and pauses == [2.0] * RETRIES
    text = str(e.value)
    assert e.value.status == 429 and text.startswith("cluster 'eks': get the API server version (/version) failed: 429")
    assert f"({RETRIES + 1} attempts: the first and {RETRIES} retries)" in text
    assert "the API server throttled the request (API Priority and Fairness" in text
    assert "Fix: re-run later" in text and "FlowSchema" in text


def test_no_retries_means_one_attempt_and_no_count() -> None:
    c, api, pauses = client([THROTTLED], retries=0)
    with pytest.raises(KubeApiError) as e:
        c.version()
    assert len(api.sent) == 1 and pauses == [] and "attempts" not in str(e.value)


@pytest.mark.parametrize(
    ("retry_after", "attempt", "pause"),
    [
        ("1", 1, 1.0),  # API Priority and Fairness asks for 1 s at first
        ("0", 3, 0.0),
        ("120", 1, RETRY_AFTER_CAP),  # never longer than the cap
        (None, 1, 0.5),  # no Retry-After: a doubling pause
        (None, 4, 4.0),
        (None, 9, RETRY_AFTER_CAP),
        ("Wed, 21 Oct 2037 07:28:00 GMT", 2, 1.0),  # an HTTP date is not read: the doubling pause
    ],
)
def test_retry_pause(retry_after: str | None, attempt: int, pause: float) -> None:
    assert retry_pause(retry_after, attempt) == pause
