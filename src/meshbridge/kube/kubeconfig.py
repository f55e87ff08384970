"""Which kubeconfig file is read, and what it holds: errors that name the file, the problem and the fix.

The official client's own messages say neither which file it looked for nor what to do ("Invalid
kube-config file. No configuration found."), and it reads ``$KUBECONFIG`` once, when it is imported. Here
the file is chosen as kubectl chooses it, at call time: ``--kubeconfig``, else every path of
``$KUBECONFIG`` (``:``-separated, missing ones skipped), else ``~/.kube/config``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
            raise KubeError(f"{self.describe()} {what}. Fix: {FIX_FILE}")
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


def one_line(e: BaseException, limit: int = 300) -> str:
    """An exception's text on one line, at most ``limit`` characters."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
