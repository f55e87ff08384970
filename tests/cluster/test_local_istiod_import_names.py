"""An import under another name on the real control plane: examples/helloworld, whose apps in c1 call
``http://hw.sleep.svc.cluster.local:5000/`` (``importAs``) while c2's gateway serves ``c2.example.com``. The app's
istio-agent answers the name the apps call (its ServiceEntry's, from istiod's name table), and the call reaches the
Lambda through both gateways istiod configured; the exported name, which c1's apps do not import, resolves nowhere
on their side (``-m cluster``; Go or cached builds and root, else the module skips with the one line saying so)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.gotools import ToolUnavailable
from meshbridge.local.istiod_twin import _wildcard_listeners
from tests.builders import HELLOWORLD
from tests.cluster.admission import wait_until
from tests.cluster.support import spec_on_ports

pytestmark = pytest.mark.cluster
GATEWAY_PORTS = {9280, 9543, 9281, 9544}
"""The targetPorts of this module's gateways, apart from the other control-plane modules'."""
COMMAND = [sys.executable, "-c", "from meshbridge.cli.main import run; run()"]


def _helloworld_copy(folder: Path) -> Path:
    return spec_on_ports(HELLOWORLD, folder, ingress=(9280, 9543), egress=(9281, 9544))


@pytest.fixture(scope="module")
def helloworld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from meshbridge.local.istiod_twin import ensure_tools

    if os.geteuid() != 0:
        pytest.skip("local up --control-plane istiod needs root (a mount namespace per pod, ports 80 and 443)")
    try:
        ensure_tools()
    except ToolUnavailable as e:
        pytest.skip(str(e))
    file = _helloworld_copy(tmp_path_factory.mktemp("istiod-helloworld"))
    wait_until(lambda: not GATEWAY_PORTS & _wildcard_listeners(), "no other wildcard gateway listener", 2400)
    done = subprocess.run(
        [*COMMAND, "local", "up", "--control-plane", "istiod", "-f", str(file)], capture_output=True, text=True
    )
    try:
        assert done.returncode == 0, done.stderr + done.stdout
        yield file
    finally:
        subprocess.run([*COMMAND, "local", "down", "-f", str(file)], capture_output=True, check=False)


def test_the_apps_call_the_name_they_import_and_reach_the_lambda(
    helloworld: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["local", "curl", "-i", "http://hw.sleep.svc.cluster.local:5000/hello", "--bridge", str(helloworld)])
    shown = capsys.readouterr()
    assert code == 0, shown.err
    assert shown.out.startswith("HTTP/1.1 200"), shown.out[:300]


def test_negative_twin_the_exported_name_resolves_nowhere_on_the_importers_side(
    helloworld: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["local", "curl", "http://c2.example.com/hello", "--bridge", str(helloworld)])
    assert code == 6, capsys.readouterr()  # curl's 'Could not resolve host'
