"""The security suite's twin: the seed bridge, one per test module, always torn down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshbridge.local.twin import LocalTwin
from tests.security.support import running, seed_twin_in


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    with running(seed_twin_in(tmp_path_factory.mktemp("security"))) as t:
        yield t
