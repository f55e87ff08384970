"""``meshbridge init``: write the seed article's scenario as a starting bridge file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meshbridge.cli.common import SEED_FILES, JsonDocument, out, print_json, seed_text
from meshbridge.errors import SpecError


def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder to write bridge.yaml and handler.py into.", show_default=True)
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")] = False,
    as_json: JsonDocument = False,
) -> None:
    """Write the seed scenario: bridge.yaml (EKS exports lambda.external to GKE) and the Lambda handler.py.

    The bridge is the article's system as one spec: an AWS Lambda behind a private ALB, exported through
    the EKS mesh's ingress gateway with mutual TLS, imported as plain http://lambda.external by the GKE mesh.
    Edit the placeholder host names, then run 'meshbridge certs issue' and 'meshbridge local up'.

    --json prints {"wrote": the files, "next": the command}; an error, {"error": {"message", "exit_code": 2}}.
    """
    wrote = _write_seed(directory, force)
    go = "" if directory.resolve() == Path.cwd().resolve() else f"cd {directory} && "
    if as_json:
        print_json({"wrote": [str(t) for t in wrote], "next": f"{go}meshbridge local up"})
        return
    for target in wrote:
        out.print(f"wrote {target}")
    out.print(f"next: {go}meshbridge local up   (issues the certificates, starts both meshes on this machine)")


def _write_seed(directory: Path, force: bool) -> list[Path]:
    """Write the seed files into ``directory`` (made if missing) and return their paths.

    Raises:
        SpecError: ``directory`` is a file, or a seed file exists there and ``force`` is not set.
    """
    if directory.exists() and not directory.is_dir():
        raise SpecError(
            f"{directory} is a file: init writes bridge.yaml and handler.py into a folder. Fix: name a folder "
            "(e.g. 'meshbridge init' for this one, or 'meshbridge init mybridge/')"
        )
    directory.mkdir(parents=True, exist_ok=True)
    targets = [directory / name for name in SEED_FILES]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise SpecError(f"{', '.join(existing)} already {verb}; nothing was written. Fix: pass --force to overwrite")
    for name, target in zip(SEED_FILES, targets, strict=True):
        target.write_text(seed_text(name), encoding="utf-8")
    return targets
