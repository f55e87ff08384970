"""``meshbridge lambda``: run a Lambda handler behind a local ALB, as AWS would run it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshbridge.cli.common import out
from meshbridge.errors import LambdaError
from meshbridge.ipaddr import is_ip

if TYPE_CHECKING:
    from meshbridge.alb.server import (
        AlbServer,
        InvocationLog,
    )

app = typer.Typer(
    help=(
        "A local Application Load Balancer with a Lambda target group, running your handler in real "
        "awslambdaric processes: the exact ALB event, the ALB response contract (502 on a bad response), "
        "cold starts, timeouts, reserved concurrency."
    ),
    no_args_is_help=True,
)


def _split_listen(listen: str | None, https: bool) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``PORT``; default ``127.0.0.1:8080`` (``:8443`` with ``--https``)."""
    if listen is None:
        return "127.0.0.1", 8443 if https else 8080
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", listen
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise typer.BadParameter(f"{listen!r} is not HOST:PORT (e.g. 127.0.0.1:8080)", param_hint="--listen")
    return host, int(port)


Handler = Annotated[
    str,
    typer.Option(
        "--handler",
        help="The Lambda handler as FILE.py:FUNCTION, e.g. examples/seed/handler.py:lambda_handler. "
        "The file's folder is the task root (the runtime's cwd, LAMBDA_TASK_ROOT).",
    ),
]
Listen = Annotated[
    str | None,
    typer.Option("--listen", help="HOST:PORT to bind the listener to. Default 127.0.0.1:8080, or :8443 with --https."),
]
Https = Annotated[bool, typer.Option("--https", help="An HTTPS listener instead of HTTP (TLS 1.2+).")]
Cert = Annotated[
    Path | None, typer.Option("--cert", help="PEM certificate chain for --https. Without it one is issued.")
]
Key = Annotated[Path | None, typer.Option("--key", help="PEM private key of --cert.")]
HostName = Annotated[
    str | None,
    typer.Option(
        "--host-name",
        help="DNS name of the issued certificate (with --https and no --cert). Default: the --listen host, "
        "or 'localhost' when that is an IP address.",
    ),
]
CertDir = Annotated[
    Path,
    typer.Option("--cert-dir", help="Where an issued certificate and its CA (ca.crt) are written."),
]
AdvertisedPort = Annotated[
    int | None,
    typer.Option(
        "--advertised-port",
        help="The port clients of the real ALB dial (80, 443): the event's x-forwarded-port. Default: the bound port.",
    ),
]
MultiValueHeaders = Annotated[
    bool,
    typer.Option(
        "--multi-value-headers",
        help="Set the target group attribute lambda.multi_value_headers.enabled: the event carries "
        "multiValueHeaders and multiValueQueryStringParameters, and the response's multiValueHeaders is read.",
    ),
]
Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency",
        min=0,
        max=1000,
        help="Reserved concurrency: Lambda environments at most. Beyond it requests are throttled (ALB "
        "502 LambdaThrottling), never queued; 0 throttles all.",
    ),
]
FunctionTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.001,
        max=900.0,
        help="Function timeout in seconds (AWS default 3). On expiry the environment is killed and reset "
        "and the client gets 502.",
    ),
]
Memory = Annotated[
    int,
    typer.Option(
        "--memory",
        min=128,
        max=10240,
        help="Memory size in MB, reported to the handler (context.memory_limit_in_mb); not enforced.",
    ),
]
FunctionLogs = Annotated[
    bool,
    typer.Option("--function-logs/--no-function-logs", help="Print what the handler writes to stdout and stderr."),
]


def serve(
    handler: Handler,
    listen: Listen = None,
    https: Https = False,
    cert: Cert = None,
    key: Key = None,
    host_name: HostName = None,
    cert_dir: CertDir = Path(".meshbridge/alb"),
    advertised_port: AdvertisedPort = None,
    multi_value_headers: MultiValueHeaders = False,
    concurrency: Concurrency = 10,
    timeout: FunctionTimeout = 3.0,
    memory: Memory = 128,
    function_logs: FunctionLogs = True,
) -> None:
    """Serve a Lambda handler behind a local ALB until Ctrl-C.

    First runs the handler's init once, as a cold start does, and exits 2 with one line (the handler, the
    errorType such as Runtime.HandlerNotFound, Runtime.ImportModuleError or Runtime.UserCodeSyntaxError, the
    errorMessage and the fix) if it fails; AWS would only report it on the first request, as a 502. Then
    prints the URL, then one line per request: status, method, path, time, cold or warm start, the ALB's
    error reason when it answered itself (502 LambdaInvalidResponse, LambdaUnhandled, ...), and the request
    id. Ctrl-C stops it and kills every Lambda environment.
    """
    from meshbridge.alb.function import FunctionConfig
    from meshbridge.alb.server import (
        AlbConfig,
        ListenerConfig,
        issue_listener_certificate,
        run_alb,
    )

    host, port = _split_listen(listen, https)
    if (cert is None) != (key is None):
        raise typer.BadParameter("give both --cert and --key, or neither", param_hint="--cert/--key")
    if cert is not None and not https:
        raise typer.BadParameter("--cert and --key serve HTTPS: add --https", param_hint="--cert")
    function = FunctionConfig(handler=handler, memory_mb=memory, timeout_s=timeout, concurrency=concurrency)
    try:
        function.check()
    except LambdaError as e:
        raise LambdaError(f"{e}. Fix: pass --handler FILE.py:FUNCTION (relative to this folder)") from None
    name = host_name or ("localhost" if is_ip(host) else host)
    issued_ca: Path | None = None
    if https and cert is None:
        issued_ca, cert, key = issue_listener_certificate([name], cert_dir)
        out.print(f"Issued a certificate for {name} from a new CA; clients trust it with --cacert {issued_ca}")
    listener = ListenerConfig(
        host=host,
        port=port,
        protocol="HTTPS" if https else "HTTP",
        advertised_port=advertised_port,
        cert_file=cert,
        key_file=key,
    )
    config = AlbConfig(listeners=(listener,), function=function, multi_value_headers=multi_value_headers)

    def ready(server: AlbServer) -> None:
        url = server.urls[0]
        if https:
            url = f"https://{name}:{server.ports[0]}/"
        checked = "" if server.init_check_ms is None else f"; init checked in {server.init_check_ms:.0f} ms"
        out.print(
            f"Lambda {function.name} ({function.aws_handler}, {memory} MB, timeout {timeout:g} s, "
            f"concurrency {concurrency}) behind target group {config.target_group_name} "
            f"(multi-value headers {'on' if multi_value_headers else 'off'}{checked})"
        )
        out.print(f"Listening on {url}  (Ctrl-C to stop)")
        if issued_ca is not None:
            resolve = "" if name == host else f" --resolve {name}:{server.ports[0]}:{host}"
            out.print(f"  curl --cacert {issued_ca}{resolve} {url}")

    def log(entry: InvocationLog) -> None:
        for line in entry.lines(output=function_logs):
            out.print(line)

    run_alb(config, log=log, ready=ready)
    out.print("Stopped; every Lambda environment was shut down.")


app.command("serve")(serve)
