"""Signing a document with a mesh's CA key, and checking it against the CA certificate (pure).

Used by the two-owner flow (:mod:`meshbridge.peer`): an offer or a reply is signed by the CA key of the side
that wrote it and carries that CA's certificate; the receiver pins the certificate by the fingerprint it was
told out of band, then checks the signature with the certificate's public key.

* ECDSA keys sign with ECDSA over SHA-256 (``ECDSA-SHA256``), RSA keys with PKCS #1 v1.5 over SHA-256
  (``RSA-SHA256``): the key types meshbridge issues (``spec.tls.keyType``).
* A fingerprint is the SHA-256 of the certificate's DER, written ``sha256:<64 hex digits>``; the hex digits
  are compared without regard to case or ``:`` separators, so the form other tools print matches too.
"""

from __future__ import annotations

import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from meshbridge.errors import PkiError
from meshbridge.pki.x509 import CertBundle

ALGORITHMS = ("ECDSA-SHA256", "RSA-SHA256")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def fingerprint(ca: CertBundle) -> str:
    """``sha256:<hex>`` of the certificate's DER encoding."""
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def normalize_fingerprint(value: str) -> str:
    """``value`` in the form :func:`fingerprint` writes (``SHA256:AB:CD...`` and bare hex are accepted).

    Raises:
        PkiError: not 64 hex digits after an optional ``sha256:``; the message shows the expected form.
    """
    text = value.strip().lower()
    text = text.removeprefix("sha256:").removeprefix("sha256 fingerprint=").replace(":", "")
    if not _HEX.match(text):
        raise PkiError(
            f"fingerprint {value!r} is not a SHA-256 fingerprint. Fix: give it as 'meshbridge peer offer' "
            "printed it: sha256:<64 hex digits>"
        )
    return "sha256:" + text


def sign(ca: CertBundle, data: bytes) -> tuple[str, bytes]:
    """Sign ``data`` with the CA's private key.

    Returns:
        The algorithm's name (one of :data:`ALGORITHMS`) and the signature.

    Raises:
        PkiError: the bundle holds no usable private key.
    """
    key = ca.private_key()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ECDSA-SHA256", key.sign(data, ec.ECDSA(hashes.SHA256()))
    assert isinstance(key, rsa.RSAPrivateKey)  # the only other kind private_key() returns
    return "RSA-SHA256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def verify(ca: CertBundle, algorithm: str, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the CA's signature of ``data`` with ``algorithm``; False otherwise (another
    algorithm than the CA's key type included)."""
    key = ca.cert.public_key()
    try:
        if algorithm == "ECDSA-SHA256" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return True
        if algorithm == "RSA-SHA256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False
