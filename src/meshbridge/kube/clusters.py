"""Which cluster each mesh lives in: kubeconfig contexts from the spec, overridden by ``--context MESH=CONTEXT``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from meshbridge.errors import KubeError
from meshbridge.kube.client import KubeClient
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


def resolve_contexts(bridge: Bridge, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kubeconfig context of every mesh: the override, else ``spec.meshes.<mesh>.context`` (pure).

    Raises:
        KubeError: an override names a mesh the spec lacks, or a mesh has no context at all.
    """
    overrides = dict(overrides or {})
    meshes = bridge.spec.meshes
    unknown = sorted(set(overrides) - set(meshes))
    if unknown:
        raise KubeError(
            f"--context names mesh(es) {', '.join(map(repr, unknown))} that the bridge does not define "
            f"(meshes: {', '.join(meshes)})"
        )
    out: dict[str, str] = {}
    lacking = []
    for name, mesh in meshes.items():
        ctx = overrides.get(name) or mesh.context
        if ctx:
            out[name] = ctx
        else:
            lacking.append(name)
    if lacking:
        raise KubeError(
            f"mesh(es) {', '.join(map(repr, lacking))} have no cluster. Fix: set spec.meshes.<mesh>.context, or "
            f"pass {' '.join(f'--context {m}=CONTEXT' for m in lacking)}"
        )
    return out


def connect(
    bridge: Bridge,
    overrides: Mapping[str, str] | None = None,
    *,
    kubeconfig: Path | None = None,
    request_timeout: float = 30.0,
) -> dict[str, KubeClient]:
    """One :class:`KubeClient` per mesh, from the kubeconfig. Nothing is sent yet.

    Raises:
        KubeError: a context is missing (see :func:`resolve_contexts`) or cannot be loaded from the kubeconfig.
    """
    contexts = resolve_contexts(bridge, overrides)
    clients: dict[str, KubeClient] = {}
    try:
        for mesh, ctx in contexts.items():
            clients[mesh] = KubeClient.from_kubeconfig(ctx, kubeconfig=kubeconfig, request_timeout=request_timeout)
    except KubeError:
        for c in clients.values():
            c.close()
        raise
    return clients
