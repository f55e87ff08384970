"""verify's report: checks not run are listed (``NotRunWithout<Check>``), a summary line, JUnit names unique per
export and importing mesh."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.verify import Condition, conditions_json, conditions_junit, conditions_summary, not_run
from meshbridge.verify.local import EXPORTER_CHECKS, planned_checks, verify_local
from meshbridge.verify.report import conditions_table
from tests.builders import bridge_from, issued_store, seed_bridge, two_exports_three_meshes

BACKEND = Condition("BackendAnswers", "False", "HTTP404", "GET / answers 404", "eks → alb", subject="lambda")


def test_a_check_not_run_is_unknown_and_names_the_one_it_needed() -> None:
    c = not_run("AppReachesExport", BACKEND, "gke/sleep → backend", "lambda → gke")
    assert (c.status, c.reason, c.subject) == ("Unknown", "NotRunWithoutBackendAnswers", "lambda → gke")
    assert c.not_run and not c.passed
    assert "it needs BackendAnswers[lambda], which is False (HTTP404)" in c.message
    # the negative twin: an Unknown that ran (it could not decide) is no 'not run'
    assert not Condition("ExporterRefusesExpiredCert", "Unknown", "NoCAKey", "no key", "x").not_run


def test_the_summary_counts_passed_failed_not_run_and_unknown_apart() -> None:
    ran = [Condition(f"C{i}", "True", "Ok", "", "") for i in range(5)] + [BACKEND]
    skipped = [not_run(f"N{i}", BACKEND) for i in range(3)]
    assert conditions_summary(ran + skipped) == "5 passed, 1 failed, 3 not run"
    undecided = Condition("ExporterRefusesExpiredCert", "Unknown", "NoCAKey", "", "")
    assert conditions_summary([*ran, undecided]) == "5 passed, 1 failed, 0 not run, 1 unknown"
    doc = json.loads(conditions_json(ran + skipped))
    assert doc["passed"] is False and doc["summary"] == {"passed": 5, "failed": 1, "unknown": 0, "not_run": 3}
    assert doc["conditions"][-1]["reason"] == "NotRunWithoutBackendAnswers"


def _junit_names(conditions: list[Condition]) -> list[str]:
    suite = ElementTree.fromstring(conditions_junit(conditions).split("?>", 1)[1])
    return [case.get("name", "") for case in suite.iter("testcase")]


def test_junit_names_are_unique_across_two_exports_and_their_importers() -> None:
    bridge = bridge_from(two_exports_three_meshes())
    conditions = [
        Condition(check, "True", "Ok", "", hop, subject=subject) for check, hop, subject in planned_checks(bridge)
    ]
    names = _junit_names(conditions)
    assert len(names) == len(set(names)) == len(conditions)
    for subject in ("lambda → gke", "lambda → aks", "orders → gke"):
        assert f"ExporterAcceptsImporterCert[{subject}]" in names
    assert "BackendAnswers[orders]" in names
    # the negative twin: without subjects, the same check of two exports would have one name; the report still
    # tells them apart
    bare = [Condition(c.check, c.status, c.reason, c.message, c.hop) for c in conditions]
    assert len({c.name for c in bare}) < len(bare)
    names = _junit_names(bare)
    assert len(names) == len(set(names)) and "ExporterAcceptsImporterCert #2" in names


def test_junit_reports_a_check_not_run_as_skipped() -> None:
    xml = conditions_junit([BACKEND, not_run("AppReachesExport", BACKEND, "hop", "lambda → gke")])
    suite = ElementTree.fromstring(xml.split("?>", 1)[1])
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == (
        "2",
        "1",
        "1",
        "0",
    )
    case = suite.find("testcase[@name='AppReachesExport[lambda → gke]']")
    assert case is not None and case.find("skipped") is not None and case.find("error") is None


def test_verify_of_a_twin_that_is_not_running_lists_every_check_it_did_not_run(tmp_path: Path) -> None:
    bridge = seed_bridge()
    issued_store(tmp_path, bridge)
    twin = LocalTwin(bridge, tmp_path / "bridge.yaml", tmp_path / "state")
    conditions = verify_local(twin)
    down, *rest = conditions
    assert (down.check, down.status) == ("LocalTwinRunning", "False")
    skipped = [c for c in rest if c.not_run]
    assert [c.name for c in skipped] == [
        "ComponentsReady",
        "GatewaysServeCurrentCerts",
        "BackendAnswers[lambda]",
        *(f"{check}[lambda → gke]" for check in EXPORTER_CHECKS),
        "AppReachesExport[lambda → gke]",
        "PrivateALBUnreachable[lambda → gke]",
        # what the gateways serve cannot be read without them: listed, not left out
        "ServedCertificateExpiry[eks/istio-ingressgateway]",
        "ServedCertificateExpiry[gke/istio-egressgateway]",
    ]
    assert {c.reason for c in skipped} == {"NotRunWithoutLocalTwinRunning"}
    # the certificates' own checks read the store only: they run
    expiry = [c for c in rest if not c.not_run]
    assert [c.check for c in expiry] == [
        "CertificateExpiry:eks/ca",
        "CertificateExpiry:eks/server",
        "CertificateExpiry:gke/ca",
        "CertificateExpiry:gke/client",
    ]
    assert all(c.passed for c in expiry)
    assert conditions_summary(conditions) == "4 passed, 1 failed, 13 not run"


def test_cli_verify_prints_the_summary_after_the_table_and_junit_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0 and main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["verify", "--junit", "verify.xml"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["CHECK", "STATUS", "REASON", "HOP"]  # each message under its check
    assert all(len(line) <= 100 for line in lines)
    assert lines[-1] == "4 passed, 1 failed, 13 not run"
    assert main(["verify", "--wide"]) == 1  # one check per line, for grep
    wide = capsys.readouterr().out.splitlines()
    assert wide[0].split()[:5] == ["CHECK", "HOP", "STATUS", "REASON", "MESSAGE"]
    suite = ElementTree.parse(tmp_path / "verify.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("18", "1", "13")


def _long_checks() -> list[Condition]:
    hop = "gke/istio-egressgateway → eks/istio-ingressgateway (ingress.eks.example.com:443)"
    failed = [
        Condition("ExporterAcceptsImporterCert", "False", "CertificateUnknownCA", "the handshake failed", hop, 0, s)
        for s in ("lambda → gke", "payments-api-v2 → analytics-mesh")
    ]
    return [*failed, Condition("BackendAnswers", "True", "HTTP200", "GET / answers 200", "eks → alb", 0, "lambda")]


def test_the_table_never_breaks_a_check_name_only_its_subject_at_brackets_and_spaces() -> None:
    lines = conditions_table(_long_checks()).splitlines()
    assert all(len(line) <= 100 for line in lines)
    cells = [line[: lines[0].index("STATUS")].strip() for line in lines[1:] if not line.startswith("    ")]
    assert cells == [
        "ExporterAcceptsImporterCert",
        "[lambda → gke]",
        "ExporterAcceptsImporterCert",
        "[payments-api-v2 →",
        "analytics-mesh]",
        "BackendAnswers[lambda]",  # the twin: a name that fits keeps its subject on its line
    ]
    assert lines[4] == "    the handshake failed"  # the message under its row, as before
