"""The AWS planner, packaging, spec rules and error translation: pure, no boto3 calls.

Builders give each test a desired state and an observed state that matches it ("all up to date"); a
test changes only what it is about. Every positive test has a negative twin.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from meshbridge.aws.provision.desired import desired_state, partition_of
from meshbridge.aws.provision.package import build_package
from meshbridge.aws.provision.plan import (
    MULTI_VALUE_HEADERS,
    Plan,
    certificate_region,
    plan_deploy,
    plan_destroy,
    plan_offline,
)
from meshbridge.aws.provision.session import translate
from meshbridge.aws.provision.state import (
    CertificateObs,
    Desired,
    FunctionObs,
    ListenerObs,
    LoadBalancerObs,
    Observed,
    PermissionObs,
    RoleObs,
    SecurityGroupObs,
    SubnetObs,
    TargetGroupObs,
    TargetHealthObs,
)
from meshbridge.errors import AwsError, SpecError
from meshbridge.spec import Bridge, parse_bridge

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
ACCOUNT = "123456789012"
REGION = "us-east-1"
CERT = f"arn:aws:acm:{REGION}:111122223333:certificate/00000000-0000-0000-0000-000000000000"
TG_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/meshbridge-lambda-tg/0123456789abcdef"
LB_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/meshbridge-lambda-alb/0123456789abcdef"
FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:alb-lambda-hello-world"


# -- builders --------------------------------------------------------------------------------------------


def seed_bridge() -> Bridge:
    return parse_bridge((SEED / "bridge.yaml").read_text(encoding="utf-8"))


def desired(**changes: Any) -> Desired:
    bridge = seed_bridge()
    d = desired_state(bridge, REGION, build_package("handler.py:lambda_handler", SEED))
    return dataclasses.replace(d, **changes)


def observed_matching(d: Desired, **changes: Any) -> Observed:
    """What AWS looks like right after a deploy of ``d``."""
    n = d.names
    tags = n.tags
    obs = Observed(
        role=RoleObs(
            n.role,
            f"arn:aws:iam::{ACCOUNT}:role/{n.role}",
            tags,
            frozenset({"lambda.amazonaws.com"}),
            frozenset({d.managed_policy_arn}),
        ),
        function=FunctionObs(
            n.function,
            FN_ARN,
            tags,
            d.runtime,
            d.package.handler,
            d.memory_size,
            d.timeout,
            f"arn:aws:iam::{ACCOUNT}:role/{n.role}",
            d.package.code_sha256,
            "Active",
        ),
        permission=PermissionObs(n.statement_id, "elasticloadbalancing.amazonaws.com", TG_ARN),
        target_group=TargetGroupObs(
            n.target_group,
            TG_ARN,
            tags,
            "lambda",
            {MULTI_VALUE_HEADERS: "true" if d.multi_value_headers else "false"},
            (TargetHealthObs(FN_ARN, "unavailable", "Target.HealthCheckDisabled"),),
            (LB_ARN,),
        ),
        load_balancer=LoadBalancerObs(
            n.load_balancer,
            LB_ARN,
            tags,
            "application",
            "internal",
            d.vpc_id,
            frozenset(d.subnet_ids),
            frozenset(d.security_group_ids),
            "internal-meshbridge-lambda-alb-1.us-east-1.elb.amazonaws.com",
            "active",
        ),
        listeners=tuple(
            ListenerObs(
                f"{LB_ARN}/listener/{li.port}",
                li.port,
                li.protocol,
                tags,
                (li.certificate_arn,) if li.certificate_arn else (),
                "ELBSecurityPolicy-2016-08",
                (TG_ARN,),
            )
            for li in d.listeners
        ),
        vpc_exists=True,
        subnets=(
            SubnetObs(d.subnet_ids[0], d.vpc_id, "us-east-1a"),
            SubnetObs(d.subnet_ids[1], d.vpc_id, "us-east-1b"),
        ),
        security_groups=tuple(SecurityGroupObs(g, d.vpc_id) for g in d.security_group_ids),
        certificate=CertificateObs(CERT, "ISSUED", "alb.example.com"),
    )
    return dataclasses.replace(obs, **changes)


def empty_account(d: Desired) -> Observed:
    """No resource of the bridge exists yet; the network is fine."""
    full = observed_matching(d)
    return Observed(
        vpc_exists=True, subnets=full.subnets, security_groups=full.security_groups, certificate=full.certificate
    )


def verbs(plan: Plan) -> list[tuple[str, str, str]]:
    return [(a.verb, a.kind, a.name) for a in plan.actions]


# -- deploy plans ----------------------------------------------------------------------------------------


def test_empty_account_creates_everything_in_dependency_order() -> None:
    d = desired()
    plan = plan_deploy(d, empty_account(d))
    assert plan.problems == ()
    assert [(a.verb, a.kind) for a in plan.actions] == [
        ("create", "IAM role"),
        ("create", "Lambda function"),
        ("create", "target group"),
        ("create", "Lambda permission"),
        ("create", "target"),
        ("create", "load balancer"),
        ("create", "listener"),
        ("create", "listener"),
    ]
    assert [a.name for a in plan.actions if a.kind == "listener"] == ["HTTP:80", "HTTPS:443"]
    assert plan.summary() == "8 to create, 0 to update, 0 to delete, 0 unchanged"


def test_matching_account_is_a_noop_and_a_drift_is_not() -> None:
    d = desired()
    plan = plan_deploy(d, observed_matching(d))
    assert plan.is_noop and plan.problems == ()
    assert {a.verb for a in plan.actions} == {"keep"}
    # negative twin: one drifted field makes exactly one update
    drifted = observed_matching(d)
    assert drifted.function is not None
    drifted = dataclasses.replace(drifted, function=dataclasses.replace(drifted.function, memory_size=512))
    plan = plan_deploy(d, drifted)
    assert [(a.verb, a.kind, a.ops) for a in plan.changes] == [("update", "Lambda function", ("configuration",))]
    assert "MemorySize 512 → 128" in plan.changes[0].detail


def test_code_change_updates_code_only() -> None:
    d = desired()
    obs = observed_matching(d)
    assert obs.function is not None
    obs = dataclasses.replace(obs, function=dataclasses.replace(obs.function, code_sha256="old="))
    plan = plan_deploy(d, obs)
    assert [(a.kind, a.ops) for a in plan.changes] == [("Lambda function", ("code",))]


def test_multi_value_headers_attribute_is_reconciled() -> None:
    d = desired(multi_value_headers=True)
    plan = plan_deploy(d, observed_matching(desired()))
    assert [(a.kind, a.ops) for a in plan.changes] == [("target group", ("attributes",))]
    assert f"{MULTI_VALUE_HEADERS} false → true" in plan.changes[0].detail
    assert plan_deploy(d, observed_matching(d)).is_noop


def test_role_without_basic_execution_policy_is_updated() -> None:
    d = desired()
    obs = observed_matching(d)
    assert obs.role is not None
    obs = dataclasses.replace(obs, role=dataclasses.replace(obs.role, attached_policy_arns=frozenset()))
    assert [(a.kind, a.ops) for a in plan_deploy(d, obs).changes] == [("IAM role", ("attach-policy",))]


def test_recreated_target_group_replaces_the_permission_and_registers_again() -> None:
    d = desired()
    obs = dataclasses.replace(observed_matching(d), target_group=None, load_balancer=None, listeners=())
    plan = plan_deploy(d, obs)
    changes = [(a.verb, a.kind) for a in plan.changes]
    assert ("update", "Lambda permission") in changes
    assert ("create", "target") in changes
    # negative twin: same target group, same permission: kept
    assert ("keep", "Lambda permission") in [(a.verb, a.kind) for a in plan_deploy(d, observed_matching(d)).actions]


def test_stale_target_is_deregistered() -> None:
    d = desired()
    obs = observed_matching(d)
    assert obs.target_group is not None
    other = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-else"
    tg = dataclasses.replace(obs.target_group, health=(*obs.target_group.health, TargetHealthObs(other, "healthy")))
    plan = plan_deploy(d, dataclasses.replace(obs, target_group=tg))
    [action] = plan.changes
    assert (action.kind, action.ops, action.stale) == ("target", ("deregister",), (other,))


def test_load_balancer_subnets_are_updated_but_empty_security_groups_are_left_to_aws() -> None:
    d = desired(security_group_ids=())
    obs = observed_matching(desired())  # the ALB has a security group; the spec names none
    assert obs.load_balancer is not None
    assert plan_deploy(d, obs).is_noop
    lb = dataclasses.replace(obs.load_balancer, subnet_ids=frozenset({"subnet-0aaa"}))
    [action] = plan_deploy(d, dataclasses.replace(obs, load_balancer=lb)).changes
    assert action.ops == ("subnets",)


def test_listener_removed_from_spec_is_deleted_and_a_new_certificate_modifies() -> None:
    d = desired()
    http_only = desired(certificate_arn=None, listeners=d.listeners[:1])
    plan = plan_deploy(http_only, observed_matching(d))
    assert [(a.verb, a.name) for a in plan.changes] == [("delete", "HTTPS:443")]
    other_cert = CERT.replace("00000000-0000", "11111111-1111")
    listeners = (d.listeners[0], dataclasses.replace(d.listeners[1], certificate_arn=other_cert))
    plan = plan_deploy(desired(certificate_arn=other_cert, listeners=listeners), observed_matching(d))
    assert [(a.verb, a.name, a.ops) for a in plan.changes] == [("update", "HTTPS:443", ("modify",))]


@pytest.mark.parametrize(
    ("field", "kind", "fix"),
    [
        ("role", "IAM role", "spec.aws.function.roleName"),
        ("function", "Lambda function", "spec.aws.function.functionName"),
        ("target_group", "target group", "spec.aws.targetGroupName"),
        ("load_balancer", "load balancer", "spec.aws.loadBalancerName"),
    ],
)
def test_same_named_untagged_resource_is_a_problem_and_never_touched(field: str, kind: str, fix: str) -> None:
    d = desired()
    obs = observed_matching(d)
    res = getattr(obs, field)
    obs = dataclasses.replace(obs, **{field: dataclasses.replace(res, tags={"team": "payments"})})
    plan = plan_deploy(d, obs)
    assert any(
        f"{kind} '{res.name}' already exists in us-east-1 but was not created by meshbridge" in p
        and "app.kubernetes.io/managed-by=meshbridge" in p
        and f"Fix: set {fix}" in p
        for p in plan.problems
    ), plan.problems
    assert ("skip", kind, res.name) in verbs(plan)
    # negative twin: tagged for this bridge, no problem
    assert plan_deploy(d, observed_matching(d)).problems == ()


def test_resource_of_another_bridge_is_named_as_such() -> None:
    d = desired()
    obs = observed_matching(d)
    assert obs.target_group is not None
    tags = {**d.names.tags, "meshbridge.io/bridge": "other-bridge"}
    plan = plan_deploy(d, dataclasses.replace(obs, target_group=dataclasses.replace(obs.target_group, tags=tags)))
    assert any("it belongs to bridge 'other-bridge'" in p for p in plan.problems)


def test_immutable_load_balancer_settings_are_problems() -> None:
    d = desired()
    obs = observed_matching(d)
    assert obs.load_balancer is not None
    lb = dataclasses.replace(obs.load_balancer, scheme="internet-facing")
    plan = plan_deploy(d, dataclasses.replace(obs, load_balancer=lb))
    assert any("has Scheme internet-facing, not internal, and Scheme cannot be changed" in p for p in plan.problems)
    assert plan_deploy(d, obs).problems == ()


def test_target_group_of_another_type_is_a_problem() -> None:
    d = desired()
    obs = observed_matching(d)
    assert obs.target_group is not None
    plan = plan_deploy(
        d, dataclasses.replace(obs, target_group=dataclasses.replace(obs.target_group, target_type="ip"))
    )
    assert any("has TargetType ip, not lambda" in p for p in plan.problems)


# -- preflight -------------------------------------------------------------------------------------------


def test_subnets_in_one_availability_zone_are_refused() -> None:
    d = desired()
    one_az = tuple(SubnetObs(s, d.vpc_id, "us-east-1a") for s in d.subnet_ids)
    plan = plan_deploy(d, dataclasses.replace(empty_account(d), subnets=one_az))
    [problem] = plan.problems
    assert problem.startswith("spec.aws.subnetIds: the subnets are all in one Availability Zone (")
    assert "needs subnets in at least two Availability Zones. Fix: add a subnet of another Availability Zone" in problem
    assert plan_deploy(d, empty_account(d)).problems == ()


def test_missing_subnet_vpc_and_security_group_are_named() -> None:
    d = desired()
    obs = dataclasses.replace(
        empty_account(d), vpc_exists=False, subnets=empty_account(d).subnets[:1], security_groups=()
    )
    problems = plan_deploy(d, obs).problems
    assert any(f"VPC {d.vpc_id} does not exist in region us-east-1" in p for p in problems)
    assert any(f"{d.subnet_ids[1]} does not exist in region us-east-1" in p for p in problems)
    assert any(f"{d.security_group_ids[0]} does not exist" in p for p in problems)


def test_subnets_and_security_groups_of_another_vpc_are_refused() -> None:
    d = desired()
    obs = empty_account(d)
    subnets = (obs.subnets[0], dataclasses.replace(obs.subnets[1], vpc_id="vpc-0ther"))
    groups = tuple(dataclasses.replace(g, vpc_id="vpc-0ther") for g in obs.security_groups)
    problems = plan_deploy(d, dataclasses.replace(obs, subnets=subnets, security_groups=groups)).problems
    assert any(f"{d.subnet_ids[1]} is in vpc-0ther, not in spec.aws.vpcId {d.vpc_id}" in p for p in problems)
    assert any("belongs to vpc-0ther" in p for p in problems)


def test_certificate_of_another_region_is_refused() -> None:
    arn = CERT.replace("us-east-1", "eu-west-1")
    d = desired(certificate_arn=arn)
    [problem] = plan_deploy(d, dataclasses.replace(empty_account(d), certificate=None)).problems
    assert problem == (
        "spec.aws.certificateArn: the certificate is in region eu-west-1, but the load balancer is in us-east-1; "
        "an ALB can only use ACM certificates of its own region. Fix: request or import the certificate in "
        "us-east-1 (aws acm request-certificate --region us-east-1) and use its ARN"
    )
    assert plan_deploy(desired(), empty_account(desired())).problems == ()


@pytest.mark.parametrize(
    ("status", "text"),
    [(None, "does not exist in ACM in us-east-1"), ("PENDING_VALIDATION", "is PENDING_VALIDATION; an HTTPS listener")],
)
def test_certificate_not_found_or_not_issued_is_refused(status: str | None, text: str) -> None:
    d = desired()
    obs = dataclasses.replace(empty_account(d), certificate=CertificateObs(CERT, status, None))
    [problem] = plan_deploy(d, obs).problems
    assert text in problem


def test_certificate_region_of_arns() -> None:
    assert certificate_region(CERT) == "us-east-1"
    assert certificate_region("arn:aws:iam::111122223333:server-certificate/alb") is None


def test_partition_follows_the_region() -> None:
    assert partition_of("us-east-1") == "aws"
    assert partition_of("cn-north-1") == "aws-cn"
    assert partition_of("us-gov-west-1") == "aws-us-gov"
    d = desired_state(seed_bridge(), "cn-north-1", build_package("handler.py:lambda_handler", SEED))
    assert d.managed_policy_arn == "arn:aws-cn:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


# -- destroy plans ---------------------------------------------------------------------------------------


def test_destroy_deletes_in_reverse_dependency_order() -> None:
    d = desired()
    plan = plan_destroy(d.names, observed_matching(d))
    assert [(a.verb, a.kind) for a in plan.actions] == [
        ("delete", "listener"),
        ("delete", "listener"),
        ("delete", "load balancer"),
        ("delete", "target"),
        ("delete", "target group"),
        ("delete", "Lambda permission"),
        ("delete", "Lambda function"),
        ("delete", "IAM role"),
    ]
    assert plan_destroy(d.names, Observed()).is_noop


def test_destroy_skips_what_meshbridge_does_not_own() -> None:
    d = desired()
    obs = observed_matching(d)
    assert obs.role is not None and obs.function is not None
    obs = dataclasses.replace(
        obs,
        role=dataclasses.replace(obs.role, tags={}),
        function=dataclasses.replace(obs.function, tags={}),
    )
    plan = plan_destroy(d.names, obs)
    skipped = {(a.kind, a.detail) for a in plan.actions if a.verb == "skip"}
    assert (
        "IAM role",
        "not created by meshbridge (it has no tag app.kubernetes.io/managed-by=meshbridge); left alone",
    ) in skipped
    assert (
        "Lambda function",
        "not created by meshbridge (it has no tag app.kubernetes.io/managed-by=meshbridge); left alone",
    ) in skipped
    assert ("Lambda permission", "function alb-lambda-hello-world is not meshbridge's") in skipped
    assert {a.kind for a in plan.changes} == {"listener", "load balancer", "target", "target group"}


def test_destroy_keeps_a_load_balancer_carrying_a_foreign_listener() -> None:
    d = desired()
    obs = observed_matching(d)
    foreign_listener = dataclasses.replace(obs.listeners[0], port=8080, tags={}, arn=f"{LB_ARN}/listener/8080")
    plan = plan_destroy(d.names, dataclasses.replace(obs, listeners=(*obs.listeners, foreign_listener)))
    lb = next(a for a in plan.actions if a.kind == "load balancer")
    assert lb.verb == "skip" and "carries listeners meshbridge did not create (HTTP:8080)" in lb.detail
    tg = next(a for a in plan.actions if a.kind == "target group")
    assert tg.verb == "skip" and "still used by load balancer" in tg.detail


# -- packaging -------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "handler.py") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_package_puts_the_file_at_the_zip_root_world_readable(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    write(tmp_path / "src", "def main(event, context):\n    return {}\n", "app.py")
    (tmp_path / "src" / "app.py").chmod(0o600)
    pkg = build_package("src/app.py:main", tmp_path)
    assert pkg.handler == "app.main"
    with zipfile.ZipFile(io.BytesIO(pkg.zip_bytes)) as zf:
        [info] = zf.infolist()
        assert info.filename == "app.py"
        assert (info.external_attr >> 16) & 0o777 == 0o644
        assert zf.read("app.py") == b"def main(event, context):\n    return {}\n"


def test_package_is_reproducible_and_changes_with_the_code(tmp_path: Path) -> None:
    write(tmp_path, "def h(event, context):\n    return 1\n")
    a = build_package("handler.py:h", tmp_path)
    b = build_package("handler.py:h", tmp_path)
    assert a.zip_bytes == b.zip_bytes and a.code_sha256 == b.code_sha256
    write(tmp_path, "def h(event, context):\n    return 2\n")
    assert build_package("handler.py:h", tmp_path).code_sha256 != a.code_sha256


@pytest.mark.parametrize(
    "source",
    [
        "def lambda_handler(event, context):\n    pass\n",
        "def lambda_handler(event, context, extra=None):\n    pass\n",
        "def lambda_handler(*args):\n    pass\n",
        "from app import handler as lambda_handler\n",
        "def _h(e, c):\n    pass\nlambda_handler = _h\n",
        "try:\n    import x\nexcept ImportError:\n    def lambda_handler(event, context):\n        pass\n",
    ],
)
def test_handler_forms_lambda_can_call(tmp_path: Path, source: str) -> None:
    assert build_package("handler.py:lambda_handler", write(tmp_path, source)).handler == "handler.lambda_handler"


@pytest.mark.parametrize(
    ("source", "text"),
    [
        (
            "def other(event, context):\n    pass\n",
            "does not define 'lambda_handler' at module level (it defines: other)",
        ),
        ("class A:\n    def lambda_handler(self, e, c):\n        pass\n", "does not define 'lambda_handler'"),
        ("def f():\n    def lambda_handler(e, c):\n        pass\n", "does not define 'lambda_handler'"),
        ("async def lambda_handler(event, context):\n    pass\n", "is 'async def'"),
        ("def lambda_handler(event):\n    pass\n", "cannot be called with (event, context)"),
        ("def lambda_handler(event, context, extra):\n    pass\n", "cannot be called with (event, context)"),
        ("def lambda_handler(event, context:\n", "not valid Python"),
    ],
)
def test_handler_file_that_lambda_cannot_call_is_refused(tmp_path: Path, source: str, text: str) -> None:
    with pytest.raises(AwsError) as exc:
        build_package("handler.py:lambda_handler", write(tmp_path, source))
    assert text in str(exc.value)
    assert str(exc.value).startswith("spec.aws.function.handler 'handler.py:lambda_handler': ")


def test_missing_handler_file_and_dotted_module_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AwsError, match=r"handler\.py does not exist\. Fix: point the handler"):
        build_package("handler.py:lambda_handler", tmp_path)
    write(tmp_path, "def h(event, context):\n    pass\n", "my.handler.py")
    with pytest.raises(AwsError, match="a dot in a module name means a package"):
        build_package("my.handler.py:h", tmp_path)


def test_package_never_imports_the_handler(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    write(tmp_path, f"open({str(marker)!r}, 'w').close()\ndef lambda_handler(event, context):\n    pass\n")
    build_package("handler.py:lambda_handler", tmp_path)
    assert not marker.exists()


# -- spec rules ------------------------------------------------------------------------------------------


def seed_with(old: str, new: str) -> str:
    text = (SEED / "bridge.yaml").read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new)


def test_role_name_defaults_from_the_function_name() -> None:
    aws = seed_bridge().spec.aws
    assert aws is not None and aws.function.execution_role_name == "alb-lambda-hello-world-role"
    long_name = "f" * 60
    with pytest.raises(SpecError, match=r"longer than IAM.s 64 characters. Fix: set function\.roleName"):
        parse_bridge(seed_with("functionName: alb-lambda-hello-world", f"functionName: {long_name}"))
    text = seed_with("functionName: alb-lambda-hello-world", f"functionName: {long_name}\n      roleName: r")
    aws = parse_bridge(text).spec.aws
    assert aws is not None and aws.function.execution_role_name == "r"


def test_backend_must_dial_a_listener_the_alb_gets() -> None:
    with pytest.raises(SpecError) as exc:
        parse_bridge(seed_with("    certificateArn: arn", "    # certificateArn: arn"))
    [issue] = exc.value.issues
    assert issue.path == "spec.exports[0].backend.port"
    assert "spec.aws has no certificateArn, so the ALB gets no HTTPS listener" in issue.problem
    with pytest.raises(SpecError, match="listens on 443 \\(HTTPS\\) and 80 \\(HTTP\\)"):
        parse_bridge(seed_with("        port: 443\n", "        port: 8443\n"))
    # negative twin: plain HTTP to port 80 without a certificate is consistent
    text = seed_with("    certificateArn: arn", "    # certificateArn: arn")
    text = text.replace(
        "        port: 443\n        tls: {mode: SIMPLE}", "        port: 80\n        tls: {mode: DISABLE}"
    )
    assert parse_bridge(text).spec.aws is not None


def test_alb_names_and_ids_follow_aws_rules() -> None:
    with pytest.raises(SpecError, match="must not start with 'internal-'"):
        parse_bridge(seed_with("loadBalancerName: meshbridge-lambda-alb", "loadBalancerName: internal-alb"))
    with pytest.raises(SpecError, match="lists a subnet twice"):
        parse_bridge(seed_with("subnet-0fedcba9876543210]", "subnet-0123456789abcdef0]"))
    with pytest.raises(SpecError, match="subnetIds"):
        parse_bridge(seed_with("subnet-0fedcba9876543210]", "my-subnet]"))


# -- error translation -----------------------------------------------------------------------------------


def client_error(code: str, message: str, op: str = "CreateLoadBalancer") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, op)


def test_access_denied_names_the_action_from_the_message_or_the_operation() -> None:
    msg = "User: arn:aws:iam::1:user/ci is not authorized to perform: iam:PassRole on resource: role/x"
    e = translate(client_error("AccessDeniedException", msg, "CreateFunction"), "create Lambda function f", None)
    assert "create Lambda function f: access denied: the AWS identity lacks permission iam:PassRole." in str(e)
    assert "Fix: grant iam:PassRole to that identity" in str(e)
    e = translate(client_error("AccessDenied", "denied"), "create load balancer x", None)
    assert "lacks permission ?:CreateLoadBalancer" in str(e)


def test_credentials_and_other_errors_are_explained() -> None:
    e = translate(client_error("ExpiredToken", "expired"), "identify the AWS caller", None)
    assert "AWS rejected the credentials (ExpiredToken: expired). Fix: refresh them" in str(e)
    e = translate(client_error("ValidationError", "bad"), "create load balancer x", None)
    assert str(e) == "create load balancer x failed: ValidationError: bad"
    e = translate(botocore.exceptions.NoCredentialsError(), "identify the AWS caller", None)
    assert "no AWS credentials found" in str(e)


# -- the offline plan: the spec alone ---------------------------------------------------------------------


def test_offline_plan_creates_everything_if_absent_and_names_what_it_could_not_check() -> None:
    plan = plan_offline(desired())
    assert plan.offline and plan.problems == ()
    assert [(a.verb, a.kind) for a in plan.actions] == [
        (a.verb, a.kind) for a in plan_deploy(desired(), Observed()).actions
    ]
    assert {a.verb for a in plan.actions} == {"create"}
    assert plan.summary() == "8 to create if absent (not compared with the account)"
    unchecked = "\n".join(plan.unchecked)
    assert "whether the 8 resources exist already in us-east-1" in unchecked
    assert "spec.aws.vpcId: that VPC vpc-0123456789abcdef0 exists in us-east-1" in unchecked
    assert "span two Availability Zones" in unchecked and "sg-0123456789abcdef0" in unchecked
    assert "spec.aws.certificateArn: that the certificate is ISSUED in ACM in us-east-1" in unchecked
    # negative twin: a plan compared with the account is not offline and its summary counts what it found
    compared = plan_deploy(desired(), Observed(vpc_exists=True))
    assert not compared.offline and "if absent" not in compared.summary()


def test_offline_plan_still_refuses_what_the_spec_alone_shows() -> None:
    other = CERT.replace(REGION, "eu-west-1")
    plan = plan_offline(desired(certificate_arn=other))
    [problem] = plan.problems
    assert problem.startswith("spec.aws.certificateArn: the certificate is in region eu-west-1, but the load balancer")
    assert "Fix: request or import the certificate in us-east-1" in problem
    assert not any("ISSUED" in u for u in plan.unchecked)  # known wrong already: not listed as unchecked
    # negative twin: without security groups or certificate, neither is listed as unchecked
    plan = plan_offline(desired(certificate_arn=None, security_group_ids=()))
    assert plan.problems == () and not any("securityGroupIds" in u or "certificateArn" in u for u in plan.unchecked)
