"""Value types of provisioning: what the spec wants (desired) and what AWS has (observed). Pure.

Desired state comes from the spec (:func:`meshbridge.aws.provision.desired.desired_state`); observed
state from read-only AWS calls (:func:`meshbridge.aws.provision.observe.observe`). The planner compares
the two. Every type here is a frozen dataclass with no AWS client in it, so plans can be computed and
tested without boto3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "meshbridge"
BRIDGE_KEY = "meshbridge.io/bridge"
EXPORT_KEY = "meshbridge.io/export"

ResourceKind = Literal[
    "IAM role",
    "Lambda function",
    "target group",
    "Lambda permission",
    "target",
    "load balancer",
    "listener",
]
"""The AWS resource kinds meshbridge manages, named as the AWS documentation names them."""


@dataclass(frozen=True)
class Names:
    """Where each resource of one bridge lives and how meshbridge recognises its own.

    Attributes:
        bridge: ``metadata.name`` of the bridge (the value of the ``meshbridge.io/bridge`` tag).
        export: the export the ALB serves.
        region: the AWS region everything is created in.
        partition: ``aws``, ``aws-cn`` or ``aws-us-gov`` (from the region), for managed-policy ARNs.
        role: ``RoleName`` of the execution role.
        function: ``FunctionName``.
        target_group: target group ``Name``.
        load_balancer: load balancer ``Name``.
        statement_id: ``StatementId`` of the function policy statement that lets Elastic Load Balancing
            invoke the function (Lambda permissions carry no tags; meshbridge knows its own by this id).
    """

    bridge: str
    export: str
    region: str
    partition: str
    role: str
    function: str
    target_group: str
    load_balancer: str
    statement_id: str

    @property
    def tags(self) -> dict[str, str]:
        """The tags put on every resource meshbridge creates (that supports tags)."""
        return {MANAGED_BY_KEY: MANAGED_BY_VALUE, BRIDGE_KEY: self.bridge, EXPORT_KEY: self.export}

    def owner(self, tags: dict[str, str]) -> Ownership:
        """Whether a resource with ``tags`` was created by meshbridge for this bridge.

        Returns:
            ``"ours"`` (managed-by meshbridge, this bridge), ``"other-bridge"`` (managed by meshbridge for
            another bridge) or ``"foreign"`` (not created by meshbridge).
        """
        if tags.get(MANAGED_BY_KEY) != MANAGED_BY_VALUE:
            return "foreign"
        return "ours" if tags.get(BRIDGE_KEY) == self.bridge else "other-bridge"


Ownership = Literal["ours", "other-bridge", "foreign"]


@dataclass(frozen=True)
class HandlerPackage:
    """The deployment package of the function: one Python file at the root of a zip.

    Attributes:
        source: the handler file on disk (absolute).
        handler: Lambda's ``Handler`` setting, ``<module>.<function>``.
        zip_bytes: the zip archive. It is byte-for-byte reproducible (fixed timestamps and modes, no
            compression), so its SHA-256 only changes when the file does.
        code_sha256: base64 of the SHA-256 of ``zip_bytes``: what Lambda reports as ``CodeSha256``.
    """

    source: str
    handler: str
    zip_bytes: bytes = field(repr=False)
    code_sha256: str


@dataclass(frozen=True)
class ListenerSpec:
    """One listener the ALB should have: ``protocol`` on ``port``, forwarding to the target group."""

    port: int
    protocol: Literal["HTTP", "HTTPS"]
    certificate_arn: str | None = None
    ssl_policy: str | None = None

    @property
    def label(self) -> str:
        """``HTTPS:443``: how listeners are named in plans and errors."""
        return f"{self.protocol}:{self.port}"


@dataclass(frozen=True)
class Desired:
    """Everything ``aws deploy`` should leave in place.

    Attributes:
        names: names and tags.
        runtime, memory_size, timeout: the function's ``Runtime``, ``MemorySize`` (MB), ``Timeout`` (s).
        package: the handler's deployment package.
        multi_value_headers: target group attribute ``lambda.multi_value_headers.enabled``.
        vpc_id: the ALB's VPC.
        subnet_ids: the ALB's ``Subnets``.
        security_group_ids: the ALB's ``SecurityGroups`` (empty: whatever AWS attached).
        certificate_arn: the HTTPS listener's certificate, if any.
        listeners: the listeners, HTTP:80 first.
    """

    names: Names
    runtime: str
    memory_size: int
    timeout: int
    package: HandlerPackage
    multi_value_headers: bool
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    certificate_arn: str | None
    listeners: tuple[ListenerSpec, ...]

    @property
    def trust_service(self) -> str:
        """The service principal that assumes the execution role."""
        return "lambda.amazonaws.com"

    @property
    def managed_policy_arn(self) -> str:
        """``AWSLambdaBasicExecutionRole``: lets the function write its logs to CloudWatch Logs."""
        return f"arn:{self.names.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


# -- observed --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleObs:
    """An IAM role as ``GetRole`` and ``ListAttachedRolePolicies`` describe it."""

    name: str
    arn: str
    tags: dict[str, str]
    trusts: frozenset[str]
    """Service principals allowed ``sts:AssumeRole`` by the trust policy."""
    attached_policy_arns: frozenset[str]


@dataclass(frozen=True)
class FunctionObs:
    """A Lambda function as ``GetFunction`` describes it."""

    name: str
    arn: str
    tags: dict[str, str]
    runtime: str | None
    handler: str | None
    memory_size: int
    timeout: int
    role_arn: str
    code_sha256: str
    state: str | None


@dataclass(frozen=True)
class PermissionObs:
    """The function policy statement meshbridge looks for (by ``Sid``), from ``GetPolicy``."""

    statement_id: str
    principal: str | None
    source_arn: str | None


@dataclass(frozen=True)
class TargetHealthObs:
    """One registered target and its health, from ``DescribeTargetHealth``.

    For a Lambda target with health checks off (the default for target groups of type ``lambda``), AWS
    reports state ``unavailable`` with reason ``Target.HealthCheckDisabled``: traffic still flows.
    """

    target_id: str
    state: str
    reason: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class TargetGroupObs:
    """A target group as ``DescribeTargetGroups``, its attributes, tags and targets describe it."""

    name: str
    arn: str
    tags: dict[str, str]
    target_type: str
    attributes: dict[str, str]
    health: tuple[TargetHealthObs, ...]
    load_balancer_arns: tuple[str, ...]

    @property
    def targets(self) -> tuple[str, ...]:
        """The registered target ids (function ARNs), sorted."""
        return tuple(sorted({h.target_id for h in self.health}))


@dataclass(frozen=True)
class LoadBalancerObs:
    """A load balancer as ``DescribeLoadBalancers`` and ``DescribeTags`` describe it."""

    name: str
    arn: str
    tags: dict[str, str]
    type: str
    scheme: str
    vpc_id: str
    subnet_ids: frozenset[str]
    security_group_ids: frozenset[str]
    dns_name: str
    state: str


@dataclass(frozen=True)
class ListenerObs:
    """A listener as ``DescribeListeners`` and ``DescribeTags`` describe it."""

    arn: str
    port: int
    protocol: str
    tags: dict[str, str]
    certificate_arns: tuple[str, ...]
    ssl_policy: str | None
    forward_target_group_arns: tuple[str, ...]
    """Target groups of its default ``forward`` action (empty when the action is not a forward)."""

    @property
    def label(self) -> str:
        """``HTTPS:443``."""
        return f"{self.protocol}:{self.port}"


@dataclass(frozen=True)
class SubnetObs:
    """A subnet from ``DescribeSubnets``."""

    subnet_id: str
    vpc_id: str
    availability_zone: str


@dataclass(frozen=True)
class SecurityGroupObs:
    """A security group from ``DescribeSecurityGroups``."""

    group_id: str
    vpc_id: str


@dataclass(frozen=True)
class CertificateObs:
    """An ACM certificate from ``DescribeCertificate`` (``None`` fields: not an ACM certificate)."""

    arn: str
    status: str | None
    domain_name: str | None


@dataclass(frozen=True)
class Observed:
    """What exists in AWS under the bridge's names, plus the network facts the preflight checks need.

    A ``None`` resource does not exist. ``subnets``, ``security_groups`` and ``certificate`` are only
    filled by a deploy observation (``destroy`` and ``status`` do not need them); ``vpc_exists`` is
    ``None`` when it was not looked up.
    """

    role: RoleObs | None = None
    function: FunctionObs | None = None
    permission: PermissionObs | None = None
    target_group: TargetGroupObs | None = None
    load_balancer: LoadBalancerObs | None = None
    listeners: tuple[ListenerObs, ...] = ()
    vpc_exists: bool | None = None
    subnets: tuple[SubnetObs, ...] = ()
    security_groups: tuple[SecurityGroupObs, ...] = ()
    certificate: CertificateObs | None = None
