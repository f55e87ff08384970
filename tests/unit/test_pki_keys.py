"""Keys lost or damaged in the store: ``certs check`` reports them, ``certs issue`` repairs what it can, and a CA
whose certificate is gone while its key is there is never silently replaced (each with its negative twin)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meshbridge.errors import PkiError
from meshbridge.pki import CertBundle, PkiStore, issue_ca
from meshbridge.pki.x509 import key_matches
from tests.builders import issued_store, seed_bridge

BRIDGE = seed_bridge()


def _files(store: PkiStore) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(store.root.rglob("*")) if p.is_file()}


def _errors(store: PkiStore) -> list[tuple[str, str, str]]:
    return [(f.subject, f.problem, f.fix) for f in store.check(BRIDGE) if f.severity == "error"]


# -- a leaf's key -------------------------------------------------------------------------------------------


def _missing(key: Path, _: pytest.MonkeyPatch) -> None:
    key.unlink()


def _not_a_key(key: Path, _: pytest.MonkeyPatch) -> None:
    key.write_bytes(b"not a key\n")


def _unreadable(key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key file whose reading fails (another owner's 0600 file; the tests may run as root, so it is mocked)."""
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == key:
            raise PermissionError(13, "Permission denied", str(key))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def _another_key(key: Path, _: pytest.MonkeyPatch) -> None:
    key.write_bytes(issue_ca("another").key_pem or b"")


@pytest.mark.parametrize(
    ("damage", "problem", "why"),
    [
        (_missing, "is missing", "private key missing"),
        (_not_a_key, "is not an unencrypted PEM private key", "private key unreadable"),
        (_unreadable, "cannot be read (Permission denied)", "private key unreadable"),
        (_another_key, "is not the key of server.crt", "private key of another certificate"),
    ],
)
def test_a_damaged_leaf_key_fails_check_and_issue_reissues_that_leaf(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: Callable[[Path, pytest.MonkeyPatch], None],
    problem: str,
    why: str,
) -> None:
    store = issued_store(tmp_path, BRIDGE)
    key = store.key_path("eks", "server")
    damage(key, monkeypatch)
    [(subject, text, fix)] = _errors(store)
    assert subject == "eks/server"
    assert f"its private key {key} {problem}" in text
    assert "eks's ingress gateway cannot complete a TLS handshake" in text
    assert fix.startswith("run 'meshbridge certs issue': it reissues this leaf")
    actions = {(a.mesh, a.slot): (a.action, a.reason) for a in store.issue(BRIDGE)}
    monkeypatch.undo()  # a key file written anew is readable
    assert actions.pop(("eks", "server")) == ("reissued", why)
    assert {action for action, _ in actions.values()} == {"kept"}  # only that leaf
    leaf = store.load("eks", "server")
    assert leaf is not None and leaf.key_pem is not None and key_matches(leaf.cert, leaf.key_pem)
    assert store.check(BRIDGE) == []


def test_a_leaf_with_its_own_key_passes_check_and_is_kept(tmp_path: Path) -> None:
    """The negative twin: nothing damaged, nothing reported, nothing reissued."""
    store = issued_store(tmp_path, BRIDGE)
    before = _files(store)
    assert store.check(BRIDGE) == []
    assert {a.action for a in store.issue(BRIDGE)} == {"kept"}
    assert _files(store) == before
    assert store.key_problem("eks", "server") is None and store.key_problem("gke", "client") is None


def test_an_imported_leaf_without_its_key_names_the_import_command(tmp_path: Path) -> None:
    store = issued_store(tmp_path, BRIDGE)
    leaf = store.load("gke", "client")
    assert leaf is not None
    store.import_(BRIDGE, "gke", "client", leaf, name="corp-client.pem")
    store.key_path("gke", "client").unlink()
    [(subject, _, fix)] = _errors(store)
    assert subject == "gke/client"
    assert fix.startswith(
        "import it again with its key: 'meshbridge certs import --mesh gke --slot client --cert LEAF.pem --key "
        "LEAF.key'"
    )


def test_a_leaf_key_under_a_ca_without_its_key_names_the_import_command_and_issue_refuses(tmp_path: Path) -> None:
    store = issued_store(tmp_path, BRIDGE)
    ca = store.load("eks", "ca")
    assert ca is not None
    store.import_(BRIDGE, "eks", "ca", CertBundle(ca.cert_pem), name="corp-root.pem")  # the CA's key goes
    store.key_path("eks", "server").unlink()
    [(subject, _, fix)] = _errors(store)
    assert subject == "eks/server"
    assert fix.startswith("issue a new server leaf where eks's CA key lives and import it: 'meshbridge certs import")
    with pytest.raises(PkiError, match=r"cannot issue its server leaf \(private key missing\)"):
        store.issue(BRIDGE)


# -- a CA's key ---------------------------------------------------------------------------------------------


def test_a_ca_key_lost_is_an_error_unless_the_ca_was_imported_without_it(tmp_path: Path) -> None:
    store = issued_store(tmp_path, BRIDGE)
    ca = store.load("eks", "ca")
    assert ca is not None
    store.key_path("eks", "ca").unlink()
    [(subject, problem, fix)] = _errors(store)
    assert subject == "eks/ca" and f"its private key {store.key_path('eks', 'ca')} is missing" in problem
    assert "meshbridge can neither issue, rotate nor revoke with this CA" in problem
    assert f"'meshbridge certs import --mesh eks --slot ca --cert {store.path('eks', 'ca')}'" in fix
    # the twin: the same CA, imported without its key on purpose, is no problem
    store.import_(BRIDGE, "eks", "ca", CertBundle(ca.cert_pem), name="corp-root.pem")
    assert _errors(store) == []


def test_a_damaged_ca_key_is_an_error_and_issue_says_it_cannot_sign(tmp_path: Path) -> None:
    store = issued_store(tmp_path, BRIDGE)
    store.key_path("eks", "ca").write_bytes(b"garbage\n")
    [(subject, problem, fix)] = _errors(store)
    assert subject == "eks/ca" and "is not an unencrypted PEM private key" in problem
    assert fix.startswith(f"restore {store.key_path('eks', 'ca')} from a backup")
    assert {a.action for a in store.issue(BRIDGE)} == {"kept"}  # nothing to sign: nothing refused
    store.key_path("eks", "server").unlink()
    with pytest.raises(PkiError, match=r"the private key of its CA .* is not an unencrypted PEM private key") as e:
        store.issue(BRIDGE)
    assert "cannot issue its server leaf (private key missing)" in str(e.value)
    assert "'meshbridge certs issue --force'" in str(e.value)


# -- a CA's certificate gone, its key still there ---------------------------------------------------------


def test_a_lost_ca_certificate_with_its_key_is_never_replaced_by_issue(tmp_path: Path) -> None:
    store = issued_store(tmp_path, BRIDGE)
    store.path("eks", "ca").unlink()
    before = _files(store)
    with pytest.raises(PkiError) as e:
        store.issue(BRIDGE)
    text = str(e.value)
    assert f"its CA certificate {store.path('eks', 'ca')} is missing, but the CA's private key" in text
    assert "the one the peers (gke) trust" in text
    assert f"Fix: restore {store.path('eks', 'ca')} from a backup" in text
    assert "'meshbridge certs issue --force'" in text
    assert _files(store) == before, "nothing was written: the key the peers' trust depends on is intact"
    [(subject, problem, _)] = _errors(store)
    assert subject == "eks/ca" and "is missing, but the CA's private key" in problem
    for refused in (
        lambda: store.credentials(BRIDGE),
        lambda: store.rollover(BRIDGE, "eks", 1),
        lambda: store.rotate_leaves(BRIDGE, ["eks"]),
        lambda: store.revoke("eks", 0x1234),
    ):
        with pytest.raises(PkiError, match="is missing, but the CA's private key"):
            refused()
    assert _files(store) == before


def test_a_lost_ca_certificate_is_replaced_only_knowingly(tmp_path: Path) -> None:
    store = issued_store(tmp_path, BRIDGE)
    old = store.load("eks", "ca")
    store.path("eks", "ca").unlink()
    actions = {(a.mesh, a.slot): a.action for a in store.issue(BRIDGE, force=True)}
    assert actions[("eks", "ca")] == "reissued"
    new = store.load("eks", "ca")
    assert new is not None and old is not None and new.cert != old.cert and store.check(BRIDGE) == []


def test_a_mesh_without_ca_certificate_nor_key_gets_a_new_ca(tmp_path: Path) -> None:
    """The negative twin of the lost certificate: nothing of the CA left is a CA never issued."""
    store = issued_store(tmp_path, BRIDGE)
    store.path("eks", "ca").unlink()
    store.key_path("eks", "ca").unlink()
    assert store.orphan_ca_key("eks") is None
    assert [(f.subject, f.problem) for f in store.check(BRIDGE) if f.subject == "eks/ca"] == [
        ("eks/ca", "was never issued")
    ]
    actions = {(a.mesh, a.slot): a.action for a in store.issue(BRIDGE)}
    assert actions[("eks", "ca")] == "issued" and actions[("eks", "server")] == "reissued"
    assert store.check(BRIDGE) == []


# -- the CLI ------------------------------------------------------------------------------------------------


def test_cli_check_fails_on_a_missing_leaf_key_and_issue_repairs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0 and main(["certs", "issue"]) == 0
    assert main(["certs", "check"]) == 0  # the twin: an intact store passes
    (tmp_path / ".meshbridge" / "pki" / "gke" / "client.key").unlink()
    capsys.readouterr()
    assert main(["certs", "check"]) == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "gke/client" in text and "client.key is missing" in text and "'meshbridge certs issue'" in text
    assert main(["certs", "issue"]) == 0
    assert "reissued private key missing" in " ".join(capsys.readouterr().out.split())
    assert main(["certs", "check"]) == 0


def test_cli_issue_refuses_to_replace_a_lost_ca_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0 and main(["certs", "issue"]) == 0
    ca = tmp_path / ".meshbridge" / "pki" / "eks" / "ca.crt"
    saved = ca.read_bytes()
    ca.unlink()
    capsys.readouterr()
    assert main(["certs", "issue"]) == 2
    assert "its CA certificate" in capsys.readouterr().err and not ca.exists()
    assert main(["certs", "check"]) == 1
    ca.write_bytes(saved)  # restored from a backup: all is well again
    assert main(["certs", "issue"]) == 0 and main(["certs", "check"]) == 0
