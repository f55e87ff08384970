"""``meshbridge local``: the whole path on this machine — both meshes on real Envoy, the ALB, the Lambda."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.markup import escape

from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    BridgeFile,
    JsonDocument,
    Manifests,
    ProxyConfigFormat,
    ProxyConfigKind,
    ProxyConfigOutput,
    StateDir,
    again,
    err,
    out,
    parse_cert,
    parse_headers,
    parse_manifests,
    print_json,
    read_bridge,
    table,
    twin_for,
    warn_changed,
)
from meshbridge.envoy.proxyconfig import format_proxy_config
from meshbridge.errors import LocalError, MeshbridgeError
from meshbridge.istio.files import MountedFile
from meshbridge.local.alb_log import AlbLogs, readable
from meshbridge.local.curl import MAX_REDIRS, AppView, CurlError, CurlResult, curl, follow, routed_ports
from meshbridge.local.twin import (
    NO_ACCESS_LOG,
    ComponentStatus,
    LocalTwin,
    StartedTwin,
    StartInterrupted,
    TwinState,
    UpReport,
    export_url,
    shown,
    started_twins,
)
from meshbridge.local.writeout import Transfer, write_out
from meshbridge.pki import default_state_dir
from meshbridge.spec.models import Export
from meshbridge.tabwriter import TERMINAL_WIDTH

app = typer.Typer(
    help=(
        "The local twin: the article's whole path on this machine, the embedded default that needs no cloud. "
        "Each mesh's gateways and the importer's app sidecar run as real Envoy processes configured the way "
        "istiod would, the backend is an emulated internal ALB in front of a real awslambdaric Lambda runtime, "
        "and a DNS server per mesh plays the clouds' DNS."
    ),
    no_args_is_help=True,
)


def twin_state(file: Path, state_dir: Path | None) -> TwinState:
    """The local twin recorded in the state folder (``--state-dir``, else ``.meshbridge/`` beside ``file``),
    without reading ``file``: stopping or inspecting a twin needs only what 'local up' recorded."""
    return TwinState(state_dir or default_state_dir(file), again(file, state_dir))


def never_started(twin: TwinState, file: Path, state_dir: Path | None, command: str) -> LocalError:
    """The error for a state folder where 'local up' never ran: the folder looked in, why that one, and the
    twins started below the working folder (the ``-f`` the user most likely forgot), else how to start one.
    ``command`` is the one being run (``local curl``)."""
    flag = bridge_flag(command)
    why = (
        "the --state-dir given"
        if state_dir is not None
        else f"the one beside {file}: a twin's state folder is beside its bridge file ({flag}), not where commands run"
    )
    problem = f"{twin.never_started()}, {why}"
    others = [t for t in started_twins(Path.cwd()) if t.state_dir.resolve() != twin.state_dir.resolve()]
    if not others:
        return LocalError(
            f"{problem}. Fix: give the {flag} (or --state-dir) that 'local up' was given, or start the twin: "
            f"{twin.command('local up')}"
        )
    # every running one first (the one the user means is likely among them), then stopped ones to make three
    others.sort(key=lambda t: not t.running)
    named = others[: max(3, sum(t.running for t in others))]
    listed = ", ".join(f"{_option_for(t, flag)} ({'running' if t.running else 'stopped'})" for t in named)
    if len(others) > len(named):
        listed += f" and {len(others) - len(named)} more, stopped"
    return LocalError(
        f"{problem}. Twins started below this folder: {listed}. "
        f"Fix: add {_option_for(others[0], flag)} (or the option of the one you mean) to 'meshbridge {command}'"
    )


def bridge_flag(command: str) -> str:
    """The option that names the bridge file in ``command``: ``-f``, but ``--bridge`` in 'local curl' (whose
    ``-f`` is curl's ``--fail``)."""
    return "--bridge" if command.startswith("local curl") else "-f"


def _option_for(twin: StartedTwin, flag: str = "-f") -> str:
    """``-f BRIDGE`` (or ``flag BRIDGE``) when the twin's state folder is the default one of its bridge file,
    else ``--state-dir``."""
    if twin.bridge_file is not None and default_state_dir(twin.bridge_file) == twin.state_dir.resolve():
        return f"{flag} {shlex.quote(shown(twin.bridge_file))}"
    return f"--state-dir {shlex.quote(shown(twin.state_dir))}"


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


class TranslatorChoice(StrEnum):
    """``local up --translator``: whose Envoy configuration the twin runs."""

    meshbridge = "meshbridge"
    istiod = "istiod"


Translator = Annotated[
    TranslatorChoice,
    typer.Option(
        "--translator",
        help="Whose Envoy configuration the proxies run: meshbridge's translation, or istiod's own "
        "(Istio's code, built with Go; docs/fidelity.md).",
    ),
]
CertFiles = Annotated[
    list[str] | None,
    typer.Option(
        "--cert",
        metavar="PATH=FILE",
        help="\\[MESH:]PATH=FILE: a certificate, key, CA or CRL file that a Gateway or DestinationRule of "
        "--manifests names by its path in the pod (serverCertificate, clientCertificate, privateKey, "
        "caCertificates, caCrl), mounted where the twin's Envoys read it; MESH when several meshes name the "
        "path. Without it, 'local up' refuses to start a proxy that reads such a file. Repeatable.",
    ),
]


class ControlPlaneChoice(StrEnum):
    """``local up --control-plane``: what configures the twin's Envoys."""

    files = "files"
    istiod = "istiod"


ControlPlane = Annotated[
    ControlPlaneChoice,
    typer.Option(
        "--control-plane",
        help="files (the default): the twin writes each Envoy's configuration and serves its secrets from files; "
        "it needs nothing but this repository. istiod: the real control plane per mesh: a kube-apiserver and etcd "
        "(tools/kube), the bridge applied to it as 'meshbridge apply' does, and upstream istiod (tools/istiod) "
        "feeding each gateway's and the app's pilot-agent and Envoy over xDS and SDS; needs Go or cached builds of "
        "tools/kube and tools/istiod ('make kube istiod'), and root; prints the kubeconfig for 'meshbridge status "
        "--context' (docs/fidelity.md).",
    ),
]
AccessLog = Annotated[
    bool,
    typer.Option(
        "--access-log/--no-access-log",
        help="Each Envoy writes an access log with response flags, as with Istio's meshConfig.accessLogFile (the "
        "demo profile): 'local logs --access' and verify's explanations read it. --no-access-log: none, as "
        "Istio's default profile (what the benchmarks measure). On --control-plane istiod the proxies write none.",
    ),
]
UpJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the started components as 'local status --json' does (notes on stderr), with 'try' (the "
        "curl to run) or, when the path check predicts a stop, 'try': null and 'stop'.",
    ),
]


@app.command("up")
def up(
    file: BridgeFile = DEFAULT_BRIDGE,
    manifests: Manifests = None,
    state_dir: StateDir = None,
    translator: Translator = TranslatorChoice.meshbridge,
    cert: CertFiles = None,
    as_json: UpJson = False,
    control_plane: ControlPlane = ControlPlaneChoice.files,
    access_log: AccessLog = True,
) -> None:
    """Start every component and wait until all are ready; print the topology.

    Certificates missing from the state folder are issued first. With --manifests, that mesh runs your own
    Istio YAML (the article's, for instance); its gateway Secrets come from meshbridge's PKI when the
    manifests have none, and the command says so; certificates it names as files in the pods come from
    --cert PATH=FILE. With --translator istiod the Envoys run exactly what istiod would push (delivered from
    files, without the istio-proxy-only filters), so a user with Go can check a configuration against Istio
    itself.

    With --control-plane istiod nothing is delivered from files: each mesh gets a kube-apiserver and etcd, the
    bridge is applied to them as 'meshbridge apply' does, and upstream istiod configures each gateway's and the
    app's pilot-agent and Envoy over xDS and SDS; it prints the kubeconfig, the time to the first 200 and the
    memory of the whole setup (docs/fidelity.md).
    """
    if control_plane is ControlPlaneChoice.istiod:
        _up_control_plane(
            file, state_dir, file_based=bool(manifests or cert or as_json) or translator.value != "meshbridge"
        )
        return
    files = [_mounted(c) for c in cert or []]
    twin = twin_for(file, state_dir)
    try:
        report = twin.up(
            parse_manifests(manifests),
            progress=lambda line: err.print(line, markup=False, highlight=False),
            translator="istiod" if translator is TranslatorChoice.istiod else "meshbridge",
            files=files,
            access_log=access_log,
        )
    except StartInterrupted as e:
        _interrupted(twin, e)
    for notice in report.notices:
        err.print(f"note: {notice}", markup=False, highlight=False)
    exports = twin.bridge.spec.exports
    served = [ex for ex in exports if ex.backend.local is not None]  # the others answer 503 (noted above)
    stop = _predicted_stop(twin, report)
    first = (served or exports)[0]
    chosen = report.paths.get(first.name)  # the path the check asked: the export's own routes serve it
    try_ = twin.command(f"local curl -i {export_url(first, chosen.path) if chosen else export_url(first)}")
    if as_json:
        document = {
            "seconds": round(report.seconds, 3),
            "notes": report.notices,
            "try": None if stop else try_,
            "stop": stop,
        }
        out.print(json.dumps({**document, **_status_json(twin, None)}, indent=2))
        return
    out.print(_status_table(twin))
    if stop:
        out.print(
            f"up in {report.seconds:.2f} s, but the path check predicts that {stop['requests']} request(s) stop "
            f"(notes above): export {stop['export']} at {stop['proxy']} ({stop['flag']}). See each hop with: "
            f"{stop['see']}",
            markup=False,
            highlight=False,
        )
        return
    if not served:
        try_ += "   (503: no export has a backend.local, see the note above)"
    out.print(f"up in {report.seconds:.2f} s. Try: {try_}")


def _interrupted(twin: TwinState, e: StartInterrupted) -> NoReturn:
    """What a Ctrl-C during 'local up' left: nothing, or the processes that refused to stop."""
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


def _up_control_plane(file: Path, state_dir: Path | None, *, file_based: bool) -> None:
    """'local up --control-plane istiod': start, then print the table, the times, the memory and how to use it.
    ``file_based``: options of the file-based twin were given (refused)."""
    from meshbridge.local.istiod_twin import ControlPlaneTwin, ensure_tools

    if file_based:
        raise LocalError(
            "local up --control-plane istiod applies the bridge itself and istiod translates it: --manifests, "
            "--cert, --translator and --json are for the file-based twin. Fix: drop them, or drop --control-plane"
        )

    def say(line: str) -> None:
        err.print(line, markup=False, highlight=False)

    tools = ensure_tools(say)  # a cold build is not part of the start's time
    twin = ControlPlaneTwin(read_bridge(file), file, state_dir or default_state_dir(file), again(file, state_dir))
    try:
        report = twin.up_control_plane(tools, progress=say)
    except StartInterrupted as e:
        _interrupted(twin, e)
    out.print(_status_table(twin))
    rss, pss = report.memory_kb
    first = f"first 200 after {report.first_200:.1f} s" if report.first_200 is not None else "no 200 yet"
    out.print(
        f"up in {report.seconds:.1f} s on the real control plane ({first}); memory of the whole setup: "
        f"RSS {rss / 1024:.0f} MB, PSS {pss / 1024:.0f} MB",
        markup=False,
        highlight=False,
    )
    if report.first_200 is None and report.first_status:
        say(f"note: the last request answered {report.first_status}; see {twin.command('local curl -v ...')}")
    contexts = " ".join(f"--context {m}={m}" for m in twin.bridge.spec.meshes)
    served = [ex for ex in twin.bridge.spec.exports if ex.backend.local is not None] or twin.bridge.spec.exports
    out.print(
        f"export KUBECONFIG={report.kubeconfig}\n"
        f"{twin.command('status')} {contexts}\n"
        f"{twin.command(f'local curl -i {export_url(served[0], twin.export_path(served[0].name))}')}",
        markup=False,
        highlight=False,
    )


def _predicted_stop(twin: LocalTwin, report: UpReport) -> dict[str, object] | None:
    """What 'local up' says instead of its 'Try:' when the path check predicts that requests stop: how many, the
    first one's export, proxy and response flag (or error), and the command that shows each hop; ``None`` when
    none stops."""
    if not report.stopped:
        return None
    hop = report.stopped[0]
    ex = twin.bridge.export(hop.export)
    return {
        "requests": len(report.stopped),
        "export": hop.export,
        "proxy": hop.proxy,
        "flag": hop.result.response_flag or hop.result.error,
        "see": twin.command(f"local curl -v {export_url(ex, report.paths[ex.name].path)}"),
    }


def _mounted(value: str) -> MountedFile:
    """A ``local up --cert`` value: only the ``[MESH:]PATH=FILE`` form (the twin's Secrets come from the manifests or
    the state folder's certificates).

    Raises:
        IstioConfigError: the value is not a ``--cert`` value, or its file cannot be read.
        LocalError: it fills a Secret's key (``MESH:KEY=FILE``).
    """
    given = parse_cert(value)
    if not isinstance(given, MountedFile):
        raise LocalError(
            f"--cert {value!r}: 'local up' mounts files the manifests name in the pods ([MESH:]PATH=FILE); a "
            "gateway Secret comes from --manifests, else from the certificates in the state folder. Fix: put the "
            "Secret in the mesh's --manifests, or give the path the manifest names, e.g. --cert "
            "/etc/istio/egressgateway-certs/tls.crt=client.crt"
        )
    return given


@app.command("down")
def down(file: BridgeFile = DEFAULT_BRIDGE, state_dir: StateDir = None, as_json: JsonDocument = False) -> None:
    """Stop every component, even if 'local up' or the supervisor was killed; leave no process behind.

    Needs only the state folder (the pids 'local up' recorded there): the bridge file may have moved or
    changed. The folder is --state-dir, else .meshbridge/ beside where the bridge file is (or was). --json
    prints {"stopped": the components, "state_dir", "running_elsewhere": the -f or --state-dir of twins still
    running below this folder}.
    """
    twin = twin_state(file, state_dir)
    stopped = twin.down()
    running = [] if stopped or twin.started() else [t for t in started_twins(Path.cwd()) if t.running]
    if as_json:
        elsewhere = [_option_for(t) for t in running]
        print_json({"stopped": stopped, "state_dir": str(twin.state_dir), "running_elsewhere": elsewhere})
        return
    if stopped:
        out.print(f"stopped {len(stopped)} process(es): {', '.join(stopped)}")
        return
    out.print(f"stopped 0 process(es) (nothing was running with the state folder {twin.state_dir})")
    if running:  # the twin the user means may run elsewhere
        err.print(
            f"note: {twin.never_started()}; twins still run below this folder: "
            + ", ".join(_option_for(t) for t in running)
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
    if not as_json and _translator(twin) == "istiod":
        err.print("configuration: istiod's own translation (local up --translator istiod)", markup=False)
    kubeconfig = twin.kubeconfig()
    if not as_json and kubeconfig is not None:
        err.print(f"configuration: istiod per mesh over xDS (local up --control-plane istiod); KUBECONFIG={kubeconfig}")
    if not all(r.ready for r in components):
        raise typer.Exit(1)


def _translator(twin: TwinState) -> str:
    """Whose configuration the twin's Envoys run (``local up --translator``), as its plan recorded it."""
    try:
        return str(twin.plan().get("translator", "meshbridge"))
    except LocalError:  # a start that stopped before writing its plan
        return "meshbridge"


def _status_json(twin: TwinState, problem: str | None) -> dict[str, object]:
    return {
        "state_dir": str(twin.state_dir),
        "translator": _translator(twin),
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


STATUS_HEADERS = ("COMPONENT", "KIND", "ADDRESS", "PORTS", "READY", "RESTARTS")


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
    columns = list(STATUS_HEADERS)
    if wide:
        columns[1:1] = ["MESH"]
        columns += ["PID", "LAST EXIT", "LOG"]
        return table(columns, rows)
    wrapped = table(columns, _wrap_ports(rows, columns.index("PORTS")))
    return "\n".join(line.rstrip() for line in wrapped.splitlines())  # a continued row ends at its PORTS


def _wrap_ports(rows: list[list[str]], at: int) -> list[list[str]]:
    """The rows with each PORTS cell wider than what :data:`TERMINAL_WIDTH` leaves it continued on rows of its own
    (at its commas): a twin on the real control plane lists istiod's five ports and each agent's admin."""
    others = sum(max(len(c) for c in [h, *(r[i] for r in rows)]) + 3 for i, h in enumerate(STATUS_HEADERS) if i != at)
    room = max(TERMINAL_WIDTH - others, 12)  # the last column (RESTARTS) is counted with padding it has not
    out: list[list[str]] = []
    for row in rows:
        lines = [""]
        for part in row[at].split(", "):
            if lines[-1] and len(lines[-1]) + len(part) + 2 > room:
                lines[-1] += ","
                lines.append("")
            lines[-1] += f", {part}" if lines[-1] else part
        out.append([*row[:at], lines[0], *row[at + 1 :]])
        out += [["" for _ in row[:at]] + [line] + ["" for _ in row[at + 1 :]] for line in lines[1:]]
    return out


def _addresses(s: ComponentStatus) -> str:
    """The addresses a component binds, the later ones shortened to what differs from the first's /24
    (``127.98.35.53, .54``: the DNS server of each mesh); an admin port's address only when it is the only one (the
    agents of a twin on the real control plane serve their Envoy's admin on 127.0.0.1, the pod's on its address)."""
    bound = [p.address for p in s.ports if p.name != "admin"] or [p.address for p in s.ports]
    addresses = list(dict.fromkeys(bound)) or [s.address]
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
    raw: Annotated[
        bool, typer.Option("--raw", help="The log file as it is (an ALB's: one JSON object per line, for scripts).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Without a component: list the components and their logs as JSON.")
    ] = False,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
) -> None:
    """Print a component's log: Envoy's own log, or with --access its access log (response flags, SNI, route).

    Without a component, list the components and their logs, and how to pick one. Only the proxies (Envoy)
    have an access log. An ALB (with its Lambda; also named by its export, e.g. 'lambda') prints a line per
    request as 'meshbridge lambda serve' does: status, method, path, time, cold or warm, the error reason and
    type when the Lambda failed, then what the function printed, a traceback's lines each on its own; --raw
    prints its JSON lines instead. Works from the state folder alone, also after the twin stopped.
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
    proxies = [s.name for s in components if s.kind == "envoy" and _access_logged(twin)]  # with an access log
    if as_json and component is not None:
        raise LocalError(
            f"--json lists the components; a log is printed as it is. Fix: {twin.command('local logs --json')}, or "
            f"{twin.command(f'local logs {component} --raw')} for the file as it is (an ALB's JSON lines)"
        )
    if as_json:
        out.print(
            json.dumps({"root": str(twin.root), "components": _logs_json(components, _access_logged(twin))}, indent=2)
        )
        return
    if component is None:
        out.print(_logs_table(twin, components))
        out.print(f"\nlogs are under {twin.root}")
        logged = "; --access: a proxy's requests" if proxies else ""
        out.print(f"pick one: {twin.command('local logs COMPONENT')}   (-F follows it{logged})")
        if proxies:
            out.print(f"e.g.:     {twin.command(f'local logs {proxies[0]} --access')}")
        return
    found = _component(twin, components, component)
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
        if not _access_logged(twin):
            again_logged = twin.up_command().replace(f" {NO_ACCESS_LOG}", "")
            raise LocalError(
                f"the twin was started with --no-access-log: {found.name} writes no access log (Istio's default "
                f"profile). Fix: {twin.command('local down')}, then {again_logged}; "
                f"{twin.command(f'local logs {found.name}')} prints its own log"
            )
    if not path.exists():
        raise LocalError(f"{path} does not exist yet" + (" (no request has reached this proxy)" if access else ""))
    if found.kind == "alb" and not raw:
        _print_alb_log(path, follow)
        return
    _print_file(path, follow)


def _access_logged(twin: TwinState) -> bool:
    """Whether the twin's proxies write access logs (not started with ``--no-access-log``)."""
    try:
        return bool(twin.plan().get("access_log", True))
    except LocalError:  # a start that stopped before writing its plan
        return True


def _component(twin: TwinState, components: list[ComponentStatus], component: str) -> ComponentStatus:
    """The one component ``component`` names: by its name, its last part, or an ALB by its export's name
    (``lambda`` for ``eks/alb-lambda``).

    Raises:
        LocalError: it names none, or several.
    """
    matches = [s for s in components if component in (s.name, s.name.split("/")[-1])]
    if not matches:  # an ALB by its export's name: 'lambda' for eks/alb-lambda
        matches = [s for s in components if s.kind == "alb" and s.name.split("/")[-1] == f"alb-{component}"]
    if len(matches) != 1:
        names = ", ".join(s.name for s in matches or components)
        problem = f"{component!r} names {len(matches)} components" if matches else f"{component!r} is not a component"
        raise LocalError(
            f"{problem} of the local twin in {twin.state_dir}; components: {names}. "
            f"Fix: name one, e.g. {twin.command(f'local logs {(matches or components)[0].name}')}"
        )
    return matches[0]


def _print_file(path: Path, follow: bool) -> None:
    """A log file as it is, to stdout; with ``follow``, what is written to it later too, until Ctrl-C."""
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


def _print_alb_log(path: Path, follow: bool) -> None:
    """An ALB's log, each JSON line as a person reads it (:func:`meshbridge.local.alb_log.readable`); with
    ``follow``, the lines written later too, a line once it is whole."""
    pending = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read()
            if chunk:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    for shown in readable(line.decode("utf-8", "replace")):
                        sys.stdout.write(shown + "\n")
                sys.stdout.flush()
            elif not follow:
                break
            else:
                time.sleep(0.2)
    if pending:
        sys.stdout.write("\n".join(readable(pending.decode("utf-8", "replace"))) + "\n")
        sys.stdout.flush()


def _logs_json(components: list[ComponentStatus], logged: bool) -> list[dict[str, object]]:
    """Each component's log, and its access log (proxies only, when ``logged``), as whole paths."""
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "log": s.log,
            "access_log": str(Path(s.log).with_name("access.log")) if s.kind == "envoy" and logged else None,
        }
        for s in components
    ]


def _logs_table(twin: TwinState, components: list[ComponentStatus]) -> str:
    """COMPONENT, KIND, LOG (relative to the state folder's local/) and what --access prints (proxies only:
    the access.log beside the log; none after ``--no-access-log``)."""
    logged = _access_logged(twin)
    rows = []
    for s in components:
        log = Path(s.log)
        with contextlib.suppress(ValueError):
            log = log.relative_to(twin.root)
        rows.append((s.name, s.kind, str(log), "access.log" if s.kind == "envoy" and logged else "-"))
    return table(["COMPONENT", "KIND", "LOG", "WITH --access"], rows)


CurlBridgeFile = Annotated[
    Path,
    typer.Option(
        "--bridge",
        "-F",
        "--file",
        help="The bridge spec (YAML) whose twin to use: the -f of the other local commands (here -f is curl's --fail).",
        show_default=True,
    ),
]
CURL_TIMEOUT_S = 30.0
"""How long 'local curl' waits for the whole request without -m (curl itself has no limit)."""


CurlUrl = Annotated[
    str, typer.Argument(metavar="URL", help="e.g. http://lambda.external/hello-world", show_default=False)
]
CurlHeaders = Annotated[
    list[str] | None, typer.Option("-H", "--header", metavar="'NAME: VALUE'", help="A request header; repeatable.")
]
CurlMethod = Annotated[str | None, typer.Option("-X", "--request", help="Method (default GET, or POST with -d).")]
CurlData = Annotated[
    str | None,
    typer.Option(
        "-d",
        "--data",
        help="Request body; @FILE reads it from FILE (@- from stdin), without its line breaks, as curl -d does.",
    ),
]
CurlInclude = Annotated[bool, typer.Option("-i", "--include", help="Print the status line and headers.")]
CurlHead = Annotated[bool, typer.Option("-I", "--head", help="Send HEAD; print the status line and headers.")]
CurlFail = Annotated[
    bool, typer.Option("-f", "--fail", help="On HTTP 400 or more: print no body, exit 22 (curl's --fail).")
]
CurlFailWithBody = Annotated[
    bool, typer.Option("--fail-with-body", help="On HTTP 400 or more: print the body, then exit 22.")
]
CurlOutput = Annotated[
    str | None,
    typer.Option("-o", "--output", metavar="FILE", help="Write the body (and headers with -i) to FILE; - is stdout."),
]
CurlWriteOut = Annotated[
    str | None,
    typer.Option(
        "-w",
        "--write-out",
        metavar="FORMAT",
        help="After the transfer, print FORMAT to stdout: %{http_code}, %{time_total}, %{size_download}, "
        "%{url_effective}, %{num_redirects}, %header{name}, %{json}, ... as curl does; @FILE reads it.",
    ),
]
CurlMaxTime = Annotated[
    float | None,
    typer.Option(
        "-m",
        "--max-time",
        metavar="SECONDS",
        min=0.001,
        help=f"Give up after SECONDS for the whole transfer, redirects included: exit 28 (default {CURL_TIMEOUT_S:g}).",
    ),
]
CurlLocation = Annotated[
    bool, typer.Option("-L", "--location", help="Follow redirects (3xx with Location), each through the sidecar.")
]
CurlMaxRedirs = Annotated[
    int, typer.Option("--max-redirs", min=0, help="With -L, follow at most this many redirects: exit 47.")
]
CurlSilent = Annotated[bool, typer.Option("-s", "--silent", help="Print no error message (and no note).")]
CurlShowError = Annotated[bool, typer.Option("-S", "--show-error", help="With -s, still print errors.")]
CurlVerbose = Annotated[
    bool,
    typer.Option(
        "-v",
        "--verbose",
        help="On stderr: DNS, the sidecar hop, the request and response headers, and the ALB's line for the "
        "request (why a Lambda failed, with its traceback).",
    ),
]
CurlFrom = Annotated[str | None, typer.Option("--from", help="The app to send from (default: the first).")]


@app.command("curl", context_settings={"allow_extra_args": True})
def curl_cmd(
    ctx: typer.Context,
    url: CurlUrl,
    header: CurlHeaders = None,
    method: CurlMethod = None,
    data: CurlData = None,
    include: CurlInclude = False,
    head: CurlHead = False,
    fail: CurlFail = False,
    fail_with_body: CurlFailWithBody = False,
    output: CurlOutput = None,
    write_out: CurlWriteOut = None,
    max_time: CurlMaxTime = None,
    location: CurlLocation = False,
    max_redirs: CurlMaxRedirs = MAX_REDIRS,
    silent: CurlSilent = False,
    show_error: CurlShowError = False,
    verbose: CurlVerbose = False,
    from_app: CurlFrom = None,
    file: CurlBridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
) -> None:
    """Send a request from an importer's app through its sidecar, like 'kubectl exec deploy/sleep -- curl'.

    The app speaks plain HTTP; its sidecar routes to the egress gateway, which originates the mutual TLS to
    the exporter's ingress gateway, which forwards to the ALB and the Lambda. The options are curl's (-f is
    --fail here, so the bridge file is --bridge/-F), and so are the exit codes: 3 malformed URL, 6 could not
    resolve host, 7 failed to connect, 8 weird server reply, 22 HTTP 400 or more with -f, 28 timed out, 47 too
    many redirects. When the ALB answered 5xx because the Lambda failed (an unhandled error, an invalid
    response, a timeout), -v shows why, traceback included, and without -v a note on stderr says so.

    To use the real curl instead: 'meshbridge local env' prints the sidecar's address and the curl line.
    """
    if ctx.args or _looks_like_a_bridge_file(url):  # two URLs, or the old '-f bridge.yaml'
        raise LocalError(_not_one_url([url, *ctx.args]))
    twin = twin_state(file, state_dir)
    if not twin.started():
        raise never_started(twin, file, state_dir, "local curl")
    quiet = silent and not show_error
    reason = twin.not_running()
    if reason is not None:
        _curl_error(CurlError(7, f"Failed to connect: {reason}", []), verbose, quiet, write_out, url)
    warn_changed(twin)
    view = twin.app_view(from_app)
    headers = parse_headers(header or [])
    body = _body(data)
    verb = method or ("HEAD" if head else "POST" if body is not None else "GET")
    albs = AlbLogs.mark({s.name: Path(s.log) for s in twin.status() if s.kind == "alb"})
    timeout = max_time or CURL_TIMEOUT_S
    try:
        if location:
            results = follow(view, url, method=verb, headers=headers, data=body, timeout=timeout, max_redirs=max_redirs)
        else:
            results = [curl(view, url, method=verb, headers=headers, data=body, timeout=timeout)]
    except CurlError as e:
        _curl_error(e, verbose, quiet, write_out, url)
    last = results[-1]
    failed = (fail or fail_with_body) and last.status >= 400
    shown: list[bytes] = []
    for r in results:
        if verbose:
            _err_lines([*r.trace, f"< {r.http_version} {r.status} {r.reason}", *(f"< {k}: {v}" for k, v in r.headers)])
            _err_lines(["<"])
        if include or head:
            shown.append(f"{r.http_version} {r.status} {r.reason}\r\n".encode())
            shown.append(b"".join(f"{k}: {v}\r\n".encode() for k, v in r.headers) + b"\r\n")
    if not head and not (failed and not fail_with_body):
        shown.append(last.body)
    _emit(output, b"".join(shown), create=not failed or fail_with_body)
    _notes(twin, albs, view, last, verbose, silent)
    code = 22 if failed else 0
    if failed and not quiet:
        err.print(f"curl: (22) The requested URL returned error: {last.status}", markup=False, highlight=False)
    _write_out(
        write_out, Transfer(results, url, code, f"The requested URL returned error: {last.status}" if failed else "")
    )
    if code:
        raise typer.Exit(code)


def _not_one_url(urls: list[str]) -> str:
    """The error for a 'local curl' given something else than one URL: most likely the old '-f bridge.yaml'."""
    files = [u for u in urls if _looks_like_a_bridge_file(u)]
    if files:
        rest = " ".join(shlex.quote(u) for u in urls if u not in files) or "URL"
        return (
            f"{files[0]!r} is not a URL: in 'local curl', -f is curl's --fail, and the bridge file is given with "
            f"--bridge (or -F). Fix: meshbridge local curl --bridge {shlex.quote(files[0])} {rest}"
        )
    return f"local curl sends one request, to one URL; got {len(urls)}: {' '.join(urls)}. Fix: one URL per command"


def _looks_like_a_bridge_file(word: str) -> bool:
    return "://" not in word and (word.endswith((".yaml", ".yml")) or Path(word).is_file())


def _err_lines(lines: list[str]) -> None:
    for line in lines:
        err.print(line, markup=False, highlight=False)


def _emit(output: str | None, content: bytes, create: bool) -> None:
    """Write what the transfer printed to stdout, or to the file of -o (not created when --fail stopped the
    body and nothing else was printed, as curl leaves no empty file behind).

    Raises:
        LocalError: the file cannot be written.
    """
    if output is None or output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    if not content and not create:
        return
    try:
        Path(output).write_bytes(content)
    except OSError as e:
        raise LocalError(f"-o {output}: cannot write it ({e.strerror}). Fix: name a file in a writable folder") from e


def _curl_error(e: CurlError, verbose: bool, quiet: bool, write_out: str | None, url: str) -> NoReturn:
    """curl's way to fail: the trace with -v, ``curl: (N) message`` unless -s, -w still written, exit N."""
    if verbose:
        _err_lines(e.trace)
    if not quiet:
        err.print(str(e), markup=False, highlight=False)
    _write_out(write_out, Transfer((), url, e.code, str(e).split(") ", 1)[-1]))
    raise typer.Exit(e.code)


def _write_out(fmt: str | None, transfer: Transfer) -> None:
    """curl's -w: the format expanded on stdout (or stderr after %{stderr}); @FILE reads it (@- stdin)."""
    if fmt is None:
        return
    if fmt.startswith("@"):
        name = fmt[1:]
        try:
            fmt = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as e:
            raise LocalError(f"-w {fmt}: cannot read {name} ({e.strerror}). Fix: name a readable file") from e
    pieces, warnings = write_out(fmt, transfer)
    for warning in warnings:
        err.print(f"Warning: {warning}", markup=False, highlight=False)
    for stream, text in pieces:
        target = sys.stdout if stream == "stdout" else sys.stderr
        target.write(text)
        target.flush()


def _hops_cause(twin: TwinState) -> None:
    """On the real control plane (no access logs): one note per proxy whose upstream answered only failures."""
    from meshbridge.local.istiod_twin import failing_hops

    kubeconfig = twin.kubeconfig()
    if kubeconfig is None:
        return
    for line in failing_hops(twin.plan()):
        err.print(
            f"note: {line}: the connection ended before an answer (a refused handshake, such as mutual TLS the peer "
            f"does not trust, or nothing listening). See: {twin.command('local logs')}; "
            f"meshbridge status --kubeconfig {kubeconfig} with --context MESH=MESH",
            markup=False,
            highlight=False,
        )


def _notes(twin: TwinState, albs: AlbLogs, view: AppView, last: CurlResult, verbose: bool, silent: bool) -> None:
    """What the answer does not say, on stderr: the Lambda's failure (:func:`_lambda_cause`, with -v or on a
    5xx) and, on an error status, the port the host is imported on (:func:`_other_port`); none with -s."""
    if verbose or (last.status >= 500 and not silent):
        _lambda_cause(twin, albs, last, verbose, path=httpx.URL(last.url).raw_path.decode("ascii"))
    if last.status >= 400 and not silent:
        _other_port(twin, view, last.url)


def _other_port(twin: TwinState, view: AppView, url: str) -> None:
    """One note when the app's sidecar routes ``url``'s host on other ports but not on ``url``'s (a request
    that got Envoy's bare 404 or 503): the port it is imported on, and the URL to try."""
    if view.waypoint is not None:  # an ambient app: no sidecar whose routes to read
        return
    asked = httpx.URL(url)
    port = asked.port or (443 if asked.scheme == "https" else 80)
    try:
        ports = routed_ports(twin.config_dump(view.name), asked.host)
    except LocalError:  # the sidecar stopped answering: the request's own answer is all there is
        return
    if ports and port not in ports:
        listed = " and ".join(map(str, ports))
        err.print(
            f"note: {asked.host} is imported on port {listed}, not {port}: try {asked.copy_with(port=ports[0])}",
            markup=False,
            highlight=False,
        )


def _unserved(twin: TwinState, url: str) -> str:
    """What 'local up' said of the export ``url``'s host names when it has no local backend, else ``""``."""
    try:
        unserved = twin.plan().get("unserved", {})
    except LocalError:  # a start that stopped before writing its plan
        return ""
    return str(unserved.get(httpx.URL(url).host, ""))


def _lambda_cause(twin: TwinState, albs: AlbLogs, last: CurlResult, verbose: bool, path: str) -> None:
    """What the ALB logged for this request: with -v its line and the function's output (the traceback), as
    'lambda serve' prints them; without -v, one note when the ALB answered 5xx itself (the Lambda failed). On the
    real control plane, a 5xx also gets the hops whose requests all failed (:func:`_hops_cause`)."""
    if last.status >= 500:
        _hops_cause(twin)
    found = albs.invocations(last.method, path, wait=0.5 if verbose or last.status >= 500 else 0)
    unserved = _unserved(twin, last.url)
    if last.status >= 500 and not found and unserved:
        err.print(f"note: {unserved}", markup=False, highlight=False)
    if verbose:
        if not found and last.status >= 500:
            _err_lines(
                [
                    f"* no ALB logged this request: a proxy answered {last.status} itself (the 'local logs "
                    "--access' of each proxy has its response flags)"
                ]
            )
        for name, entry in found:
            lines = entry.lines()
            _err_lines([f"* {name}: {lines[0]}", *(f"* {line}" for line in lines[1:])])
        return
    failures = [(name, entry) for name, entry in found if entry.error_reason]
    for name, entry in failures[-1:]:
        why = " ".join(x for x in (entry.error_reason, entry.error_type) if x)
        detail = f" ({entry.detail})" if entry.detail else ""
        err.print(
            f"note: {name} answered {entry.status} {why}{detail}. The traceback and the function's output: "
            f"{twin.command('local curl -v ' + shlex.quote(last.url))}, or {twin.command(f'local logs {name}')}",
            markup=False,
            highlight=False,
        )


@app.command("env")
def env_cmd(
    from_app: Annotated[str | None, typer.Option("--from", help="The app whose sidecar (default: the first).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the addresses and the curl lines as JSON.")] = False,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
) -> None:
    """Where an app's requests go in the running twin (its sidecar's address and ports), and the real curl
    line for each export the app imports: what 'local curl' does, with any HTTP client.

    A pod's requests reach its sidecar through iptables; here they are sent to the sidecar's listener, whose
    routes read the Host header. curl's --resolve does that when the port is the one the app dials; when it
    was moved up (ports below 1024 bind as port + 10000 unless root), --connect-to keeps the URL as the app
    writes it. 'local status' lists every component's ports.
    """
    twin = running_twin(file, state_dir, "local env")
    view = twin.app_view(from_app)
    plan = twin.plan()
    mesh = plan["proxies"][view.name]["mesh"]
    bound = {port: port + view.low_port_offset if port < 1024 else port for port in view.sidecar_ports}
    requests: list[dict[str, Any]] = []
    for ex in _imports(plan, mesh):
        url = export_url(ex)
        if ex.port not in bound:
            continue
        local, host = bound[ex.port], ex.import_host
        lines = [f"curl -i --resolve {host}:{local}:{view.sidecar_address} {url}"]
        if local != ex.port:
            moved = url.replace(f"://{host}/", f"://{host}:{local}/", 1)
            lines = [
                f"curl -i --connect-to {host}:{ex.port}:{view.sidecar_address}:{local} {url}",
                f"curl -i --resolve {host}:{local}:{view.sidecar_address} -H {shlex.quote(f'Host: {host}')} {moved}",
            ]
        requests.append({"export": ex.name, "host": host, "port": ex.port, "url": url, "curl": lines})
    if as_json:
        sidecar = {"address": view.sidecar_address, "ports": [{"port": p, "bound": b} for p, b in bound.items()]}
        out.print(json.dumps({"app": view.name, "mesh": mesh, "sidecar": sidecar, "requests": requests}, indent=2))
        return
    ports = ", ".join(str(p) if p == b else f"{p} (bound as {b})" for p, b in bound.items()) or "none"
    catcher = (
        f"the waypoint {view.waypoint} (for ztunnel, which the twin does not run)" if view.waypoint else "its sidecar"
    )
    out.print(f"app {view.name} (mesh {mesh}): {catcher} listens on {view.sidecar_address}, port(s) {ports}")
    if any(p != b for p, b in bound.items()):
        out.print("(not root: ports below 1024 bind as port + 10000, so --connect-to keeps the URL the app writes)")
    if not requests:
        out.print(f"mesh {mesh} imports no export on a port its sidecar listens on: nothing to curl")
        return
    where = "the waypoint" if view.waypoint else "its sidecar"
    out.print(f"the real curl, sent where the app's requests go ({where}; the Host header routes them):")
    for request in requests:
        for line in request["curl"]:
            out.print(f"  {line}")


def _imports(plan: dict[str, Any], mesh: str) -> list[Export]:
    """The exports ``mesh`` imports, from the bridge file 'local up' read (none when it cannot be read now)."""
    inputs = plan.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return []
    try:
        bridge = read_bridge(Path(inputs[0]["path"]))
    except (MeshbridgeError, OSError):
        return []
    return bridge.exports_to(mesh)


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
        str,
        typer.Argument(
            metavar="MESH/NAME",
            help="A proxy of this bridge's twin: 'meshbridge local status' lists them (its "
            "envoy components: the gateways and the apps' sidecars).",
        ),
    ],
    output: ProxyConfigOutput = ProxyConfigFormat.short,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
) -> None:
    """istioctl proxy-config for a local proxy: the same columns, read from its Envoy /config_dump.

    The table fits 100 columns (long names wrap; the secrets table leaves out NOT BEFORE); -o wide prints
    istioctl's own layout, -o json the whole /config_dump.
    """
    dump = running_twin(file, state_dir, "local proxy-config").config_dump(proxy)
    if output is ProxyConfigFormat.json:
        out.print(json.dumps(dump, indent=2))
        return
    sys.stdout.write(format_proxy_config(kind, dump, wide=output is ProxyConfigFormat.wide))
