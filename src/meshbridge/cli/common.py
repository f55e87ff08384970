"""Pieces every command shares: the ``-f/--file`` option, consoles, tables and error output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

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

T = TypeVar("T")


def _parsed_by(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A typer parser from a function that raises ``ValueError``: the message is shown as it is (typer would
    prefix pydantic's 'Value error, ')."""

    def parser(value: str) -> T:
        try:
            return parse(value)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None

    return parser


ProxyConfigKind = Annotated[
    Kind,
    typer.Argument(
        parser=_parsed_by(proxy_config_kind),
        metavar="KIND",
        help="routes, clusters, listeners or secret (istioctl's singulars and r/c/l/s too).",
    ),
]


class ProxyConfigFormat(StrEnum):
    """``proxy-config -o``: istioctl's table, or Envoy's whole ``/config_dump``."""

    short = "short"
    json = "json"


def _output_format(value: str) -> ProxyConfigFormat:
    try:
        return ProxyConfigFormat(value.lower())
    except ValueError:
        raise ValueError(f"{value!r} is not an output format; use short or json") from None


ProxyConfigOutput = Annotated[
    ProxyConfigFormat,
    typer.Option(
        "-o",
        "--output",
        parser=_parsed_by(_output_format),
        metavar="FORMAT",
        help="short (a table, as istioctl) or json (the whole /config_dump).",
    ),
]


def read_bridge(path: Path) -> Bridge:
    """Load the bridge file; errors propagate as ``SpecError`` and are printed by ``main``."""
    return load_bridge(path)


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned table with an upper-case header, like kubectl's: never wrapped, so it pipes and greps."""
    return format_table([list(columns), *rows]).rstrip("\n")
