"""The ``meshbridge`` application: command groups are registered here, each lives in its own module."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape

from meshbridge import __version__
from meshbridge.cli import (
    aws_cmd,
    certs_cmd,
    init_cmd,
    kube_cmd,
    lambda_cmd,
    lint_cmd,
    local_cmd,
    render_cmd,
    translate_cmd,
    verify_cmd,
)
from meshbridge.cli.common import err
from meshbridge.errors import MeshbridgeError

app = typer.Typer(
    name="meshbridge",
    help=(
        "Share a service across two independent Istio meshes over gateway-to-gateway mutual TLS.\n\n"
        "One declarative spec (bridge.yaml) drives everything: certificates, the Istio resources of both "
        "meshes, lint, a local twin on real Envoy, verify, and the AWS side. Start with 'meshbridge init'."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meshbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Share a service across two independent Istio meshes over gateway-to-gateway mutual TLS."""


app.command("init")(init_cmd.init)
app.add_typer(certs_cmd.app, name="certs")
app.command("render")(render_cmd.render)
app.command("translate")(translate_cmd.translate)
app.add_typer(local_cmd.app, name="local")
app.command("verify")(verify_cmd.verify)
app.command("demo")(verify_cmd.demo)
app.command("plan")(kube_cmd.plan)
app.command("apply")(kube_cmd.apply)
app.command("delete")(kube_cmd.delete)
app.command("status")(kube_cmd.status)
app.command("proxy-config")(kube_cmd.proxy_config)
app.add_typer(aws_cmd.app, name="aws")
app.add_typer(lambda_cmd.app, name="lambda")
app.command("lint")(lint_cmd.lint)


def _unwrapped(text: Any) -> Any:
    """Help text with each paragraph on one line, so the terminal (not the source) decides where lines break.

    Paragraphs are separated by blank lines; a paragraph with indented lines (an example) is kept as is.
    """
    if not isinstance(text, str) or not text:
        return text  # unset (typer's placeholders included): nothing to rewrap
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p if any(line.startswith((" ", "\t")) for line in p.splitlines()) else " ".join(p.split("\n"))
        for p in paragraphs
    )


def _unwrap_help(typer_app: typer.Typer) -> None:
    """Apply :func:`_unwrapped` to every command's and group's help, recursively."""
    typer_app.info.help = _unwrapped(typer_app.info.help)
    for command in typer_app.registered_commands:
        if command.callback is not None:
            command.callback.__doc__ = _unwrapped(command.callback.__doc__)
        command.help = _unwrapped(command.help)
    for group in typer_app.registered_groups:
        group.help = _unwrapped(group.help)
        if group.typer_instance is not None:
            _unwrap_help(group.typer_instance)


_unwrap_help(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process and return its exit code (tests call this).

    Exit codes: 0 success; 1 a check, lint or verify found errors; 2 bad input or a failed operation
    (a ``MeshbridgeError``, printed without a traceback; usage errors too); 130 interrupted.
    """
    try:
        app(args=list(argv) if argv is not None else None, prog_name="meshbridge", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except MeshbridgeError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
