"""Two owners: the importer's copy of an export needs no backend (the exporter's business); the exporter's own
export does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.errors import SpecError
from tests.builders import bridge_from
from tests.peer_support import Owners, exchange, one_side, two_owners


def _rendered(side: Path, out: Path) -> dict[str, str]:
    assert main(["render", "-f", str(side), "-o", str(out)]) == 0
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.yaml"))}


def test_the_importers_copy_of_an_export_needs_no_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """offer, accept and admit, then the importer renders the same documents with or without the backend."""
    owners: Owners = two_owners(tmp_path)
    exchange(owners, capsys)
    with_backend = _rendered(owners.importer, tmp_path / "with")
    spec = yaml.safe_load(owners.importer.read_text())
    for ex in spec["spec"]["exports"]:
        del ex["backend"]
    owners.importer.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["lint", "-f", str(owners.importer)]) == 0
    assert _rendered(owners.importer, tmp_path / "without") == with_backend


def test_an_export_from_an_own_mesh_without_backend_is_refused() -> None:
    """The twin of the test above: the exporter's own export must say what its gateway dials."""
    d = one_side("gke")
    del d["spec"]["exports"][0]["backend"]
    with pytest.raises(SpecError) as e:
        bridge_from(d)
    assert "spec.exports[0].backend" in str(e.value)
    assert "export 'lambda' comes from mesh 'eks', which this spec owns, and has no backend" in str(e.value)


def test_a_command_that_needs_a_peers_backend_says_what_to_add() -> None:
    """An importer's command that would need the backend (the local twin's ALB, say) names the export and the fix
    instead of failing on a missing value."""
    d = one_side("eks")
    del d["spec"]["exports"][0]["backend"]
    ex = bridge_from(d).spec.exports[0]
    with pytest.raises(SpecError) as e:
        _ = ex.backend
    assert "export 'lambda' has no backend: it comes from mesh 'eks', another owner's (peer: true)" in str(e.value)
    assert "Fix: add its backend (and backend.local for the local twin)" in str(e.value)
