"""The inotify budget 'local up' checks before it starts Envoys."""

from __future__ import annotations

import ctypes
import os

import pytest

from meshbridge.local import inotify


def test_watched_files_counts_each_path_config_source_file_once() -> None:
    def source(path: str) -> dict[str, object]:
        return {"path_config_source": {"path": path, "watched_directory": {"path": "/x/sds"}}}

    bootstrap = {"dynamic_resources": {"lds_config": source("/x/lds.yaml"), "cds_config": source("/x/cds.yaml")}}
    lds = {"resources": [{"filter_chains": [{"sds": source("/x/sds/a.yaml")}, {"sds": source("/x/sds/a.yaml")}]}]}
    assert inotify.watched_files([bootstrap, lds]) == 3
    assert inotify.watched_files([{"static_resources": {}}]) == 0


def test_a_budget_that_holds_the_twin_is_no_problem() -> None:
    assert inotify.budget_problem(needed=30, limit=128, in_use=98) is None


def test_a_budget_too_small_names_the_figures_and_the_sysctl() -> None:
    problem = inotify.budget_problem(needed=30, limit=128, in_use=110)
    assert problem is not None
    assert "need 30 inotify instances" in problem and "has 18 left" in problem
    assert "max_user_instances=128, 110 in use" in problem and inotify.FIX in problem


@pytest.mark.skipif(not inotify.LIMIT_FILE.exists(), reason="Linux /proc only")
def test_instances_counts_the_inotify_instances_this_user_holds() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fds = [libc.inotify_init1(os.O_CLOEXEC) for _ in range(3)]
    try:
        assert all(fd >= 0 for fd in fds)
        budget = inotify.instances()
        assert budget is not None
        limit, in_use = budget
        assert limit == int(inotify.LIMIT_FILE.read_text()) and in_use >= 3
    finally:
        for fd in fds:
            os.close(fd)
