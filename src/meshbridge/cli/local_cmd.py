"""``meshbridge local``: the whole path on this machine — both meshes on real Envoy, the ALB, the Lambda."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from meshbridge.cli.certs_cmd import StateDir
from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    BridgeFile,
    ProxyConfigFormat,
    ProxyConfigKind,
    ProxyConfigOutput,
    err,
    out,
    read_bridge,
    table,
)
from meshbridge.envoy.proxyconfig import format_proxy_config
from meshbridge.errors import LocalError
from meshbridge.local.curl import CurlError, curl
from meshbridge.local.twin import (
    ComponentStatus,
    LocalTwin,
    StartedTwin,
    StartInterrupted,
    TwinState,
    export_url,
    shown,
    started_twins,
)
from meshbridge.pki import default_state_dir

app = typer.Typer(
    help=(
        "The local twin: the article's whole path on this machine, the embedded default that needs no cloud. "
        "Each mesh's gateways and the importer's app sidecar run as real Envoy processes configured the way "
        "istiod would, the backend is an emulated internal ALB in front of a real awslambdaric Lambda runtime, "
        "and a DNS server per mesh plays the clouds' DNS."
    ),
    no_args_is_help=True,
)


Manifests = Annotated[
    list[str] | None,
    typer.Option(
        "--manifests",
        help="MESH=PATH: run your own Istio YAML (file or folder) for that mesh instead of the rendered documents; "
        "${VAR} references are expanded from the environment. Repeatable.",
    ),
]


def again(file: Path, state_dir: Path | None) -> str:
    """The options that chose the twin, as the user gave them, for every hint to repeat: ``-f FILE`` unless
    it is the default, ``--state-dir DIR`` when given (``""`` when neither)."""
    words = ["-f", str(file)] if file != DEFAULT_BRIDGE else []
    words += ["--state-dir", str(state_dir)] if state_dir is not None else []
    return "".join(f" {shlex.quote(w)}" for w in words)


def twin_for(file: Path, state_dir: Path | None) -> LocalTwin:
    """The local twin of the bridge at ``file``; warns on stderr when the bridge file or the manifests changed
    since the running twin's 'local up'."""
    twin = LocalTwin(read_bridge(file), file, state_dir or default_state_dir(file), again(file, state_dir))
    warn_changed(twin)
    return twin


def twin_state(file: Path, state_dir: Path | None) -> TwinState:
    """The local twin recorded in the state folder (``--state-dir``, else ``.meshbridge/`` beside ``file``),
    without reading ``file``: stopping or inspecting a twin needs only what 'local up' recorded."""
    return TwinState(state_dir or default_state_dir(file), again(file, state_dir))


def never_started(twin: TwinState, file: Path, state_dir: Path | None, command: str) -> LocalError:
    """The error for a state folder where 'local up' never ran: the folder looked in, why that one, and the
    twins started below the working folder (the ``-f`` the user most likely forgot), else how to start one.
    ``command`` is the one being run (``local curl``)."""
    why = (
        "the --state-dir given"
        if state_dir is not None
        else f"the one beside {file}: a twin's state folder is beside its bridge file (-f), not where commands run"
    )
    problem = f"{twin.never_started()}, {why}"
    others = [t for t in started_twins(Path.cwd()) if t.state_dir.resolve() != twin.state_dir.resolve()]
    if not others:
        return LocalError(
            f"{problem}. Fix: give the -f (or --state-dir) that 'local up' was given, or start the twin: "
            f"{twin.command('local up')}"
        )
    listed = ", ".join(f"{_option_for(t)} ({'running' if t.running else 'stopped'})" for t in others[:3])
    return LocalError(
        f"{problem}. Twins started below this folder: {listed}. "
        f"Fix: add {_option_for(others[0])} (or the option of the one you mean) to 'meshbridge {command}'"
    )


def _option_for(twin: StartedTwin) -> str:
    """``-f BRIDGE`` when the twin's state folder is the default one of its bridge file, else ``--state-dir``."""
    if twin.bridge_file is not None and default_state_dir(twin.bridge_file) == twin.state_dir.resolve():
        return f"-f {shlex.quote(shown(twin.bridge_file))}"
    return f"--state-dir {shlex.quote(shown(twin.state_dir))}"


def warn_changed(twin: TwinState) -> None:
    """Say on stderr which inputs of the running twin changed since 'local up' (it still runs the old ones)."""
    for line in twin.changed_inputs():
        err.print(f"warning: {line}", markup=False, highlight=False)


def running_twin(file: Path, state_dir: Path | None, command: str) -> TwinState:
    """The twin recorded in the state folder, if it runs (with the warnings of :func:`warn_changed`).

    Raises:
        LocalError: it was never started with this state folder, or it is not running (and how to start it
            again).
    """
    twin = twin_state(file, state_dir)
    if not twin.started():
        raise never_started(twin, file, state_dir, command)
    reason = twin.not_running()
    if reason is not None:
        raise LocalError(reason)
    warn_changed(twin)
    return twin


def parse_manifests(values: list[str] | None) -> dict[str, list[Path]]:
    """``["eks=a.yaml", "eks=b/"]`` → ``{"eks": [a.yaml, b/]}``; a value without ``=`` is an error."""
    out: dict[str, list[Path]] = {}
    for v in values or []:
        mesh, sep, path = v.partition("=")
        if not sep or not mesh or not path:
            raise LocalError(f"--manifests {v!r}: write MESH=PATH, e.g. --manifests eks=examples/article/eks.yaml")
        out.setdefault(mesh, []).append(Path(path))
    return out


class TranslatorChoice(StrEnum):
    """``local up --translator``: whose Envoy configuration the twin runs."""

    meshbridge = "meshbridge"
    istiod = "istiod"


@app.command("up")
def up(
    file: BridgeFile = DEFAULT_BRIDGE,
    manifests: Manifests = None,
    state_dir: StateDir = None,
    translator: Annotated[
        TranslatorChoice,
        typer.Option(
            "--translator",
            help="Whose Envoy configuration the proxies run: meshbridge's translation, or istiod's own "
            "(Istio's code, built with Go; docs/fidelity.md).",
        ),
    ] = TranslatorChoice.meshbridge,
) -> None:
    """Start every component and wait until all are ready; print the topology.

    Certificates missing from the state folder are issued first. With --manifests, that mesh runs your own
    Istio YAML (the article's, for instance); its gateway Secrets come from meshbridge's PKI when the
    manifests have none, and the command says so. With --translator istiod the Envoys run exactly what
    istiod would push (delivered from files, without the istio-proxy-only filters), so a user with Go can
    check a configuration against Istio itself.
    """
    twin = twin_for(file, state_dir)
    try:
        report = twin.up(
            parse_manifests(manifests),
            progress=lambda line: err.print(line, markup=False, highlight=False),
            translator="istiod" if translator is TranslatorChoice.istiod else "meshbridge",
        )
    except StartInterrupted as e:
        if e.left:
            err.print(
                f"interrupted, but {', '.join(e.left)} still run(s). Fix: {twin.command('local down')}",
                markup=False,
                highlight=False,
            )
        elif e.stopped:
            err.print(f"interrupted: stopped the {e.stopped} process(es) 'local up' had started; none is left")
        else:
            err.print("interrupted before any process was started; nothing runs")
        raise typer.Exit(130) from None
    for notice in report.notices:
        err.print(f"note: {notice}", markup=False, highlight=False)
    out.print(_status_table(twin))
    exports = twin.bridge.spec.exports
    served = [ex for ex in exports if ex.backend.local is not None]  # the others answer 503 (noted above)
    try_ = twin.command(f"local curl -i {export_url((served or exports)[0])}")
    if not served:
        try_ += "   (503: no export has a backend.local, see the note above)"
    out.print(f"up in {report.seconds:.2f} s. Try: {try_}")


@app.command("down")
def down(file: BridgeFile = DEFAULT_BRIDGE, state_dir: StateDir = None) -> None:
    """Stop every component, even if 'local up' or the supervisor was killed; leave no process behind.

    Needs only the state folder (the pids 'local up' recorded there): the bridge file may have moved or
    changed. The folder is --state-dir, else .meshbridge/ beside where the bridge file is (or was).
    """
    twin = twin_state(file, state_dir)
    stopped = twin.down()
    if stopped:
        out.print(f"stopped {len(stopped)} process(es): {', '.join(stopped)}")
        return
    out.print(f"stopped 0 process(es) (nothing was running with the state folder {twin.state_dir})")
    if not twin.started():  # the twin the user means may run elsewhere
        running = [t for t in started_twins(Path.cwd()) if t.running]
        if running:
            err.print(
                f"note: {twin.never_started()}; twins still run below this folder: "
                + ", ".join(_option_for(t) for t in running[:3])
                + f". Fix: meshbridge local down {_option_for(running[0])}",
                markup=False,
                highlight=False,
            )


@app.command("status")
def status(
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the components as JSON (every field).")] = False,
    wide: Annotated[bool, typer.Option("--wide", "-w", help="Add the MESH, PID, LAST EXIT and LOG columns.")] = False,
) -> None:
    """A table of components: kind, address, ports, ready, restarts.

    PORTS are what each binds on its address: '443→8443' is a port the meshes know as 443 (a load balancer's,
    or below 1024 when not root) bound here as 8443; 'admin' is an Envoy's admin interface. --json prints
    every field, each port with its address.

    Exits 1 when any is not ready, or when the twin is not running (its supervisor stopped or gone: then it
    says so and how to start it again, instead of a table; --json prints running false and the problem); 2
    when it was never started with this state folder (the error names the folder, and the twins started
    below the working folder). Reads only the state folder, and warns when the bridge file or the manifests
    changed since 'local up'.
    """
    twin = twin_state(file, state_dir)
    if not twin.started():
        raise never_started(twin, file, state_dir, "local status")
    reason = twin.not_running()
    if reason is not None:
        err.print(f"[bold red]error:[/] {escape(reason)}")
        if as_json:
            out.print(json.dumps(_status_json(twin, reason), indent=2))
        raise typer.Exit(1)
    warn_changed(twin)
    components = twin.status()
    out.print(json.dumps(_status_json(twin, None), indent=2) if as_json else _status_table(twin, wide=wide))
    if not all(r.ready for r in components):
        raise typer.Exit(1)


def _status_json(twin: TwinState, problem: str | None) -> dict[str, object]:
    return {
        "state_dir": str(twin.state_dir),
        "running": problem is None,
        **({"problem": problem} if problem is not None else {}),
        "components": [
            {
                "name": s.name,
                "mesh": s.mesh or None,
                "kind": s.kind,
                "address": s.address,
                "ports": [p.to_dict() for p in s.ports],
                "pid": s.pid,
                "ready": s.ready,
                "restarts": s.restarts,
                "last_exit": s.last_exit,
                "log": s.log,
            }
            for s in twin.status()
        ],
    }


def _status_table(twin: TwinState, wide: bool = False) -> str:
    """The components: within 100 columns for the seed's and the article's topologies, in any /24 and as any
    user (--wide adds MESH, PID, LAST EXIT and LOG)."""
    rows = []
    for s in twin.status():
        row = [s.name, s.kind, _addresses(s), _ports(s), "yes" if s.ready else "no", str(s.restarts)]
        if wide:
            row[1:1] = [s.mesh or "-"]
            row += [str(s.pid or "-"), "-" if s.last_exit is None else _exit(s.last_exit), s.log]
        rows.append(row)
    columns = ["COMPONENT", "KIND", "ADDRESS", "PORTS", "READY", "RESTARTS"]
    if wide:
        columns[1:1] = ["MESH"]
        columns += ["PID", "LAST EXIT", "LOG"]
    return table(columns, rows)


def _addresses(s: ComponentStatus) -> str:
    """The addresses a component binds, the later ones shortened to what differs from the first's /24
    (``127.98.35.53, .54``: the DNS server of each mesh)."""
    addresses = list(dict.fromkeys(p.address for p in s.ports)) or [s.address]
    first, *rest = addresses
    prefix = first.rsplit(".", 1)[0]
    return ", ".join([first, *(f".{a.rsplit('.', 1)[1]}" if a.rsplit(".", 1)[0] == prefix else a for a in rest)])


def _ports(s: ComponentStatus) -> str:
    """``443→8443, admin 15000``: each port bound, after the port the meshes know it as when that differs."""
    texts = [
        f"admin {p.port}"
        if p.name == "admin"
        else str(p.port)
        if p.advertised == p.port
        else f"{p.advertised}→{p.port}"
        for p in s.ports
    ]
    return ", ".join(dict.fromkeys(texts)) or "-"


def _exit(code: int) -> str:
    """An exit status as a person reads it: ``1``, or ``SIGKILL`` for a process killed by a signal."""
    if code < 0:
        import signal

        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return str(code)


@app.command("logs")
def logs(
    component: Annotated[
        str | None,
        typer.Argument(help="A component from 'local status' (e.g. eks/istio-ingressgateway); none: list them."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-F", help="Keep printing new lines until Ctrl-C.")] = False,
    access: Annotated[
        bool, typer.Option("--access", help="The Envoy access log (with response flags) instead.")
    ] = False,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
) -> None:
    """Print a component's log: Envoy's own log, or with --access its access log (response flags, SNI, route).

    Without a component, list the components and their logs, and how to pick one. Only the proxies (Envoy)
    have an access log; the ALB's own log has one JSON line per request. Works from the state folder alone,
    also after the twin stopped.
    """
    twin = twin_state(file, state_dir)
    components = twin.status()
    if not twin.started():
        raise never_started(twin, file, state_dir, "local logs")
    if not components:
        raise LocalError(
            f"the last 'local up' in {twin.state_dir} stopped before it started any component, so there is no "
            f"log. Fix: {twin.up_command()}"
        )
    example = next((s.name for s in components if s.kind == "envoy"), components[0].name)
    if component is None:
        out.print(_logs_table(twin, components))
        out.print(f"\nlogs are under {twin.root}")
        out.print(f"pick one: {twin.command('local logs COMPONENT')}   (-F follows it; --access: a proxy's requests)")
        out.print(f"e.g.:     {twin.command(f'local logs {example} --access')}")
        return
    matches = [s for s in components if component in (s.name, s.name.split("/")[-1])]
    if len(matches) != 1:
        names = ", ".join(s.name for s in matches or components)
        problem = f"{component!r} names {len(matches)} components" if matches else f"{component!r} is not a component"
        raise LocalError(
            f"{problem} of the local twin in {twin.state_dir}; components: {names}. "
            f"Fix: name one, e.g. {twin.command(f'local logs {(matches or components)[0].name}')}"
        )
    found = matches[0]
    path = Path(found.log)
    if access and found.kind != "envoy":
        what = {"alb": "an ALB (with its Lambda)", "dns": "the DNS server"}.get(found.kind, f"a {found.kind}")
        per_request = " (one JSON line per request: status, error reason, cold start)" if found.kind == "alb" else ""
        raise LocalError(
            f"{found.name} is {what}: only proxies (Envoy) have access logs. "
            f"Fix: {twin.command(f'local logs {found.name}')} (without --access) prints its own log{per_request}"
        )
    if access:
        path = path.with_name("access.log")
    if not path.exists():
        raise LocalError(f"{path} does not exist yet" + (" (no request has reached this proxy)" if access else ""))
    with path.open("rb") as fh:
        sys.stdout.buffer.write(fh.read())
        sys.stdout.flush()
        while follow:
            chunk = fh.read()
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            else:
                time.sleep(0.2)


def _logs_table(twin: TwinState, components: list[ComponentStatus]) -> str:
    """COMPONENT, KIND, LOG (relative to the state folder's local/) and what --access prints (proxies only:
    the access.log beside the log)."""
    rows = []
    for s in components:
        log = Path(s.log)
        with contextlib.suppress(ValueError):
            log = log.relative_to(twin.root)
        rows.append((s.name, s.kind, str(log), "access.log" if s.kind == "envoy" else "-"))
    return table(["COMPONENT", "KIND", "LOG", "WITH --access"], rows)


@app.command("curl")
def curl_cmd(
    url: Annotated[str, typer.Argument(help="e.g. http://lambda.external/hello-world")],
    header: Annotated[list[str] | None, typer.Option("-H", "--header", help="'Name: value'; repeatable.")] = None,
    method: Annotated[
        str | None, typer.Option("-X", "--request", help="Method (default GET, or POST with -d).")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "-d",
            "--data",
            help="Request body; @FILE reads it from FILE (@- from stdin), without its line breaks, as curl -d does.",
        ),
    ] = None,
    include: Annotated[bool, typer.Option("-i", "--include", help="Print the status line and headers.")] = False,
    silent: Annotated[
        bool,
        typer.Option("-s", "--silent", help="As in curl; there is no progress meter to hide."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Print DNS, the sidecar hop and both headers.")
    ] = False,
    from_app: Annotated[str | None, typer.Option("--from", help="The app to send from (default: the first).")] = None,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
) -> None:
    """Send a request from an importer's app through its sidecar, like 'kubectl exec deploy/sleep -- curl'.

    The app speaks plain HTTP; its sidecar routes to the egress gateway, which originates the mutual TLS to
    the exporter's ingress gateway, which forwards to the ALB and the Lambda. Exits with curl's codes:
    3 malformed URL, 6 could not resolve host, 7 failed to connect, 8 weird server reply, 28 timed out.
    """
    del silent  # accepted so that 'curl -is' habits work
    twin = twin_state(file, state_dir)
    if not twin.started():
        raise never_started(twin, file, state_dir, "local curl")
    reason = twin.not_running()
    if reason is not None:
        err.print(f"curl: (7) Failed to connect: {reason}", markup=False, highlight=False)
        raise typer.Exit(7)
    warn_changed(twin)
    view = twin.app_view(from_app)
    headers = []
    for h in header or []:
        name, sep, value = h.partition(":")
        if not sep:
            raise LocalError(f"-H {h!r}: write 'Name: value'")
        headers.append((name.strip(), value.strip()))
    body = _body(data)
    try:
        r = curl(view, url, method=method or ("POST" if body is not None else "GET"), headers=headers, data=body)
    except CurlError as e:
        for line in e.trace if verbose else []:
            err.print(line, markup=False, highlight=False)
        err.print(str(e), markup=False, highlight=False)
        raise typer.Exit(e.code) from None
    if verbose:
        for line in r.trace:
            err.print(line, markup=False, highlight=False)
    if include or verbose:
        sys.stdout.write(f"{r.http_version} {r.status} {r.reason}\n")
        sys.stdout.write("".join(f"{k}: {v}\n" for k, v in r.headers) + "\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(r.body)
    sys.stdout.flush()


def _body(data: str | None) -> bytes | None:
    """curl's ``-d``: the text itself, or with ``@FILE`` the file's bytes without CR and LF (``@-``: stdin).

    Raises:
        LocalError: the file cannot be read.
    """
    if data is None or not data.startswith("@"):
        return data.encode() if data is not None else None
    name = data[1:]
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise LocalError(f"-d {data}: cannot read {name} ({reason}). Fix: name a readable file, or @- for stdin") from e
    return raw.replace(b"\r", b"").replace(b"\n", b"")


@app.command("proxy-config")
def proxy_config(
    kind: ProxyConfigKind,
    proxy: Annotated[
        str, typer.Argument(help="A proxy: eks/istio-ingressgateway, gke/istio-egressgateway, gke/sleep.")
    ],
    output: ProxyConfigOutput = ProxyConfigFormat.short,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
) -> None:
    """istioctl proxy-config for a local proxy: the same columns, read from its Envoy /config_dump."""
    dump = running_twin(file, state_dir, "local proxy-config").config_dump(proxy)
    if output is ProxyConfigFormat.json:
        out.print(json.dumps(dump, indent=2))
        return
    sys.stdout.write(format_proxy_config(kind, dump))
