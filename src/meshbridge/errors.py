"""The exception tree of meshbridge.

Every public call raises only these; errors of the libraries underneath (``yaml``, ``pydantic``,
``cryptography``, ``kubernetes``, ``botocore``, ``aiohttp``) are translated at the boundary with
``raise ...Error(...) from e``. Each message names the object, the problem and the fix.

::

    MeshbridgeError
     ├── SpecError            the bridge file: YAML syntax, schema, cross-field rules
     ├── PkiError             issuing, loading or validating certificates and keys
     ├── RenderError          turning a valid spec into manifests (e.g. certificates missing)
     ├── IstioConfigError     parsing Istio / Kubernetes YAML (the user's own or rendered)
     ├── TranslateError       computing one proxy's Envoy configuration
     ├── LambdaError          the local ALB and Lambda emulator
     ├── LocalError           the local twin: processes, addresses, state directory
     ├── KubeError            real clusters through the Kubernetes API
     └── AwsError             provisioning the AWS side with boto3

The CLI maps a ``MeshbridgeError`` to exit code 2 and prints its message; anything else is a bug.
"""

from __future__ import annotations


class MeshbridgeError(Exception):
    """Base of every error meshbridge raises on purpose."""


class SpecError(MeshbridgeError):
    """The bridge file cannot be used; ``issues`` lists every problem found, each with its fix."""

    def __init__(self, message: str, issues: list[SpecIssue] | None = None) -> None:
        super().__init__(message)
        self.issues: list[SpecIssue] = issues or []


class SpecIssue:
    """One problem in a bridge file.

    Attributes:
        source: the file name (or ``<string>``).
        line: 1-based line of the offending key or value, or ``None`` when it cannot be located.
        path: the field path, e.g. ``spec.exports[0].backend.port``.
        problem: what is wrong.
        fix: what to change.
    """

    __slots__ = ("fix", "line", "path", "problem", "source")

    def __init__(self, source: str, line: int | None, path: str, problem: str, fix: str) -> None:
        self.source = source
        self.line = line
        self.path = path
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.path}: {self.problem}. Fix: {self.fix}"

    def __repr__(self) -> str:
        return f"SpecIssue({self!s})"


class PkiError(MeshbridgeError):
    """A certificate or key cannot be issued, read or trusted."""


class RenderError(MeshbridgeError):
    """A valid spec cannot be rendered (for example, its certificates were never issued)."""


class IstioConfigError(MeshbridgeError):
    """Istio or Kubernetes YAML cannot be parsed into the supported model."""


class TranslateError(MeshbridgeError):
    """The Envoy configuration of one proxy cannot be computed or is inconsistent."""


class LambdaError(MeshbridgeError):
    """The local ALB / Lambda emulator cannot start or run a handler."""


class LocalError(MeshbridgeError):
    """The local twin cannot start, reach or stop one of its components."""


class KubeError(MeshbridgeError):
    """A call to a real cluster failed; the message names the cluster (context) and the object."""


class AwsError(MeshbridgeError):
    """A call to AWS failed or the AWS section of the spec cannot be provisioned."""
