"""What a gateway serves, compared with the PKI store (pure): the check between rotation steps.

A gateway's Envoy ``/config_dump`` holds its SDS secrets under istiod's names
(:func:`meshbridge.envoy.names.sds_name`): ``kubernetes://<credentialName>`` (the certificate chain it presents)
and ``kubernetes://<credentialName>-cacert`` (the CAs it trusts and their CRLs); it is read through
:class:`~meshbridge.envoy.view.EnvoyView`. :func:`served_problems` says how they differ from what
:meth:`PkiStore.credentials` says the gateway should hold, so that a step recorded in the store but not yet
delivered (a Secret not applied, an SDS push not yet made, a revocation never pushed) is seen before the next step
runs. The same comparison serves the local twin (its dumps through the admin port) and clusters (through the API
server's port-forward).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from meshbridge.envoy.names import sds_ca_name, sds_credential, sds_name
from meshbridge.envoy.view import EnvoyView, SecretEntry
from meshbridge.errors import PkiError
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.pki.x509 import parse_certificates, revoked_serials

Role = Literal["ingress", "egress"]


def served_problems(
    proxy: str, role: Role, dump: dict[str, Any], credentials: MeshCredentials, credential_name: str
) -> list[str]:
    """How ``proxy``'s served secrets differ from the store's: one sentence per difference, ``[]`` if none.

    Args:
        proxy: the proxy's name, for the sentences (``eks/istio-ingressgateway``).
        role: ``ingress`` (serves the server leaf, trusts the importers' CAs) or ``egress`` (the client leaf,
            trusts the exporters' CAs).
        dump: its Envoy ``/config_dump`` (JSON).
        credentials: its mesh's credentials from the store.
        credential_name: the Secret name (``spec.tls.credentialName``).
    """
    leaf, trust, crl = (
        (credentials.server, credentials.server_trust, credentials.server_crl)
        if role == "ingress"
        else (credentials.client, credentials.client_trust, credentials.client_crl)
    )
    if leaf is None:
        return []
    name = sds_name(credential_name)
    served = _served(dump)
    if not _holds(served, credential_name):
        return [
            f"{proxy} holds no {name} at all: none of its Gateways or DestinationRules names credentialName "
            f"{credential_name} (check the manifests it runs; 'meshbridge lint' shows which object is wrong)"
        ]
    problems = []
    chain = _serials(leaf.cert_pem)
    if served.get(name) != chain:
        problems.append(f"{proxy} serves {name} serials {_hex(served.get(name))}, the store has {_hex(chain)}")
    cas = sorted(_serials(trust))
    ca_name = sds_ca_name(credential_name)
    if served.get(f"{ca_name}/trust") != cas:
        problems.append(f"{proxy} trusts CA serials {_hex(served.get(f'{ca_name}/trust'))}, the store says {_hex(cas)}")
    revoked = sorted(revoked_serials(crl)) if crl else None
    if served.get(f"{ca_name}/crl") != revoked:
        problems.append(
            f"{proxy} holds revoked serials {_hex(served.get(f'{ca_name}/crl'))}, the store's CRLs revoke "
            f"{_hex(revoked)}"
        )
    return problems


def holds_credential(dump: dict[str, Any], credential_name: str) -> bool:
    """Whether the proxy of ``dump`` (its Envoy ``/config_dump``) holds any SDS secret of ``credential_name``:
    its certificate (``kubernetes://NAME``) or its trust bundle (``kubernetes://NAME-cacert``). A gateway holds
    them only when one of its Gateways or DestinationRules names the credential."""
    return _holds(_served(dump), credential_name)


def _holds(served: dict[str, Served], credential_name: str) -> bool:
    return sds_name(credential_name) in served or f"{sds_ca_name(credential_name)}/trust" in served


Served = list[int] | str | None
"""Serials as served; a ``str`` is why the served PEM could not be read (Envoy lists a secret it received even
when the TLS context refused it)."""


def _served(dump: dict[str, Any]) -> dict[str, Served]:
    """``kubernetes://NAME`` (a Gateway API listener's ``kubernetes-gateway://NS/NAME``) → chain serials; for
    validation contexts ``NAME/trust`` → sorted CA serials and
    ``NAME/crl`` → sorted revoked serials (``None`` without a CRL)."""
    out: dict[str, Served] = {}
    for entry in EnvoyView.from_config_dump(dump).secret_entries:
        if entry.state != "ACTIVE" or sds_credential(entry.name) is None:
            continue
        if entry.data("chain") is not None:
            out[entry.name] = _readable(entry, "chain", _serials)
        if entry.data("trust") is not None:
            out[f"{entry.name}/trust"] = _readable(entry, "trust", lambda p: sorted(_serials(p)))
            crl = entry.data("crl") is not None
            out[f"{entry.name}/crl"] = _readable(entry, "crl", lambda p: sorted(revoked_serials(p))) if crl else None
    return out


def _readable(
    entry: SecretEntry, which: Literal["chain", "trust", "crl"], read: Callable[[bytes], list[int]]
) -> Served:
    """``read`` of the PEM ``entry`` holds inline, or why it cannot be read."""
    try:
        return read(entry.pem(which) or b"")
    except (PkiError, ValueError) as e:  # ValueError: not base64
        return str(e)


def _serials(pem: bytes) -> list[int]:
    return [c.serial_number for c in parse_certificates(pem)] if pem.strip() else []


def _hex(serials: Served) -> str:
    if isinstance(serials, str):
        return f"that cannot be read ({serials})"
    return "none" if serials is None else "[" + ", ".join(f"{s:x}" for s in serials) + "]"
