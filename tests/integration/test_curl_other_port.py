"""``local curl`` to a host imported on another port than the URL's: Envoy's bare answer gets one note saying
the port the app's sidecar routes it on and the URL to try. Real Envoy, the seed plus an export on 8080."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
NOTE = "note: orders.external is imported on port 8080, not 80: try http://orders.external:8080/hello-world"


def test_a_host_imported_on_8080_asked_on_80_is_told_its_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    file, _ = seed_folder(tmp_path)
    data = yaml.safe_load(file.read_text())
    orders = {**data["spec"]["exports"][0], "name": "orders", "host": "orders.external", "port": 8080}
    orders["egressGatewayPort"] = 80  # the egress gateway Service has no 8080: apps call 8080, it gets 80
    data["spec"]["exports"].append(orders)
    file.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["local", "up"]) == 0
        capsys.readouterr()
        assert main(["local", "curl", "-i", "http://orders.external/hello-world"]) == 0
        curled = capsys.readouterr()
        assert int(curled.out.split()[1]) >= 400, curled.out  # Envoy's own answer: the sidecar has no route
        assert NOTE in " ".join(curled.err.split())
        assert main(["local", "curl", "-s", "http://orders.external/hello-world"]) == 0
        assert "note:" not in capsys.readouterr().err  # -s: no notes, as curl's
        # the negative twins: the port it is imported on, and a host imported on the URL's port
        for url in ("http://orders.external:8080/hello-world", "http://lambda.external/hello-world"):
            assert main(["local", "curl", "-i", url]) == 0
            curled = capsys.readouterr()
            assert curled.out.startswith("HTTP/1.1 200") and "imported on port" not in curled.err, (url, curled)
    finally:
        main(["local", "down"])
