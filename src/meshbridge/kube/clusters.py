"""Which cluster each mesh lives in: kubeconfig contexts from the spec, overridden by ``--context MESH=CONTEXT``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from meshbridge.errors import KubeError
from meshbridge.kube.client import KubeClient
from meshbridge.kube.kubeconfig import KubeconfigFiles
from meshbridge.spec.models import Bridge


def parse_context_overrides(values: Sequence[str]) -> dict[str, str]:
    """``["eks=kind-a", "gke=kind-b"]`` → ``{"eks": "kind-a", "gke": "kind-b"}`` (pure).

    Raises:
        KubeError: a value is not ``MESH=CONTEXT``, or a mesh is given twice.
    """
    out: dict[str, str] = {}
    for value in values:
        mesh, sep, context = value.partition("=")
        mesh, context = mesh.strip(), context.strip()
        if not sep or not mesh or not context:
            raise KubeError(f"--context {value!r} is not MESH=CONTEXT (e.g. --context eks=arn:aws:eks:...:cluster/x)")
        if mesh in out:
            raise KubeError(f"--context names mesh {mesh!r} twice ({out[mesh]!r} and {context!r})")
        out[mesh] = context
    return out


def resolve_contexts(
    bridge: Bridge, overrides: Mapping[str, str] | None = None, meshes: Iterable[str] | None = None
) -> dict[str, str]:
    """The kubeconfig context of each mesh: the override, else ``spec.meshes.<mesh>.context`` (pure).

    Args:
        bridge: the spec.
        overrides: ``--context MESH=CONTEXT`` values.
        meshes: the meshes the command needs (default: every mesh); the others need no context.

    Raises:
        KubeError: an override names a mesh the spec lacks, or a needed mesh has no context at all.
    """
    overrides = dict(overrides or {})
    spec_meshes = bridge.spec.meshes
    unknown = sorted(set(overrides) - set(spec_meshes))
    if unknown:
        raise KubeError(
            f"--context names mesh(es) {', '.join(map(repr, unknown))} that the bridge does not define "
            f"(meshes: {', '.join(spec_meshes)}). Fix: use --context MESH=CONTEXT with one of those meshes"
        )
    wanted = list(spec_meshes) if meshes is None else [m for m in spec_meshes if m in set(meshes)]
    out: dict[str, str] = {}
    lacking = []
    for name in wanted:
        ctx = overrides.get(name) or spec_meshes[name].context
        if ctx:
            out[name] = ctx
        else:
            lacking.append(name)
    if lacking:
        raise KubeError(
            f"mesh(es) {', '.join(map(repr, lacking))} have no cluster. Fix: set spec.meshes.<mesh>.context, or "
            f"pass {' '.join(f'--context {m}=CONTEXT' for m in lacking)} ('kubectl config get-contexts' lists the "
            "contexts of your kubeconfig)"
        )
    return out


def connect(
    bridge: Bridge,
    overrides: Mapping[str, str] | None = None,
    *,
    meshes: Iterable[str] | None = None,
    kubeconfig: Path | None = None,
    request_timeout: float = 30.0,
) -> dict[str, KubeClient]:
    """One :class:`KubeClient` per mesh the command needs, from the kubeconfig. Nothing is sent yet.

    Args:
        bridge: the spec.
        overrides: ``--context MESH=CONTEXT`` values.
        meshes: the meshes to connect to (default: every mesh); the others' contexts are not even looked up.
        kubeconfig: ``--kubeconfig``; default ``$KUBECONFIG``, else ``~/.kube/config``.
        request_timeout: seconds one API request may take.

    Raises:
        KubeError: a context is missing (see :func:`resolve_contexts`); the kubeconfig does not exist, cannot be
            read or holds no contexts; it lacks a mesh's context (every such mesh is named, with the contexts it
            has); or a context cannot be loaded.
    """
    contexts = resolve_contexts(bridge, overrides, meshes)
    files = KubeconfigFiles.locate(kubeconfig)
    known = files.contexts()
    chosen = dict(overrides or {})
    absent = [
        (ctx, f"mesh {m}, from " + (f"--context {m}={ctx}" if chosen.get(m) else f"spec.meshes.{m}.context"))
        for m, ctx in contexts.items()
        if ctx not in known
    ]
    if absent:
        raise files.missing_contexts(absent, known)
    clients: dict[str, KubeClient] = {}
    try:
        for mesh, ctx in contexts.items():
            clients[mesh] = KubeClient.from_kubeconfig(ctx, kubeconfig=kubeconfig, request_timeout=request_timeout)
    except KubeError:
        for c in clients.values():
            c.close()
        raise
    return clients
