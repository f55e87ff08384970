"""Each mesh's own CA in the twin, and every proxy's workload certificate from it (I/O: the twin's state folder).

In a cluster, istiod's CA signs a certificate for each proxy with the SPIFFE ID of its ServiceAccount
(``spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>``), and the pod's istio-agent serves it with the
mesh's root over SDS as ``default`` and ``ROOTCA``: what ISTIO_MUTUAL uses between a mesh's own proxies (a
sidecar and an egress gateway, say). The twin does the same with files, which the SDS resources name
(:func:`meshbridge.envoy.secrets.agent_secret`):

* ``<state>/local/mesh-ca/<mesh>/ca.crt`` and ``ca.key`` (0600): the mesh's CA (ECDSA P-256, 10 years), made
  once and kept; a new one replaces it when it is unreadable or expires within :data:`RENEW_BEFORE`. It is the
  twin's alone, apart from the bridge's CAs (``<state>/pki``) that the gateways of two meshes use between them,
  as a mesh's istiod CA is apart from the certificates of its gateways' ``credentialName``;
* ``<state>/local/<mesh>/<proxy>/workload/``: ``cert-chain.pem``, ``key.pem`` (0600) and ``root-cert.pem``
  (:data:`~meshbridge.envoy.placement.WORKLOAD_FILES`), the proxy's certificate for its identity
  (:attr:`~meshbridge.istio.visibility.Proxy.sa` in its mesh's trust domain), kept while it is signed by the
  mesh's CA, names that identity, has its key and lasts beyond :data:`RENEW_BEFORE`; issued anew otherwise.

Nothing here prints a key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from meshbridge.envoy.placement import WORKLOAD_FILES
from meshbridge.errors import LocalError, PkiError
from meshbridge.fsutil import write_atomic
from meshbridge.istio.visibility import spiffe_id
from meshbridge.local.plan import LocalPlan
from meshbridge.pki.x509 import CertBundle, issue_ca, issue_workload_cert, key_matches, signed_by, utcnow

CA_DAYS = 3650
"""The mesh CA's lifetime: 10 years, as istiod's self-signed root."""
RENEW_BEFORE = dt.timedelta(days=1)
"""A CA or workload certificate that expires sooner than this is replaced."""


def write_workload_certs(
    plan: LocalPlan, trust_domains: Mapping[str, str], now: dt.datetime | None = None
) -> dict[str, str]:
    """Make sure every proxy of ``plan`` has its workload certificate from its mesh's CA, in its placement's folder.

    Args:
        plan: the twin's plan (each proxy's :attr:`~meshbridge.envoy.placement.Placement.workload_certs`).
        trust_domains: each mesh's trust domain (``MeshSettings.trust_domain``: the spec's, or the manifests').
        now: the time to judge expiry and issue at (UTC); default: the current time.

    Returns:
        Each proxy's identity (its SPIFFE ID), by proxy name.

    Raises:
        LocalError: a file cannot be written (the folder and the OS error).
    """
    now = now or utcnow()
    cas: dict[str, CertBundle] = {}
    identities = {}
    for name, spec in plan.proxies.items():
        folder = plan.placements[name].workload_certs
        if folder is None:
            continue
        if spec.mesh not in cas:
            cas[spec.mesh] = mesh_ca(plan.mesh_ca_dir(spec.mesh), spec.mesh, now)
        ca = cas[spec.mesh]
        identity = identities[name] = spiffe_id(trust_domains[spec.mesh], spec.proxy.namespace, spec.proxy.sa)
        chain, key, root = (folder / f for f in WORKLOAD_FILES)
        if _current(chain, key, ca, identity, now) and _read(root) == ca.cert_pem:
            continue
        cert = issue_workload_cert(ca, identity, now=now)
        assert cert.key_pem is not None
        _write(key, cert.key_pem, 0o600)
        _write(chain, cert.cert_pem, 0o644)
        _write(root, ca.cert_pem, 0o644)
    return identities


def mesh_ca(folder: Path, mesh: str, now: dt.datetime | None = None) -> CertBundle:
    """``mesh``'s CA in ``folder`` (``ca.crt``, ``ca.key``): the one kept there, else a new one written there.

    Raises:
        LocalError: a new CA cannot be written (the folder and the OS error).
    """
    now = now or utcnow()
    crt, key = folder / "ca.crt", folder / "ca.key"
    kept_pem, kept_key = _read(crt), _read(key)
    if kept_pem is not None and kept_key is not None:
        kept = CertBundle(kept_pem, kept_key)
        try:
            if kept.is_ca and key_matches(kept.cert, kept_key) and kept.not_after > now + RENEW_BEFORE:
                return kept
        except PkiError:
            pass  # unreadable: the twin's alone, so a new one replaces it (every workload certificate follows)
    ca = issue_ca(f"meshbridge {mesh} mesh CA (plays istiod's)", days=CA_DAYS, now=now)
    assert ca.key_pem is not None
    _write(key, ca.key_pem, 0o600)
    _write(crt, ca.cert_pem, 0o644)
    return ca


def _current(chain: Path, key: Path, ca: CertBundle, identity: str, now: dt.datetime) -> bool:
    """Whether the workload certificate in ``chain`` (with ``key``) can stay: from ``ca``, for ``identity``, lasting."""
    pem, key_pem = _read(chain), _read(key)
    if pem is None or key_pem is None:
        return False
    held = CertBundle(pem, key_pem)
    try:
        return (
            held.uris == [identity]
            and signed_by(held.cert, ca.cert)
            and key_matches(held.cert, key_pem)
            and held.not_after > now + RENEW_BEFORE
        )
    except PkiError:
        return False


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write(path: Path, data: bytes, mode: int) -> None:
    try:
        write_atomic(path, data, mode=mode)
    except OSError as e:
        raise LocalError(
            f"cannot write {path} (the twin's mesh CA and workload certificates): {e.strerror or e}. Fix: make "
            f"{path.parent} writable by this user, or pass another --state-dir"
        ) from None
