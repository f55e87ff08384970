"""Certificates Envoy reads from files in the pod (pure): which paths a mesh's Gateways and DestinationRules name,
and which mesh mounts each file given for such a path (``--cert [MESH:]PATH=FILE``).

A Gateway server (``serverCertificate``, ``privateKey``, ``caCertificates``, ``caCrl``) or a DestinationRule's
``tls`` (``clientCertificate``, ``privateKey``, ``caCertificates``, ``caCrl``) may name files mounted in the pod
instead of a ``credentialName``. istiod then asks the pod's istio-agent for them over SDS (``file-cert:<cert>~<key>``,
``file-root:<ca>``: :mod:`meshbridge.envoy.names`); the CRL is a file Envoy reads itself. ``meshbridge lint`` checks
the files it is given as it checks Secrets; the local twin mounts them (``Placement.mounts``) and refuses to start
without them. Both place the files with :func:`place_files`, so both accept and refuse the same ``--cert`` values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meshbridge.errors import IstioConfigError
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.resources import ClientTLSSettings, ServerTLSSettings
from meshbridge.istio.visibility import tls_settings

FILE_FIELDS = (
    ("serverCertificate", "server_certificate"),
    ("clientCertificate", "client_certificate"),
    ("privateKey", "private_key"),
    ("caCertificates", "ca_certificates"),
    ("caCrl", "ca_crl"),
)
"""The TLS fields that name a file in the pod: (the API's name, the model's attribute)."""


@dataclass(frozen=True)
class FileReference:
    """One field of a Gateway server or DestinationRule that names a file in the pod.

    Attributes:
        path: the file's path in the pod, as the field writes it.
        kind, namespace, name: the Gateway or DestinationRule.
        field: the field's path in it, e.g. ``spec.trafficPolicy.portLevelSettings[0].tls.clientCertificate``.
    """

    path: str
    kind: str
    namespace: str
    name: str
    field: str

    @property
    def api_field(self) -> str:
        """The field's own name: ``serverCertificate``, ``clientCertificate``, ``privateKey``, ``caCertificates``
        or ``caCrl``."""
        return self.field.rsplit(".", 1)[-1]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} {self.field}"


@dataclass(frozen=True)
class MountedFile:
    """A file given for a path in the pod (``--cert [MESH:]PATH=FILE``).

    Attributes:
        path: the path a manifest names (absolute, as in the pod).
        data: the file's bytes (PEM).
        mesh: the mesh whose pods mount it; ``None``: the one mesh whose manifests name the path.
        source: the file given, for messages and findings.
    """

    path: str
    data: bytes
    mesh: str | None = None
    source: str = "--cert"

    @property
    def option(self) -> str:
        """The ``--cert`` value as the user wrote it."""
        return f"--cert {self.mesh + ':' if self.mesh else ''}{self.path}={self.source}"


def tls_files(tls: ServerTLSSettings | ClientTLSSettings) -> dict[str, str]:
    """The file fields ``tls`` sets: API field name → path, in :data:`FILE_FIELDS` order."""
    return {api: value for api, attr in FILE_FIELDS if isinstance(value := getattr(tls, attr, None), str) and value}


def file_references(cfg: ConfigSet) -> list[FileReference]:
    """Every field of the mesh's Gateway servers and DestinationRules that names a file in the pod, in the order
    of the configuration."""
    out: list[FileReference] = []
    for gw in cfg.gateways:
        for i, server in enumerate(gw.spec.servers):
            if server.tls is not None:
                for api, path in tls_files(server.tls).items():
                    field = f"spec.servers[{i}].tls.{api}"
                    out.append(FileReference(path, "Gateway", gw.metadata.namespace, gw.metadata.name, field))
    for dr in cfg.destination_rules:
        for at, tls, _, _ in tls_settings(dr):
            for api, path in tls_files(tls).items():
                ns, name = dr.metadata.namespace, dr.metadata.name
                out.append(FileReference(path, "DestinationRule", ns, name, f"{at}.{api}"))
    return out


def place_files(files: Sequence[MountedFile], meshes: Mapping[str, ConfigSet]) -> dict[str, dict[str, MountedFile]]:
    """Which mesh mounts each file: the mesh it names, else the one mesh whose manifests name its path.

    Args:
        files: the ``--cert PATH=FILE`` values.
        meshes: every mesh checked or run, by name.

    Returns:
        Mesh name → (path in the pod → the file), for the meshes that get a file.

    Raises:
        IstioConfigError: a file names a mesh that is not among ``meshes``; no manifest (of its mesh) names its
            path; several meshes name its path and the value names none; or one mesh gets the same path twice.
    """
    referenced = {m: {r.path for r in file_references(cfg)} for m, cfg in meshes.items()}
    out: dict[str, dict[str, MountedFile]] = {}
    for f in files:
        if f.mesh is not None and f.mesh not in meshes:
            raise IstioConfigError(
                f"{f.option}: there is no mesh {f.mesh!r} (meshes: {', '.join(meshes)}). Fix: write one of them "
                f"before the path, or leave the mesh out: --cert {f.path}={f.source}"
            )
        candidates = [f.mesh] if f.mesh is not None else list(meshes)
        owners = [m for m in candidates if f.path in referenced[m]]
        if not owners:
            named = sorted({p for m in candidates for p in referenced[m]})
            where = f"mesh {candidates[0]}" if len(candidates) == 1 else f"meshes {', '.join(candidates)}"
            known = f"they name {', '.join(named)}" if named else "they name no certificate file"
            raise IstioConfigError(
                f"{f.option}: no Gateway or DestinationRule of {where} names the file {f.path}, so it would be "
                f"checked and mounted nowhere ({known}). Fix: write the path as a manifest's serverCertificate, "
                "clientCertificate, privateKey, caCertificates or caCrl writes it, or drop the option"
            )
        if len(owners) > 1:
            raise IstioConfigError(
                f"{f.option}: meshes {' and '.join(owners)} both name {f.path}, and each pod has its own. Fix: say "
                f"whose file it is: --cert {owners[0]}:{f.path}={f.source} (and one for {owners[1]})"
            )
        placed = out.setdefault(owners[0], {})
        if f.path in placed:
            raise IstioConfigError(
                f"{f.option}: {f.path} is given twice for mesh {owners[0]} (also {placed[f.path].source}). Fix: "
                "give each path once"
            )
        placed[f.path] = f
    return out
