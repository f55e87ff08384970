"""The PKI: one CA per mesh, server and client leaves for the gateways, checks, and the file store.

Pure parts: :mod:`~meshbridge.pki.x509` (issuing), :mod:`~meshbridge.pki.identities` (who holds what),
:mod:`~meshbridge.pki.checks` (validation), :mod:`~meshbridge.pki.credentials` (what a mesh's gateways are
given). I/O: :mod:`~meshbridge.pki.store` (the state directory), imported on first use of one of its names, so
the pure layers that read the PKI's values (render, lint) never load it.
"""

from typing import TYPE_CHECKING, Any

from meshbridge.pki.checks import CertFinding, CertInfo, check_leaf, check_validity, describe
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.pki.x509 import CertBundle, issue_ca, issue_crl, issue_leaf, parse_crl

if TYPE_CHECKING:
    from meshbridge.pki.store import IssueAction, PkiStore, Revocation, default_state_dir

_STORE_NAMES = frozenset({"IssueAction", "PkiStore", "Revocation", "default_state_dir"})

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


def __getattr__(name: str) -> Any:
    """The store's names (:data:`_STORE_NAMES`), from :mod:`meshbridge.pki.store` on first use."""
    if name in _STORE_NAMES:
        from meshbridge.pki import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
