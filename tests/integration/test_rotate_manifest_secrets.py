"""certs rotate on a local twin whose gateway serves a Secret of the user's --manifests: refused before the store
changes (the twin would keep serving that Secret and the check after the first step would fail), once, naming the
gateway, the Secret and the fix; --dry-run warns. The twin without such a Secret rotates. certs push on such a twin
warns that it does not change what that gateway serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.cli.main import main
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from tests.integration.test_verify_runs import _rename_gke_credential, _rendered_manifests
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration


def test_rotate_is_refused_up_front_when_a_gateway_serves_the_manifests_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    manifests = _rendered_manifests(tmp_path, bridge, store, _rename_gke_credential)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    serials = {m: store.load(m, slot).serial for m, slot in (("eks", "server"), ("gke", "client"))}  # type: ignore[union-attr]
    try:
        twin.up({"gke": manifests["gke"]})
        capsys.readouterr()
        main(["certs", "push", "-f", str(file)])
        pushed = " ".join(capsys.readouterr().err.split())
        assert "warning: the running local twin does not serve the store's certificates everywhere" in pushed
        assert "the push changes what the store's Secrets hold, not those" in pushed
        assert main(["certs", "rotate", "--leaf", "-f", str(file), "--dry-run"]) == 0
        shown = capsys.readouterr()
        assert "warning: the rotation would be refused" in shown.err and "dry run: nothing changed" in shown.out
        assert main(["certs", "rotate", "--leaf", "-f", str(file)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "gke's egress gateway serves Secret istio-egress/gke-cred from" in err and "Nothing was rotated" in err
        assert err.count("does not serve the store's certificates everywhere") == 1  # said once
        assert "--context" not in err  # none was given
        assert {m: store.load(m, slot).serial for m, slot in (("eks", "server"), ("gke", "client"))} == serials  # type: ignore[union-attr]
    finally:
        twin.down()
    # the negative twin: the same twin on the store's Secrets rotates, pushed and checked
    try:
        twin.up()
        capsys.readouterr()
        assert main(["certs", "rotate", "--leaf", "--mesh", "eks", "-f", str(file)]) == 0, capsys.readouterr().err
        assert "would be refused" not in capsys.readouterr().err
        assert store.load("eks", "server").serial != serials["eks"]  # type: ignore[union-attr]
        assert main(["certs", "push", "-f", str(file)]) == 0
        assert "warning" not in capsys.readouterr().err
    finally:
        twin.down()
