"""The planner: desired state + observed state → an ordered list of actions. Pure (no AWS calls).

A deploy plan creates what is missing, updates what drifted and keeps the rest, in dependency order:

    IAM role → Lambda function → target group → Lambda permission → target → load balancer → listeners

(the permission must exist before Elastic Load Balancing accepts the function as a target, see "Lambda
functions as targets" in the ALB user guide; listeners need the load balancer and the target group). A
destroy plan deletes, in the reverse order, only what carries meshbridge's tags for this bridge, and
lists as ``skip`` what has one of the bridge's names but is not meshbridge's.

Preflight problems (subnets in fewer than two Availability Zones, a certificate from another region, a
same-named resource meshbridge does not own, ...) are collected in :attr:`Plan.problems`; a plan with
problems is never executed.

An offline plan (:func:`plan_offline`: ``aws deploy --dry-run`` without credentials or network) comes from
the spec alone: every resource is created if absent, only the checks that need no account run (the
certificate's region, read from its ARN), and :attr:`Plan.unchecked` lists the others.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from meshbridge.aws.provision.state import (
    BRIDGE_KEY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    Desired,
    ListenerObs,
    ListenerSpec,
    Names,
    Observed,
    Ownership,
    ResourceKind,
)

Verb = Literal["create", "update", "keep", "delete", "skip"]
Op = Literal[
    "trust-policy",
    "attach-policy",
    "configuration",
    "code",
    "attributes",
    "replace",
    "register",
    "deregister",
    "subnets",
    "security-groups",
    "modify",
]
"""What an ``update`` changes; the executor runs one AWS call (or two) per op."""

MULTI_VALUE_HEADERS = "lambda.multi_value_headers.enabled"
ELB_PRINCIPAL = "elasticloadbalancing.amazonaws.com"


@dataclass(frozen=True)
class Action:
    """One step of a plan.

    Attributes:
        verb: ``create``, ``update``, ``keep`` (up to date), ``delete`` or ``skip`` (left alone, see detail).
        kind: the AWS resource kind.
        name: the resource's name (a listener: ``PROTOCOL:PORT``; a target: the function name).
        detail: what will change, or why nothing will.
        ops: for ``update``, what changes.
        arn: the existing resource's ARN (update, delete).
        stale: for a target, registered targets (function ARNs) to deregister.
    """

    verb: Verb
    kind: ResourceKind
    name: str
    detail: str
    ops: tuple[Op, ...] = ()
    arn: str | None = None
    stale: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        """Whether executing this action calls a mutating AWS API."""
        return self.verb in ("create", "update", "delete")


@dataclass(frozen=True)
class Plan:
    """An ordered list of actions, plus the problems that forbid executing it.

    Attributes:
        operation: ``deploy`` or ``destroy``.
        names: the names the plan is about (bridge, region, resources).
        actions: in execution order.
        problems: each names the object, the problem and the fix; non-empty means "do not execute".
        unchecked: for an offline plan (not compared with the account), what could not be checked, each
            naming the object; empty for a plan made from what AWS has.
    """

    operation: Literal["deploy", "destroy"]
    names: Names
    actions: tuple[Action, ...]
    problems: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def offline(self) -> bool:
        """Whether the plan comes from the spec alone (its ``create`` actions are 'create if absent')."""
        return bool(self.unchecked)

    @property
    def changes(self) -> tuple[Action, ...]:
        """The actions that change something."""
        return tuple(a for a in self.actions if a.changes)

    @property
    def is_noop(self) -> bool:
        """True when executing the plan would change nothing."""
        return not self.changes

    def summary(self) -> str:
        """E.g. ``2 to create, 1 to update, 0 to delete, 4 unchanged, 1 skipped``; offline: ``8 to create if
        absent (not compared with the account)``."""
        n = Counter(a.verb for a in self.actions)
        if self.offline:
            return f"{n['create']} to create if absent (not compared with the account)"
        parts = [f"{n['create']} to create", f"{n['update']} to update", f"{n['delete']} to delete"]
        parts.append(f"{n['keep']} unchanged")
        if n["skip"]:
            parts.append(f"{n['skip']} skipped")
        return ", ".join(parts)


# -- deploy ----------------------------------------------------------------------------------------------


def plan_deploy(desired: Desired, observed: Observed) -> Plan:
    """Compute the deploy plan.

    Args:
        desired: the spec's desired state.
        observed: what AWS has, including the network facts (subnets, security groups, certificate).

    Returns:
        The plan. ``problems`` lists every preflight failure and every same-named resource meshbridge
        does not own (it is never modified); the actions are still computed so a dry run can show them.
    """
    problems = list(preflight_problems(desired, observed))
    actions = [
        _role_action(desired, observed, problems),
        _function_action(desired, observed, problems),
        _target_group_action(desired, observed, problems),
        _permission_action(desired, observed),
        _target_action(desired, observed),
        _load_balancer_action(desired, observed, problems),
        *_listener_actions(desired, observed, problems),
    ]
    return Plan("deploy", desired.names, tuple(actions), tuple(problems))


def _role_action(desired: Desired, observed: Observed, problems: list[str]) -> Action:
    """The IAM role: created, skipped (not ours), or its trust policy and managed policy brought up to date."""
    n = desired.names
    role = observed.role
    if role is None:
        return Action("create", "IAM role", n.role, f"trusts {desired.trust_service}; AWSLambdaBasicExecutionRole")
    if _refuse(problems, n, "IAM role", n.role, role.tags, "spec.aws.function.roleName"):
        return Action("skip", "IAM role", n.role, "not meshbridge's (see problems)", arn=role.arn)
    ops: list[Op] = []
    why = []
    if desired.trust_service not in role.trusts:
        ops.append("trust-policy")
        why.append(f"trust policy does not let {desired.trust_service} assume the role")
    if desired.managed_policy_arn not in role.attached_policy_arns:
        ops.append("attach-policy")
        why.append("AWSLambdaBasicExecutionRole is not attached")
    return _update_or_keep("IAM role", n.role, ops, why, role.arn)


def _function_action(desired: Desired, observed: Observed, problems: list[str]) -> Action:
    """The Lambda function: created, skipped (not ours), or its configuration and code updated."""
    n = desired.names
    fn = observed.function
    pkg = desired.package
    if fn is None:
        return Action(
            "create",
            "Lambda function",
            n.function,
            f"{desired.runtime}, Handler {pkg.handler}, {desired.memory_size} MB, {desired.timeout} s, "
            f"CodeSha256 {pkg.code_sha256}",
        )
    if _refuse(problems, n, "Lambda function", n.function, fn.tags, "spec.aws.function.functionName"):
        return Action("skip", "Lambda function", n.function, "not meshbridge's (see problems)", arn=fn.arn)
    ops: list[Op] = []
    why: list[str] = []
    diffs = [
        (f"Runtime {fn.runtime} → {desired.runtime}", fn.runtime != desired.runtime),
        (f"Handler {fn.handler} → {pkg.handler}", fn.handler != pkg.handler),
        (f"MemorySize {fn.memory_size} → {desired.memory_size}", fn.memory_size != desired.memory_size),
        (f"Timeout {fn.timeout} → {desired.timeout}", fn.timeout != desired.timeout),
        (f"Role {fn.role_arn} → role/{n.role}", not fn.role_arn.endswith(f":role/{n.role}")),
    ]
    if any(changed for _, changed in diffs):
        ops.append("configuration")
        why.extend(text for text, changed in diffs if changed)
    if fn.code_sha256 != pkg.code_sha256:
        ops.append("code")
        why.append(f"code changed (CodeSha256 {fn.code_sha256} → {pkg.code_sha256})")
    return _update_or_keep("Lambda function", n.function, ops, why, fn.arn)


def _target_group_action(desired: Desired, observed: Observed, problems: list[str]) -> Action:
    """The target group: created, skipped (not ours), or its multi-value headers attribute updated; a target
    group of another type is a problem (the type cannot change)."""
    n = desired.names
    tg = observed.target_group
    mvh = "true" if desired.multi_value_headers else "false"
    if tg is None:
        return Action("create", "target group", n.target_group, f"TargetType lambda, {MULTI_VALUE_HEADERS}={mvh}")
    if _refuse(problems, n, "target group", n.target_group, tg.tags, "spec.aws.targetGroupName"):
        return Action("skip", "target group", n.target_group, "not meshbridge's (see problems)", arn=tg.arn)
    if tg.target_type != "lambda":
        problems.append(
            f"target group {n.target_group!r} has TargetType {tg.target_type}, not lambda, and a target "
            "group's type cannot be changed. Fix: run 'meshbridge aws destroy' and deploy again, or set "
            "spec.aws.targetGroupName to a new name"
        )
    current = tg.attributes.get(MULTI_VALUE_HEADERS, "false")
    attr_ops: list[Op] = ["attributes"] if current != mvh else []
    return _update_or_keep(
        "target group", n.target_group, attr_ops, [f"{MULTI_VALUE_HEADERS} {current} → {mvh}"], tg.arn
    )


def _permission_action(desired: Desired, observed: Observed) -> Action:
    """The Lambda permission: recreated with its function, replaced when the target group's ARN changes."""
    n = desired.names
    perm, fn, tg = observed.permission, observed.function, observed.target_group
    tg_usable = tg is not None and tg.target_type == "lambda"
    grant = f"lambda:InvokeFunction for {ELB_PRINCIPAL}, SourceArn target group {n.target_group}"
    if perm is None or fn is None:
        return Action("create", "Lambda permission", n.statement_id, grant)
    if not tg_usable or perm.source_arn != (tg.arn if tg else None) or perm.principal != ELB_PRINCIPAL:
        return Action("update", "Lambda permission", n.statement_id, f"replace: {grant}", ops=("replace",))
    return Action("keep", "Lambda permission", n.statement_id, "up to date")


def _target_action(desired: Desired, observed: Observed) -> Action:
    """The target: the function registered in the target group (a lambda target group holds one function),
    other functions deregistered."""
    n = desired.names
    fn, tg = observed.function, observed.target_group
    registered = tg.targets if tg is not None else ()
    fn_arn = fn.arn if fn is not None else None
    stale = tuple(t for t in registered if t != fn_arn and not t.endswith(f":function:{n.function}"))
    if tg is None or fn is None or fn_arn not in registered:
        verb: Verb = "update" if stale else "create"
        ops: list[Op] = ["deregister", "register"] if stale else []
        detail = f"register function {n.function} in target group {n.target_group}"
        if stale:
            detail += f"; deregister {', '.join(stale)}"
        return Action(verb, "target", n.function, detail, ops=tuple(ops), stale=stale)
    if stale:
        return Action(
            "update",
            "target",
            n.function,
            f"deregister {', '.join(stale)}",
            ops=("deregister",),
            stale=stale,
        )
    return Action("keep", "target", n.function, "registered")


def _load_balancer_action(desired: Desired, observed: Observed, problems: list[str]) -> Action:
    """The load balancer: created, skipped (not ours), or its subnets and security groups updated; a type,
    scheme or VPC that differs is a problem (they cannot change)."""
    n = desired.names
    lb = observed.load_balancer
    subnets = ", ".join(desired.subnet_ids)
    if lb is None:
        sgs = f", SecurityGroups {', '.join(desired.security_group_ids)}" if desired.security_group_ids else ""
        return Action(
            "create",
            "load balancer",
            n.load_balancer,
            f"internal application load balancer, Subnets {subnets}{sgs}",
        )
    if _refuse(problems, n, "load balancer", n.load_balancer, lb.tags, "spec.aws.loadBalancerName"):
        return Action("skip", "load balancer", n.load_balancer, "not meshbridge's (see problems)", arn=lb.arn)
    fixed = [
        ("Type", lb.type, "application"),
        ("Scheme", lb.scheme, "internal"),
        ("VpcId", lb.vpc_id, desired.vpc_id),
    ]
    for attr, current_value, wanted in fixed:
        if current_value != wanted:
            problems.append(
                f"load balancer {n.load_balancer!r} has {attr} {current_value}, not {wanted}, and {attr} cannot be "
                "changed. Fix: run 'meshbridge aws destroy' and deploy again, or set "
                "spec.aws.loadBalancerName to a new name"
            )
    ops: list[Op] = []
    why = []
    if lb.subnet_ids != frozenset(desired.subnet_ids):
        ops.append("subnets")
        why.append(f"Subnets {', '.join(sorted(lb.subnet_ids))} → {subnets}")
    if desired.security_group_ids and lb.security_group_ids != frozenset(desired.security_group_ids):
        ops.append("security-groups")
        why.append(
            f"SecurityGroups {', '.join(sorted(lb.security_group_ids))} → {', '.join(desired.security_group_ids)}"
        )
    return _update_or_keep("load balancer", n.load_balancer, ops, why, lb.arn)


def _listener_actions(desired: Desired, observed: Observed, problems: list[str]) -> list[Action]:
    """The listeners of the spec, by port, then the deletion of our listeners no longer in it."""
    n = desired.names
    lb, tg = observed.load_balancer, observed.target_group
    lb_ours = lb is not None and n.owner(lb.tags) == "ours"
    by_port = {li.port: li for li in observed.listeners} if lb_ours else {}
    tg_arn = tg.arn if tg is not None and n.owner(tg.tags) == "ours" else None
    actions = []
    for want in desired.listeners:
        have = by_port.pop(want.port, None)
        actions.append(_listener_action(want, have, tg_arn, n, problems))
    for extra in sorted(by_port.values(), key=lambda li: li.port):
        if n.owner(extra.tags) == "ours":
            actions.append(Action("delete", "listener", extra.label, "no longer in the spec", arn=extra.arn))
    return actions


def plan_offline(desired: Desired) -> Plan:
    """The deploy plan from the spec alone, for a dry run that cannot read the account (pure).

    Every resource is created if absent (an existing one would be updated, kept, or refused when it is not
    meshbridge's: that needs the account). The checks that need no account run (the certificate's region,
    from its ARN); :attr:`Plan.unchecked` names each of the others.
    """
    plan = plan_deploy(desired, Observed())
    n = desired.names
    unchecked = [
        f"whether the {len(plan.actions)} resources exist already in {n.region} (an existing one is updated or "
        "kept; one with the same name that meshbridge did not create is refused)",
        f"spec.aws.vpcId: that VPC {desired.vpc_id} exists in {n.region}",
        f"spec.aws.subnetIds: that {', '.join(desired.subnet_ids)} exist in VPC {desired.vpc_id} and span two "
        "Availability Zones",
    ]
    if desired.security_group_ids:
        unchecked.append(
            f"spec.aws.securityGroupIds: that {', '.join(desired.security_group_ids)} belong to VPC {desired.vpc_id}"
        )
    problems = _certificate_region_problems(desired)
    arn = desired.certificate_arn
    if arn is not None and certificate_region(arn) is not None and not problems:
        unchecked.append(f"spec.aws.certificateArn: that the certificate is ISSUED in ACM in {n.region}")
    unchecked.append("that the AWS identity may make the calls (the IAM policy in docs/aws.md)")
    return Plan("deploy", n, plan.actions, tuple(problems), tuple(unchecked))


def _listener_action(
    want: ListenerSpec, have: ListenerObs | None, tg_arn: str | None, n: Names, problems: list[str]
) -> Action:
    target = f"forward to target group {n.target_group}"
    if want.certificate_arn:
        target = f"certificate {want.certificate_arn}; {target}"
    if have is None:
        return Action("create", "listener", want.label, target)
    owner = n.owner(have.tags)
    if owner != "ours":
        problems.append(
            f"listener on port {have.port} of load balancer {n.load_balancer!r} was not created by meshbridge "
            f"{_why_not_ours(owner, have.tags)}; meshbridge will not modify it. Fix: delete that listener, or "
            "tag it app.kubernetes.io/managed-by=meshbridge if meshbridge should manage it"
        )
        return Action("skip", "listener", want.label, "not meshbridge's (see problems)", arn=have.arn)
    why = []
    if have.protocol != want.protocol:
        why.append(f"Protocol {have.protocol} → {want.protocol}")
    if want.certificate_arn and want.certificate_arn not in have.certificate_arns:
        why.append(f"Certificates → {want.certificate_arn}")
    if want.ssl_policy and have.ssl_policy != want.ssl_policy:
        why.append(f"SslPolicy {have.ssl_policy} → {want.ssl_policy}")
    if tg_arn is None or have.forward_target_group_arns != (tg_arn,):
        why.append(f"default action → {target}")
    return _update_or_keep("listener", want.label, ["modify"] if why else [], why, have.arn)


def preflight_problems(desired: Desired, observed: Observed) -> list[str]:
    """Problems found before anything is created: the VPC, subnets, security groups and certificate.

    Reproduces the checks ``CreateLoadBalancer`` and ``CreateListener`` would fail on halfway through a
    deploy: an Application Load Balancer needs subnets in at least two Availability Zones of its VPC
    (ELB API reference, ``CreateLoadBalancer``: "You must specify subnets from at least two Availability
    Zones"), security groups of the same VPC, and an HTTPS listener an issued ACM certificate of its own
    region ("To use an ACM certificate with Elastic Load Balancing, you must request or import the
    certificate in the same Region as your load balancer", ACM user guide, "Supported Regions").
    """
    n = desired.names
    problems: list[str] = []
    if observed.vpc_exists is False:
        problems.append(
            f"spec.aws.vpcId: VPC {desired.vpc_id} does not exist in region {n.region}. Fix: use the id of the "
            "VPC your EKS cluster runs in (aws ec2 describe-vpcs)"
        )
    found = {s.subnet_id: s for s in observed.subnets}
    missing = [s for s in desired.subnet_ids if s not in found]
    if missing:
        problems.append(
            f"spec.aws.subnetIds: {', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not exist in "
            f"region {n.region}. Fix: use subnet ids of VPC {desired.vpc_id} (aws ec2 describe-subnets)"
        )
    elsewhere = [s for s in observed.subnets if s.vpc_id != desired.vpc_id]
    if elsewhere:
        problems.append(
            "spec.aws.subnetIds: "
            + ", ".join(f"{s.subnet_id} is in {s.vpc_id}" for s in elsewhere)
            + f", not in spec.aws.vpcId {desired.vpc_id}. Fix: use subnets of VPC {desired.vpc_id}"
        )
    zones = sorted({s.availability_zone for s in observed.subnets})
    if found and not missing and len(zones) < 2:
        listing = ", ".join(f"{s.subnet_id} ({s.availability_zone})" for s in observed.subnets)
        problems.append(
            f"spec.aws.subnetIds: the subnets are all in one Availability Zone ({listing}); an Application Load "
            "Balancer needs subnets in at least two Availability Zones. Fix: add a subnet of another "
            "Availability Zone"
        )
    groups = {g.group_id: g for g in observed.security_groups}
    missing_sg = [g for g in desired.security_group_ids if g not in groups]
    if missing_sg:
        problems.append(
            f"spec.aws.securityGroupIds: {', '.join(missing_sg)} {'does' if len(missing_sg) == 1 else 'do'} not "
            f"exist in region {n.region}. Fix: use security groups of VPC {desired.vpc_id}"
        )
    other_vpc = [g for g in observed.security_groups if g.vpc_id != desired.vpc_id]
    if other_vpc:
        problems.append(
            "spec.aws.securityGroupIds: "
            + ", ".join(f"{g.group_id} belongs to {g.vpc_id}" for g in other_vpc)
            + f", not to {desired.vpc_id}. Fix: use security groups of the ALB's VPC"
        )
    arn = desired.certificate_arn
    region_problems = _certificate_region_problems(desired)
    problems += region_problems
    if arn is not None and not region_problems:
        if observed.certificate is not None and observed.certificate.status is None:
            problems.append(
                f"spec.aws.certificateArn: certificate {arn} does not exist in ACM in {n.region} (or this account "
                "cannot see it). Fix: use the ARN that 'aws acm list-certificates' shows"
            )
        elif observed.certificate is not None and observed.certificate.status != "ISSUED":
            problems.append(
                f"spec.aws.certificateArn: certificate {arn} is {observed.certificate.status}; an HTTPS listener "
                "needs an ISSUED certificate. Fix: complete its validation, or use another certificate"
            )
    return problems


def _certificate_region_problems(desired: Desired) -> list[str]:
    """An ACM certificate of another region than the ALB's (read from its ARN: needs no account)."""
    arn, region = desired.certificate_arn, desired.names.region
    cert_region = certificate_region(arn) if arn is not None else None
    if cert_region is None or cert_region == region:
        return []
    return [
        f"spec.aws.certificateArn: the certificate is in region {cert_region}, but the load balancer is in "
        f"{region}; an ALB can only use ACM certificates of its own region. Fix: request or import "
        f"the certificate in {region} (aws acm request-certificate --region {region}) and use its ARN"
    ]


def certificate_region(arn: str) -> str | None:
    """The region of an ACM certificate ARN (``arn:aws:acm:REGION:ACCOUNT:certificate/ID``).

    Returns:
        The region, or ``None`` for an ARN that is not ACM's (an IAM server certificate is global).
    """
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "acm":
        return parts[3]
    return None


# -- destroy ---------------------------------------------------------------------------------------------


def plan_destroy(names: Names, observed: Observed) -> Plan:
    """Compute the destroy plan: delete what meshbridge created for this bridge, nothing else.

    Order: listeners → load balancer → target (deregistration) → target group → Lambda permission →
    Lambda function → IAM role. A resource that has one of the bridge's names but lacks meshbridge's tags
    (or belongs to another bridge) gets a ``skip`` action saying so; so does a resource still used by
    something meshbridge does not own (a foreign listener on its load balancer, a foreign load balancer
    in front of its target group), because deleting it would break that.

    Args:
        names: the bridge's names.
        observed: what AWS has under those names.

    Returns:
        The plan (never with problems: refusals are ``skip`` actions).
    """
    lb_actions, lb_deleted = _destroy_load_balancer(names, observed)
    actions = [
        *lb_actions,
        *_destroy_target_group(names, observed, lb_deleted),
        *_destroy_function(names, observed),
    ]
    role = observed.role
    if role is not None:
        if names.owner(role.tags) == "ours":
            actions.append(
                Action("delete", "IAM role", names.role, "after detaching its managed policies", arn=role.arn)
            )
        else:
            actions.append(_skip_foreign("IAM role", names.role, role.tags, names))
    return Plan("destroy", names, tuple(actions))


def _destroy_load_balancer(n: Names, observed: Observed) -> tuple[list[Action], bool]:
    """Deleting the listeners and the load balancer, and whether it is deleted: one carrying a listener
    meshbridge did not create is kept (that listener is its user)."""
    actions: list[Action] = []
    lb = observed.load_balancer
    lb_ours = lb is not None and n.owner(lb.tags) == "ours"
    foreign_listeners = []
    if lb_ours:
        for li in sorted(observed.listeners, key=lambda x: x.port):
            if n.owner(li.tags) == "ours":
                actions.append(
                    Action("delete", "listener", li.label, f"on load balancer {n.load_balancer}", arn=li.arn)
                )
            else:
                foreign_listeners.append(li)
                actions.append(
                    Action(
                        "skip", "listener", li.label, f"not created by meshbridge {_why_not_ours('foreign', li.tags)}"
                    )
                )
    if lb is None:
        return actions, False
    if not lb_ours:
        actions.append(_skip_foreign("load balancer", n.load_balancer, lb.tags, n))
        return actions, False
    if foreign_listeners:
        labels = ", ".join(li.label for li in foreign_listeners)
        actions.append(
            Action(
                "skip",
                "load balancer",
                n.load_balancer,
                f"it carries listeners meshbridge did not create ({labels}); delete them first",
                arn=lb.arn,
            )
        )
        return actions, False
    actions.append(Action("delete", "load balancer", n.load_balancer, f"DNS name {lb.dns_name}", arn=lb.arn))
    return actions, True


def _destroy_target_group(n: Names, observed: Observed, lb_deleted: bool) -> list[Action]:
    """Deregistering the target and deleting the target group, unless a load balancer that stays uses it."""
    tg, lb = observed.target_group, observed.load_balancer
    if tg is None:
        return []
    if n.owner(tg.tags) != "ours":
        return [_skip_foreign("target group", n.target_group, tg.tags, n)]
    actions = []
    if tg.targets:
        actions.append(
            Action(
                "delete",
                "target",
                n.function,
                f"deregister {', '.join(tg.targets)}",
                arn=tg.arn,
                stale=tg.targets,
            )
        )
    users = [a for a in tg.load_balancer_arns if not (lb_deleted and lb is not None and a == lb.arn)]
    if users:
        actions.append(
            Action(
                "skip",
                "target group",
                n.target_group,
                f"still used by load balancer {', '.join(users)}; remove that use first",
                arn=tg.arn,
            )
        )
    else:
        actions.append(Action("delete", "target group", n.target_group, "TargetType lambda", arn=tg.arn))
    return actions


def _destroy_function(n: Names, observed: Observed) -> list[Action]:
    """Deleting the Lambda permission and the function, when the function is meshbridge's."""
    fn = observed.function
    if fn is None:
        return []
    fn_ours = n.owner(fn.tags) == "ours"
    actions = []
    if observed.permission is not None:
        if fn_ours:
            actions.append(Action("delete", "Lambda permission", n.statement_id, f"from function {n.function}"))
        else:
            actions.append(
                Action("skip", "Lambda permission", n.statement_id, f"function {n.function} is not meshbridge's")
            )
    if fn_ours:
        actions.append(Action("delete", "Lambda function", n.function, "and its versions", arn=fn.arn))
    else:
        actions.append(_skip_foreign("Lambda function", n.function, fn.tags, n))
    return actions


# -- helpers ---------------------------------------------------------------------------------------------


def _update_or_keep(kind: ResourceKind, name: str, ops: list[Op], why: list[str], arn: str) -> Action:
    if ops:
        return Action("update", kind, name, "; ".join(why), ops=tuple(ops), arn=arn)
    return Action("keep", kind, name, "up to date", arn=arn)


def _why_not_ours(owner: Ownership, tags: dict[str, str]) -> str:
    if owner == "other-bridge":
        return f"for this bridge (it belongs to bridge {tags.get(BRIDGE_KEY)!r})"
    return f"(it has no tag {MANAGED_BY_KEY}={MANAGED_BY_VALUE})"


def _refuse(problems: list[str], n: Names, kind: ResourceKind, name: str, tags: dict[str, str], field: str) -> bool:
    """Record a problem and return True when a same-named resource is not this bridge's."""
    owner = n.owner(tags)
    if owner == "ours":
        return False
    problems.append(
        f"{kind} {name!r} already exists in {n.region} but was not created by meshbridge "
        f"{_why_not_ours(owner, tags)}; meshbridge will not modify it. Fix: set {field} to an unused name, or "
        "delete that resource yourself"
    )
    return True


def _skip_foreign(kind: ResourceKind, name: str, tags: dict[str, str], n: Names) -> Action:
    owner = n.owner(tags)
    return Action("skip", kind, name, f"not created by meshbridge {_why_not_ours(owner, tags)}; left alone")
