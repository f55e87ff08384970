"""Shared pytest options, and the run's temporary files. Golden files are refreshed with ``pytest --update-golden``.

No private key may outlive the run in the system's temporary directory: the run's temporary files go to a
folder of its own (:mod:`tests.tempcheck`), the session fails when a key is left in it, and the folder is
removed at the end. Tests and fixtures write stores into ``tmp_path``/``tmp_path_factory``; a cached helper
without them uses :func:`tests.builders.scratch_dir`, under pytest's temporary directory too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import builders
from tests.tempcheck import RunTemp, leftover_keys

_RUN: RunTemp | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite golden files from the current output.")


def pytest_configure(config: pytest.Config) -> None:
    global _RUN
    _RUN = RunTemp()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _RUN
    if _RUN is not None:
        _RUN.close()
        _RUN = None


@pytest.fixture(scope="session", autouse=True)
def no_private_key_left_in_temp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fails the session when a private key is left in the system's temporary directory by the run (the run's
    own folder there), once every other fixture has cleaned up."""
    builders.SCRATCH = tmp_path_factory.mktemp("scratch")
    yield
    builders.SCRATCH = None
    assert _RUN is not None
    left = leftover_keys(_RUN.root, ignore=[tmp_path_factory.getbasetemp()])
    if left:
        shown = "\n  ".join(str(p) for p in left[:20]) + (f"\n  and {len(left) - 20} more" if len(left) > 20 else "")
        pytest.fail(
            f"the test run left {len(left)} private key file(s) in the system's temporary directory "
            f"({_RUN.system}; this run's files were in {_RUN.root}, now removed):\n  {shown}\n"
            "Fix: write stores into tmp_path or tmp_path_factory (or tests.builders.scratch_dir in a cached "
            "helper), and remove temporary folders in the fixture that made them",
            pytrace=False,
        )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
