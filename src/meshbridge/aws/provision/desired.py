"""Desired state from the spec: names, tags and settings of every resource. Pure (no AWS calls)."""

from __future__ import annotations

from meshbridge.aws.provision.state import Desired, HandlerPackage, ListenerSpec, Names
from meshbridge.errors import AwsError
from meshbridge.spec.models import AwsSection, Bridge

HTTP_PORT = 80
HTTPS_PORT = 443


def aws_section(bridge: Bridge) -> AwsSection:
    """The bridge's ``spec.aws``.

    Raises:
        AwsError: the bridge has no ``aws`` section.
    """
    if bridge.spec.aws is None:
        raise AwsError(
            f"bridge {bridge.metadata.name!r} has no spec.aws section, so there is nothing to provision. Fix: add "
            "one (see examples/seed/bridge.yaml and docs/aws.md)"
        )
    return bridge.spec.aws


def partition_of(region: str) -> str:
    """The AWS partition of ``region``: ``aws-cn`` for ``cn-*``, ``aws-us-gov`` for ``us-gov-*``, else ``aws``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def names_of(bridge: Bridge, region: str) -> Names:
    """The names and tags of the bridge's AWS resources in ``region``.

    Raises:
        AwsError: the bridge has no ``aws`` section.
    """
    aws = aws_section(bridge)
    return Names(
        bridge=bridge.metadata.name,
        export=bridge.aws_export().name,
        region=region,
        partition=partition_of(region),
        role=aws.function.execution_role_name,
        function=aws.function.function_name,
        target_group=aws.target_group_name,
        load_balancer=aws.load_balancer_name,
        statement_id=f"meshbridge-elb-{aws.target_group_name}",
    )


def desired_state(bridge: Bridge, region: str, package: HandlerPackage) -> Desired:
    """Everything ``aws deploy`` should leave in place for ``bridge`` in ``region``.

    Args:
        bridge: a validated bridge with an ``aws`` section.
        region: the effective region (``--region``, the spec's, or the standard AWS configuration's).
        package: the handler's package (:func:`meshbridge.aws.provision.package.build_package`).

    Returns:
        The desired state. Listeners: HTTP on 80 always; HTTPS on 443 when ``certificateArn`` is set.

    Raises:
        AwsError: the bridge has no ``aws`` section.
    """
    aws = aws_section(bridge)
    listeners = [ListenerSpec(HTTP_PORT, "HTTP")]
    if aws.certificate_arn is not None:
        listeners.append(ListenerSpec(HTTPS_PORT, "HTTPS", aws.certificate_arn, aws.ssl_policy))
    return Desired(
        names=names_of(bridge, region),
        runtime=aws.function.runtime,
        memory_size=aws.function.memory_size,
        timeout=aws.function.timeout,
        package=package,
        multi_value_headers=aws.multi_value_headers,
        vpc_id=aws.vpc_id,
        subnet_ids=tuple(aws.subnet_ids),
        security_group_ids=tuple(aws.security_group_ids),
        certificate_arn=aws.certificate_arn,
        listeners=tuple(listeners),
    )
