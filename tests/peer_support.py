"""Two owners of the seed bridge, each in a folder of their own (builders for the ``meshbridge peer`` tests).

The exporter's folder holds the seed spec with ``gke`` marked ``peer: true``; the importer's, with ``eks``
marked so. Both issue their own certificates; :func:`exchange` runs offer, accept and admit as each owner
types them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.main import main
from tests.builders import seed_dict


@dataclass(frozen=True)
class Owners:
    """The two folders, their bridge files and the exchanged files' paths."""

    root: Path

    @property
    def exporter(self) -> Path:
        return self.root / "eks-owner" / "bridge.yaml"

    @property
    def importer(self) -> Path:
        return self.root / "gke-owner" / "bridge.yaml"

    @property
    def offer(self) -> Path:
        return self.root / "offer.yaml"

    @property
    def reply(self) -> Path:
        return self.root / "reply.yaml"

    def state(self, side: Path) -> Path:
        return side.parent / ".meshbridge"


def one_side(peer: str) -> dict[str, object]:
    """The seed bridge as the owner of the other mesh keeps it: ``peer`` marked ``peer: true``, no AWS section."""
    d = seed_dict()
    d["spec"]["meshes"][peer]["peer"] = True
    del d["spec"]["aws"]
    return d


def two_owners(tmp: Path) -> Owners:
    """Both folders written, each with its own certificates issued (``certs issue`` in each)."""
    owners = Owners(tmp)
    for file, peer in ((owners.exporter, "gke"), (owners.importer, "eks")):
        file.parent.mkdir(parents=True)
        file.write_text(yaml.safe_dump(one_side(peer), sort_keys=False))
        assert main(["certs", "issue", "-f", str(file)]) == 0
    return owners


def fingerprint_in(text: str, mesh: str) -> str:
    """The fingerprint a command printed for ``mesh``'s CA."""
    found = re.search(rf"fingerprint of {mesh}'s CA: (sha256:[0-9a-f]{{64}})", text)
    assert found, text
    return found.group(1)


def offer(owners: Owners, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    """The exporter's ``peer offer``; its CA's fingerprint."""
    assert main(["peer", "offer", "-f", str(owners.exporter), "-o", str(owners.offer), *extra]) == 0
    return fingerprint_in(capsys.readouterr().out, "eks")


def accept(owners: Owners, capsys: pytest.CaptureFixture[str], pinned: str) -> str:
    """The importer's ``peer accept``; its CA's fingerprint."""
    args = ["peer", "accept", str(owners.offer), "--fingerprint", pinned, "-f", str(owners.importer)]
    assert main([*args, "-o", str(owners.reply)]) == 0
    return fingerprint_in(capsys.readouterr().out, "gke")


def exchange(owners: Owners, capsys: pytest.CaptureFixture[str]) -> None:
    """offer, accept, admit: each side then trusts the other's CA."""
    pinned = accept(owners, capsys, offer(owners, capsys))
    assert main(["peer", "admit", str(owners.reply), "--fingerprint", pinned, "-f", str(owners.exporter)]) == 0
    capsys.readouterr()
