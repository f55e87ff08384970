"""-H 'Name: value' as 'local curl' and 'verify' read it; verify refuses the headers its checks set themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.common import parse_headers
from meshbridge.cli.main import main
from meshbridge.errors import LocalError


def test_headers_are_name_value_pairs_stripped() -> None:
    assert parse_headers(["X-Partner-Key: acme-7", "x-empty:", " a :  b c "]) == [
        ("X-Partner-Key", "acme-7"),
        ("x-empty", ""),
        ("a", "b c"),
    ]


@pytest.mark.parametrize("bad", ["no-colon", ": value only"])
def test_a_header_without_a_name_is_refused(bad: str) -> None:
    with pytest.raises(LocalError, match="write 'Name: value'"):
        parse_headers([bad])


def test_a_reserved_header_is_refused_naming_why() -> None:
    with pytest.raises(LocalError, match="the checks set Host themselves"):
        parse_headers(["Host: other.example"], reserved=("host", "user-agent"))
    assert parse_headers(["Host: other.example"]) == [("Host", "other.example")]  # 'local curl' sends it


def test_verify_refuses_a_host_header_before_it_checks_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["verify", "-H", "Host: x"]) == 2
    assert "-H 'Host: x': the checks set Host themselves (host, user-agent); drop it" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-H", "bad header: x"], "-H 'bad header': not a header name"),
        (["-H", "x-ok: a\rb"], "the value holds a line break or NUL"),
        (["--path", "noslash"], "--path 'noslash': a request path starts with '/'. Fix: --path /noslash"),
    ],
)
def test_verify_refuses_what_it_could_not_send_before_it_checks_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["verify", *args]) == 2
    assert said in " ".join(capsys.readouterr().err.split())


def test_negative_twin_a_good_header_and_path_reach_the_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    capsys.readouterr()
    main(["verify", "-H", "x-partner: acme", "--path", "/hello-world"])  # no twin runs: its checks say so
    assert "LocalTwinRunning" in capsys.readouterr().out
