"""The local twin in cert-manager mode (``spec.tls.issuer: cert-manager``): it runs no cert-manager, so it plays it.

In the clusters each mesh's cert-manager issuer signs the gateway certificates and meshbridge holds only the issuers'
CA certificates. The twin has neither cert-manager nor those CA keys: it keeps a stand-in issuer per mesh (a CA of its
own, with its key) in a store of its own, ``<state folder>/twin-cert-manager``, never the user's, and issues from it
the leaves the Certificates ask for (the same SANs, usage, key type and lifetime: the spec's own leaf rules). Render
then writes them as cert-manager writes its Secrets (``tls.crt``, ``tls.key``, ``ca.crt`` the stand-in issuer's own
CA), beside the ``<credentialName>-cacert`` Secrets with the peers' stand-in CAs, so the twin's gateways read the
same shapes as the clusters' (docs/fidelity.md says so). Outside cert-manager mode each function is the identity.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from meshbridge.pki import MeshCredentials, PkiStore
from meshbridge.spec.models import Bridge

TWIN_ISSUERS = "twin-cert-manager"
"""The folder (in the state folder) of the twin's stand-in issuers, in cert-manager mode."""


def twin_store(bridge: Bridge, state_dir: Path) -> PkiStore:
    """The store the twin issues from and verify reads: the user's (``state_dir``), or in cert-manager mode the
    twin's stand-in issuers (:data:`TWIN_ISSUERS`)."""
    return PkiStore(state_dir / TWIN_ISSUERS) if bridge.issued_by_cert_manager else PkiStore(state_dir)


def issuing_bridge(bridge: Bridge) -> Bridge:
    """``bridge`` as its certificates are issued on the twin: in cert-manager mode, the same bridge with meshbridge
    as the issuer (the stand-in issuers sign what each Certificate asks for); otherwise ``bridge`` itself."""
    if not bridge.issued_by_cert_manager:
        return bridge
    tls = bridge.spec.tls.model_copy(update={"issuer": "meshbridge"})
    meshes = {name: m.model_copy(update={"cert_manager": None}) for name, m in bridge.spec.meshes.items()}
    return bridge.model_copy(update={"spec": bridge.spec.model_copy(update={"tls": tls, "meshes": meshes})})


def twin_credentials(bridge: Bridge, store: PkiStore) -> dict[str, MeshCredentials]:
    """Each own mesh's credentials on the twin: the store's (:meth:`PkiStore.credentials`), and in cert-manager mode
    with each mesh's stand-in issuer CA as ``issuer_ca`` (render then writes the Secrets cert-manager would).

    Raises:
        PkiError: as :meth:`PkiStore.credentials` (e.g. never issued).
    """
    creds = store.credentials(issuing_bridge(bridge))
    if not bridge.issued_by_cert_manager:
        return creds
    out = {}
    for mesh, c in creds.items():
        ca = store.load(mesh, "ca")
        out[mesh] = dataclasses.replace(c, issuer_ca=ca.cert_pem if ca is not None else None)
    return out
