"""``meshbridge aws``: deploy, destroy and status against moto with the real boto3 client.

No AWS account is needed or contacted: ``moto.mock_aws`` answers every call in-process, and the
endpoint test runs moto's own server on loopback, reached through ``AWS_ENDPOINT_URL``. moto does not
run Lambda code, and it accepts some requests real AWS refuses (an ALB in one Availability Zone, an
HTTPS listener with an unissued certificate): meshbridge's own preflight checks are what the tests
exercise there.
"""

from __future__ import annotations

import datetime
import difflib
import json
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.client
import botocore.exceptions
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshbridge.aws.provision import AwsTarget, Waits, connect, deploy, destroy, status, write_backend_host
from meshbridge.cli.main import main
from meshbridge.errors import AwsError
from meshbridge.spec import load_bridge

mock_aws = pytest.importorskip("moto", reason="moto is a test dependency (pip install -e '.[test]')").mock_aws
pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
REGION = "us-east-1"
SEED_IDS = {
    "vpc": "vpc-0123456789abcdef0",
    "subnet_a": "subnet-0123456789abcdef0",
    "subnet_b": "subnet-0fedcba9876543210",
    "sg": "sg-0123456789abcdef0",
    "cert": "arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-0000-0000-000000000000",
}
FAST = Waits(role=(0.01, 50), function=(0.01, 50), load_balancer=(0.01, 50), role_propagation=(0.01,) * 3)
MANAGED = {"app.kubernetes.io/managed-by": "meshbridge", "meshbridge.io/bridge": "lambda-aws-to-gcp"}


# -- the account -----------------------------------------------------------------------------------------


def self_signed(host: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


@dataclass
class Account:
    """A moto account with a VPC, two subnets in two AZs, a third in the first AZ, a security group, a cert."""

    session: boto3.Session
    dir: Path
    vpc: str
    subnet_a: str
    subnet_b: str
    subnet_a2: str
    sg: str
    cert: str

    def client(self, name: str) -> Any:
        return self.session.client(name, region_name=REGION)  # type: ignore[call-overload]

    def target(self) -> AwsTarget:
        return connect(spec_region=REGION, session=self.session)

    def bridge_file(self, **aws: Any) -> Path:
        """The seed bridge with this account's ids (comments kept); ``aws`` overrides spec.aws keys."""
        text = (SEED / "bridge.yaml").read_text(encoding="utf-8")
        for key, seed_id in SEED_IDS.items():
            text = text.replace(seed_id, getattr(self, key))
        if aws:
            doc = yaml.safe_load(text)
            function = aws.pop("function", {})
            doc["spec"]["aws"].update(aws)
            doc["spec"]["aws"]["function"].update(function)
            text = yaml.safe_dump(doc, sort_keys=False)
        path = self.dir / "bridge.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    def deploy(self, path: Path | None = None, **kwargs: Any) -> Any:
        path = path or self.bridge_file()
        return deploy(load_bridge(path), path, self.target(), waits=FAST, **kwargs)

    def destroy(self, path: Path | None = None, **kwargs: Any) -> Any:
        path = path or self.bridge_file()
        return destroy(load_bridge(path), self.target(), waits=FAST, **kwargs)


def clean_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the developer's own AWS configuration may leak in (profiles, endpoints, real keys)."""
    import os

    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def make_network(session: boto3.Session) -> dict[str, str]:
    ec2: Any = session.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

    def subnet(cidr: str, az: str) -> str:
        return str(ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"])

    cert, key = self_signed("alb.example.com")
    acm: Any = session.client("acm", region_name=REGION)
    return {
        "vpc": vpc,
        "subnet_a": subnet("10.0.1.0/24", "us-east-1a"),
        "subnet_b": subnet("10.0.2.0/24", "us-east-1b"),
        "subnet_a2": subnet("10.0.3.0/24", "us-east-1a"),
        "sg": ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"],
        "cert": acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"],
    }


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Account]:
    clean_aws_environment(monkeypatch, tmp_path)
    work = tmp_path / "bridge"
    work.mkdir()
    shutil.copy(SEED / "handler.py", work / "handler.py")
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        session = boto3.Session(region_name=REGION)
        yield Account(session=session, dir=work, **make_network(session))


def hook(session: boto3.Session, service: str, operation: str, handler: Callable[..., Any]) -> None:
    """Register ``handler`` before every ``operation`` call of ``service`` made through ``session``."""
    service_id = session.client(service, region_name=REGION).meta.service_model.service_id.hyphenize()  # type: ignore[call-overload]
    session.events.register(f"before-call.{service_id}.{operation}", handler)


def failing(code: str, message: str, times: int | None = None) -> Callable[..., Any]:
    """A before-call handler that makes boto3 raise a real ClientError (``times`` times, or always)."""
    calls = {"n": 0}

    def handler(**_: Any) -> Any:
        calls["n"] += 1
        if times is not None and calls["n"] > times:
            return None
        response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return SimpleNamespace(status_code=400, headers={}, content=b""), response

    return handler


def tags_of(account: Account) -> dict[str, dict[str, str]]:
    """Tags of every resource meshbridge creates, by kind (read straight from AWS)."""
    iam, lam, elb = account.client("iam"), account.client("lambda"), account.client("elbv2")
    lb = elb.describe_load_balancers(Names=["meshbridge-lambda-alb"])["LoadBalancers"][0]
    tg = elb.describe_target_groups(Names=["meshbridge-lambda-tg"])["TargetGroups"][0]
    listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    arns = [lb["LoadBalancerArn"], tg["TargetGroupArn"], *(li["ListenerArn"] for li in listeners)]
    elb_tags = {
        d["ResourceArn"]: {t["Key"]: t["Value"] for t in d["Tags"]}
        for d in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]
    }
    role = iam.get_role(RoleName="alb-lambda-hello-world-role")["Role"]
    return {
        "IAM role": {t["Key"]: t["Value"] for t in role.get("Tags", [])},
        "Lambda function": lam.get_function(FunctionName="alb-lambda-hello-world")["Tags"],
        "target group": elb_tags[tg["TargetGroupArn"]],
        "load balancer": elb_tags[lb["LoadBalancerArn"]],
        **{f"listener {li['Port']}": elb_tags[li["ListenerArn"]] for li in listeners},
    }


def exists(account: Account) -> dict[str, bool]:
    iam, lam, elb = account.client("iam"), account.client("lambda"), account.client("elbv2")
    return {
        "IAM role": any(r["RoleName"] == "alb-lambda-hello-world-role" for r in iam.list_roles()["Roles"]),
        "Lambda function": any(
            f["FunctionName"] == "alb-lambda-hello-world" for f in lam.list_functions()["Functions"]
        ),
        "target group": any(
            t["TargetGroupName"] == "meshbridge-lambda-tg" for t in elb.describe_target_groups()["TargetGroups"]
        ),
        "load balancer": any(
            b["LoadBalancerName"] == "meshbridge-lambda-alb" for b in elb.describe_load_balancers()["LoadBalancers"]
        ),
    }


NOTHING = {"IAM role": False, "Lambda function": False, "target group": False, "load balancer": False}
EVERYTHING = dict.fromkeys(NOTHING, True)


# -- deploy ----------------------------------------------------------------------------------------------


def test_deploy_creates_the_lambda_behind_an_internal_alb(account: Account) -> None:
    report = account.deploy()
    assert [(a.verb, a.kind) for a in report.applied] == [
        ("create", "IAM role"),
        ("create", "Lambda function"),
        ("create", "target group"),
        ("create", "Lambda permission"),
        ("create", "target"),
        ("create", "load balancer"),
        ("create", "listener"),
        ("create", "listener"),
    ]
    iam, lam, elb = account.client("iam"), account.client("lambda"), account.client("elbv2")

    role = iam.get_role(RoleName="alb-lambda-hello-world-role")["Role"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName="alb-lambda-hello-world-role")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]

    fn = lam.get_function(FunctionName="alb-lambda-hello-world")["Configuration"]
    assert (fn["Runtime"], fn["Handler"], fn["MemorySize"], fn["Timeout"]) == (
        "python3.12",
        "handler.lambda_handler",
        128,
        3,
    )
    assert fn["Role"] == role["Arn"] and fn["State"] == "Active"

    tg = elb.describe_target_groups(Names=["meshbridge-lambda-tg"])["TargetGroups"][0]
    assert tg["TargetType"] == "lambda"
    attrs = {
        a["Key"]: a["Value"]
        for a in elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]
    }
    assert attrs["lambda.multi_value_headers.enabled"] == "false"
    health = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
    assert [h["Target"]["Id"] for h in health] == [fn["FunctionArn"]]

    [grant] = json.loads(lam.get_policy(FunctionName="alb-lambda-hello-world")["Policy"])["Statement"]
    assert grant["Principal"] == {"Service": "elasticloadbalancing.amazonaws.com"}
    assert grant["Action"] == "lambda:InvokeFunction"
    assert grant["Condition"]["ArnLike"]["AWS:SourceArn"] == tg["TargetGroupArn"]

    lb = elb.describe_load_balancers(Names=["meshbridge-lambda-alb"])["LoadBalancers"][0]
    assert (lb["Scheme"], lb["Type"], lb["VpcId"]) == ("internal", "application", account.vpc)
    assert {z["SubnetId"] for z in lb["AvailabilityZones"]} == {account.subnet_a, account.subnet_b}
    assert report.dns_name == lb["DNSName"]

    listeners = sorted(
        elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"], key=lambda x: x["Port"]
    )
    assert [(li["Protocol"], li["Port"]) for li in listeners] == [("HTTP", 80), ("HTTPS", 443)]
    assert listeners[1]["Certificates"] == [{"CertificateArn": account.cert}]
    for li in listeners:
        assert li["DefaultActions"][0]["Type"] == "forward"
        assert li["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]

    for kind, tags in tags_of(account).items():
        assert tags.items() >= MANAGED.items(), kind


def test_second_deploy_changes_nothing_and_says_so(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    account.deploy()
    again = account.deploy()
    assert again.applied == () and again.plan.is_noop
    assert again.plan.summary() == "0 to create, 0 to update, 0 to delete, 8 unchanged"
    assert main(["aws", "deploy", "-f", str(account.bridge_file())]) == 0
    assert "nothing to do: all 8 resources are up to date" in capsys.readouterr().out


def test_spec_change_is_applied_in_place(account: Account) -> None:
    account.deploy()
    changed = account.bridge_file(multiValueHeaders=True, function={"memorySize": 256})
    report = account.deploy(changed)
    assert [(a.verb, a.kind, a.ops) for a in report.applied] == [
        ("update", "Lambda function", ("configuration",)),
        ("update", "target group", ("attributes",)),
    ]
    fn = account.client("lambda").get_function(FunctionName="alb-lambda-hello-world")["Configuration"]
    assert fn["MemorySize"] == 256
    elb = account.client("elbv2")
    tg = elb.describe_target_groups(Names=["meshbridge-lambda-tg"])["TargetGroups"][0]
    attrs = elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]
    assert {"Key": "lambda.multi_value_headers.enabled", "Value": "true"} in attrs
    assert account.deploy(changed).applied == ()


def test_handler_change_updates_the_code(account: Account) -> None:
    account.deploy()
    before = account.client("lambda").get_function(FunctionName="alb-lambda-hello-world")["Configuration"]
    handler = account.dir / "handler.py"
    handler.write_text(handler.read_text() + "\n# v2\n")
    report = account.deploy()
    assert [(a.kind, a.ops) for a in report.applied] == [("Lambda function", ("code",))]
    after = account.client("lambda").get_function(FunctionName="alb-lambda-hello-world")["Configuration"]
    assert after["CodeSha256"] != before["CodeSha256"]


def test_dry_run_prints_the_plan_and_changes_nothing(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    report = account.deploy(dry_run=True)
    assert report.dry_run and report.applied == ()
    assert report.plan.summary() == "8 to create, 0 to update, 0 to delete, 0 unchanged"
    assert exists(account) == NOTHING
    assert main(["aws", "deploy", "--dry-run", "-f", str(account.bridge_file())]) == 0
    output = capsys.readouterr().out
    assert "ACTION   RESOURCE" in output and "create   load balancer       meshbridge-lambda-alb" in output
    assert exists(account) == NOTHING
    # negative twin: without --dry-run the same command creates it all
    assert main(["aws", "deploy", "-f", str(account.bridge_file())]) == 0
    assert exists(account) == EVERYTHING


def no_aws_call(client: Any, operation: str, params: Any) -> Any:
    raise AssertionError(f"an offline dry run called AWS: {operation}")


@pytest.fixture
def offline_bridge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The seed bridge on a machine with no AWS configuration at all: no credentials, no profile."""
    clean_aws_environment(monkeypatch, tmp_path)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    for name in ("bridge.yaml", "handler.py"):
        shutil.copy(SEED / name, tmp_path / name)
    return tmp_path / "bridge.yaml"


def test_dry_run_without_credentials_plans_from_the_spec_alone(
    offline_bridge: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_call = botocore.client.BaseClient._make_api_call
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", no_aws_call)
    assert main(["aws", "deploy", "--dry-run", "-f", str(offline_bridge)]) == 0
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "note: the plan comes from the spec alone, not compared with the account: no AWS credentials found" in err
    assert "they are needed only to compare with the account" in err
    out = captured.out
    assert max(map(len, out.splitlines())) <= 100
    assert "create?   IAM role" in out and "create?   listener" in out
    assert "Not checked without the account:" in out
    assert "  - spec.aws.vpcId: that VPC vpc-0123456789abcdef0 exists in us-east-1" in out
    assert "Plan: 8 to create if absent (not compared with the account)." in out
    # negative twin: a real deploy needs the account, and says so
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", real_call)
    assert main(["aws", "deploy", "-f", str(offline_bridge)]) == 2
    assert "no AWS credentials found. Fix: configure them" in capsys.readouterr().err


def test_dry_run_with_credentials_but_no_network_plans_from_the_spec_alone(
    offline_bridge: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as s:  # a port nothing listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{s.getsockname()[1]}")
    started = time.monotonic()
    assert main(["aws", "deploy", "--dry-run", "-f", str(offline_bridge)]) == 0
    assert time.monotonic() - started < 10  # one attempt, not botocore's eight with back-off
    captured = capsys.readouterr()
    assert "not compared with the account: cannot reach the AWS endpoint" in " ".join(captured.err.split())
    assert "create?   load balancer" in captured.out


def test_offline_never_contacts_aws_and_needs_dry_run(
    account: Account, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = account.bridge_file()
    assert main(["aws", "deploy", "--offline", "-f", str(path)]) == 2
    assert "--offline only plans: add --dry-run" in capsys.readouterr().err
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", no_aws_call)
    assert main(["aws", "deploy", "--dry-run", "--offline", "-f", str(path)]) == 0
    captured = capsys.readouterr()
    assert "--offline: AWS was not contacted" in captured.err and "create?   IAM role" in captured.out
    monkeypatch.undo()
    clean_aws_environment(monkeypatch, account.dir)
    # negative twin: with credentials and the account at hand, the dry run compares (no '?', nothing unchecked)
    assert main(["aws", "deploy", "--dry-run", "-f", str(path)]) == 0
    captured = capsys.readouterr()
    assert "create   IAM role" in captured.out and "Not checked" not in captured.out
    assert "spec alone" not in captured.err


def test_offline_dry_run_still_refuses_what_the_spec_alone_shows(
    offline_bridge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = offline_bridge.read_text().replace("arn:aws:acm:us-east-1:", "arn:aws:acm:eu-west-1:")
    offline_bridge.write_text(text)
    assert main(["aws", "deploy", "--dry-run", "-f", str(offline_bridge)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the certificate is in region eu-west-1, but the load balancer is in us-east-1" in err
    (offline_bridge.parent / "handler.py").unlink()
    assert main(["aws", "deploy", "--dry-run", "-f", str(offline_bridge)]) == 2
    assert "handler.py" in capsys.readouterr().err


# -- the clear errors of the issue -----------------------------------------------------------------------


def test_subnets_in_one_availability_zone(account: Account) -> None:
    path = account.bridge_file(subnetIds=[account.subnet_a, account.subnet_a2])
    with pytest.raises(AwsError) as exc:
        account.deploy(path)
    assert "cannot deploy bridge 'lambda-aws-to-gcp'; nothing was changed" in str(exc.value)
    assert (
        f"spec.aws.subnetIds: the subnets are all in one Availability Zone ({account.subnet_a} (us-east-1a), "
        f"{account.subnet_a2} (us-east-1a)); an Application Load Balancer needs subnets in at least two "
        "Availability Zones. Fix: add a subnet of another Availability Zone"
    ) in str(exc.value)
    assert exists(account) == NOTHING


def test_certificate_in_another_region(account: Account) -> None:
    cert, key = self_signed("alb.example.com")
    other = account.session.client("acm", region_name="eu-west-1")  # type: ignore[call-overload]
    arn = other.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    with pytest.raises(AwsError) as exc:
        account.deploy(account.bridge_file(certificateArn=arn))
    assert (
        "spec.aws.certificateArn: the certificate is in region eu-west-1, but the load balancer is in us-east-1"
        in str(exc.value)
    )
    assert exists(account) == NOTHING


def test_certificate_not_issued(account: Account) -> None:
    pending = account.client("acm").request_certificate(DomainName="alb.example.com")["CertificateArn"]
    with pytest.raises(AwsError, match="is PENDING_VALIDATION; an HTTPS listener needs an ISSUED certificate"):
        account.deploy(account.bridge_file(certificateArn=pending))
    assert exists(account) == NOTHING


def test_handler_file_that_does_not_define_the_function(account: Account) -> None:
    (account.dir / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    with pytest.raises(AwsError) as exc:
        account.deploy()
    assert "does not define 'lambda_handler' at module level (it defines: handler)" in str(exc.value)
    assert "Fix: define 'def lambda_handler(event, context):'" in str(exc.value)
    assert exists(account) == NOTHING


def test_missing_permission_names_the_action(account: Account) -> None:
    hook(account.session, "elbv2", "CreateLoadBalancer", failing("AccessDenied", "Access Denied"))
    with pytest.raises(AwsError) as exc:
        account.deploy()
    message = str(exc.value)
    assert message.startswith(
        "deploy stopped at 'create load balancer meshbridge-lambda-alb': create load balancer meshbridge-lambda-alb: "
        "access denied: the AWS identity lacks permission elasticloadbalancing:CreateLoadBalancer."
    )
    assert "Done before that: created IAM role alb-lambda-hello-world-role; created Lambda function" in message
    assert "run 'meshbridge aws deploy' again: it continues from what exists" in message
    assert isinstance(exc.value.__cause__, AwsError)
    assert isinstance(exc.value.__cause__.__cause__, botocore.exceptions.ClientError)


def test_deploy_continues_after_a_failure(account: Account) -> None:
    denied = boto3.Session(region_name=REGION)
    hook(denied, "elbv2", "CreateLoadBalancer", failing("AccessDenied", "Access Denied"))
    path = account.bridge_file()
    with pytest.raises(AwsError):
        deploy(load_bridge(path), path, connect(spec_region=REGION, session=denied), waits=FAST)
    report = account.deploy()
    assert [(a.verb, a.kind) for a in report.applied] == [
        ("create", "load balancer"),
        ("create", "listener"),
        ("create", "listener"),
    ]


def test_access_denied_while_reading_names_the_read_action(account: Account) -> None:
    msg = (
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: lambda:GetFunction on resource: "
        "arn:aws:lambda:us-east-1:123456789012:function:alb-lambda-hello-world"
    )
    hook(account.session, "lambda", "GetFunction", failing("AccessDeniedException", msg))
    with pytest.raises(
        AwsError, match=r"read Lambda function alb-lambda-hello-world: access denied: .* lambda:GetFunction\."
    ):
        account.deploy()
    assert exists(account) == NOTHING


def drop_function_tags(parsed: dict[str, Any], **_: Any) -> None:
    """GetFunction as a caller without lambda:ListTags sees it: no Tags in the answer."""
    parsed.pop("Tags", None)


def test_function_tags_are_read_with_list_tags_when_get_function_hides_them(account: Account) -> None:
    account.deploy()
    account.session.events.register("after-call.lambda.GetFunction", drop_function_tags)
    assert account.deploy().applied == ()  # still recognised as meshbridge's
    # negative twin: without lambda:ListTags the error names it, instead of calling the function foreign
    hook(account.session, "lambda", "ListTags", failing("AccessDeniedException", "denied"))
    with pytest.raises(AwsError, match=r"read the tags of Lambda function .*lacks permission lambda:ListTags\."):
        account.deploy()


# -- IAM propagation -------------------------------------------------------------------------------------


def test_role_not_yet_assumable_is_retried_a_bounded_number_of_times(account: Account) -> None:
    not_yet = "The role defined for the function cannot be assumed by Lambda."
    hook(account.session, "lambda", "CreateFunction", failing("InvalidParameterValueException", not_yet, times=2))
    slept: list[float] = []
    lines: list[str] = []
    account.deploy(sleep=slept.append, progress=lines.append)
    assert slept == [0.01, 0.01]
    assert sum("Lambda cannot assume the new IAM role yet" in line for line in lines) == 2
    assert exists(account) == EVERYTHING


def test_role_never_assumable_gives_up(account: Account) -> None:
    not_yet = "The role defined for the function cannot be assumed by Lambda."
    hook(account.session, "lambda", "CreateFunction", failing("InvalidParameterValueException", not_yet))
    slept: list[float] = []
    with pytest.raises(AwsError, match=r"Lambda still cannot assume the execution role after 0\.03 s of retries"):
        account.deploy(sleep=slept.append)
    assert slept == [0.01, 0.01, 0.01]  # bounded by Waits.role_propagation


# -- destroy ---------------------------------------------------------------------------------------------


def test_destroy_removes_everything_meshbridge_created(account: Account) -> None:
    account.deploy()
    report = account.destroy()
    assert [(a.verb, a.kind) for a in report.applied] == [
        ("delete", "listener"),
        ("delete", "listener"),
        ("delete", "load balancer"),
        ("delete", "target"),
        ("delete", "target group"),
        ("delete", "Lambda permission"),
        ("delete", "Lambda function"),
        ("delete", "IAM role"),
    ]
    assert exists(account) == NOTHING
    assert account.destroy().plan.is_noop


def test_destroy_leaves_same_named_untagged_resources(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    elb, iam = account.client("elbv2"), account.client("iam")
    elb.create_target_group(Name="meshbridge-lambda-tg", TargetType="lambda")
    trust = {"Version": "2012-10-17", "Statement": []}
    iam.create_role(RoleName="alb-lambda-hello-world-role", AssumeRolePolicyDocument=json.dumps(trust))

    # deploy refuses to adopt them, before creating anything
    with pytest.raises(AwsError) as exc:
        account.deploy()
    assert (
        "target group 'meshbridge-lambda-tg' already exists in us-east-1 but was not created by meshbridge (it has "
        "no tag app.kubernetes.io/managed-by=meshbridge); meshbridge will not modify it"
    ) in str(exc.value)
    assert "IAM role 'alb-lambda-hello-world-role' already exists" in str(exc.value)
    assert exists(account) == {**NOTHING, "IAM role": True, "target group": True}

    report = account.destroy()
    assert report.applied == ()
    skipped = {a.kind: a.detail for a in report.plan.actions if a.verb == "skip"}
    assert skipped == {
        "target group": "not created by meshbridge (it has no tag app.kubernetes.io/managed-by=meshbridge); left alone",
        "IAM role": "not created by meshbridge (it has no tag app.kubernetes.io/managed-by=meshbridge); left alone",
    }
    assert main(["aws", "destroy", "--yes", "-f", str(account.bridge_file())]) == 0
    output = capsys.readouterr().out
    assert max(map(len, output.splitlines())) <= 100  # the DETAIL column wraps
    assert "left alone" in " ".join(output.split())
    assert exists(account) == {**NOTHING, "IAM role": True, "target group": True}


def test_destroy_deletes_tagged_but_spares_an_untagged_one_of_the_same_set(account: Account) -> None:
    account.deploy()
    # someone took the function over: its meshbridge tags are gone
    lam = account.client("lambda")
    arn = lam.get_function(FunctionName="alb-lambda-hello-world")["Configuration"]["FunctionArn"]
    lam.untag_resource(Resource=arn, TagKeys=list(MANAGED))
    account.destroy()
    assert exists(account) == {**NOTHING, "Lambda function": True}


def test_destroy_needs_yes_without_a_terminal(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    account.deploy()
    assert main(["aws", "destroy", "-f", str(account.bridge_file())]) == 2
    assert "nothing was deleted. Fix: pass --yes to confirm" in capsys.readouterr().err
    assert exists(account) == EVERYTHING
    assert main(["aws", "destroy", "--dry-run", "-f", str(account.bridge_file())]) == 0
    assert exists(account) == EVERYTHING
    assert main(["aws", "destroy", "--yes", "-f", str(account.bridge_file())]) == 0
    assert exists(account) == NOTHING


# -- status and the backend host -------------------------------------------------------------------------


def test_status_shows_dns_name_listeners_and_target_health(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    path = account.bridge_file()
    assert main(["aws", "status", "-f", str(path)]) == 0
    assert f"not deployed: run 'meshbridge aws deploy -f {path}'" in capsys.readouterr().out
    report = account.deploy()
    st = status(load_bridge(path), account.target())
    assert st.observed.load_balancer is not None and st.observed.load_balancer.dns_name == report.dns_name
    assert st.ours == {"IAM role": True, "Lambda function": True, "target group": True, "load balancer": True}
    assert main(["aws", "status", "-f", str(path)]) == 0
    output = capsys.readouterr().out
    assert f"DNS name: {report.dns_name}" in output
    assert max(map(len, output.splitlines())) <= 100
    assert "LISTENER    CERTIFICATE" in output
    assert f"HTTPS:443   {account.cert.split(':', 5)[5]}   meshbridge-lambda-tg" in output
    assert "TARGET" in output and "function:alb-lambda-hello-world   healthy" in output


def test_status_json_has_every_field_with_arns_whole(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    path = account.bridge_file()
    assert main(["aws", "status", "--json", "-f", str(path)]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout is the JSON alone; who and where go to stderr
    assert "AWS account 123456789012" in captured.err
    assert doc["deployed"] is False and doc["dns_name"] is None and doc["listeners"] == [] and doc["targets"] == []
    assert (doc["resources"][0]["resource"], doc["resources"][0]["state"]) == ("IAM role", "absent")
    assert doc["resources"][0]["managed"] is None
    report = account.deploy()
    assert main(["aws", "status", "--json", "--write-backend-host", "-f", str(path)]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert "wrote spec.exports[lambda].backend.host" in captured.err
    assert doc["identity"] == {
        "account": "123456789012",
        "arn": doc["identity"]["arn"],
        "region": REGION,
        "endpoint_url": None,
    }
    assert doc["deployed"] is True and doc["dns_name"] == report.dns_name
    assert {r["resource"]: (r["state"], r["managed"]) for r in doc["resources"]} == {
        "IAM role": ("present", True),
        "Lambda function": ("Active", True),
        "target group": ("present", True),
        "load balancer": ("active", True),
    }
    https = next(li for li in doc["listeners"] if li["listener"] == "HTTPS:443")
    assert https == {
        "listener": "HTTPS:443",
        "protocol": "HTTPS",
        "port": 443,
        "certificate_arns": [account.cert],
        "forwards_to": ["meshbridge-lambda-tg"],
    }
    [target] = doc["targets"]
    assert target["target"] == "arn:aws:lambda:us-east-1:123456789012:function:alb-lambda-hello-world"
    # negative twin: without --json the same command prints tables, not JSON
    assert main(["aws", "status", "-f", str(path)]) == 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(capsys.readouterr().out)


def test_deploy_writes_the_dns_name_as_backend_host_keeping_comments(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    path = account.bridge_file()
    before = path.read_text()
    assert main(["aws", "deploy", "--write-backend-host", "-f", str(path)]) == 0
    dns = account.deploy(path).dns_name
    after = path.read_text()
    diff = [d for d in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0) if d[:1] in "+-"]
    assert diff == [
        "--- ",
        "+++ ",
        "-        host: alb.internal.example.com    # the internal ALB's HTTPS listener",
        f"+        host: {dns} # the internal ALB's HTTPS listener",  # ruamel keeps the comment, one space after
    ]
    assert load_bridge(path).aws_export().backend.host == dns
    captured = capsys.readouterr()
    assert f"wrote spec.exports[lambda].backend.host = {dns}" in captured.out
    assert "set spec.exports[lambda].backend.tls.sni to alb.example.com" in captured.err
    assert "pass --write-backend-host" not in captured.err
    # negative twin: a second write changes nothing
    assert write_backend_host(path, "lambda", dns or "") is False
    assert path.read_text() == after


def test_without_write_back_deploy_says_the_backend_host_is_not_the_alb(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    path = account.bridge_file()
    before = path.read_text()
    assert main(["aws", "deploy", "-f", str(path)]) == 0
    err = capsys.readouterr().err
    assert "spec.exports[lambda].backend.host is alb.internal.example.com, not the ALB's DNS name" in err
    assert "pass --write-backend-host to write it" in err
    assert path.read_text() == before


def test_bridge_without_aws_section_is_refused_first(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(account.bridge_file().read_text())
    del doc["spec"]["aws"]
    path = account.dir / "no-aws.yaml"
    path.write_text(yaml.safe_dump(doc))
    for command in ("deploy", "destroy", "status"):
        assert main(["aws", command, "-f", str(path)]) == 2
        assert "has no spec.aws section, so there is nothing to provision" in capsys.readouterr().err


def test_write_backend_host_never_writes_an_invalid_bridge(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    shutil.copy(SEED / "bridge.yaml", path)
    before = path.read_text()
    with pytest.raises(AwsError, match="would not be a valid bridge with backend host 'not a host'"):
        write_backend_host(path, "lambda", "not a host")
    with pytest.raises(AwsError, match="no export 'nope' with a backend"):
        write_backend_host(path, "nope", "x.example.com")
    assert path.read_text() == before


# -- configuration: profiles, region, AWS_ENDPOINT_URL ---------------------------------------------------


def test_region_precedence_flag_then_spec_then_standard_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_aws_environment(monkeypatch, tmp_path)
    (tmp_path / "aws-config").write_text("[profile mb-test]\nregion = eu-central-1\n")
    assert connect(profile="mb-test").region == "eu-central-1"
    assert connect(profile="mb-test", spec_region="us-west-2").region == "us-west-2"
    assert connect(profile="mb-test", spec_region="us-west-2", region="ap-south-1").region == "ap-south-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert connect().region == "eu-west-3"
    monkeypatch.setenv("AWS_REGION", "sa-east-1")  # boto3 ignores it; the AWS CLI v2 reads it first, so do we
    assert connect().region == "sa-east-1"
    assert connect(spec_region="us-west-2").region == "us-west-2"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(AwsError, match=r"no AWS region: set spec\.aws\.region in the bridge file, pass --region"):
        connect()
    with pytest.raises(AwsError, match="AWS profile 'nope' is not in the AWS configuration files"):
        connect(profile="nope")


def test_aws_endpoint_url_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_aws_environment(monkeypatch, tmp_path)
    target = connect(region=REGION)
    assert target.endpoint_url is None
    assert target.elbv2.meta.endpoint_url == "https://elasticloadbalancing.us-east-1.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    target = connect(region=REGION)
    assert target.endpoint_url == "http://127.0.0.1:4566"
    for client in (target.iam, target.lambda_, target.elbv2, target.ec2, target.acm, target.sts):
        assert client.meta.endpoint_url == "http://127.0.0.1:4566"


def test_deploy_against_an_endpoint_emulator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """moto's server on loopback plays a local emulator; every request must go there."""
    pytest.importorskip("flask")
    from moto.server import ThreadedMotoServer

    clean_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_REGION", REGION)
        session = boto3.Session()
        sent: list[str] = []

        def only_the_emulator(request: Any, **_: Any) -> None:
            sent.append(request.url)
            assert request.url.startswith(endpoint), f"a request escaped the emulator: {request.url}"

        session.events.register("before-send", only_the_emulator)
        work = tmp_path / "bridge"
        work.mkdir()
        shutil.copy(SEED / "handler.py", work / "handler.py")
        acct = Account(session=session, dir=work, **make_network(session))
        path = acct.bridge_file()
        target = connect(session=session)
        assert target.endpoint_url == endpoint
        report = deploy(load_bridge(path), path, target, waits=FAST)
        assert len(report.applied) == 8 and report.dns_name
        assert deploy(load_bridge(path), path, connect(session=session), waits=FAST).applied == ()
        assert len(destroy(load_bridge(path), connect(session=session), waits=FAST).applied) == 8
        assert sent and all(url.startswith(endpoint) for url in sent)
    finally:
        server.stop()


# -- the error boundary ----------------------------------------------------------------------------------


def no_credentials(**_: Any) -> Any:
    raise botocore.exceptions.NoCredentialsError()


def unreachable(**_: Any) -> Any:
    raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com")


BOUNDARY_FAILURES = {
    "no credentials": ("sts", "GetCallerIdentity", no_credentials, "no AWS credentials found"),
    "access denied": ("iam", "GetRole", failing("AccessDenied", "denied"), "lacks permission iam:GetRole"),
    "unreachable": ("sts", "GetCallerIdentity", unreachable, "cannot reach the AWS endpoint"),
    "expired": ("sts", "GetCallerIdentity", failing("ExpiredToken", "expired"), "AWS rejected the credentials"),
    "throttled": (
        "elbv2",
        "DescribeTargetGroups",
        failing("Throttling", "Rate exceeded"),
        "failed: Throttling: Rate exceeded",
    ),
}


@pytest.mark.parametrize(
    ("operation", "failure"),
    [
        *(
            (op, f)
            for op in ("deploy", "deploy --dry-run", "destroy", "status")
            for f in ("no credentials", "access denied")
            if (op, f) != ("deploy --dry-run", "no credentials")  # a dry run plans from the spec alone then
        ),
        *(("deploy", f) for f in ("unreachable", "expired", "throttled")),
    ],
)
def test_no_botocore_exception_escapes_a_public_call(account: Account, operation: str, failure: str) -> None:
    service, api, handler, text = BOUNDARY_FAILURES[failure]
    hook(account.session, service, api, handler)
    path = account.bridge_file()
    bridge = load_bridge(path)
    target = account.target()
    calls: dict[str, Callable[[], Any]] = {
        "deploy": lambda: deploy(bridge, path, target, waits=FAST),
        "deploy --dry-run": lambda: deploy(bridge, path, target, dry_run=True),
        "destroy": lambda: destroy(bridge, target, waits=FAST),
        "status": lambda: status(bridge, target),
    }
    with pytest.raises(AwsError) as exc:
        calls[operation]()
    assert text in str(exc.value)
    cause = exc.value.__cause__
    while isinstance(cause, AwsError):
        cause = cause.__cause__
    assert isinstance(cause, botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError)


def test_cli_maps_aws_errors_to_exit_2(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    path = account.bridge_file(subnetIds=[account.subnet_a, account.subnet_a2])
    assert main(["aws", "deploy", "--dry-run", "-f", str(path)]) == 2
    captured = capsys.readouterr()
    assert "create   load balancer" in captured.out  # the plan is still shown
    assert "the subnets are all in one Availability Zone" in captured.err
    assert "Traceback" not in captured.err


# -- --region is checked like spec.aws.region; an endpoint that is not AWS is one line ---------------------


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "ap-southeast-4", "il-central-1", "us-gov-west-1"])
def test_aws_region_accepts_region_codes(region: str) -> None:
    from meshbridge.spec.models import aws_region

    assert aws_region(region) == region
    assert aws_region("us-isob-east-1") == "us-isob-east-1"


@pytest.mark.parametrize("region", ["mars-1", "US-EAST-1", "us-east", "us_east_1", "useast1", " us-east-1", ""])
def test_aws_region_refuses_what_is_not_a_region_code(region: str) -> None:
    from meshbridge.spec.models import aws_region

    with pytest.raises(ValueError, match="is not an AWS region code such as 'us-east-1'"):
        aws_region(region)


def test_cli_region_is_checked_like_the_specs(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    path = account.bridge_file()
    for command in (["deploy", "--dry-run"], ["destroy", "--dry-run"], ["status"]):
        assert main(["aws", *command, "-f", str(path), "--region", "mars-1"]) == 2
        err = " ".join(capsys.readouterr().err.replace("│", " ").split())
        assert "Invalid value for '--region': 'mars-1' is not an AWS region code such as 'us-east-1'" in err, err
        assert "Fix: use a region code ('aws account list-regions'" in err and "Traceback" not in err
    # twin: a region code passes the check, and the plan is made in that region
    assert main(["aws", "deploy", "--dry-run", "-f", str(path), "--region", REGION]) == 0
    assert "Plan:" in capsys.readouterr().out
    # the same function checks the spec (bridge_file rewrites the same path)
    assert main(["aws", "deploy", "--dry-run", "-f", str(account.bridge_file(region="mars-1"))]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "spec.aws.region: 'mars-1' is not an AWS region code such as 'us-east-1'" in err, err


XML_ERROR = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    b"<Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid."
    b"</Message></Error><RequestId>0</RequestId></ErrorResponse>"
)
NGINX_502 = (
    b"<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway"
    b"</h1></center>\n<hr><center>nginx/1.25.3</center>\n</body>\n</html>\n" + b"<!-- padding -->\n" * 40
)


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A local HTTP server as AWS_ENDPOINT_URL; set ``.status`` and ``.body`` to what it answers."""
    import http.server
    import threading

    state = SimpleNamespace(status=500, body=b"", requests=0, url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            state.requests += 1
            self.send_response(state.status)
            self.send_header("Content-Type", "text/html" if state.body.lstrip().startswith(b"<!") else "text/xml")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clean_aws_environment(monkeypatch, tmp_path)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", state.url)
    for name in ("bridge.yaml", "handler.py"):
        shutil.copy(SEED / name, tmp_path / name)
    state.bridge = tmp_path / "bridge.yaml"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (500, b"<html><body><h1>Internal Server Error</h1></body></html>", "an HTML page ('Internal Server Error')"),
        (502, NGINX_502, "an HTML page ('502 Bad Gateway')"),
        (
            200,
            b"<!doctype html><html><head><title>Welcome to nginx!</title></head></html>",
            "an HTML page ('Welcome to nginx!')",
        ),
        (503, b"upstream connect error or disconnect/reset before headers", "text 'upstream connect error"),
    ],
    ids=["html-500", "nginx-502", "html-200", "text-503"],
)
def test_an_endpoint_that_is_not_aws_is_one_line_naming_it_the_status_and_the_fix(
    endpoint: SimpleNamespace, status: int, body: bytes, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint.status, endpoint.body = status, body
    assert main(["aws", "deploy", "--dry-run", "-f", str(endpoint.bridge)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert f"{endpoint.url} answered HTTP {status} with {shown}" in err, err
    assert f"not an AWS response. Fix: check AWS_ENDPOINT_URL (now {endpoint.url})" in err
    assert "<html" not in err.lower() and "<!doctype" not in err.lower() and "Traceback" not in err
    assert endpoint.requests == 1  # not retried: a page does not turn into AWS on the next attempt


def test_an_aws_error_document_from_the_endpoint_is_still_read_as_one(
    endpoint: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    """The twin: an answer in AWS's own format goes through the usual translation."""
    endpoint.status, endpoint.body = 403, XML_ERROR
    assert main(["aws", "deploy", "--dry-run", "-f", str(endpoint.bridge)]) == 2
    err = capsys.readouterr().err
    assert "AWS rejected the credentials (InvalidClientTokenId: The security token" in err, err
    assert "not an AWS response" not in err


def test_deploy_and_destroy_print_json(
    account: Account, offline_bridge: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["aws", "deploy", "--dry-run", "--json", "-f", str(offline_bridge)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dry_run"] is True and doc["identity"] is None and "no AWS credentials found" in doc["offline"]
    assert [a["action"] for a in doc["actions"]] == ["create"] * 8 and doc["unchecked"] and doc["problems"] == []
    clean_aws_environment(monkeypatch, account.dir)
    path = account.bridge_file()
    assert main(["aws", "deploy", "--json", "-f", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dry_run"] is False and doc["offline"] is None and doc["identity"]["account"] == "123456789012"
    assert len(doc["applied"]) == 8 and doc["dns_name"].endswith(".elb.amazonaws.com")
    assert main(["aws", "destroy", "--dry-run", "--json", "-f", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (
        doc["operation"] == "destroy" and {a["action"] for a in doc["actions"]} == {"delete"} and doc["applied"] == []
    )
    assert main(["aws", "destroy", "--yes", "--json", "-f", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {a["action"] for a in doc["applied"]} == {"delete"} and exists(account) == NOTHING
    # negative twin: without --json, the table
    assert main(["aws", "deploy", "--dry-run", "-f", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ACTION")
