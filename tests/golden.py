"""Golden files compared as YAML (parsed, so formatting never matters), with an update switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, documents: list[dict[str, Any]], update: bool) -> None:
    """Compare ``documents`` with ``tests/golden/<name>``; rewrite the file instead when ``update``."""
    path = GOLDEN / name
    if update or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True))
        if not update:
            raise AssertionError(f"{path} did not exist; it was written. Review it and run the tests again.")
    expected = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents == expected, f"output differs from {path}; run 'pytest --update-golden' if the change is intended"


def check_golden_text(name: str, text: str, update: bool) -> None:
    """Compare ``text`` with ``tests/golden/<name>`` byte for byte (a script, not YAML); rewrite it when ``update``."""
    path = GOLDEN / name
    if update or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not update:
            raise AssertionError(f"{path} did not exist; it was written. Review it and run the tests again.")
    assert text == path.read_text(), (
        f"output differs from {path}; run 'pytest --update-golden' if the change is intended"
    )
