"""A Lambda function as the emulator runs it: its configuration, what one invoke returns, and an init failure.

Values only: :mod:`meshbridge.alb.lambda_runtime` runs the function (its environments), with
:mod:`meshbridge.alb.runtime_process` (the runtime processes) and :mod:`meshbridge.alb.runtime_api` (the
Runtime API they call).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import ConfigDict

from meshbridge.errors import LambdaError

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 + 100
"""RIE ``interop/model.go`` ``MaxPayloadSize``: the synchronous invoke request and response limit (6 MB)."""
INIT_TIMEOUT_S = 10.0
"""LDG lambda-runtime-environment: the Init phase of an on-demand environment is limited to 10 seconds."""

Outcome = Literal["Success", "Unhandled", "Throttled"]
"""How an invoke ended, in Lambda's words: a response, a function error (``X-Amz-Function-Error: Unhandled``),
or a 429 ``TooManyRequestsException`` (reserved concurrency reached)."""


_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)  # LDG configuration-envvars "Reserved environment variables": Lambda refuses to let a function set these.


@dataclass(frozen=True)
class FunctionConfig:
    """One Lambda function: its code, its settings, and the identity the runtime reports.

    Attributes:
        handler: ``FILE.py:FUNCTION``, e.g. ``handler.py:lambda_handler``; ``FILE`` is relative to
            ``task_root`` when that is given, else to the current directory. A file in a sub-folder
            (``pkg/app.py:main``) becomes AWS's ``pkg/app.main``.
        task_root: the code folder (AWS's ``/var/task``; ``LAMBDA_TASK_ROOT`` and the runtime's cwd).
            Default: the folder of ``FILE``.
        function_name: ``AWS_LAMBDA_FUNCTION_NAME`` (1-64 letters, digits, ``-``, ``_``). Default: the
            stem of ``FILE``.
        memory_mb: memory size in MB, 128-10240 (AWS default 128); reported to the handler
            (``context.memory_limit_in_mb``), **not enforced**.
        timeout_s: function timeout in seconds, over 0 and at most 900 (AWS default 3). On expiry the
            environment is killed and reset.
        concurrency: reserved concurrency: environments at most, 0-1000; 0 throttles every invoke.
        region: ``AWS_REGION``; also in the function ARN. Default ``us-east-1`` (RIE's default).
        account_id: the 12-digit account in the function ARN. Default ``012345678912`` (RIE's default).
        environment: the function's own environment variables. Reserved names (``AWS_REGION``,
            ``_HANDLER``, credentials, …) are refused, as Lambda refuses them.
        init_timeout_s: limit of an on-demand Init phase (AWS: 10 s). Past it the init is retried once during
            the invoke, bounded by the function timeout, as AWS does.
        python: the interpreter that runs ``-m awslambdaric``; it must have ``awslambdaric`` installed.
            Default: the current interpreter.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")  # AlbConfig.from_json: no unknown keys

    handler: str
    task_root: Path | None = None
    function_name: str | None = None
    memory_mb: int = 128
    timeout_s: float = 3.0
    concurrency: int = 10
    region: str = "us-east-1"
    account_id: str = "012345678912"
    environment: Mapping[str, str] = field(default_factory=dict)
    init_timeout_s: float = INIT_TIMEOUT_S
    python: str = sys.executable

    def __post_init__(self) -> None:
        file, sep, func = self.handler.rpartition(":")
        if not sep or not file.endswith(".py") or not func.isidentifier():
            raise LambdaError(
                f"handler {self.handler!r} is not FILE.py:FUNCTION; write e.g. 'handler.py:lambda_handler'"
            )
        if self.function_name is not None and not _FUNCTION_NAME.match(self.function_name):
            raise LambdaError(f"function name {self.function_name!r} is invalid; use 1-64 letters, digits, '-' or '_'")
        if not 128 <= self.memory_mb <= 10240:
            raise LambdaError(f"memory {self.memory_mb} MB is out of range; Lambda takes 128-10240 MB")
        if not 0 < self.timeout_s <= 900:
            raise LambdaError(f"timeout {self.timeout_s} s is out of range; Lambda takes over 0 and up to 900 s")
        if not 0 <= self.concurrency <= 1000:
            raise LambdaError(f"concurrency {self.concurrency} is out of range; use 0-1000 (0 throttles all)")
        if self.init_timeout_s <= 0:
            raise LambdaError(f"init timeout {self.init_timeout_s} s must be over 0")
        if not (len(self.account_id) == 12 and self.account_id.isdigit()):
            raise LambdaError(f"account id {self.account_id!r} must be 12 digits")
        reserved = sorted(set(self.environment) & _RESERVED_ENV)
        if reserved:
            raise LambdaError(
                f"environment sets reserved Lambda variable(s) {', '.join(reserved)}; Lambda sets these itself, "
                "remove them"
            )

    @property
    def file(self) -> Path:
        """The handler's file, as resolved from ``handler`` and ``task_root`` (it may not exist)."""
        file = Path(self.handler.rpartition(":")[0])
        return (self.task_root / file) if self.task_root is not None and not file.is_absolute() else file

    @property
    def resolved_task_root(self) -> Path:
        """The absolute task root."""
        return (self.task_root or self.file.parent).resolve()

    @property
    def aws_handler(self) -> str:
        """The handler string AWS stores and awslambdaric takes as argv[1], e.g. ``handler.lambda_handler``.

        Raises:
            LambdaError: the file is not inside the task root.
        """
        try:
            module = self.file.resolve().relative_to(self.resolved_task_root).with_suffix("")
        except ValueError:
            raise LambdaError(
                f"handler file {self.file} is outside the task root {self.resolved_task_root}; "
                "put it inside or choose another task root"
            ) from None
        return f"{module.as_posix()}.{self.handler.rpartition(':')[2]}"

    @property
    def name(self) -> str:
        """The function name (explicit, or the handler file's stem with other characters replaced by ``-``)."""
        return self.function_name or (re.sub(r"[^A-Za-z0-9_-]", "-", self.file.stem)[:64] or "function")

    @property
    def arn(self) -> str:
        """``arn:aws:lambda:<region>:<account>:function:<name>`` (the unqualified ARN ALB invokes)."""
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    def check(self) -> None:
        """Check that the code and the interpreter exist, before any process is started.

        Raises:
            LambdaError: the handler file or the task root is missing, or ``python`` is not executable.
        """
        if not self.file.is_file():
            raise LambdaError(f"handler file {self.file} does not exist")
        if not self.resolved_task_root.is_dir():
            raise LambdaError(f"task root {self.resolved_task_root} is not a folder")
        self.aws_handler  # noqa: B018 - raises when the file lies outside the task root
        if not os.access(self.python, os.X_OK):
            raise LambdaError(f"python interpreter {self.python} is not executable")


@dataclass(frozen=True)
class Invocation:
    """The result of one invoke, as the Lambda ``Invoke`` API gives it, plus what the platform measured.

    Attributes:
        request_id: the invocation's ``aws_request_id`` (a UUID); empty for a throttled invoke.
        outcome: ``Success``, ``Unhandled`` (a function error) or ``Throttled``.
        payload: the function's response bytes for ``Success``; the error JSON
            (``{"errorMessage", "errorType", …}``) for ``Unhandled``; Lambda's 429 body for ``Throttled``.
        error_type: ``errorType`` of a function error (``ValueError``, ``Sandbox.Timedout``,
            ``Runtime.ExitError``, ``Runtime.ImportModuleError``, ``Function.ResponseSizeTooLarge``, …), or
            ``TooManyRequestsException``; ``None`` on success.
        error_message: the error's message, when there is one.
        cold: an init ran for this invoke (first use of an environment, or the first after a reset).
        init_duration_ms: the on-demand Init phase (process start to its first ``/next``), in ms; ``None``
            when warm or for a suppressed init (whose time is inside ``duration_ms``, as in AWS's REPORT).
        duration_ms: the invoke phase in ms (event handed over to response posted), as REPORT ``Duration``.
        output: what the runtime wrote to stdout and stderr during this invoke (and its init), as one
            stream like a CloudWatch log stream; awslambdaric joins a traceback's lines with ``\\r``.
        environment: index of the environment that ran it (``-1`` when throttled).
    """

    request_id: str
    outcome: Outcome
    payload: bytes
    error_type: str | None
    error_message: str | None
    cold: bool
    init_duration_ms: float | None
    duration_ms: float
    output: str
    environment: int


class FunctionInitError(LambdaError):
    """The function's code cannot initialize, so every invoke would fail: found by ``check_init``.

    ``str()`` is one line: the handler, the ``errorType``, the ``errorMessage`` and the fix, e.g.
    ``handler h.py:nope cannot initialize: Runtime.HandlerNotFound: Handler 'nope' missing on module 'h'
    (every request would get 502 LambdaUnhandled). Fix: define nope(event, context) in h.py, …``.

    Attributes:
        handler: the handler as configured (``FILE.py:FUNCTION``).
        error_type: what awslambdaric posted to ``/init/error`` (``Runtime.HandlerNotFound``,
            ``Runtime.ImportModuleError``, ``Runtime.UserCodeSyntaxError``, ``Runtime.MalformedHandlerName``,
            ``Runtime.BuiltInModuleConflict``, or the class name of what the module raised, e.g.
            ``RuntimeError``); or the platform's ``Runtime.ExitError`` (the process ended during init),
            ``Sandbox.Timedout`` (no verdict within the bound) or ``Runtime.InvalidEntrypoint`` (the
            runtime could not be started).
        error_message: the ``errorMessage`` (newlines folded to spaces).
        output: what the runtime wrote during the init (awslambdaric's warning and traceback).
    """

    def __init__(
        self, config: FunctionConfig, error_type: str, error_message: str, *, where: str = "", output: str = ""
    ) -> None:
        self.handler = config.handler
        self.error_type = error_type
        self.error_message = " ".join(error_message.split())[:1000]
        self.output = output
        super().__init__(
            f"handler {config.handler} cannot initialize: {error_type}: {self.error_message}{where} "
            f"(every request would get 502 LambdaUnhandled). Fix: {_init_fix(config, error_type)}"
        )


def _init_fix(config: FunctionConfig, error_type: str) -> str:
    """The fix for an init failure of ``error_type`` (awslambdaric ``bootstrap._get_handler`` raises the
    ``Runtime.*`` ones; anything else is the module's own exception at import)."""
    file = config.file
    function = config.handler.rpartition(":")[2]
    fixes = {
        "Runtime.HandlerNotFound": f"define {function}(event, context) in {file}, or name a function it defines",
        "Runtime.ImportModuleError": (
            f"install the missing module into {config.python} or put it in the task root {config.resolved_task_root}"
        ),
        "Runtime.UserCodeSyntaxError": "correct the syntax at the file and line the message names",
        "Runtime.MalformedHandlerName": "write the handler as FILE.py:FUNCTION",
        "Runtime.BuiltInModuleConflict": f"rename {file}: a built-in Python module has its name",
        "Runtime.ExitError": "remove what ends the process (sys.exit, os._exit, a crash) from the code run at import",
        "Sandbox.Timedout": (
            "make the code run at import finish sooner: the Init phase may take "
            f"{max(config.init_timeout_s, config.timeout_s):g} s (AWS: 10 s, or the function timeout when longer)"
        ),
        "Runtime.InvalidEntrypoint": f"check that {config.python} runs and has awslambdaric installed",
    }
    return fixes.get(error_type, f"the code {file} runs at import raised it; correct it, or catch the error there")
