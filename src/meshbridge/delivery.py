"""Certificate delivery: the store's certificates to wherever the bridge runs, and the check that they are served.

Where the bridge runs: the local twin, if it runs (an atomic SDS swap, no restart; when trust narrowed, the
gateways' open connections are drained), and the clusters of the contexts given (a server-side apply of every
mesh's gateway Secrets, then a wait until every gateway pod serves them). ``certs issue``, ``push``,
``rotate`` and ``revoke`` deliver through :class:`Targets`; a rotation (:mod:`meshbridge.rotation`) pushes and
checks with it between its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from meshbridge.pki import PkiStore, default_state_dir
from meshbridge.spec.models import Bridge
from meshbridge.verify.report import Condition

if TYPE_CHECKING:
    from meshbridge.kube.client import KubeClient


class Targets:
    """Where the store's certificates are served: the running local twin, and the clusters of ``contexts``.

    ``push`` sends them (an SDS swap locally, which drains connections when trust narrowed; a server-side
    apply of the gateway Secrets on every mesh's cluster); ``check`` says whether every gateway serves them.
    Use it as a context manager: the clusters are connected on entry and closed on exit.

    Args:
        bridge: the spec.
        file: the bridge file (the twin's state folder is beside it unless ``state_dir`` is given).
        state_dir: the state folder (``--state-dir``), or ``None`` for the default one beside ``file``.
        store: the PKI store whose certificates are delivered.
        contexts: ``MESH=CONTEXT`` overrides of the clusters to push to; ``None`` or empty: no cluster, or, while
            the twin on the real control plane runs, its own API servers.
        timeout: seconds ``check`` waits for every gateway pod of the clusters to serve the store.
        kubeconfig: the kubeconfig file, or ``None`` for the default one.
        force_conflicts: take over gateway Secrets another field manager owns (``--force-conflicts``).
        notify: where the notes of connecting to the clusters go (one line each).
    """

    def __init__(
        self,
        bridge: Bridge,
        file: Path,
        state_dir: Path | None,
        store: PkiStore,
        contexts: list[str] | None,
        timeout: float,
        kubeconfig: Path | None,
        force_conflicts: bool = False,
        notify: Callable[[str], None] = lambda _: None,
    ) -> None:
        from meshbridge.local.twin import LocalTwin

        self.force_conflicts = force_conflicts
        self.bridge, self.file, self.store, self.contexts, self.timeout = bridge, file, store, contexts, timeout
        self.kubeconfig = kubeconfig
        self._notify = notify
        self.twin = LocalTwin(bridge, file, state_dir or default_state_dir(file))
        self.local = self.twin.running()
        self.on_twin = False  # the clusters are the API servers of the twin on the real control plane
        own = self.twin.kubeconfig() if self.local else None
        if own is not None:  # a twin on the real control plane: istiod serves the Secrets of its API servers
            self.local = False
            self._twin_api_servers(own, [f"{m}={m}" for m in bridge.spec.meshes])
        self.clients: dict[str, KubeClient] = {}

    def _twin_api_servers(self, own: Path, twin_contexts: list[str]) -> None:
        """Without ``--context``, push to (and check) the API servers of the twin on the real control plane (its
        recorded kubeconfig, a context per mesh), saying so; with the user's other clusters, say how to reach it."""
        given = " ".join(f"--context {c}" for c in twin_contexts)
        if not self.contexts:
            self.contexts, self.kubeconfig, self.on_twin = twin_contexts, own, True
            self._notify(
                f"note: the local twin runs on the real control plane: istiod serves its gateways the Secrets of "
                f"its API servers, so they are pushed there (--kubeconfig {own} {given})"
            )
        elif sorted(self.contexts) == sorted(twin_contexts) and own.resolve() == Path(self.kubeconfig or "").resolve():
            self.on_twin = True
        else:
            self._notify(
                f"note: the local twin runs on the real control plane: its gateways get the Secrets of its API "
                f"servers from istiod, so push to them: --kubeconfig {own} {given}"
            )

    def __enter__(self) -> Targets:
        if self.contexts:
            from meshbridge.kube import connect, parse_context_overrides

            self.clients = connect(
                self.bridge,
                parse_context_overrides(self.contexts),
                kubeconfig=self.kubeconfig,
                notify=self._notify,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.clients.values():
            c.close()

    def ready(self) -> None:
        """Fail now if a push could not be made (a cluster that does not answer, the twin's config)."""
        for client in self.clients.values():
            client.version()
        if self.local:
            self.twin.plan()

    def push(self) -> list[str]:
        """Send the store's certificates everywhere; one line per place.

        Raises:
            ApplyError: a cluster refused a Secret; the message says which clusters hold the certificates now.
        """
        where = []
        if self.local:
            where.append(_twin_pushed(self.twin.refresh_secrets()))
        if self.clients:
            from meshbridge.kube.apply import push_secrets

            results = push_secrets(
                self.bridge, self.clients, self.store.credentials(self.bridge), force_conflicts=self.force_conflicts
            )
            where += [f"{r.mesh} ({r.context}: {len(r.done)} Secret(s))" for r in results]
        return where

    def check(self) -> list[Condition]:
        """The checks between steps: locally the path itself; on clusters, every gateway pod serves the store."""
        from meshbridge.verify.local import served_certificates, verify_local

        found: list[Condition] = []
        if self.local:
            found.append(served_certificates(self.twin))  # waits for the SDS reloads; verify's own would not
            keep = ("ExporterAcceptsImporterCert", "AppReachesExport")
            found += [c for c in verify_local(self.twin) if c.check in keep]
        if self.clients:
            from meshbridge.kube.verify import served_condition

            found.append(served_condition(self._wait_served(), list(self.clients), fix=False))
        return found

    def _wait_served(self) -> list[str]:
        """What the clusters' gateway pods serve that differs from the store (:func:`kube.verify.wait_served`).

        Raises:
            KubeError: a gateway pod runs on no node (an API server without nodes): the message says the Secrets
                were written and that serving them cannot be checked there, which no flag skips.
        """
        from meshbridge.kube.errors import KubeApiError, unscheduled
        from meshbridge.kube.verify import wait_served

        try:
            return wait_served(self.bridge, self.store.credentials(self.bridge), self.clients, timeout=self.timeout)
        except KubeApiError as e:
            if not unscheduled(e):
                raise
            raise KubeApiError(
                f"{e}\nThe gateway Secrets were written to {', '.join(c.context for c in self.clients.values())}, "
                "but whether the gateway pods serve them cannot be checked: a pod on no node has no kubelet to "
                "read its Envoy through. No flag skips this check (it is what makes the next step safe); once the "
                "gateway pods run on a node, 'meshbridge certs push --context MESH=CONTEXT ...' checks again",
                context=e.context,
                object=e.object,
                status=e.status,
                reason=e.reason,
                server_message=e.server_message,
            ) from e

    def restart_hint(self) -> str:
        """The commands that cut connections opened before a trust change on clusters (Envoy keeps them)."""
        if self.on_twin:  # its Deployments have no controller: a rollout restart changes nothing there
            return (
                "on the local twin, connections opened before this change stay up until they close (Envoy checks a "
                "peer only when it connects), and no controller acts on 'kubectl rollout restart' there; to cut them "
                f"now, start the twin again: '{self.twin.command('local down')}', then '{self.twin.up_command()}'"
            )
        lines = []
        for m, client in self.clients.items():
            for gw in (self.bridge.spec.meshes[m].ingress_gateway, self.bridge.spec.meshes[m].egress_gateway):
                if gw is not None:
                    lines.append(
                        f"  kubectl --context {client.context} -n {gw.namespace} rollout restart deployment/{gw.name}"
                    )
        return (
            "on clusters, connections opened before this change stay up until they close (Envoy checks a peer only "
            "when it connects); to cut them now:\n" + "\n".join(lines)
        )


def _twin_pushed(changed: dict[str, list[str]]) -> str:
    """What a push to the local twin did (:meth:`LocalTwin.refresh_secrets`'s answer): the proxies whose SDS files
    changed (Envoy reloads them without a restart) and those that drained the connections opened before; or that
    every proxy already had the store's certificates, so nothing changed."""
    reloaded = [n for n, v in changed.items() if v]
    if not reloaded:
        return "local twin (nothing changed: every proxy already had what the store holds)"
    drained = [n for n, v in changed.items() if "drained" in v]
    text = f"local twin ({', '.join(reloaded)} reloaded new secrets without restart"
    if drained == reloaded:
        return text + " and drained the connections opened before)"
    return text + (f"; {', '.join(drained)} drained the connections opened before)" if drained else ")")
