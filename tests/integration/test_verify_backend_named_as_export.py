"""A backend named as the export (``backend.host`` is the exported host, as when a VPC's internal name is exported
under the same name): PrivateALBUnreachable judges the backend's own address, since the name resolves on the
importer's side to the import by design."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.spec import load_bridge
from meshbridge.verify.local import verify_local
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration


def test_a_backend_named_as_the_export_is_judged_on_its_address(tmp_path: Path) -> None:
    file, _ = seed_folder(tmp_path)
    text = file.read_text()
    assert "host: alb.internal.example.com" in text
    file.write_text(text.replace("host: alb.internal.example.com", "host: lambda.external"))
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up()
        found = {c.check: c for c in verify_local(twin)}
        private = found["PrivateALBUnreachable"]
        assert (private.status, private.reason) == ("True", "BackendAddressNotReached"), private
        alb = twin.plan()["albs"][0]["address"]
        assert f"the private backend's own address {alb} is neither" in private.message
        assert found["AppReachesExport"].status == "True"
    finally:
        twin.down()


def test_negative_twin_a_backend_of_its_own_name_is_judged_on_its_name(tmp_path: Path) -> None:
    file, bridge = seed_folder(tmp_path)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up()
        private = next(c for c in verify_local(twin) if c.check == "PrivateALBUnreachable")
        assert (private.status, private.reason) == ("True", "NoDNSNoRoute"), private
    finally:
        twin.down()
