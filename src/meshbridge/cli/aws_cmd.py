"""``meshbridge aws``: deploy, destroy and show the AWS side (the Lambda behind an internal ALB) with boto3."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from meshbridge.cli.common import DEFAULT_BRIDGE, BridgeFile, err, out, read_bridge, table
from meshbridge.errors import AwsError
from meshbridge.spec import Bridge
from meshbridge.spec.models import aws_region

if TYPE_CHECKING:
    from meshbridge.aws.provision import AwsTarget, Plan, Report

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
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")]
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
    rows = [(a.verb, a.kind, a.name, a.detail) for a in plan.actions if a.changes or not only_changes]
    if rows:
        out.print(table(["ACTION", "RESOURCE", "NAME", "DETAIL"], rows))


def _print_notes(report: Report) -> None:
    for note in report.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")


@app.command("deploy")
def deploy_cmd(
    file: BridgeFile = DEFAULT_BRIDGE,
    dry_run: DryRun = False,
    profile: Profile = None,
    region: Region = None,
    write_host: WriteBackendHost = False,
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
    """
    from meshbridge.aws.provision import deploy

    bridge = read_bridge(file)
    target = _connect(bridge, profile, region)
    report = deploy(bridge, file, target, dry_run=dry_run, write_backend_host=write_host, progress=_progress)
    plan = report.plan
    if dry_run:
        _print_plan(plan, only_changes=False)
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
        if not typer.confirm(f"Delete {len(plan.changes)} resources in {target.region}?", default=False):
            err.print("cancelled; nothing was deleted")
            raise typer.Exit(1)
    report = destroy(bridge, target, progress=_progress)
    out.print(f"Deleted: {report.plan.summary()}.")


@app.command("status")
def status_cmd(
    file: BridgeFile = DEFAULT_BRIDGE,
    profile: Profile = None,
    region: Region = None,
    write_host: WriteBackendHost = False,
) -> None:
    """Show the ALB's DNS name, its listeners and target health, the function and the role.

    MANAGED says whether a resource carries meshbridge's tags for this bridge. A Lambda target shows
    'unavailable' with reason Target.HealthCheckDisabled when health checks are off (the default for
    Lambda target groups): that is normal, traffic still flows.
    """
    from meshbridge.aws.provision import status, write_backend_host
    from meshbridge.aws.provision.desired import aws_section

    bridge = read_bridge(file)
    aws = aws_section(bridge)
    target = _connect(bridge, profile, region)
    st = status(bridge, target)
    err.print(escape(str(st.identity)))
    obs = st.observed
    n = {k: ("yes" if v else "no") for k, v in st.ours.items()}
    fn, role, tg, lb = obs.function, obs.role, obs.target_group, obs.load_balancer
    rows: list[tuple[str, str, str, str, str]] = [
        ("IAM role", aws.function.execution_role_name, "present" if role else "absent", n.get("IAM role", "-"), ""),
        (
            "Lambda function",
            aws.function.function_name,
            (fn.state or "present") if fn else "absent",
            n.get("Lambda function", "-"),
            f"{fn.runtime}, {fn.handler}, {fn.memory_size} MB, {fn.timeout} s" if fn else "",
        ),
        (
            "target group",
            aws.target_group_name,
            "present" if tg else "absent",
            n.get("target group", "-"),
            f"TargetType {tg.target_type}" if tg else "",
        ),
        (
            "load balancer",
            aws.load_balancer_name,
            lb.state if lb else "absent",
            n.get("load balancer", "-"),
            f"{lb.scheme}, {lb.dns_name}" if lb else "",
        ),
    ]
    out.print(table(["RESOURCE", "NAME", "STATE", "MANAGED", "DETAIL"], rows))
    if lb is None:
        out.print("\nnot deployed: run 'meshbridge aws deploy'")
        return
    out.print(f"\nDNS name: {lb.dns_name}\n")
    if obs.listeners:
        arn_names = {tg.arn: tg.name} if tg else {}
        out.print(
            table(
                ["LISTENER", "PROTOCOL", "PORT", "CERTIFICATE", "FORWARDS TO"],
                [
                    (
                        li.label,
                        li.protocol,
                        li.port,
                        ", ".join(li.certificate_arns) or "-",
                        ", ".join(arn_names.get(a, a) for a in li.forward_target_group_arns) or "-",
                    )
                    for li in obs.listeners
                ],
            )
        )
    else:
        out.print("no listeners")
    out.print("")
    if tg is not None and tg.health:
        out.print(
            table(
                ["TARGET", "STATE", "REASON", "DESCRIPTION"],
                [(h.target_id, h.state, h.reason or "-", h.description or "-") for h in tg.health],
            )
        )
    else:
        out.print("no registered targets")
    if write_host:
        export = bridge.aws_export().name
        _said_host(file, export, lb.dns_name, write_backend_host(file, export, lb.dns_name))


def _connect(bridge: Bridge, profile: str | None, region: str | None) -> AwsTarget:
    """The AWS target for the bridge: its ``aws`` section must exist (checked first: the clearer error)."""
    from meshbridge.aws.provision import connect
    from meshbridge.aws.provision.desired import aws_section

    return connect(profile=profile, region=region, spec_region=aws_section(bridge).region)


def _said_host(file: Path, export: str, dns_name: str, written: bool) -> None:
    if written:
        out.print(f"wrote spec.exports[{export}].backend.host = {dns_name.lower()} into {file}")
    else:
        out.print(f"{file} already has spec.exports[{export}].backend.host = {dns_name.lower()}")
