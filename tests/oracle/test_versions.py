"""Older supported lines on istiod's terms: the compatibility profiles of the pinned module are the table's.

A mesh on Istio 1.30 is judged by istiod 1.31 running with Istio's compatibility profile for 1.30
(``meshbridge.istio.changes.compatibility_env``). These tests hold that environment to the profile files the
pinned module ships, and show that the judgement depends on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.gotools import module_file
from meshbridge.istio.changes import SUPPORTED_LINES, compatibility_env, line
from meshbridge.istiod import request as oracle_request
from meshbridge.istiod.judge import MeshVerdict
from meshbridge.istiod.oracle import TOOL_DIR
from meshbridge.releases import CURRENT_ISTIO
from tests.oracle.judged import judge

pytestmark = pytest.mark.oracle

OLDER_LINES = [s for s in SUPPORTED_LINES if s != line(CURRENT_ISTIO)]


def _profile_env(release_line: str) -> dict[str, str]:
    """The istiod environment of the pinned Istio module's compatibility profile for ``release_line``."""
    relative = f"manifests/helm-profiles/compatibility-version-{release_line}.yaml"
    path = module_file(TOOL_DIR, "istio.io/istio", relative)
    if path is None:
        pytest.skip(f"no Go toolchain on PATH, or the pinned Istio module has no {relative}")
    data = yaml.safe_load(path.read_text())
    return {k: str(v) for k, v in data["pilot"]["env"].items()}


@pytest.mark.parametrize("release_line", OLDER_LINES)
def test_the_compatibility_environment_is_istios_profile(oracle: Path, release_line: str) -> None:
    minor = int(release_line.split(".")[1])
    assert compatibility_env(minor) == _profile_env(release_line)


def test_another_lines_profile_is_not_the_same(oracle: Path) -> None:
    # the comparison above can fail: 1.28's profile also turns off what 1.29 and 1.30 changed
    assert compatibility_env(30) != _profile_env("1.28")


def test_the_seed_on_1_30_is_judged_at_its_own_line(judged: dict[str, list[MeshVerdict]]) -> None:
    for mv in judged["bridge-seed-1.30"]:
        assert "compatibility profile for 1.30" in mv.note
        assert not [d for v in mv.proxies for d in v.undocumented]


def test_without_the_profile_istiod_1_31_differs_from_a_1_30_translation(
    oracle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oracle_request, "compatibility_env", lambda minor: {})
    verdicts = judge("bridge-seed-1.30", oracle)
    undocumented = {d.path.rsplit(" ", 1)[-1] for mv in verdicts for v in mv.proxies for d in v.undocumented}
    assert "healthy_panic_threshold" in undocumented
