"""verify's explanation of a failed hop reads the proxies' access logs; a twin that writes none says so instead of
claiming the request stopped before each hop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshbridge.verify.local import _diagnose

PATH = ["gke/sleep", "gke/istio-egressgateway"]


class _Twin:
    def __init__(self, root: Path, access_log: bool) -> None:
        self.root = root
        self._plan = {"access_log": access_log}

    def plan(self) -> dict[str, Any]:
        return self._plan


def test_a_twin_without_access_logs_says_they_are_off(tmp_path: Path) -> None:
    said = _diagnose(_Twin(tmp_path, access_log=False), PATH, "tag-1", wait=0)  # type: ignore[arg-type]
    assert said.startswith("the proxies write no access log (local up --no-access-log)")
    assert "did not log it" not in said


def test_negative_twin_with_access_logs_each_hop_is_read(tmp_path: Path) -> None:
    for name in PATH:
        (tmp_path / name).mkdir(parents=True)
    line = '[t] "GET /hello-world HTTP/1.1" 503 UF upstream_reset_before_response_started "-" "tag-1" outbound|80||x\\n'
    (tmp_path / PATH[0] / "access.log").write_text(line)
    said = _diagnose(_Twin(tmp_path, access_log=True), PATH, "tag-1", wait=0)  # type: ignore[arg-type]
    assert said.startswith("access logs: gke/sleep: 503 UF")
    assert "gke/istio-egressgateway: did not log it" in said
