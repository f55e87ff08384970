"""Which kubeconfig file is read, and what it holds: errors that name the file, the problem and the fix; and the
in-cluster configuration, for meshbridge running in a Pod.

The official client's own messages say neither which file it looked for nor what to do ("Invalid
kube-config file. No configuration found."), and it reads ``$KUBECONFIG`` once, when it is imported. Here
the file is chosen as kubectl chooses it, at call time: ``--kubeconfig``, else every path of
``$KUBECONFIG`` (``:``-separated, missing ones skipped), else ``~/.kube/config``.

**In a Pod** there is usually no kubeconfig: the cluster is ``https://$KUBERNETES_SERVICE_HOST:
$KUBERNETES_SERVICE_PORT``, the credentials the Pod's service account token, both mounted by the kubelet
under :data:`SERVICE_ACCOUNT_DIR` (``token``, ``ca.crt``). A mesh uses them when its context is
:data:`IN_CLUSTER` (``--context eks=@in-cluster``, or ``spec.meshes.<mesh>.context: "@in-cluster"``), and
only then: meshbridge talks to two clusters, and which of them is the Pod's own is the user's to say, never
guessed from the environment. That mesh's context is not looked up in any kubeconfig (a command whose meshes
are all in-cluster reads none). The token is read again every minute (the kubelet rotates projected tokens),
as the official client's ``InClusterConfigLoader`` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kubernetes.client import Configuration
from kubernetes.config.incluster_config import SERVICE_HOST_ENV_NAME, SERVICE_PORT_ENV_NAME, InClusterConfigLoader
from kubernetes.config.kube_config import ENV_KUBECONFIG_PATH_SEPARATOR, KubeConfigMerger

from meshbridge.errors import KubeError

DEFAULT_KUBECONFIG = "~/.kube/config"
_SEPARATOR = ENV_KUBECONFIG_PATH_SEPARATOR
_LISTED = 20  # contexts named in a message; the rest are counted

FIX_FILE = (
    "pass --kubeconfig FILE, or set KUBECONFIG=FILE, to the kubeconfig that holds the meshes' clusters "
    "(written e.g. by 'aws eks update-kubeconfig' or 'gcloud container clusters get-credentials'); "
    "'kubectl config get-contexts' lists its contexts, and spec.meshes.<mesh>.context or "
    "--context MESH=CONTEXT chooses one per mesh"
)
IN_CLUSTER = "@in-cluster"
"""The context that means "the cluster this Pod runs in, as its service account" (no kubeconfig)."""
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where the kubelet mounts a Pod's service account token (``token``) and the cluster's CA (``ca.crt``)."""
FIX_IN_CLUSTER = (
    f"--context MESH={IN_CLUSTER} works only in a Pod whose service account token is mounted (the Pod's "
    "automountServiceAccountToken must not be false); outside a Pod, choose a kubeconfig context instead "
    "(--context MESH=CONTEXT, 'kubectl config get-contexts' lists them)"
)


@dataclass(frozen=True)
class KubeconfigFiles:
    """The kubeconfig file(s) a command reads.

    Attributes:
        paths: the candidate files, in order (user's ``~`` expanded).
        origin: ``--kubeconfig``, ``KUBECONFIG`` or ``default``.
    """

    paths: tuple[Path, ...]
    origin: str

    @classmethod
    def locate(cls, kubeconfig: Path | None = None) -> KubeconfigFiles:
        """``--kubeconfig`` when given, else ``$KUBECONFIG`` (read now), else ``~/.kube/config``."""
        if kubeconfig is not None:
            return cls((Path(os.path.expanduser(str(kubeconfig))),), "--kubeconfig")
        env = os.environ.get("KUBECONFIG", "")
        paths = tuple(Path(os.path.expanduser(p)) for p in env.split(_SEPARATOR) if p)
        if paths:
            return cls(paths, "KUBECONFIG")
        return cls((Path(os.path.expanduser(DEFAULT_KUBECONFIG)),), "default")

    @property
    def loader_arg(self) -> str:
        """The ``config_file`` argument of the official client's loaders."""
        return _SEPARATOR.join(str(p) for p in self.paths)

    def describe(self) -> str:
        """``kubeconfig /x (--kubeconfig)``: the file(s) and where the choice came from, for messages."""
        names = ", ".join(str(p) for p in self.paths)
        if self.origin == "--kubeconfig":
            return f"kubeconfig {names} (--kubeconfig)"
        if self.origin == "KUBECONFIG":
            return f"kubeconfig {names} (from $KUBECONFIG)"
        return f"kubeconfig {names} (the default: neither --kubeconfig nor $KUBECONFIG is set)"

    def contexts(self) -> list[str]:
        """The names of the contexts the file(s) hold, sorted.

        Raises:
            KubeError: no file exists, one cannot be read or parsed, or together they hold no context.
        """
        existing = [p for p in self.paths if p.exists()]
        if not existing:
            what = "does not exist" if len(self.paths) == 1 else "names no file that exists"
            in_pod = (
                f"; this runs in a Pod (${SERVICE_HOST_ENV_NAME} is set): --context MESH={IN_CLUSTER} uses the Pod's "
                "service account for that mesh's cluster"
                if os.environ.get(SERVICE_HOST_ENV_NAME)
                else ""
            )
            raise KubeError(f"{self.describe()} {what}. Fix: {FIX_FILE}{in_pod}")
        try:
            found: list[object] = []
            if not all(p.is_file() and not p.read_bytes().strip() for p in existing):
                merged = KubeConfigMerger(self.loader_arg).config  # no current-context needed
                found = [getattr(c, "value", c) for c in (merged.value.get("contexts") or [])] if merged else []
        except (TypeError, AttributeError, KeyError) as e:  # YAML, but not a mapping of clusters/users/contexts
            raise KubeError(
                f"{self.describe()} is not a kubeconfig: its YAML is not a mapping with clusters, users and contexts "
                f"({one_line(e)}). Fix: point --kubeconfig or KUBECONFIG at a kubeconfig ('kubectl config view' "
                "shows what kubectl reads)"
            ) from e
        except Exception as e:  # OSError, yaml.YAMLError, ConfigException
            raise KubeError(
                f"{self.describe()} cannot be read: {one_line(e)}. Fix: correct it ('kubectl config view' shows "
                "what kubectl reads from it), or pass --kubeconfig FILE / set KUBECONFIG=FILE to another one"
            ) from e
        names = sorted({str(c.get("name")) for c in found or [] if isinstance(c, dict) and c.get("name")})
        if not names:
            raise KubeError(f"{self.describe()} holds no contexts. Fix: {FIX_FILE}")
        return names

    def missing_contexts(self, wanted: Sequence[tuple[str, str]], known: Sequence[str]) -> KubeError:
        """The error for contexts that the file(s) do not hold.

        Args:
            wanted: ``(context, where it was chosen)`` for each missing one, e.g.
                ``("prod", "mesh eks, from --context eks=prod")``; an empty ``where`` is left out.
            known: the contexts the file(s) do hold.
        """
        missing = ", nor ".join(f"{ctx!r} ({where})" if where else repr(ctx) for ctx, where in wanted)
        shown = ", ".join(known[:_LISTED]) + (f" and {len(known) - _LISTED} more" if len(known) > _LISTED else "")
        return KubeError(
            f"{self.describe()} has no context {missing}; its contexts: {shown}. Fix: choose one of them per mesh "
            "with --context MESH=CONTEXT or spec.meshes.<mesh>.context ('kubectl config get-contexts' lists them), "
            "or pass --kubeconfig FILE / set KUBECONFIG=FILE to the kubeconfig that has "
            + ("it" if len(wanted) == 1 else "them")
        )


def in_cluster_files() -> tuple[Path, Path]:
    """``(token, ca.crt)``: the files of the Pod's service account, under :data:`SERVICE_ACCOUNT_DIR`."""
    return SERVICE_ACCOUNT_DIR / "token", SERVICE_ACCOUNT_DIR / "ca.crt"


def in_cluster_configuration() -> Configuration:
    """The client configuration of the cluster this process's Pod runs in, as the Pod's service account.

    The server is ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``; the bearer token and the CA
    come from :func:`in_cluster_files` (the token re-read every minute, the kubelet rotates it).

    Raises:
        KubeError: a variable is unset or empty, or a file is missing or empty: the message names each and says
            what to do (run in a Pod with a mounted token, or use a kubeconfig context).
    """
    token, ca = in_cluster_files()
    problems = [
        f"${name} is not set" for name in (SERVICE_HOST_ENV_NAME, SERVICE_PORT_ENV_NAME) if not os.environ.get(name)
    ]
    for path, what in ((token, "the service account token"), (ca, "the cluster's CA")):
        try:
            empty = not path.read_bytes().strip()
        except OSError as e:
            problems.append(f"{what} {path} cannot be read ({e.strerror or type(e).__name__})")
            continue
        if empty:
            problems.append(f"{what} {path} is empty")
    if problems:
        raise KubeError(f"context {IN_CLUSTER}: {'; '.join(problems)}. Fix: {FIX_IN_CLUSTER}")
    configuration = Configuration()
    try:
        InClusterConfigLoader(token_filename=str(token), cert_filename=str(ca), try_refresh_token=True).load_and_set(
            configuration
        )
    except Exception as e:  # ConfigException, OSError: the files changed between the checks and the loader
        raise KubeError(f"context {IN_CLUSTER}: {one_line(e)}. Fix: {FIX_IN_CLUSTER}") from e
    return configuration


def one_line(e: BaseException, limit: int = 300) -> str:
    """An exception's text on one line, at most ``limit`` characters."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
