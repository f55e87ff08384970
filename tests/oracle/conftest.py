"""The oracle tier's fixture: the built oracle, or a skip with the one line that says what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.istiod.oracle import OracleUnavailable, ensure_oracle


@pytest.fixture(scope="session")
def oracle() -> Path:
    try:
        return ensure_oracle()
    except OracleUnavailable as e:
        pytest.skip(str(e))
