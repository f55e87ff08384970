"""The three operations behind ``meshbridge aws deploy|destroy|status``: observe, plan, execute, report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meshbridge.aws.provision.desired import aws_section, desired_state, names_of
from meshbridge.aws.provision.execute import Executor, Progress, Waits
from meshbridge.aws.provision.observe import load_balancer, observe
from meshbridge.aws.provision.package import build_package
from meshbridge.aws.provision.plan import Action, Plan, plan_deploy, plan_destroy, plan_offline
from meshbridge.aws.provision.session import AwsTarget, call, reachable
from meshbridge.aws.provision.state import Observed
from meshbridge.aws.provision.writeback import write_backend_host as write_host
from meshbridge.errors import AwsError
from meshbridge.spec.models import Bridge


@dataclass(frozen=True)
class Identity:
    """Who is calling AWS (``sts:GetCallerIdentity``) and where."""

    account: str
    arn: str
    region: str
    endpoint_url: str | None

    def __str__(self) -> str:
        where = f", endpoint {self.endpoint_url}" if self.endpoint_url else ""
        return f"AWS account {self.account} as {self.arn}, region {self.region}{where}"


@dataclass(frozen=True)
class Report:
    """The outcome of ``deploy`` or ``destroy``.

    Attributes:
        identity: who ran it, where; ``None`` for an offline dry run (nothing was asked of AWS).
        plan: the plan (for a dry run: what would happen).
        applied: the actions executed (empty for a dry run, or when there was nothing to do).
        dry_run: whether anything was executed.
        dns_name: the ALB's DNS name after a deploy (``None`` on a dry run before it exists, or after destroy).
        backend_host_written: whether the DNS name was written into the bridge file just now (``False``
            also when it was already there, or not asked for).
        notes: things the user should know (e.g. the backend host in the spec is not the ALB).
    """

    identity: Identity | None
    plan: Plan
    applied: tuple[Action, ...]
    dry_run: bool
    dns_name: str | None = None
    backend_host_written: bool = False
    notes: tuple[str, ...] = ()
    offline: str = ""
    """Why an offline dry run did not read the account (no credentials, no network, ``--offline``), else ``""``."""


@dataclass(frozen=True)
class Status:
    """What ``aws status`` shows: the resources of the bridge as they are now (``None``: missing)."""

    identity: Identity
    observed: Observed
    ours: dict[str, bool]
    """For each present resource kind, whether it carries meshbridge's tags for this bridge."""


def identity(target: AwsTarget) -> Identity:
    """Who the credentials are (``sts:GetCallerIdentity``; needs no permission).

    Raises:
        AwsError: no or rejected credentials, or the endpoint is unreachable.
    """
    got = call("identify the AWS caller", target.sts.get_caller_identity)
    return Identity(got.get("Account", "?"), got.get("Arn", "?"), target.region, target.endpoint_url)


def deploy(
    bridge: Bridge,
    bridge_file: Path,
    target: AwsTarget,
    *,
    dry_run: bool = False,
    offline: bool = False,
    write_backend_host: bool = False,
    progress: Progress = lambda _line: None,
    waits: Waits | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Report:
    """Create or update the Lambda, its execution role, target group, permission, internal ALB and listeners.

    Before any AWS call that changes something: the handler file is checked (it exists, is Python, defines
    the function), the bridge's resources and the network are described, and the plan is computed. A
    plan with problems is never executed. A second run finds everything up to date and changes nothing.

    Args:
        bridge: the validated bridge.
        bridge_file: its path (the handler file is relative to its folder).
        target: where (:func:`meshbridge.aws.provision.session.connect`).
        dry_run: compute and return the plan only. Without credentials, or when AWS cannot be reached (one
            quick attempt), the plan comes from the spec alone (:func:`plan_offline`; ``Report.offline`` says
            why), and no other AWS call is made.
        offline: with ``dry_run``: never contact AWS, plan from the spec alone.
        write_backend_host: after the deploy, write the ALB's DNS name into ``bridge_file`` as the
            export's ``backend.host`` (not on a dry run).
        progress: one line per step.
        waits: bounds of the waits (defaults: botocore's).
        sleep: how to pause between IAM propagation retries (default ``time.sleep``).

    Returns:
        The report. For a dry run its ``plan.problems`` may be non-empty.

    Raises:
        AwsError: the bridge has no ``aws`` section; the handler is unusable; the plan has problems (not a
            dry run; nothing is changed); an AWS call failed (the message says what was done); or the
            bridge file cannot be written.
    """
    aws = aws_section(bridge)
    package = build_package(aws.function.handler, bridge_file.parent)
    desired = desired_state(bridge, target.region, package)
    if dry_run:
        found = "--offline: AWS was not contacted" if offline else reachable(target)
        if isinstance(found, str):
            return Report(None, plan_offline(desired), (), True, offline=found)
        who = Identity(found.get("Account", "?"), found.get("Arn", "?"), target.region, target.endpoint_url)
    else:
        who = identity(target)
    progress(str(who))
    observed = observe(target, desired.names, desired)
    plan = plan_deploy(desired, observed)
    if dry_run:
        dns = observed.load_balancer.dns_name if observed.load_balancer else None
        return Report(who, plan, (), True, dns, notes=_notes(bridge, observed, dns, written=False))
    if plan.problems:
        raise AwsError(
            f"cannot deploy bridge {bridge.metadata.name!r}; nothing was changed:\n"
            + "\n".join(f"  - {p}" for p in plan.problems)
        )
    executor = Executor(target, progress, waits, **({"sleep": sleep} if sleep else {}))
    applied = executor.deploy(plan, desired, observed)
    lb = load_balancer(target, desired.names.load_balancer)
    dns = lb.dns_name if lb else None
    written = False
    if write_backend_host and dns:
        written = write_host(bridge_file, bridge.aws_export().name, dns)
    notes = _notes(bridge, observed, dns, written=write_backend_host)
    return Report(who, plan, tuple(applied), False, dns, written, notes)


def destroy(
    bridge: Bridge,
    target: AwsTarget,
    *,
    dry_run: bool = False,
    progress: Progress = lambda _line: None,
    waits: Waits | None = None,
) -> Report:
    """Delete what ``deploy`` created for this bridge, and only that, in dependency order.

    Resources with the bridge's names but without meshbridge's tags (or another bridge's) are left
    alone and reported as ``skip``. The handler file is not needed.

    Args:
        bridge: the validated bridge.
        target: where.
        dry_run: compute and return the plan only.
        progress: one line per step.
        waits: bounds of the waits.

    Returns:
        The report.

    Raises:
        AwsError: the bridge has no ``aws`` section, or an AWS call failed (the message says what was
            deleted before).
    """
    names = names_of(bridge, target.region)
    who = identity(target)
    progress(str(who))
    plan = plan_destroy(names, observe(target, names))
    if dry_run:
        return Report(who, plan, (), True)
    applied = Executor(target, progress, waits).destroy(plan)
    return Report(who, plan, tuple(applied), False)


def status(bridge: Bridge, target: AwsTarget) -> Status:
    """Describe the bridge's AWS resources: ALB (DNS name, state), listeners, target health, function, role.

    Raises:
        AwsError: the bridge has no ``aws`` section, or a describe call failed.
    """
    names = names_of(bridge, target.region)
    who = identity(target)
    obs = observe(target, names)
    present = {
        "IAM role": obs.role.tags if obs.role else None,
        "Lambda function": obs.function.tags if obs.function else None,
        "target group": obs.target_group.tags if obs.target_group else None,
        "load balancer": obs.load_balancer.tags if obs.load_balancer else None,
    }
    ours = {k: names.owner(v) == "ours" for k, v in present.items() if v is not None}
    return Status(who, obs, ours)


def _notes(bridge: Bridge, observed: Observed, dns: str | None, *, written: bool) -> tuple[str, ...]:
    """Hints after a deploy; ``written``: the DNS name is (now) the backend host."""
    if not dns:
        return ()
    ex = bridge.aws_export()
    dns = dns.lower()
    host = dns if written else ex.backend.host
    notes = []
    if host != dns:
        notes.append(
            f"spec.exports[{ex.name}].backend.host is {host}, not the ALB's DNS name {dns}: pass "
            "--write-backend-host to write it, or point a DNS record for that host at the ALB"
        )
    cert = observed.certificate
    if host == dns and ex.backend.tls.mode == "SIMPLE" and cert and cert.domain_name and ex.backend.tls.sni is None:
        notes.append(
            f"the HTTPS listener's certificate is for {cert.domain_name}, not for the ALB's DNS name, which is the "
            f"backend host: set spec.exports[{ex.name}].backend.tls.sni to {cert.domain_name} and "
            f"backend.tls.subjectAltNames to [{cert.domain_name}] so the gateway's certificate check passes"
        )
    return tuple(notes)
