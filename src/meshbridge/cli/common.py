"""Pieces every command shares: the ``-f/--file`` option, consoles, tables and error output."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from meshbridge.envoy.proxyconfig import Kind, proxy_config_kind
from meshbridge.spec import DEFAULT_FILE, Bridge, load_bridge
from meshbridge.tabwriter import format_table

out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

BridgeFile = Annotated[
    Path,
    typer.Option(
        "-f",
        "--file",
        help="The bridge spec (YAML). Relative paths inside it resolve against its folder.",
        show_default=True,
    ),
]
DEFAULT_BRIDGE = Path(DEFAULT_FILE)
Kubeconfig = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config."),
]

ProxyConfigKind = Annotated[
    Kind,
    typer.Argument(
        parser=proxy_config_kind,
        metavar="KIND",
        help="routes, clusters, listeners or secret (istioctl's singulars and r/c/l/s too).",
    ),
]


class ProxyConfigFormat(StrEnum):
    """``proxy-config -o``: istioctl's table, or Envoy's whole ``/config_dump``."""

    short = "short"
    json = "json"


ProxyConfigOutput = Annotated[
    ProxyConfigFormat,
    typer.Option("-o", "--output", help="short (a table, as istioctl) or json (the whole /config_dump)."),
]


def read_bridge(path: Path) -> Bridge:
    """Load the bridge file; errors propagate as ``SpecError`` and are printed by ``main``."""
    return load_bridge(path)


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned table with an upper-case header, like kubectl's: never wrapped, so it pipes and greps."""
    return format_table([list(columns), *rows]).rstrip("\n")
