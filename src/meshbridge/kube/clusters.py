"""Which cluster each mesh lives in: kubeconfig contexts from the spec, overridden by ``--context MESH=CONTEXT``;
the context ``@in-cluster`` is the Pod's own cluster (:func:`meshbridge.kube.kubeconfig.in_cluster_configuration`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from meshbridge.errors import KubeError
from meshbridge.kube.client import KubeClient
from meshbridge.kube.kubeconfig import IN_CLUSTER, KubeconfigFiles, in_cluster_configuration
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
        meshes: the meshes the command needs (default: every mesh this spec's owner holds, not the ``peer: true``
            ones); the others need no context.

    Raises:
        KubeError: an override names a mesh the spec lacks, a needed mesh is a ``peer: true`` mesh (another
            owner's) or has no context at all, or two meshes would use the same context (each mesh is an Istio
            installation of its own, in its own cluster).
    """
    overrides = dict(overrides or {})
    spec_meshes = bridge.spec.meshes
    unknown = sorted(set(overrides) - set(spec_meshes))
    if unknown:
        raise KubeError(
            f"--context names mesh(es) {', '.join(map(repr, unknown))} that the bridge does not define "
            f"(meshes: {', '.join(spec_meshes)}). Fix: use --context MESH=CONTEXT with one of those meshes"
        )
    wanted = bridge.own_meshes if meshes is None else [m for m in spec_meshes if m in set(meshes)]
    peers = [m for m in wanted + sorted(set(overrides) - set(wanted)) if spec_meshes[m].peer]
    if peers:
        own = ", ".join(bridge.own_meshes)
        raise KubeError(
            f"mesh(es) {', '.join(map(repr, peers))} are marked 'peer: true': another owner's cluster, which "
            f"meshbridge never reaches. Fix: name only your own mesh(es) ({own}); the peer's owner runs the "
            "same command on their side"
        )
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
    shared = _shared_contexts(out, overrides)
    if shared:
        raise KubeError(shared)
    return out


def _shared_contexts(contexts: Mapping[str, str], overrides: Mapping[str, str]) -> str | None:
    """The problem of two meshes given the same context (where each came from, and the fix), or ``None``."""
    by_context: dict[str, list[str]] = {}
    for mesh, ctx in contexts.items():
        by_context.setdefault(ctx, []).append(mesh)
    shared = {ctx: meshes for ctx, meshes in by_context.items() if len(meshes) > 1}
    if not shared:
        return None
    ctx, meshes = next(iter(shared.items()))
    origins = " and ".join(
        f"--context {m}={ctx}" if m in overrides else f"spec.meshes.{m}.context: {ctx}" for m in meshes
    )
    return (
        f"meshes {' and '.join(map(repr, meshes))} would both use the kubeconfig context {ctx!r} ({origins}); "
        "each mesh is an Istio installation of its own in its own cluster, and in one cluster 'apply' of one "
        "mesh would prune the other's objects (both carry this bridge's labels). Fix: give "
        f"each mesh its own cluster's context, e.g. {' '.join(f'--context {m}=CONTEXT' for m in meshes)} "
        "('kubectl config get-contexts' lists them)"
    )


def connect(
    bridge: Bridge,
    overrides: Mapping[str, str] | None = None,
    *,
    meshes: Iterable[str] | None = None,
    kubeconfig: Path | None = None,
    request_timeout: float = 30.0,
    notify: Callable[[str], None] | None = None,
) -> dict[str, KubeClient]:
    """One :class:`KubeClient` per mesh the command needs, from the kubeconfig (or, for a mesh whose context is
    ``@in-cluster``, from the Pod's service account; the kubeconfig is read only if a mesh needs it). Nothing is
    sent yet.

    Args:
        bridge: the spec.
        overrides: ``--context MESH=CONTEXT`` values.
        meshes: the meshes to connect to (default: every mesh); the others' contexts are not even looked up.
        kubeconfig: ``--kubeconfig``; default ``$KUBECONFIG``, else ``~/.kube/config``.
        request_timeout: seconds one API request may take.
        notify: receives the servers' ``Warning:`` headers and retry notices, one line each (the CLI prints
            them on stderr).

    Raises:
        KubeError: a context is missing (see :func:`resolve_contexts`); the kubeconfig does not exist, cannot be
            read or holds no contexts; it lacks a mesh's context (every such mesh is named, with the contexts it
            has); a context cannot be loaded; or ``@in-cluster`` is asked for outside a Pod (no
            ``KUBERNETES_SERVICE_HOST``/``PORT``, no mounted token).
    """
    contexts = resolve_contexts(bridge, overrides, meshes)
    chosen = dict(overrides or {})
    in_files = {m: ctx for m, ctx in contexts.items() if ctx != IN_CLUSTER}
    if in_files:
        files = KubeconfigFiles.locate(kubeconfig)
        known = files.contexts()
        absent = [
            (ctx, f"mesh {m}, from " + (f"--context {m}={ctx}" if chosen.get(m) else f"spec.meshes.{m}.context"))
            for m, ctx in in_files.items()
            if ctx not in known
        ]
        if absent:
            raise files.missing_contexts(absent, known)
    clients: dict[str, KubeClient] = {}
    try:
        for mesh, ctx in contexts.items():
            if ctx == IN_CLUSTER:
                clients[mesh] = KubeClient.from_configuration(
                    in_cluster_configuration(), ctx, request_timeout=request_timeout, notify=notify
                )
                continue
            clients[mesh] = KubeClient.from_kubeconfig(
                ctx, kubeconfig=kubeconfig, request_timeout=request_timeout, notify=notify
            )
    except KubeError:
        for c in clients.values():
            c.close()
        raise
    return clients
