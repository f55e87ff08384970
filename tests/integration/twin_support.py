"""Helpers shared by the integration tests that run the twin on the seed or the article's folder (real Envoys)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.local.twin import LocalTwin
from meshbridge.spec import Bridge, load_bridge


def seed_folder(tmp: Path) -> tuple[Path, Bridge]:
    """The files 'meshbridge init' writes, in ``tmp``: the bridge file's path and the loaded bridge."""
    for name in SEED_FILES:
        (tmp / name).write_text(seed_text(name))
    return tmp / "bridge.yaml", load_bridge(tmp / "bridge.yaml")


def twin_for(folder: Path, eks: str = "eks.yaml", gke: str = "gke.yaml") -> tuple[LocalTwin, dict[str, list[Path]]]:
    """The twin of ``folder``'s bridge.yaml, and the manifests of each mesh (file names in ``folder``)."""
    file = folder / "bridge.yaml"
    return LocalTwin(load_bridge(file), file, folder / ".meshbridge"), {"eks": [folder / eks], "gke": [folder / gke]}


def wait_for_status(twin: LocalTwin, name: str, condition: Callable[[Any], bool], timeout: float = 10.0) -> Any:
    """The status of proxy ``name`` once ``condition`` holds; AssertionError with the last status after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = next(s for s in twin.status() if s.name == name)
        if condition(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"{name}: not within {timeout} s: {status}")
