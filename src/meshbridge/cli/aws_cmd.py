"""``meshbridge aws``: deploy, destroy and show the AWS side (the Lambda behind an internal ALB) with boto3."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from meshbridge.cli.common import DEFAULT_BRIDGE, BridgeFile, DryRun, JsonDocument, err, out, read_bridge
from meshbridge.errors import AwsError
from meshbridge.hints import with_options
from meshbridge.spec import Bridge
from meshbridge.spec.models import aws_region
from meshbridge.tabwriter import TERMINAL_WIDTH, fit_table

if TYPE_CHECKING:
    from meshbridge.aws.provision import Action, AwsTarget, Plan, Report, Status
    from meshbridge.aws.provision.state import Observed

app = typer.Typer(
    help=(
        "The AWS side of the seed scenario, with boto3: a Lambda function behind an internal Application Load "
        "Balancer (step 1 of the article), from the spec's 'aws' section.\n\n"
        "AWS configuration is the standard one: credentials and region from the environment and ~/.aws "
        "(AWS_PROFILE, AWS_REGION), and AWS_ENDPOINT_URL to use an emulator instead of AWS. Region: --region, "
        "else spec.aws.region, else that configuration. See docs/aws.md for the IAM permissions needed."
    ),
    no_args_is_help=True,
)

Profile = Annotated[
    str | None,
    typer.Option("--profile", help="AWS profile from ~/.aws/config (default: AWS_PROFILE, else 'default')."),
]


def _region(value: str | None) -> str | None:
    """``--region`` is checked like ``spec.aws.region`` (:func:`meshbridge.spec.models.aws_region`)."""
    if value is None:
        return None
    try:
        return aws_region(value)
    except ValueError as e:
        problem, _, fix = str(e).rpartition("; ")
        raise typer.BadParameter(f"{problem}. Fix: {fix}" if problem else str(e)) from None


Region = Annotated[
    str | None,
    typer.Option("--region", callback=_region, help="AWS region; overrides spec.aws.region and AWS_REGION."),
]
Offline = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="With --dry-run: the plan from the spec alone, AWS never contacted (also what --dry-run does "
        "without credentials or network); what needs the account is listed as not checked.",
    ),
]
WriteBackendHost = Annotated[
    bool,
    typer.Option(
        "--write-backend-host",
        help="Write the ALB's DNS name into the bridge file as the export's backend.host (comments are kept).",
    ),
]


def _progress(line: str) -> None:
    err.print(escape(line))


def _print_plan(plan: Plan, *, only_changes: bool) -> None:
    """The actions, within 100 columns (DETAIL wraps); an offline plan's creates read 'create?' (if absent)."""
    mark = "?" if plan.offline else ""
    rows = [(a.verb + mark, a.kind, a.name, a.detail) for a in plan.actions if a.changes or not only_changes]
    if rows:
        out.print(fit_table([("ACTION", "RESOURCE", "NAME", "DETAIL"), *rows], TERMINAL_WIDTH, wrap=[3]).rstrip("\n"))


def _print_notes(report: Report) -> None:
    for note in report.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")


def _action_json(a: Action) -> dict[str, object]:
    return {"action": a.verb, "resource": a.kind, "name": a.name, "detail": a.detail, "arn": a.arn}


def _report_json(report: Report, plan: Plan) -> dict[str, object]:
    """A deploy's or destroy's report: who, the plan (its problems and what it could not check), what ran."""
    who = report.identity
    return {
        "operation": plan.operation,
        "dry_run": report.dry_run,
        "identity": None
        if who is None
        else {"account": who.account, "arn": who.arn, "region": who.region, "endpoint_url": who.endpoint_url},
        "offline": report.offline or None,
        "actions": [_action_json(a) for a in plan.actions],
        "problems": list(plan.problems),
        "unchecked": list(plan.unchecked),
        "summary": plan.summary(),
        "applied": [_action_json(a) for a in report.applied],
        "dns_name": report.dns_name,
        "notes": list(report.notes),
    }


@app.command("deploy")
def deploy_cmd(
    file: BridgeFile = DEFAULT_BRIDGE,
    dry_run: DryRun = False,
    offline: Offline = False,
    profile: Profile = None,
    region: Region = None,
    write_host: WriteBackendHost = False,
    as_json: JsonDocument = False,
) -> None:
    """Create or update the Lambda function and its internal ALB; a second run changes nothing.

    In dependency order: the IAM execution role (trusts lambda.amazonaws.com, AWSLambdaBasicExecutionRole
    attached), the Lambda function (the handler file zipped alone), a target group of type lambda (with
    lambda.multi_value_headers.enabled from the spec), the permission that lets Elastic Load Balancing
    invoke the function, the function registered as the target, an internal ALB in the spec's subnets, and
    listeners HTTP:80 and (with certificateArn) HTTPS:443 forwarding to the target group.

    Everything created is tagged app.kubernetes.io/managed-by=meshbridge and meshbridge.io/bridge=<name>.
    Checked before anything is created: the handler file defines the function, the subnets span two
    Availability Zones of the VPC, the certificate is an issued one of the ALB's region, and no resource
    with one of the names exists without meshbridge's tags.

    --dry-run needs no credentials: without them (or without network, or with --offline) the plan comes
    from the spec alone: 'create?' is created if absent, and the checks that need the account are listed
    as not checked. With credentials it is compared with the account.
    """
    from meshbridge.aws.provision import deploy

    if offline and not dry_run:
        raise typer.BadParameter("--offline only plans: add --dry-run", param_hint="--offline")
    bridge = read_bridge(file)
    target = _connect(bridge, profile, region)
    report = deploy(
        bridge, file, target, dry_run=dry_run, offline=offline, write_backend_host=write_host, progress=_progress
    )
    plan = report.plan
    if as_json:
        out.print(json.dumps(_report_json(report, plan), indent=2))
        _print_notes(report)
        if dry_run and plan.problems:
            raise AwsError('the plan has problems; deploy would refuse it: see "problems" in the JSON')
        if write_host and report.dns_name and not dry_run:
            _said_host(file, bridge.aws_export().name, report.dns_name, report.backend_host_written, to=err)
        return
    if dry_run:
        if report.offline:
            err.print(
                f"[yellow]note:[/] the plan comes from the spec alone, not compared with the account: "
                f"{escape(report.offline)}"
            )
        _print_plan(plan, only_changes=False)
        if plan.unchecked:
            out.print("\nNot checked without the account:")
            for item in plan.unchecked:
                line = with_options(item)
                out.print(textwrap.fill(line, TERMINAL_WIDTH, initial_indent="  - ", subsequent_indent="    "))
        out.print(f"Plan: {plan.summary()}.")
        if plan.problems:
            raise AwsError(
                "the plan has problems; deploy would refuse it:\n" + "\n".join(f"  - {p}" for p in plan.problems)
            )
        if write_host:
            err.print("--dry-run: the bridge file is not written")
        _print_notes(report)
        return
    if report.applied:
        _print_plan(plan, only_changes=True)
        out.print(f"Applied: {plan.summary()}.")
    else:
        out.print(f"nothing to do: all {len(plan.actions)} resources are up to date")
    if report.dns_name:
        out.print(f"load balancer DNS name: {report.dns_name}")
        if write_host:
            _said_host(file, bridge.aws_export().name, report.dns_name, report.backend_host_written)
    _print_notes(report)


@app.command("destroy")
def destroy_cmd(
    file: BridgeFile = DEFAULT_BRIDGE,
    dry_run: DryRun = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    profile: Profile = None,
    region: Region = None,
    as_json: JsonDocument = False,
) -> None:
    """Delete what 'aws deploy' created for this bridge, and nothing else.

    Order: listeners, load balancer, target deregistration, target group, Lambda permission, Lambda
    function, IAM role. Only resources tagged app.kubernetes.io/managed-by=meshbridge and
    meshbridge.io/bridge=<name> are deleted; a resource with one of the spec's names but without those
    tags is left alone and listed as 'skip'. Asks for confirmation unless --yes (required without a
    terminal). CloudWatch log groups the function wrote are not deleted.
    """
    from meshbridge.aws.provision import destroy

    bridge = read_bridge(file)
    target = _connect(bridge, profile, region)

    preview = destroy(bridge, target, dry_run=True, progress=_progress)
    plan = preview.plan
    if as_json and (plan.is_noop or dry_run):
        out.print(json.dumps(_report_json(preview, plan), indent=2))
        return
    if not as_json:
        _print_plan(plan, only_changes=False)
    if plan.is_noop:
        out.print("nothing to do: no resource created by meshbridge for this bridge is left")
        return
    if dry_run:
        out.print(f"Plan: {plan.summary()}.")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise AwsError("destroy deletes AWS resources; nothing was deleted. Fix: pass --yes to confirm")
        if not typer.confirm(f"Delete {len(plan.changes)} resources in {target.region}?", default=False, err=True):
            err.print("cancelled; nothing was deleted")
            raise typer.Exit(1)
    report = destroy(bridge, target, progress=_progress)
    if as_json:
        out.print(json.dumps(_report_json(report, report.plan), indent=2))
        return
    out.print(f"Deleted: {report.plan.summary()}.")


@app.command("status")
def status_cmd(
    file: BridgeFile = DEFAULT_BRIDGE,
    profile: Profile = None,
    region: Region = None,
    write_host: WriteBackendHost = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print everything as one JSON document (ARNs whole); notes on stderr.")
    ] = False,
) -> None:
    """Show the ALB's DNS name, its listeners and target health, the function and the role.

    MANAGED says whether a resource carries meshbridge's tags for this bridge. A Lambda target shows
    'unavailable' with reason Target.HealthCheckDisabled when health checks are off (the default for
    Lambda target groups): that is normal, traffic still flows. The tables fit 100 columns (a long cell
    wraps; ARNs are shown by their resource part, certificate/ID, function:NAME); --json prints every field,
    ARNs whole, for scripts.
    """
    from meshbridge.aws.provision import status, write_backend_host
    from meshbridge.aws.provision.desired import aws_section

    bridge = read_bridge(file)
    aws = aws_section(bridge)
    target = _connect(bridge, profile, region)
    st = status(bridge, target)
    err.print(escape(str(st.identity)))
    obs = st.observed
    fn, role, tg, lb = obs.function, obs.role, obs.target_group, obs.load_balancer
    resources = [
        ("IAM role", aws.function.execution_role_name, "present" if role else "absent", ""),
        (
            "Lambda function",
            aws.function.function_name,
            (fn.state or "present") if fn else "absent",
            f"{fn.runtime}, {fn.handler}, {fn.memory_size} MB, {fn.timeout} s" if fn else "",
        ),
        (
            "target group",
            aws.target_group_name,
            "present" if tg else "absent",
            f"TargetType {tg.target_type}" if tg else "",
        ),
        (
            "load balancer",
            aws.load_balancer_name,
            lb.state if lb else "absent",
            lb.scheme if lb else "",
        ),
    ]
    arn_names = {tg.arn: tg.name} if tg else {}
    if as_json:
        out.print(json.dumps(_status_json(st, resources, arn_names), indent=2))
    else:
        _print_status_tables(st.ours, resources, obs, arn_names)
    if write_host and lb is not None:
        export = bridge.aws_export().name
        _said_host(file, export, lb.dns_name, write_backend_host(file, export, lb.dns_name), to=err if as_json else out)


def _status_json(
    st: Status, resources: list[tuple[str, str, str, str]], arn_names: dict[str, str]
) -> dict[str, object]:
    """``aws status --json``: the identity, the resources, the listeners and the targets, ARNs whole."""
    obs = st.observed
    tg, lb = obs.target_group, obs.load_balancer
    return {
        "identity": {
            "account": st.identity.account,
            "arn": st.identity.arn,
            "region": st.identity.region,
            "endpoint_url": st.identity.endpoint_url,
        },
        "deployed": lb is not None,
        "dns_name": lb.dns_name if lb else None,
        "resources": [
            {"resource": kind, "name": name, "state": state, "managed": st.ours.get(kind), "detail": detail or None}
            for kind, name, state, detail in resources
        ],
        "listeners": [
            {
                "listener": li.label,
                "protocol": li.protocol,
                "port": li.port,
                "certificate_arns": list(li.certificate_arns),
                "forwards_to": [arn_names.get(a, a) for a in li.forward_target_group_arns],
            }
            for li in obs.listeners
        ],
        "targets": [
            {"target": h.target_id, "state": h.state, "reason": h.reason, "description": h.description}
            for h in (tg.health if tg else ())
        ],
    }


def _print_status_tables(
    ours: dict[str, bool], resources: list[tuple[str, str, str, str]], obs: Observed, arn_names: dict[str, str]
) -> None:
    """'aws status' as tables within 100 columns: the resources, then the listeners and the targets (ARNs by
    their resource part, ``certificate/ID``, ``function:NAME``; ``--json`` has them whole)."""
    rows: list[tuple[object, ...]] = [
        (kind, name, state, _yes_no(ours.get(kind)), detail) for kind, name, state, detail in resources
    ]
    out.print(fit_table([("RESOURCE", "NAME", "STATE", "MANAGED", "DETAIL"), *rows], TERMINAL_WIDTH, wrap=[4]).rstrip())
    lb, tg = obs.load_balancer, obs.target_group
    if lb is None:
        out.print("\nnot deployed: run 'meshbridge aws deploy'")
        return
    out.print(f"\nDNS name: {lb.dns_name}\n")
    if obs.listeners:
        rows = [
            (
                li.label,
                "\n".join(map(arn_resource, li.certificate_arns)) or "-",
                ", ".join(arn_names.get(a, a) for a in li.forward_target_group_arns) or "-",
            )
            for li in obs.listeners
        ]
        out.print(fit_table([("LISTENER", "CERTIFICATE", "FORWARDS TO"), *rows], TERMINAL_WIDTH, wrap=[1, 2]).rstrip())
    else:
        out.print("no listeners")
    out.print("")
    if tg is not None and tg.health:
        rows = [(arn_resource(h.target_id), h.state, h.reason or "-", h.description or "-") for h in tg.health]
        out.print(fit_table([("TARGET", "STATE", "REASON", "DESCRIPTION"), *rows], TERMINAL_WIDTH, wrap=[3]).rstrip())
    else:
        out.print("no registered targets")


def arn_resource(arn: str) -> str:
    """The resource part of an ARN (``arn:aws:acm:REGION:ACCOUNT:certificate/ID`` → ``certificate/ID``);
    anything else as it is."""
    parts = arn.split(":", 5)
    return parts[5] if len(parts) == 6 and parts[0] == "arn" else arn


def _yes_no(managed: bool | None) -> str:
    return "-" if managed is None else "yes" if managed else "no"


def _connect(bridge: Bridge, profile: str | None, region: str | None) -> AwsTarget:
    """The AWS target for the bridge: its ``aws`` section must exist (checked first: the clearer error)."""
    from meshbridge.aws.provision import connect
    from meshbridge.aws.provision.desired import aws_section

    return connect(profile=profile, region=region, spec_region=aws_section(bridge).region)


def _said_host(file: Path, export: str, dns_name: str, written: bool, to: Console = out) -> None:
    if written:
        to.print(f"wrote spec.exports[{export}].backend.host = {dns_name.lower()} into {file}", markup=False)
    else:
        to.print(f"{file} already has spec.exports[{export}].backend.host = {dns_name.lower()}", markup=False)
