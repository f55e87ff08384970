"""The ``meshbridge`` application: command groups are registered here, each lives in its own module.

Importing this module is cheap (standard library only): the command modules, typer and rich are imported
by :func:`build_app`, inside :func:`main`, so that a Ctrl-C at any point of a run (imports included) ends
as one ``interrupted`` line and exit status 130, never a traceback. ``app`` is built on first access.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

EXIT_INTERRUPTED = 130
_built: list[typer.Typer] = []


def _early_interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C after this module is imported and before :func:`main` runs (the console script's import)."""
    os.write(2, b"interrupted\n")
    os._exit(EXIT_INTERRUPTED)


try:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _early_interrupt)
except ValueError:  # imported outside the main thread: signals are not ours to handle
    pass


_terminated_by: list[int] = []


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM or SIGHUP during a command: stop as Ctrl-C does (a ``KeyboardInterrupt``, so every clean-up on
    the way out runs: the demo's twin stopped and its folder with the CA keys removed), exit 128 + signal."""
    _terminated_by.append(signum)
    for s in _TERMINATING:  # a second one (CI's cancel repeats) must not cut the clean-up short
        signal.signal(s, signal.SIG_IGN)
    raise KeyboardInterrupt


_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """During the block, SIGTERM and SIGHUP left at their default (which kills without any clean-up) run
    :func:`_terminate`; restored after (tests call :func:`main` in-process). Outside the main thread, nothing."""
    previous: dict[signal.Signals, Any] = {}
    try:
        for s in _TERMINATING:
            if signal.getsignal(s) is signal.SIG_DFL:
                previous[s] = signal.signal(s, _terminate)
    except ValueError:  # not the main thread: signals are not ours to handle
        pass
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _interrupted() -> int:
    """Ctrl-C: one line on stderr, exit status 130 (SIGTERM, SIGHUP: ``terminated``, 143, 129); a second Ctrl-C
    while finishing is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _terminated_by:
        return _said(f"terminated ({signal.Signals(_terminated_by[0]).name})", 128 + _terminated_by[0])
    return _said("interrupted", EXIT_INTERRUPTED)


def _said(line: str, code: int) -> int:
    """``line`` on stderr (if it can still be written), then ``code``."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return code


def build_app() -> typer.Typer:
    """The typer application with every command group registered (built once)."""
    if _built:
        return _built[0]
    import typer

    from meshbridge import __version__
    from meshbridge.cli import (
        aws_cmd,
        certs_cmd,
        init_cmd,
        kube_cmd,
        lambda_cmd,
        lint_cmd,
        local_cmd,
        peer_cmd,
        render_cmd,
        translate_cmd,
        verify_cmd,
    )

    _never_truncate_option_names()
    app = typer.Typer(
        name="meshbridge",
        help=(
            "Share a service across two independent Istio meshes over gateway-to-gateway mutual TLS.\n\n"
            "One declarative spec (bridge.yaml) drives everything: certificates, the Istio resources of both "
            "meshes, lint, a local twin on real Envoy, verify, and the AWS side. Start with 'meshbridge init'."
        ),
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"meshbridge {__version__}")
            raise typer.Exit()

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """Share a service across two independent Istio meshes over gateway-to-gateway mutual TLS."""

    app.command("init")(init_cmd.init)
    app.add_typer(certs_cmd.app, name="certs")
    app.add_typer(peer_cmd.app, name="peer")
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
    _unwrap_help(app)
    _built.append(app)
    return app


def __getattr__(name: str) -> Any:
    """``from meshbridge.cli.main import app`` builds the application on first use."""
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _never_truncate_option_names() -> None:
    """Keep option names whole in the rich help at any terminal width.

    typer lays the options panel out as a table with four name columns (long, short, ``--no-…`` long and
    short) that rich shrinks with the description, so at 80 columns ``--advertised-port`` became
    ``--advertised-p…``. Here each row's names share one column that never wraps (``--help, -h``, a second
    long name and the ``--no-…`` form each on its own line), the type column is narrow and folds (and empty
    for flags), and the description takes the rest.
    """
    from rich.table import Column, Table
    from rich.text import Text
    from typer import rich_utils

    if getattr(rich_utils, "Table", None) is not Table:  # already done, or a typer that draws it otherwise
        return

    class _OptionsTable(Table):
        def add_row(self, *renderables: Any, **kwargs: Any) -> None:
            first = len(renderables) - 6  # typer's options row: [required] long short no-long no-short type help
            cells = renderables[first : first + 4]
            if first not in (0, 1) or not all(isinstance(c, Text) for c in cells):
                super().add_row(*renderables, **kwargs)
                return
            if not self.columns:
                widths: list[tuple[bool, int | None, int | None]] = [(False, None, None)] * first
                widths += [(True, None, None), (False, 17, None), (False, None, 1)]  # names, type, help
                for i, (no_wrap, max_width, ratio) in enumerate(widths):
                    column = Column(_index=i, highlight=self.highlight, no_wrap=no_wrap, ratio=ratio)
                    column.max_width = max_width
                    self.columns.append(column)
            long, short, no_long, no_short = (c for c in cells if isinstance(c, Text))
            main_name, *aliases = long.split(",") if long.plain else [long]  # typer joins long aliases with ','
            lines = [Text(", ").join(t for t in (main_name, short) if t.plain), *aliases]  # an alias: a line each
            lines += [Text(", ").join(t for t in (no_long, no_short) if t.plain)]
            names = Text("\n").join(line for line in lines if line.plain)
            kind, *rest = renderables[first + 4 :]
            if isinstance(kind, Text) and kind.plain.strip() == "<bool>":
                kind = Text("")  # a flag takes no value: typer's '<bool>' reads as if it did
            super().add_row(*renderables[:first], names, kind, *rest, **kwargs)

    setattr(rich_utils, "Table", _OptionsTable)  # noqa: B010 (typer does not export it)


def _unwrapped(text: Any) -> Any:
    """Help text with each paragraph on one line, so the terminal (not the source) decides where lines break.

    Paragraphs are separated by blank lines; a paragraph with indented lines (an example) is kept as is.
    """
    import inspect

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process and return its exit code (tests call this).

    Exit codes: 0 success; 1 a check, lint or verify ran and found errors; 2 bad input or a failed operation
    (a ``MeshbridgeError`` or a refused file operation, printed as one line without a traceback; usage
    errors too), which for every cluster command (plan, apply, status, delete, verify --context,
    proxy-config, certs … --context) includes a cluster that cannot be reached or read; 130 interrupted
    (Ctrl-C, at any point: one ``interrupted`` line, no traceback).
    """
    try:
        if signal.getsignal(signal.SIGINT) is _early_interrupt:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, KeyboardInterrupt
        _terminated_by.clear()
        with _terminate_as_interrupt():
            return _run(argv)
    except KeyboardInterrupt:
        return _interrupted()


def accepts(words: Sequence[str], option: str) -> bool:
    """Whether ``meshbridge <words>`` (a command, ``certs push``) takes ``option`` (``--context``): what command
    hints may carry of the user's options (:mod:`meshbridge.hints`)."""
    command = _click_command()
    for word in words:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command = sub
    if hasattr(command, "commands"):
        return False  # a group, not a command
    return any(option in p.opts or option in p.secondary_opts for p in command.params)


@functools.cache
def _click_command() -> Any:
    """The click command tree of :func:`build_app` (built once)."""
    import typer.main

    return typer.main.get_command(build_app())


def _run(argv: Sequence[str] | None) -> int:
    from meshbridge.cli.common import error_documents
    from meshbridge.errors import MeshbridgeError
    from meshbridge.gcpause import paused_gc
    from meshbridge.hints import invoked
    from meshbridge.pki.x509 import input_warnings_silenced

    words = list(argv) if argv is not None else sys.argv[1:]
    try:
        # cryptography's warnings about the user's certificates and keys (a serial that is not positive, a DSA
        # key) never reach the terminal: the certs checks say them in meshbridge's words, as findings or errors;
        # the cyclic garbage collector is paused for the whole command (see meshbridge.gcpause); a --json command
        # stopped by an error prints the error document (see meshbridge.cli.common.error_documents)
        with (
            input_warnings_silenced(),
            paused_gc(),
            invoked(argv, accepts),
            error_documents(words, "--json" in words and accepts(words, "--json")),
        ):
            build_app()(args=list(argv) if argv is not None else None, prog_name="meshbridge", standalone_mode=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        # typer turns a Ctrl-C inside a command into a silent exit 130; a command that said something
        # itself raised its own Exit(130) without the KeyboardInterrupt as its cause
        return _interrupted() if code == EXIT_INTERRUPTED and _caused_by_interrupt(e) else code
    except MeshbridgeError as e:
        from rich.markup import escape

        from meshbridge.cli.common import err
        from meshbridge.hints import invoked, with_options

        with invoked(argv, accepts):  # the command's own hints: what its options are, after it ended
            err.print(f"[bold red]error:[/] {escape(with_options(str(e)))}")
        return 2
    except OSError as e:  # a path the command was given or derived that the system refuses
        from rich.markup import escape

        from meshbridge.cli.common import err, os_error_text

        err.print(f"[bold red]error:[/] {escape(os_error_text(e))}")
        return 2
    return 0


def _caused_by_interrupt(e: BaseException) -> bool:
    """Whether ``e`` was raised as the consequence (``raise … from``) of a KeyboardInterrupt."""
    seen: set[int] = set()
    cause: BaseException | None = e
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return False


def run() -> None:
    """Console-script entry point."""
    try:
        code = main()
    except KeyboardInterrupt:  # between two of main's own handlers
        code = _interrupted()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command is over: a Ctrl-C now must not print a traceback
    sys.exit(code)
