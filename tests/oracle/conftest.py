"""The oracle tier's fixtures: the built oracle (or a skip with the one line that says what is missing), and every
input judged once."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.istiod.judge import MeshVerdict
from meshbridge.istiod.oracle import OracleUnavailable, ensure_oracle
from tests.oracle.judged import all_names, judge


@pytest.fixture(scope="session")
def oracle() -> Path:
    try:
        return ensure_oracle()
    except OracleUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def judged(oracle: Path) -> dict[str, list[MeshVerdict]]:
    """Every input judged once for the session: the project's bridges and the corpus cases."""
    return {name: judge(name, oracle) for name in all_names()}
