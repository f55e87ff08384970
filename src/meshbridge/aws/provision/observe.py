"""Read what exists in AWS under the bridge's names. Read-only: only Get/List/Describe calls."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from meshbridge.aws.provision.plan import certificate_region
from meshbridge.aws.provision.session import AwsTarget, call, find
from meshbridge.aws.provision.state import (
    CertificateObs,
    Desired,
    FunctionObs,
    ListenerObs,
    LoadBalancerObs,
    Names,
    Observed,
    PermissionObs,
    RoleObs,
    SecurityGroupObs,
    SubnetObs,
    TargetGroupObs,
    TargetHealthObs,
)


def observe(target: AwsTarget, names: Names, desired: Desired | None = None) -> Observed:
    """Describe the bridge's resources, and (with ``desired``) the network facts deploy checks.

    Args:
        target: where to look.
        names: the bridge's names.
        desired: for a deploy: also describe the VPC, the subnets, the security groups and the ACM
            certificate of the spec.

    Returns:
        What exists; a missing resource is ``None``.

    Raises:
        AwsError: a describe call failed (access denied names the missing action).
    """
    role = _role(target, names.role)
    fn = _function(target, names.function)
    perm = _permission(target, names) if fn is not None else None
    tg = _target_group(target, names.target_group)
    lb = load_balancer(target, names.load_balancer)
    listeners = _listeners(target, lb.arn) if lb is not None else ()
    observed = Observed(role=role, function=fn, permission=perm, target_group=tg, load_balancer=lb, listeners=listeners)
    if desired is None:
        return observed
    return Observed(
        role=role,
        function=fn,
        permission=perm,
        target_group=tg,
        load_balancer=lb,
        listeners=listeners,
        vpc_exists=_vpc_exists(target, desired.vpc_id),
        subnets=_subnets(target, desired.subnet_ids),
        security_groups=_security_groups(target, desired.security_group_ids),
        certificate=_certificate(target, desired),
    )


def _tags(pairs: Iterable[Any] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in pairs or ()}


def _role(target: AwsTarget, name: str) -> RoleObs | None:
    got = find(f"read IAM role {name}", {"NoSuchEntity"}, target.iam.get_role, RoleName=name)
    if got is None:
        return None
    role = got["Role"]
    policies = call(
        f"list the managed policies of IAM role {name}",
        target.iam.list_attached_role_policies,
        RoleName=name,
    )
    return RoleObs(
        name=name,
        arn=role["Arn"],
        tags=_tags(role.get("Tags")),
        trusts=_trusted_services(role.get("AssumeRolePolicyDocument")),
        attached_policy_arns=frozenset(p["PolicyArn"] for p in policies.get("AttachedPolicies", [])),
    )


def _trusted_services(document: Any) -> frozenset[str]:
    """Service principals a trust policy allows ``sts:AssumeRole`` (boto3 hands it decoded, or URL-encoded)."""
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return frozenset()
    if not isinstance(document, dict):
        return frozenset()
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    out: set[str] = set()
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if "sts:AssumeRole" not in actions:
            continue
        principal = st.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        out.update([services] if isinstance(services, str) else services)
    return frozenset(out)


def _function(target: AwsTarget, name: str) -> FunctionObs | None:
    got = find(
        f"read Lambda function {name}", {"ResourceNotFoundException"}, target.lambda_.get_function, FunctionName=name
    )
    if got is None:
        return None
    c = got["Configuration"]
    tags = got.get("Tags")
    if tags is None:
        # GetFunction returns tags only to callers explicitly allowed lambda:ListTags (Lambda API reference,
        # GetFunction, "Tags"); ask for them, so a missing permission is an error, not "not meshbridge's".
        tags = call(f"read the tags of Lambda function {name}", target.lambda_.list_tags, Resource=c["FunctionArn"])[
            "Tags"
        ]
    return FunctionObs(
        name=name,
        arn=c["FunctionArn"],
        tags=dict(tags),
        runtime=c.get("Runtime"),
        handler=c.get("Handler"),
        memory_size=c.get("MemorySize", 128),
        timeout=c.get("Timeout", 3),
        role_arn=c.get("Role", ""),
        code_sha256=c.get("CodeSha256", ""),
        state=c.get("State"),
    )


def _permission(target: AwsTarget, names: Names) -> PermissionObs | None:
    got = find(
        f"read the resource policy of Lambda function {names.function}",
        {"ResourceNotFoundException"},
        target.lambda_.get_policy,
        FunctionName=names.function,
    )
    if got is None:
        return None
    try:
        policy = json.loads(got.get("Policy", "{}"))
    except ValueError:
        return None
    for st in policy.get("Statement", []):
        if st.get("Sid") != names.statement_id:
            continue
        principal = st.get("Principal", {})
        service = principal.get("Service") if isinstance(principal, dict) else principal
        cond = st.get("Condition", {}).get("ArnLike", {})
        source = cond.get("AWS:SourceArn") or cond.get("aws:SourceArn")
        return PermissionObs(statement_id=names.statement_id, principal=service, source_arn=source)
    return None


def _elb_tags(target: AwsTarget, arns: list[str], what: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for i in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs
        got = call(f"read the tags of {what}", target.elbv2.describe_tags, ResourceArns=arns[i : i + 20])
        for d in got.get("TagDescriptions", []):
            out[d.get("ResourceArn", "")] = _tags(d.get("Tags"))
    return out


def _target_group(target: AwsTarget, name: str) -> TargetGroupObs | None:
    got = find(f"read target group {name}", {"TargetGroupNotFound"}, target.elbv2.describe_target_groups, Names=[name])
    if got is None or not got.get("TargetGroups"):
        return None
    tg = got["TargetGroups"][0]
    arn = tg["TargetGroupArn"]
    attrs = call(
        f"read the attributes of target group {name}", target.elbv2.describe_target_group_attributes, TargetGroupArn=arn
    )
    health = call(f"read the targets of target group {name}", target.elbv2.describe_target_health, TargetGroupArn=arn)
    return TargetGroupObs(
        name=name,
        arn=arn,
        tags=_elb_tags(target, [arn], f"target group {name}").get(arn, {}),
        target_type=tg.get("TargetType", ""),
        attributes={a["Key"]: a["Value"] for a in attrs.get("Attributes", []) if "Key" in a and "Value" in a},
        health=tuple(
            TargetHealthObs(
                target_id=d["Target"]["Id"],
                state=d.get("TargetHealth", {}).get("State", "unknown"),
                reason=d.get("TargetHealth", {}).get("Reason"),
                description=d.get("TargetHealth", {}).get("Description"),
            )
            for d in health.get("TargetHealthDescriptions", [])
        ),
        load_balancer_arns=tuple(sorted(set(tg.get("LoadBalancerArns", [])))),
    )


def load_balancer(target: AwsTarget, name: str) -> LoadBalancerObs | None:
    """The load balancer called ``name``, or ``None``.

    Raises:
        AwsError: the describe call failed.
    """
    got = find(
        f"read load balancer {name}", {"LoadBalancerNotFound"}, target.elbv2.describe_load_balancers, Names=[name]
    )
    if got is None or not got.get("LoadBalancers"):
        return None
    lb = got["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    return LoadBalancerObs(
        name=name,
        arn=arn,
        tags=_elb_tags(target, [arn], f"load balancer {name}").get(arn, {}),
        type=lb.get("Type", ""),
        scheme=lb.get("Scheme", ""),
        vpc_id=lb.get("VpcId", ""),
        subnet_ids=frozenset(z["SubnetId"] for z in lb.get("AvailabilityZones", []) if "SubnetId" in z),
        security_group_ids=frozenset(lb.get("SecurityGroups", [])),
        dns_name=lb.get("DNSName", ""),
        state=lb.get("State", {}).get("Code", ""),
    )


def _listeners(target: AwsTarget, lb_arn: str) -> tuple[ListenerObs, ...]:
    # an ALB has at most 50 listeners (ELB quotas), well under one page of 400
    got = call(
        "read the listeners of the load balancer", target.elbv2.describe_listeners, LoadBalancerArn=lb_arn, PageSize=400
    )
    listeners: list[Any] = list(got.get("Listeners", []))
    arns = [li["ListenerArn"] for li in listeners]
    tags = _elb_tags(target, arns, "the listeners") if arns else {}
    out = []
    for li in listeners:
        forward: tuple[str, ...] = ()
        for action in li.get("DefaultActions", []):
            if action.get("Type") != "forward":
                continue
            groups = action.get("ForwardConfig", {}).get("TargetGroups", [])
            found = {g["TargetGroupArn"] for g in groups if "TargetGroupArn" in g}
            if "TargetGroupArn" in action:
                found.add(action["TargetGroupArn"])
            forward = tuple(sorted(found))
        out.append(
            ListenerObs(
                arn=li["ListenerArn"],
                port=li.get("Port", 0),
                protocol=li.get("Protocol", ""),
                tags=tags.get(li["ListenerArn"], {}),
                certificate_arns=tuple(
                    c["CertificateArn"] for c in li.get("Certificates", []) if "CertificateArn" in c
                ),
                ssl_policy=li.get("SslPolicy"),
                forward_target_group_arns=forward,
            )
        )
    return tuple(sorted(out, key=lambda x: x.port))


def _vpc_exists(target: AwsTarget, vpc_id: str) -> bool:
    got = call(f"look up VPC {vpc_id}", target.ec2.describe_vpcs, Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    return bool(got.get("Vpcs"))


def _subnets(target: AwsTarget, ids: tuple[str, ...]) -> tuple[SubnetObs, ...]:
    # a filter, not SubnetIds=: an unknown id then means "not in the answer", not an error for all of them
    got = call(
        f"look up subnets {', '.join(ids)}",
        target.ec2.describe_subnets,
        Filters=[{"Name": "subnet-id", "Values": list(ids)}],
    )
    return tuple(
        SubnetObs(s["SubnetId"], s.get("VpcId", ""), s.get("AvailabilityZone", ""))
        for s in sorted(got.get("Subnets", []), key=lambda s: ids.index(s["SubnetId"]) if s["SubnetId"] in ids else 0)
    )


def _security_groups(target: AwsTarget, ids: tuple[str, ...]) -> tuple[SecurityGroupObs, ...]:
    if not ids:
        return ()
    got = call(
        f"look up security groups {', '.join(ids)}",
        target.ec2.describe_security_groups,
        Filters=[{"Name": "group-id", "Values": list(ids)}],
    )
    return tuple(SecurityGroupObs(g["GroupId"], g.get("VpcId", "")) for g in got.get("SecurityGroups", []))


def _certificate(target: AwsTarget, desired: Desired) -> CertificateObs | None:
    arn = desired.certificate_arn
    if arn is None or certificate_region(arn) != desired.names.region:
        return None  # none, an IAM server certificate, or another region (a preflight problem already)
    got = find(
        f"read ACM certificate {arn}",
        {"ResourceNotFoundException", "InvalidArnException"},
        target.acm.describe_certificate,
        CertificateArn=arn,
    )
    if got is None:
        return CertificateObs(arn=arn, status=None, domain_name=None)
    cert = got["Certificate"]
    return CertificateObs(arn=arn, status=cert.get("Status"), domain_name=cert.get("DomainName"))
