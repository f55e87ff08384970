"""The PKI: one CA per mesh, server and client leaves for the gateways, checks, and the file store.

Pure parts: :mod:`~meshbridge.pki.x509` (issuing), :mod:`~meshbridge.pki.identities` (who holds what),
:mod:`~meshbridge.pki.checks` (validation). I/O: :mod:`~meshbridge.pki.store` (the state directory).
"""

from meshbridge.pki.checks import CertFinding, CertInfo, check_leaf, check_validity, describe
from meshbridge.pki.store import IssueAction, MeshCredentials, PkiStore, Revocation, default_state_dir
from meshbridge.pki.x509 import CertBundle, issue_ca, issue_crl, issue_leaf, parse_crl

__all__ = [
    "CertBundle",
    "CertFinding",
    "CertInfo",
    "IssueAction",
    "MeshCredentials",
    "PkiStore",
    "Revocation",
    "check_leaf",
    "check_validity",
    "default_state_dir",
    "describe",
    "issue_ca",
    "issue_crl",
    "issue_leaf",
    "parse_crl",
]
