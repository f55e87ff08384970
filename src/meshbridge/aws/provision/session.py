"""The boundary to AWS: sessions from the standard configuration, and botocore errors → :class:`AwsError`.

Every AWS call meshbridge makes goes through :func:`call`, :func:`find` or :func:`wait`, which translate
``botocore`` exceptions into :class:`~meshbridge.errors.AwsError` (``raise AwsError(...) from e``) with
messages that name the operation, the object and the fix. "Access denied" names the IAM action that
is missing.

Configuration is boto3's own (see "Configuration" in the boto3 guide and "Service-specific endpoints" in
the AWS SDKs and Tools reference): credentials and region from the environment, ``~/.aws/config`` and
``~/.aws/credentials``, ``AWS_PROFILE``; ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_<SERVICE>``, or
``endpoint_url`` in the profile) sends every call to an alternative endpoint such as a local emulator.
meshbridge only adds ``--profile`` and ``--region``, and resolves the region as: ``--region``, then
``spec.aws.region``, then ``AWS_REGION``, then boto3's own (``AWS_DEFAULT_REGION``, the profile's
``region``). boto3 alone ignores ``AWS_REGION``; the AWS CLI v2 and the other SDKs read it first.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config

from meshbridge import __version__
from meshbridge.errors import AwsError

if TYPE_CHECKING:
    from botocore.waiter import Waiter
    from mypy_boto3_acm import ACMClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sts import STSClient

P = ParamSpec("P")
T = TypeVar("T")

ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "UnauthorizedAccess",
        "Forbidden",
    }
)
BAD_CREDENTIALS = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "RequestExpired",
    }
)
_PERFORM = re.compile(r"perform: ([a-z0-9-]+:[A-Za-z0-9]+)")
_DOCS = "docs/aws.md lists a least-privilege policy"
_TITLE = re.compile(rb"<(title|h1)[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(rb"<[^>]*>")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<h1")


class NotAnAwsAnswer(botocore.exceptions.BotoCoreError):
    """The endpoint answered something that is not an AWS response: an HTML page, or an error in plain text.

    Raised by the ``before-parse`` hook that :func:`connect` puts on every client, before botocore's parsers
    would turn the page into a ``ResponseParserError`` or a ``ClientError`` carrying the whole page. Not
    retried: a proxy or a broken emulator does not start answering like AWS on the next attempt.
    """

    fmt = "{endpoint} answered HTTP {status} with {body}, not an AWS response"


@dataclass(frozen=True)
class AwsTarget:
    """Where provisioning happens: a boto3 session, its region, and one client per service.

    Attributes:
        session: the boto3 session (standard configuration, plus ``--profile``).
        region: the effective region.
        endpoint_url: the endpoint calls go to when it is not AWS's own (``AWS_ENDPOINT_URL``), else ``None``.
    """

    session: boto3.Session
    region: str
    endpoint_url: str | None
    iam: IAMClient
    lambda_: LambdaClient
    elbv2: ElasticLoadBalancingv2Client
    ec2: EC2Client
    acm: ACMClient
    sts: STSClient


def connect(
    *,
    profile: str | None = None,
    region: str | None = None,
    spec_region: str | None = None,
    session: boto3.Session | None = None,
) -> AwsTarget:
    """Open a session from the standard AWS configuration and create the clients.

    No AWS call is made here (credentials are looked up lazily, at the first call).

    Args:
        profile: a profile of ``~/.aws/config`` (``--profile``); ``None``: ``AWS_PROFILE`` or ``default``.
        region: ``--region``; it wins over everything.
        spec_region: ``spec.aws.region``; it wins over the standard configuration.
        session: a ready session to use instead of opening one (tests use it to observe calls).

    Returns:
        The target.

    Raises:
        AwsError: the profile does not exist, or no region is configured anywhere.
    """
    try:
        sess = session or boto3.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound as e:
        raise AwsError(
            f"AWS profile {profile!r} is not in the AWS configuration files. Fix: pass an existing --profile "
            "(aws configure list-profiles) or unset AWS_PROFILE"
        ) from e
    except botocore.exceptions.BotoCoreError as e:
        raise AwsError(f"cannot read the AWS configuration: {e}") from e
    # boto3 reads AWS_DEFAULT_REGION and the profile but not AWS_REGION, which the AWS CLI v2 and the
    # other SDKs honour first ("Environment variables to configure the AWS CLI"); so read it here.
    resolved = region or spec_region or os.environ.get("AWS_REGION") or sess.region_name
    if not resolved:
        raise AwsError(
            "no AWS region: set spec.aws.region in the bridge file, pass --region, or set AWS_REGION "
            "(or a region in your AWS profile)"
        )
    config = Config(
        region_name=resolved,
        retries={"mode": "standard", "max_attempts": 8},
        user_agent_extra=f"meshbridge/{__version__}",
    )

    def client(name: str) -> Any:
        try:
            made = sess.client(name, region_name=resolved, config=config)  # type: ignore[call-overload]
        except botocore.exceptions.BotoCoreError as e:
            raise AwsError(f"cannot create the {name} client for region {resolved!r}: {e}") from e
        made.meta.events.register("before-parse", functools.partial(refuse_foreign_answer, made.meta.endpoint_url))
        return made

    elbv2: ElasticLoadBalancingv2Client = client("elbv2")
    endpoint = elbv2.meta.endpoint_url
    return AwsTarget(
        session=sess,
        region=resolved,
        endpoint_url=None if ".amazonaws.com" in endpoint else endpoint,
        iam=client("iam"),
        lambda_=client("lambda"),
        elbv2=elbv2,
        ec2=client("ec2"),
        acm=client("acm"),
        sts=client("sts"),
    )


def refuse_foreign_answer(endpoint: str, response_dict: dict[str, Any], operation_model: Any = None, **_: Any) -> None:
    """``before-parse`` hook: raise :class:`NotAnAwsAnswer` when the body is an HTML page (any status), or plain
    text with an error status, instead of the XML or JSON document every AWS API answers with. An empty body
    is left to botocore (it makes the HTTP status the error code).

    Args:
        endpoint: the client's endpoint URL, for the message.
        response_dict: botocore's ``{"status_code", "headers", "body"}``.
        operation_model: the operation (a streaming answer such as a Lambda payload is never judged).
    """
    body = response_dict.get("body")
    status = int(response_dict.get("status_code") or 0)
    if not isinstance(body, bytes | bytearray):
        return  # a streaming success body: the service's own payload
    if status < 300 and getattr(operation_model, "has_streaming_output", False):
        return
    head = bytes(body[:4096]).lstrip()
    # judged by the body alone: emulators label their JSON text/html (Flask's default), AWS never sends HTML
    if head[:14].lower().startswith(_HTML_STARTS):
        title = _TITLE.search(head)
        text = " ".join(_TAG.sub(b" ", title.group(2)).decode("utf-8", "replace").split()) if title else ""
        shown = f"an HTML page ({_short(text, 80)!r})" if text else "an HTML page"
    elif status >= 300 and head and not head.startswith((b"<", b"{")):
        shown = f"text {_short(' '.join(head.decode('utf-8', 'replace').split()), 80)!r}"
    else:
        return
    raise NotAnAwsAnswer(endpoint=endpoint, status=status, body=shown)


def reachable(target: AwsTarget) -> dict[str, Any] | str:
    """``sts:GetCallerIdentity``'s answer when there are credentials and the endpoint answers (one attempt,
    at most 5 s to connect), else why not (no credentials: found locally, nothing is sent).

    Raises:
        AwsError: AWS answered with an error (rejected credentials, a page that is not AWS's): the account
            can be reached, and the caller should hear what is wrong with it.
    """
    no_credentials = (
        "no AWS credentials found (aws configure, aws sso login, --profile or AWS_ACCESS_KEY_ID set them; they "
        "are needed only to compare with the account)"
    )
    if target.session.get_credentials() is None:
        return no_credentials
    config = Config(
        region_name=target.region,
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=5,
        read_timeout=10,
        user_agent_extra=f"meshbridge/{__version__}",
    )
    sts = target.session.client("sts", region_name=target.region, config=config)
    sts.meta.events.register("before-parse", functools.partial(refuse_foreign_answer, sts.meta.endpoint_url))
    try:
        return dict(sts.get_caller_identity())
    except botocore.exceptions.NoCredentialsError:
        return no_credentials
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as e:
        return f"cannot reach the AWS endpoint ({e})"
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise translate(e, "identify the AWS caller", sts.get_caller_identity) from e


def call(what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call a client method; translate any botocore error.

    Args:
        what: the operation in words, e.g. ``"create target group meshbridge-lambda"``; errors start with it.
        fn: a bound client method, e.g. ``target.elbv2.create_target_group``.
        *args: its positional arguments (boto3 methods take none).
        **kwargs: its keyword arguments.

    Returns:
        The parsed response.

    Raises:
        AwsError: the call failed; ``__cause__`` is the botocore exception.
    """
    try:
        return fn(*args, **kwargs)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise translate(e, what, fn) from e


def find(what: str, missing: Collection[str], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
    """Like :func:`call`, but an error whose code is in ``missing`` (a not-found code) returns ``None``."""
    try:
        return fn(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        if error_code(e) in missing:
            return None
        raise translate(e, what, fn) from e
    except botocore.exceptions.BotoCoreError as e:
        raise translate(e, what, fn) from e


def wait(what: str, waiter: Waiter, *, delay: float, max_attempts: int, **kwargs: Any) -> None:
    """Run a botocore waiter with a bounded number of polls; translate its failure.

    Args:
        what: e.g. ``"load balancer meshbridge-alb to become active"``.
        waiter: from ``client.get_waiter(name)``.
        delay: seconds between polls.
        max_attempts: polls at most; the wait is bounded by ``delay * max_attempts`` seconds.
        **kwargs: the waiter's operation arguments.

    Raises:
        AwsError: the waiter reached a failure state, timed out, or a poll failed.
    """
    try:
        waiter.wait(WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}, **kwargs)
    except botocore.exceptions.WaiterError as e:
        last = e.last_response or {}
        err = last.get("Error") if isinstance(last, dict) else None
        if isinstance(err, dict) and err.get("Code") in ACCESS_DENIED:
            action = _action_from_message(str(err.get("Message", ""))) or "the waiter's describe action"
            raise AwsError(
                f"waiting for {what}: access denied ({err.get('Message')}). Fix: grant {action} ({_DOCS})"
            ) from e
        if "Max attempts exceeded" in str(e):
            raise AwsError(
                f"timed out after {delay * max_attempts:.0f} s waiting for {what} (botocore waiter "
                f"{e.kwargs.get('name')}). It may still finish: run 'meshbridge aws status' to see, and deploy "
                "again to continue"
            ) from e
        raise AwsError(f"waiting for {what} failed: {e.kwargs.get('reason')}. Last response: {_short(last)}") from e
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise translate(e, f"waiting for {what}", None) from e


def error_code(e: botocore.exceptions.ClientError) -> str:
    """The ``Error.Code`` of a ClientError (``""`` when absent)."""
    return str(e.response.get("Error", {}).get("Code", ""))


def error_message(e: botocore.exceptions.ClientError) -> str:
    """The ``Error.Message`` of a ClientError (``""`` when absent)."""
    return str(e.response.get("Error", {}).get("Message", ""))


def translate(e: Exception, what: str, fn: Callable[..., Any] | None) -> AwsError:
    """Turn a botocore exception into an :class:`AwsError` that names the problem and the fix.

    Args:
        e: a ``ClientError`` or ``BotoCoreError``.
        what: the operation in words.
        fn: the client method that failed, to name the IAM action (``None``: unknown).
    """
    if isinstance(e, botocore.exceptions.ClientError):
        code, message = error_code(e), error_message(e)
        if code in ACCESS_DENIED:
            action = _action_from_message(message) or _action_of(fn, e.operation_name)
            return AwsError(
                f"{what}: access denied: the AWS identity lacks permission {action}. AWS said: {message}. "
                f"Fix: grant {action} to that identity ({_DOCS})"
            )
        if code in BAD_CREDENTIALS:
            return AwsError(
                f"{what}: AWS rejected the credentials ({code}: {message}). Fix: refresh them (e.g. 'aws sso "
                "login'), or choose other ones with --profile / AWS_PROFILE"
            )
        return AwsError(f"{what} failed: {code}: {_short(' '.join(message.split()))}")
    if isinstance(e, NotAnAwsAnswer):
        return AwsError(f"{what}: {e}. Fix: {_endpoint_fix(str(e.kwargs.get('endpoint', '')))}")
    if isinstance(e, botocore.exceptions.NoCredentialsError):
        return AwsError(
            f"{what}: no AWS credentials found. Fix: configure them (aws configure, aws sso login), pass "
            "--profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(e, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError):
        return AwsError(
            f"{what}: cannot reach the AWS endpoint ({e}). Fix: check the network, the region, and "
            "AWS_ENDPOINT_URL if you use an emulator"
        )
    if isinstance(e, botocore.exceptions.ParamValidationError):
        return AwsError(f"{what}: invalid request parameters ({e}); this is a bug in meshbridge, please report it")
    return AwsError(f"{what} failed: {_short(' '.join(str(e).split()))}")


def _endpoint_fix(endpoint: str) -> str:
    """What to check when an endpoint answered something that is not AWS."""
    configured = os.environ.get("AWS_ENDPOINT_URL")
    if ".amazonaws.com" in endpoint:
        return (
            "something between here and AWS answered instead of AWS: check the network path (HTTPS_PROXY, a "
            "corporate proxy) and that AWS_ENDPOINT_URL is unset"
        )
    where = (
        f"AWS_ENDPOINT_URL (now {configured})"
        if configured
        else "AWS_ENDPOINT_URL_<SERVICE> and the profile's endpoint_url"
    )
    return f"check {where}: it must be the URL of a running AWS emulator, or unset it to use AWS itself"


def _action_from_message(message: str) -> str | None:
    m = _PERFORM.search(message)
    return m.group(1) if m else None


def _action_of(fn: Callable[..., Any] | None, operation: str) -> str:
    """``elasticloadbalancing:CreateLoadBalancer``: the IAM action is the service prefix and the operation."""
    client = getattr(fn, "__self__", None)
    meta = getattr(client, "meta", None)
    prefix = meta.service_model.signing_name if meta is not None else "?"
    return f"{prefix}:{operation}"


def _short(value: object, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
