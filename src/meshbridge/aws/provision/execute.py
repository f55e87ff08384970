"""The executor: runs a plan's actions with boto3, in order, waiting on botocore waiters (never sleeps).

The one deliberate pause is IAM propagation: a role just created is visible to IAM at once, but Lambda
may refuse it for some seconds ("The role defined for the function cannot be assumed by Lambda", an
``InvalidParameterValueException``; see "Lambda execution role" in the Lambda developer guide and IAM's
"Changes that I make are not always immediately visible"). No waiter covers that, so ``CreateFunction``
is retried on exactly that error, a bounded number of times (by default 7 retries over 54 s), each
retry reported. Everything else waits with waiters: ``role_exists``, ``function_active_v2``,
``function_updated_v2``, ``load_balancer_available`` and ``load_balancers_deleted``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from meshbridge.aws.provision.plan import ELB_PRINCIPAL, MULTI_VALUE_HEADERS, Action, Plan
from meshbridge.aws.provision.session import AwsTarget, call, error_code, error_message, find, translate, wait
from meshbridge.aws.provision.state import Desired, ListenerSpec, Observed
from meshbridge.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_elbv2.type_defs import ActionTypeDef, CertificateTypeDef

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Waits:
    """Bounds of every wait, as (seconds between polls, polls at most).

    Attributes:
        role: IAM ``role_exists``: 1 s × 20.
        function: Lambda ``function_active_v2`` / ``function_updated_v2``: 1 s × 300 (botocore's own).
        load_balancer: ELB ``load_balancer_available`` / ``load_balancers_deleted``: 15 s × 40 (botocore's).
        role_propagation: seconds before each retry of a call Lambda refused because it cannot assume the
            new role yet; the number of entries bounds the retries.
    """

    role: tuple[float, int] = (1, 20)
    function: tuple[float, int] = (1, 300)
    load_balancer: tuple[float, int] = (15, 40)
    role_propagation: tuple[float, ...] = (2, 4, 8, 10, 10, 10, 10)


@dataclass
class _Arns:
    role: str | None = None
    function: str | None = None
    target_group: str | None = None
    load_balancer: str | None = None
    listeners: dict[int, str] = field(default_factory=dict)


class Executor:
    """Runs deploy and destroy plans against one :class:`AwsTarget`.

    Args:
        target: where.
        progress: called with one line per step (and per wait); the CLI prints them to stderr.
        waits: bounds of the waits.
        sleep: how to pause between IAM propagation retries (tests pass a recorder).
    """

    def __init__(
        self,
        target: AwsTarget,
        progress: Progress = lambda _line: None,
        waits: Waits | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.t = target
        self.progress = progress
        self.waits = waits or Waits()
        self.sleep = sleep

    # -- deploy ------------------------------------------------------------------------------------------

    def deploy(self, plan: Plan, desired: Desired, observed: Observed) -> list[Action]:
        """Execute a deploy plan.

        Args:
            plan: from :func:`~meshbridge.aws.provision.plan.plan_deploy`; must have no problems.
            desired: the desired state the plan was computed from.
            observed: the observed state the plan was computed from (for existing ARNs).

        Returns:
            The actions that changed something, in order.

        Raises:
            AwsError: the plan has problems (nothing is done), or a step failed; the message says what
                was done before the failure, and that running deploy again continues from there.
        """
        if plan.problems:
            raise AwsError(
                "the plan has problems; nothing was changed:\n" + "\n".join(f"  - {p}" for p in plan.problems)
            )
        arns = _Arns(
            role=observed.role.arn if observed.role else None,
            function=observed.function.arn if observed.function else None,
            target_group=observed.target_group.arn if observed.target_group else None,
            load_balancer=observed.load_balancer.arn if observed.load_balancer else None,
            listeners={li.port: li.arn for li in observed.listeners},
        )
        steps = {
            "IAM role": self._role,
            "Lambda function": self._function,
            "target group": self._target_group,
            "Lambda permission": self._permission,
            "target": self._target,
            "load balancer": self._load_balancer,
            "listener": self._listener,
        }
        return self._run("deploy", plan, lambda a: steps[a.kind](a, desired, arns))

    def _role(self, a: Action, d: Desired, arns: _Arns) -> None:
        iam, name = self.t.iam, d.names.role
        trust = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": d.trust_service}, "Action": "sts:AssumeRole"}
                ],
            }
        )
        if a.verb == "create":
            got = call(
                f"create IAM role {name}",
                iam.create_role,
                RoleName=name,
                AssumeRolePolicyDocument=trust,
                Description=f"Execution role of Lambda function {d.names.function} (meshbridge)",
                Tags=_tag_list(d.names.tags),
            )
            arns.role = got["Role"]["Arn"]
            self._wait_role(name)
        if a.verb == "create" or "attach-policy" in a.ops:
            call(
                f"attach AWSLambdaBasicExecutionRole to IAM role {name}",
                iam.attach_role_policy,
                RoleName=name,
                PolicyArn=d.managed_policy_arn,
            )
        if "trust-policy" in a.ops:
            call(
                f"update the trust policy of IAM role {name}",
                iam.update_assume_role_policy,
                RoleName=name,
                PolicyDocument=trust,
            )

    def _wait_role(self, name: str) -> None:
        delay, attempts = self.waits.role
        self.progress(f"  waiting for IAM role {name} to exist (iam waiter role_exists)")
        wait(
            f"IAM role {name} to exist",
            self.t.iam.get_waiter("role_exists"),
            delay=delay,
            max_attempts=attempts,
            RoleName=name,
        )

    def _function(self, a: Action, d: Desired, arns: _Arns) -> None:
        lam, name, pkg = self.t.lambda_, d.names.function, d.package
        if arns.role is None:
            raise AwsError(f"cannot configure Lambda function {name}: IAM role {d.names.role} is unknown")
        config: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": d.runtime,
            "Role": arns.role,
            "Handler": pkg.handler,
            "MemorySize": d.memory_size,
            "Timeout": d.timeout,
        }
        if a.verb == "create":
            got = self._retry_role_propagation(
                f"create Lambda function {name}",
                lam.create_function,
                dict(
                    config,
                    Code={"ZipFile": pkg.zip_bytes},
                    PackageType="Zip",
                    Description=f"meshbridge: backend of export {d.names.export} (bridge {d.names.bridge})",
                    Tags=d.names.tags,
                ),
            )
            arns.function = got["FunctionArn"]
            self._wait_function(name, "function_active_v2", "become Active")
            return
        if "configuration" in a.ops:
            self._retry_role_propagation(
                f"update the configuration of Lambda function {name}", lam.update_function_configuration, config
            )
            self._wait_function(name, "function_updated_v2", "finish updating")
        if "code" in a.ops:
            call(
                f"update the code of Lambda function {name}",
                lam.update_function_code,
                FunctionName=name,
                ZipFile=pkg.zip_bytes,
            )
            self._wait_function(name, "function_updated_v2", "finish updating")

    def _wait_function(self, name: str, waiter: str, goal: str) -> None:
        delay, attempts = self.waits.function
        self.progress(f"  waiting for Lambda function {name} to {goal} (lambda waiter {waiter})")
        wait(
            f"Lambda function {name} to {goal}",
            self.t.lambda_.get_waiter(waiter),  # type: ignore[call-overload]
            delay=delay,
            max_attempts=attempts,
            FunctionName=name,
        )

    def _retry_role_propagation(self, what: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        delays = self.waits.role_propagation
        for attempt in range(len(delays) + 1):
            try:
                return fn(**kwargs)
            except botocore.exceptions.ClientError as e:
                assumable = not (
                    error_code(e) == "InvalidParameterValueException" and "cannot be assumed" in error_message(e)
                )
                if assumable or attempt == len(delays):
                    if not assumable:
                        raise AwsError(
                            f"{what}: Lambda still cannot assume the execution role after {sum(delays):g} s "
                            f"of retries ({error_message(e)}). IAM changes usually propagate within seconds. "
                            "Fix: check that the role's trust policy allows lambda.amazonaws.com, then deploy again"
                        ) from e
                    raise translate(e, what, fn) from e
                self.progress(
                    f"  Lambda cannot assume the new IAM role yet (IAM changes take seconds to propagate); "
                    f"retry {attempt + 1} of {len(delays)} in {delays[attempt]:g} s"
                )
                self.sleep(delays[attempt])
            except botocore.exceptions.BotoCoreError as e:
                raise translate(e, what, fn) from e
        raise AssertionError("unreachable")

    def _target_group(self, a: Action, d: Desired, arns: _Arns) -> None:
        elb, name = self.t.elbv2, d.names.target_group
        if a.verb == "create":
            got = call(
                f"create target group {name}",
                elb.create_target_group,
                Name=name,
                TargetType="lambda",
                Tags=_tag_list(d.names.tags),
            )
            arns.target_group = got["TargetGroups"][0]["TargetGroupArn"]
        assert arns.target_group is not None
        value = "true" if d.multi_value_headers else "false"
        call(
            f"set {MULTI_VALUE_HEADERS}={value} on target group {name}",
            elb.modify_target_group_attributes,
            TargetGroupArn=arns.target_group,
            Attributes=[{"Key": MULTI_VALUE_HEADERS, "Value": value}],
        )

    def _permission(self, a: Action, d: Desired, arns: _Arns) -> None:
        lam, n = self.t.lambda_, d.names
        if arns.target_group is None:
            raise AwsError(f"cannot grant invoke permission: target group {n.target_group} is unknown")
        if a.verb == "update":
            find(
                f"remove permission {n.statement_id} from Lambda function {n.function}",
                {"ResourceNotFoundException"},
                lam.remove_permission,
                FunctionName=n.function,
                StatementId=n.statement_id,
            )
        call(
            f"let Elastic Load Balancing invoke Lambda function {n.function}",
            lam.add_permission,
            FunctionName=n.function,
            StatementId=n.statement_id,
            Action="lambda:InvokeFunction",
            Principal=ELB_PRINCIPAL,
            SourceArn=arns.target_group,
        )

    def _target(self, a: Action, d: Desired, arns: _Arns) -> None:
        elb, n = self.t.elbv2, d.names
        if arns.target_group is None or arns.function is None:
            raise AwsError(f"cannot register Lambda function {n.function}: its ARN or the target group's is unknown")
        if a.stale:
            call(
                f"deregister {', '.join(a.stale)} from target group {n.target_group}",
                elb.deregister_targets,
                TargetGroupArn=arns.target_group,
                Targets=[{"Id": t} for t in a.stale],
            )
        if a.verb == "create" or "register" in a.ops:
            call(
                f"register Lambda function {n.function} in target group {n.target_group}",
                elb.register_targets,
                TargetGroupArn=arns.target_group,
                Targets=[{"Id": arns.function}],
            )

    def _load_balancer(self, a: Action, d: Desired, arns: _Arns) -> None:
        elb, name = self.t.elbv2, d.names.load_balancer
        if a.verb == "create":
            extra: dict[str, Any] = {"SecurityGroups": list(d.security_group_ids)} if d.security_group_ids else {}
            got = call(
                f"create load balancer {name}",
                elb.create_load_balancer,
                Name=name,
                Subnets=list(d.subnet_ids),
                Scheme="internal",
                Type="application",
                IpAddressType="ipv4",
                Tags=_tag_list(d.names.tags),
                **extra,
            )
            arns.load_balancer = got["LoadBalancers"][0]["LoadBalancerArn"]
            delay, attempts = self.waits.load_balancer
            self.progress(f"  waiting for load balancer {name} to become active (elbv2 waiter load_balancer_available)")
            wait(
                f"load balancer {name} to become active",
                elb.get_waiter("load_balancer_available"),
                delay=delay,
                max_attempts=attempts,
                LoadBalancerArns=[arns.load_balancer],
            )
            return
        assert arns.load_balancer is not None
        if "subnets" in a.ops:
            call(
                f"set the subnets of load balancer {name}",
                elb.set_subnets,
                LoadBalancerArn=arns.load_balancer,
                Subnets=list(d.subnet_ids),
            )
        if "security-groups" in a.ops:
            call(
                f"set the security groups of load balancer {name}",
                elb.set_security_groups,
                LoadBalancerArn=arns.load_balancer,
                SecurityGroups=list(d.security_group_ids),
            )

    def _listener(self, a: Action, d: Desired, arns: _Arns) -> None:
        elb = self.t.elbv2
        if a.verb == "delete":
            assert a.arn is not None
            find(f"delete listener {a.name}", {"ListenerNotFound"}, elb.delete_listener, ListenerArn=a.arn)
            return
        want = next(li for li in d.listeners if li.label == a.name)
        if arns.load_balancer is None or arns.target_group is None:
            raise AwsError(f"cannot create listener {a.name}: the load balancer or target group ARN is unknown")
        settings = _listener_settings(want, arns.target_group)
        if a.verb == "create":
            got = call(
                f"create listener {a.name} on load balancer {d.names.load_balancer}",
                elb.create_listener,
                LoadBalancerArn=arns.load_balancer,
                Tags=_tag_list(d.names.tags),
                **settings,
            )
            arns.listeners[want.port] = got["Listeners"][0]["ListenerArn"]
        else:
            assert a.arn is not None
            call(
                f"modify listener {a.name} of load balancer {d.names.load_balancer}",
                elb.modify_listener,
                ListenerArn=a.arn,
                **settings,
            )

    # -- destroy -----------------------------------------------------------------------------------------

    def destroy(self, plan: Plan) -> list[Action]:
        """Execute a destroy plan (``delete`` actions; ``skip`` actions are reported, not executed).

        Returns:
            The actions that deleted something, in order.

        Raises:
            AwsError: a step failed; the message says what was deleted before the failure.
        """
        n = plan.names
        elb, lam = self.t.elbv2, self.t.lambda_

        def step(a: Action) -> None:
            if a.kind == "listener":
                assert a.arn is not None
                find(f"delete listener {a.name}", {"ListenerNotFound"}, elb.delete_listener, ListenerArn=a.arn)
            elif a.kind == "load balancer":
                assert a.arn is not None
                find(
                    f"delete load balancer {a.name}",
                    {"LoadBalancerNotFound"},
                    elb.delete_load_balancer,
                    LoadBalancerArn=a.arn,
                )
                delay, attempts = self.waits.load_balancer
                self.progress(
                    f"  waiting for load balancer {a.name} to be deleted (elbv2 waiter load_balancers_deleted)"
                )
                wait(
                    f"load balancer {a.name} to be deleted",
                    elb.get_waiter("load_balancers_deleted"),
                    delay=delay,
                    max_attempts=attempts,
                    LoadBalancerArns=[a.arn],
                )
            elif a.kind == "target":
                assert a.arn is not None
                find(
                    f"deregister {', '.join(a.stale)} from target group {n.target_group}",
                    {"TargetGroupNotFound"},
                    elb.deregister_targets,
                    TargetGroupArn=a.arn,
                    Targets=[{"Id": t} for t in a.stale],
                )
            elif a.kind == "target group":
                assert a.arn is not None
                find(
                    f"delete target group {a.name}",
                    {"TargetGroupNotFound"},
                    elb.delete_target_group,
                    TargetGroupArn=a.arn,
                )
            elif a.kind == "Lambda permission":
                find(
                    f"remove permission {a.name} from Lambda function {n.function}",
                    {"ResourceNotFoundException"},
                    lam.remove_permission,
                    FunctionName=n.function,
                    StatementId=a.name,
                )
            elif a.kind == "Lambda function":
                find(
                    f"delete Lambda function {a.name}",
                    {"ResourceNotFoundException"},
                    lam.delete_function,
                    FunctionName=a.name,
                )
            elif a.kind == "IAM role":
                self._delete_role(a.name)

        return self._run("destroy", plan, step)

    def _delete_role(self, name: str) -> None:
        iam = self.t.iam
        attached = find(
            f"list the managed policies of IAM role {name}",
            {"NoSuchEntity"},
            iam.list_attached_role_policies,
            RoleName=name,
        )
        if attached is None:
            return
        for p in attached.get("AttachedPolicies", []):
            call(
                f"detach {p['PolicyName']} from IAM role {name}",
                iam.detach_role_policy,
                RoleName=name,
                PolicyArn=p["PolicyArn"],
            )
        inline = call(f"list the inline policies of IAM role {name}", iam.list_role_policies, RoleName=name)
        for pname in inline.get("PolicyNames", []):
            call(
                f"delete inline policy {pname} of IAM role {name}",
                iam.delete_role_policy,
                RoleName=name,
                PolicyName=pname,
            )
        find(f"delete IAM role {name}", {"NoSuchEntity"}, iam.delete_role, RoleName=name)

    # -- shared ------------------------------------------------------------------------------------------

    def _run(self, operation: str, plan: Plan, step: Callable[[Action], None]) -> list[Action]:
        done: list[Action] = []
        for a in plan.actions:
            if not a.changes:
                continue
            self.progress(f"{a.verb} {a.kind} {a.name}")
            try:
                step(a)
            except AwsError as e:
                raise AwsError(_stopped(operation, a, e, done)) from e
            done.append(a)
        return done


def _stopped(operation: str, failed: Action, e: AwsError, done: list[Action]) -> str:
    did = "; ".join(f"{a.verb}d {a.kind} {a.name}" for a in done)  # created, updated, deleted
    lines = [f"{operation} stopped at '{failed.verb} {failed.kind} {failed.name}': {e}"]
    lines.append(f"Done before that: {did}." if done else "Nothing had been changed before that.")
    if operation == "deploy":
        lines.append(
            "Fix the cause and run 'meshbridge aws deploy' again: it continues from what exists. "
            "'meshbridge aws destroy' removes what meshbridge created."
        )
    else:
        lines.append("Fix the cause and run 'meshbridge aws destroy' again: it continues from what is left.")
    return "\n".join(lines)


def _tag_list(tags: dict[str, str]) -> list[Any]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _listener_settings(want: ListenerSpec, target_group_arn: str) -> dict[str, Any]:
    actions: list[ActionTypeDef] = [{"Type": "forward", "TargetGroupArn": target_group_arn}]
    settings: dict[str, Any] = {"Protocol": want.protocol, "Port": want.port, "DefaultActions": actions}
    if want.certificate_arn:
        certs: list[CertificateTypeDef] = [{"CertificateArn": want.certificate_arn}]
        settings["Certificates"] = certs
    if want.ssl_policy:
        settings["SslPolicy"] = want.ssl_policy
    return settings
