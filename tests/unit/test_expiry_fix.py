"""A certificate near its expiry: the fix ``certs check`` gives is a rotation that runs as printed (``--leaf`` or
``--ca``, the mesh, the user's ``-f``), a time under a day is said in hours, and a certificate whose whole validity
is shorter than the warning window is not warned about right after issue (a new one would be no better): its
validity is said to be shorter than the window instead."""

from __future__ import annotations

import datetime as dt
import re
import shlex
from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.hints import with_options
from meshbridge.pki import CertBundle
from meshbridge.pki.checks import check_validity
from meshbridge.pki.store import PkiStore
from meshbridge.pki.x509 import issue_ca, issue_leaf, utcnow
from meshbridge.spec import load_bridge
from tests.builders import SEED

NOW = utcnow()


def _leaf(days: int) -> CertBundle:
    return issue_leaf(
        issue_ca("gke CA"), "client", common_name="gw", uris=["spiffe://gke/ns/a/sa/b"], days=days, now=NOW
    )


def _before_end(bundle: CertBundle, **left: float) -> dt.datetime:
    """The time ``left`` (``days=10``, ``hours=5``) before ``bundle`` expires."""
    return bundle.not_after - dt.timedelta(**left)


def test_a_leaf_within_the_window_names_its_mesh_s_leaf_rotation_and_a_ca_its_ca_rotation() -> None:
    leaf90 = _leaf(90)
    (leaf,) = check_validity("gke/client", leaf90, _before_end(leaf90, days=10, minutes=1), mesh="gke")
    assert (leaf.severity, leaf.problem[:18]) == ("warning", "expires in 10 days")
    assert leaf.fix == "rotate it before it expires: 'meshbridge certs rotate --leaf --mesh gke'"
    ca365 = issue_ca("gke CA", days=365, now=NOW)
    (ca,) = check_validity("gke/ca", ca365, _before_end(ca365, days=5), mesh="gke")
    assert ca.fix == "rotate it before it expires: 'meshbridge certs rotate --ca --mesh gke'"
    # the negative twin: outside the window, nothing to say
    assert check_validity("gke/client", leaf90, _before_end(leaf90, days=31), mesh="gke") == []


def test_under_a_day_left_is_said_in_hours() -> None:
    leaf = _leaf(90)
    (f,) = check_validity("gke/client", leaf, _before_end(leaf, hours=5, minutes=1), mesh="gke")
    assert f.problem.startswith("expires in 5 hours (")
    (f,) = check_validity("gke/client", leaf, _before_end(leaf, days=1, minutes=1), mesh="gke")
    assert f.problem.startswith("expires in 1 day (")  # the twin: a day or more stays in days


def test_a_validity_shorter_than_the_window_is_said_and_warned_about_only_past_half_of_it() -> None:
    leaf = _leaf(1)
    (fresh,) = check_validity("gke/client", leaf, leaf.not_before + dt.timedelta(minutes=1), mesh="gke")
    assert fresh.severity == "info"
    assert fresh.problem.startswith("valid for 1 day in all, shorter than the 30-day expiry warning window")
    assert "expires in 23 hours" in fresh.problem  # not "0 days"
    assert fresh.fix.startswith("raise spec.tls.leafValidityDays above 30, or accept it")
    # the twin: past half of its validity a new one would help, so it is a warning with the rotation
    (late,) = check_validity("gke/client", leaf, leaf.not_before + dt.timedelta(hours=13), mesh="gke")
    assert late.severity == "warning" and late.problem.startswith("expires in 11 hours")
    assert "less than half of its 1 day validity" in late.problem
    assert late.fix == "rotate it before it expires: 'meshbridge certs rotate --leaf --mesh gke'"


def test_certs_check_s_fix_runs_as_printed_and_clears_the_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    (tmp_path / "bridge.yaml").rename(tmp_path / "b.yaml")
    PkiStore(tmp_path / ".meshbridge").issue(load_bridge(tmp_path / "b.yaml"), now=NOW - dt.timedelta(days=80))
    capsys.readouterr()
    assert main(["certs", "check", "-f", "b.yaml", "--wide"]) == 0
    text = capsys.readouterr().out
    hints = re.findall(r"'(meshbridge certs rotate [^']*)'", text)
    assert hints == [f"meshbridge certs rotate --leaf --mesh {m} -f b.yaml" for m in ("eks", "gke")]
    assert main(["certs", "check", "-f", "b.yaml"]) == 0  # the table wraps the hint: it gets -f once all the same
    table = capsys.readouterr().out
    assert table.count("-f") == 2 and table.count("b.yaml") == 2 and max(map(len, table.splitlines())) <= 100
    assert main(shlex.split(hints[0])[1:]) == 0
    capsys.readouterr()
    assert main(["certs", "check", "-f", "b.yaml", "--wide"]) == 0
    text = capsys.readouterr().out
    assert "gke/client" in text and "eks/server" not in text  # the twin: the rotated leaf is fine, the other is not


def test_a_one_day_leaf_is_no_warning_in_certs_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    bridge = tmp_path / "bridge.yaml"
    bridge.write_text(bridge.read_text().replace("leafValidityDays: 90", "leafValidityDays: 1"))
    assert main(["certs", "issue"]) == 0
    capsys.readouterr()
    assert main(["certs", "check", "--wide"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [r.split()[:2] for r in rows] == [["info", "eks/server"], ["info", "gke/client"]]
    assert "raise spec.tls.leafValidityDays above 30" in rows[0] and "expires in 23 hours" in rows[0]


def test_verify_judges_the_store_s_expiry_by_the_same_rule(tmp_path: Path) -> None:
    """verify's CertificateExpiry (it reads the store alone, the twin need not run) says what 'certs check' says."""
    from meshbridge.local.twin import LocalTwin
    from meshbridge.verify.local import verify_local

    file = tmp_path / "bridge.yaml"
    file.write_text(SEED.read_text().replace("leafValidityDays: 90", "leafValidityDays: 1"))
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    PkiStore(twin.state_dir).issue(twin.bridge)
    expiry = {c.check: c for c in verify_local(twin) if c.check.startswith("CertificateExpiry:")}
    short = expiry["CertificateExpiry:eks/server"]
    assert (short.status, short.reason) == ("True", "Valid") and "(23 hours); valid for 1 day in all" in short.message
    # the twin: a 90-day leaf issued 80 days ago expires soon, with the rotation that fixes it
    file.write_text(SEED.read_text())
    twin = LocalTwin(load_bridge(file), file, tmp_path / "old")
    PkiStore(twin.state_dir).issue(twin.bridge, now=NOW - dt.timedelta(days=80))
    soon = {c.check: c for c in verify_local(twin)}["CertificateExpiry:eks/server"]
    assert (soon.status, soon.reason) == ("False", "ExpiresSoon")
    assert soon.message.endswith("Fix: rotate it before it expires: 'meshbridge certs rotate --leaf --mesh eks'")


def test_a_hint_a_table_wrapped_carries_the_file_once() -> None:
    wrapped = "fix: ('meshbridge certs rotate --leaf --mesh eks -f\nb.yaml')"
    assert with_options(wrapped, ["certs", "check", "-f", "b.yaml"]) == wrapped
    # the twin: a wrapped hint without it gets it
    assert with_options("('meshbridge certs rotate --leaf\n--mesh eks')", ["certs", "check", "-f", "b.yaml"]) == (
        "('meshbridge certs rotate --leaf\n--mesh eks -f b.yaml')"
    )


def test_a_peers_ca_near_its_expiry_asks_its_owner_not_a_rotation_only_they_can_run() -> None:
    from meshbridge.verify.local import PEER_CA_FIX, _expiry_of

    ca = issue_ca("gke CA", days=365, now=NOW)
    late = _before_end(ca, days=10)
    status, reason, message = _expiry_of(ca, late, None, "dates")  # a peer's CA: its owner rotates it
    assert (status, reason) == ("False", "ExpiresSoon") and message.endswith(f"Fix: {PEER_CA_FIX}")
    assert "certs rotate" not in message
    # the negative twin: one's own CA names its staged rollover
    _, _, own = _expiry_of(ca, late, "gke", "dates")
    assert own.endswith("'meshbridge certs rotate --ca --mesh gke'")
