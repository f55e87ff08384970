"""``make setup`` says what it does: each step announced, the long install with pip's own progress."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.builders import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def recipe(target: str, tmp: Path) -> list[str]:
    """The commands ``make TARGET`` would run from scratch (``-n -B``: printed, not run)."""
    done = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), target, f"VENV={tmp / 'venv'}", f"TOOLS={tmp / 'tools'}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line and not line.startswith("make")]


def silent_steps(lines: list[str]) -> list[str]:
    """The slow steps (a venv, a pip install) that no echo announced, and the installs that hide pip's progress
    (``--quiet``; upgrading pip itself is quick and may be quiet)."""
    problems = []
    for i, line in enumerate(lines):
        slow = " -m venv " in line or "pip install" in line
        if slow and not any(prev.startswith("echo ") for prev in lines[max(0, i - 2) : i]):
            problems.append(f"not announced: {line}")
        if "pip install" in line and "--quiet" in line and "--upgrade pip" not in line:
            problems.append(f"quiet install: {line}")
    return problems


@pytest.mark.parametrize("target", ["setup", "tools"])
def test_setup_announces_each_step_and_shows_the_install(target: str, tmp_path: Path) -> None:
    lines = recipe(target, tmp_path)
    assert any("pip install" in line for line in lines)
    assert silent_steps(lines) == []


def test_negative_twin_a_silent_quiet_install_is_caught() -> None:
    lines = ["python3 -m venv .venv", ".venv/bin/python -m pip install --quiet -e '.[test]'"]
    assert silent_steps(lines) == [
        "not announced: python3 -m venv .venv",
        "not announced: .venv/bin/python -m pip install --quiet -e '.[test]'",
        "quiet install: .venv/bin/python -m pip install --quiet -e '.[test]'",
    ]
