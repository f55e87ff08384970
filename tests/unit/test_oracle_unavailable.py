"""Without Go the oracle says, in one line, what is missing; with a broken prebuilt binary, which one."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge import gotools
from meshbridge.cli.main import main
from meshbridge.istiod import oracle
from meshbridge.istiod.oracle import OracleUnavailable, ensure_oracle


def test_no_go_is_one_line_naming_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(oracle.ENV_BINARY, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing cached here
    monkeypatch.setattr(gotools.shutil, "which", lambda _: None)
    with pytest.raises(OracleUnavailable) as e:
        ensure_oracle()
    assert "\n" not in str(e.value)
    assert "needs the Go toolchain" in str(e.value) and "make oracle" in str(e.value)


def test_a_cached_build_needs_no_go(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The twin of the above: once built for these sources, the oracle is found without Go."""
    monkeypatch.delenv(oracle.ENV_BINARY, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(gotools.shutil, "which", lambda _: None)
    built = oracle.cache_dir() / f"istio-oracle-{oracle.source_hash()}"
    built.parent.mkdir(parents=True)
    built.write_text("#!/bin/sh\n")
    assert ensure_oracle() == built


def test_a_prebuilt_binary_that_is_not_executable_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "istio-oracle"
    binary.write_text("not a program")
    monkeypatch.setenv(oracle.ENV_BINARY, str(binary))
    with pytest.raises(OracleUnavailable, match=r"MESHBRIDGE_ISTIO_ORACLE=.* is not an executable file"):
        ensure_oracle()


def test_translate_against_istiod_without_go_exits_2_with_the_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    monkeypatch.delenv(oracle.ENV_BINARY, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(gotools.shutil, "which", lambda _: None)
    capsys.readouterr()
    assert main(["translate", "--against-istiod"]) == 2
    assert "needs the Go toolchain" in capsys.readouterr().err
