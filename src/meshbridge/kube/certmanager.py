"""What cert-manager issued in the clusters (``spec.tls.issuer: cert-manager``): the gateway Secrets, read for
``certs check --context`` (:meth:`meshbridge.pki.store.PkiStore.check_issued` judges them)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from meshbridge.envoy.names import SDS_CA_SUFFIX
from meshbridge.errors import KubeError
from meshbridge.kube.client import KubeClient
from meshbridge.kube.resources import ResourceRef
from meshbridge.spec.models import Bridge


def read_issued(
    bridge: Bridge, clients: Mapping[str, KubeClient]
) -> dict[tuple[str, str, str], dict[str, bytes] | None]:
    """Each own mesh's gateway Secrets, by ``(mesh, namespace, name)``: the credential (``<credentialName>``) and the
    peers' CAs (``<credentialName>-cacert``) in each gateway's namespace, their data decoded; ``None`` when absent.
    Only read: nothing is printed or written.

    Raises:
        KubeApiError: a read failed (403, timeout ...).
        KubeError: a Secret's data is not base64.
    """
    out: dict[tuple[str, str, str], dict[str, bytes] | None] = {}
    for mesh in bridge.own_meshes:
        m = bridge.spec.meshes[mesh]
        name = bridge.credential_name(mesh)
        for gw in (m.ingress_gateway, m.egress_gateway):
            if gw is None or mesh not in clients:
                continue
            for secret in (name, name + SDS_CA_SUFFIX):
                doc = clients[mesh].get(ResourceRef("v1", "Secret", gw.namespace, secret))
                out[(mesh, gw.namespace, secret)] = None if doc is None else _decoded(doc, mesh)
    return out


def _decoded(doc: Mapping[str, object], mesh: str) -> dict[str, bytes]:
    data = doc.get("data") or {}
    assert isinstance(data, dict)
    md = doc.get("metadata") or {}
    assert isinstance(md, dict)
    try:
        return {str(k): base64.b64decode(str(v), validate=True) for k, v in data.items()}
    except (binascii.Error, ValueError) as e:
        raise KubeError(
            f"mesh {mesh}: Secret {md.get('namespace')}/{md.get('name')} holds data that is not base64 ({e})"
        ) from e
