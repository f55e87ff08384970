"""'local up' closes with a curl that works: on an exporter whose VirtualService routes only ``/status`` (as in
Istio's secure-ingress task), its 'Try:' asks the path the path check asked (the export's own, ``/status``), not
the article's ``/hello-world``, which that route answers with 404. The seed's 'Try:' keeps ``/hello-world``
(test_local_twin.py's test_after_up_with_f_the_hints_repeat_it_and_a_command_without_it_finds_the_twin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main

pytestmark = pytest.mark.integration


def test_up_suggests_the_path_the_exporters_route_serves(
    article: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    eks = article / "eks.status.yaml"
    routes_all = "            prefix: /\n"
    eks.write_text((article / "eks.yaml").read_text().replace(routes_all, "            prefix: /status\n"))
    monkeypatch.chdir(article)
    manifests = ["--manifests", f"eks={eks.name}", "--manifests", "gke=gke.yaml"]
    try:
        assert main(["local", "up", *manifests]) == 0
        captured = capsys.readouterr()
        hint = captured.out.splitlines()[-1]
        assert hint.endswith("Try: meshbridge local curl -i http://lambda.external/status"), hint
        assert main(hint.split("Try: meshbridge ")[1].split()) == 0  # the hint works as printed
        assert capsys.readouterr().out.startswith("HTTP/1.1 200")
        # the negative twin: the article's path is what that route does not serve
        assert main(["local", "curl", "-i", "http://lambda.external/hello-world"]) == 0
        assert capsys.readouterr().out.startswith("HTTP/1.1 404")
    finally:
        assert main(["local", "down"]) == 0
