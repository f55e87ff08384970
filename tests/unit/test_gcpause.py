"""The cyclic garbage collector is paused once, for the whole command, by the CLI; never by a library call."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.gcpause import paused_gc
from meshbridge.lint import from_bridge, lint
from tests.builders import SEED, seed_bridge


@contextmanager
def collections() -> Iterator[list[int]]:
    """The generation of each collection the cyclic collector starts inside the block."""
    seen: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.collect()
    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)


def test_a_command_runs_without_the_collector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with collections() as seen:
        assert main(["lint", "-f", str(SEED), "--state-dir", str(tmp_path)]) in (0, 1)
    assert seen == []
    assert gc.isenabled()  # and it is on again afterwards


def test_a_library_call_leaves_the_collector_alone() -> None:
    bridge = seed_bridge()
    with collections() as seen:
        lint(from_bridge(bridge, None))  # the work of the command above, without the CLI
    assert seen != []
    assert gc.isenabled()


def test_paused_gc_restores_a_collector_that_was_off() -> None:
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
