"""The SAN pins of an Envoy validation context, matched against a certificate as Envoy's SAN matcher does.

A validation context's ``match_typed_subject_alt_names`` lists matchers, each a SAN type (``DNS``, ``URI``,
``IP_ADDRESS``, ``EMAIL``) and a string matcher (``exact``, ``prefix``, ``suffix``, ``contains``,
``safe_regex.regex``, with ``ignore_case``); the peer's certificate is accepted when one of its SANs of a matcher's
type matches it, and refused when none does (``ssl.fail_verify_san``). A ``DNS`` SAN that is a wildcard
(``*.example.com``) matches an exact matcher on one label below it, as Envoy's ``dnsNameMatch``. No matchers: no pin.
The one rule of lint's MB310 and the path check's SAN refusals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from cryptography import x509

from meshbridge.errors import PkiError
from meshbridge.pki.x509 import parse_certificates


def matchers(common: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The typed SAN matchers of a common TLS context's (combined) validation context."""
    cvc = common.get("combined_validation_context") or {}
    default = cvc.get("default_validation_context") or common.get("validation_context") or {}
    return [m for m in default.get("match_typed_subject_alt_names") or [] if isinstance(m, dict)]


def exact(names: Iterable[str]) -> list[dict[str, Any]]:
    """Exact matchers for ``names`` on DNS and URI SANs (what istiod builds for a ``subjectAltNames`` entry)."""
    return [{"san_type": t, "matcher": {"exact": n}} for n in names for t in ("DNS", "URI")]


def shown(pins: Iterable[Mapping[str, Any]]) -> list[str]:
    """The pins in a message's words: an exact one as its value, another as ``kind:value``."""
    out: list[str] = []
    for m in pins:
        kind, value = _rule(m.get("matcher") or {})
        text = value if kind == "exact" else f"{kind}:{value}"
        if text not in out:
            out.append(text)
    return sorted(out)


def cert_sans(pem: bytes) -> dict[str, list[str]]:
    """The leaf's SANs of each type (``{}`` when it has none or cannot be read: readiness and MB401 say so)."""
    return {t: list(v) for t, v in _sans_of(pem)}


def accepted(pins: list[dict[str, Any]], pem: bytes) -> bool:
    """Whether a peer pinning ``pins`` accepts the certificate ``pem`` (``True`` with no pins)."""
    if not pins:
        return True
    sans = cert_sans(pem)
    return any(_match(m, san) for m in pins for san in sans.get(str(m.get("san_type", "")), []))


def identity(pem: bytes) -> list[str]:
    """The certificate's SANs as a pin would name them, a URI (SPIFFE ID) first."""
    sans = cert_sans(pem)
    return [*sans.get("URI", []), *sans.get("DNS", []), *sans.get("IP_ADDRESS", []), *sans.get("EMAIL", [])]


@lru_cache(maxsize=256)
def _sans_of(pem: bytes) -> tuple[tuple[str, tuple[str, ...]], ...]:
    try:
        ext = parse_certificates(pem)[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (PkiError, IndexError, ValueError, x509.ExtensionNotFound):
        return ()
    return (
        ("DNS", tuple(ext.get_values_for_type(x509.DNSName))),
        ("URI", tuple(ext.get_values_for_type(x509.UniformResourceIdentifier))),
        ("IP_ADDRESS", tuple(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))),
        ("EMAIL", tuple(ext.get_values_for_type(x509.RFC822Name))),
    )


def _rule(matcher: Mapping[str, Any]) -> tuple[str, str]:
    for kind in ("exact", "prefix", "suffix", "contains"):
        if kind in matcher:
            return kind, str(matcher[kind])
    return "regex", str((matcher.get("safe_regex") or {}).get("regex", ""))


def _match(pin: Mapping[str, Any], san: str) -> bool:
    matcher = pin.get("matcher") or {}
    kind, value = _rule(matcher)
    if kind == "regex":
        return re.fullmatch(value, san) is not None
    if matcher.get("ignore_case"):
        value, san = value.lower(), san.lower()
    if kind == "exact":
        return san == value or (pin.get("san_type") == "DNS" and _wildcard(san, value))
    if kind == "prefix":
        return san.startswith(value)
    if kind == "suffix":
        return san.endswith(value)
    return value in san


def _wildcard(san: str, name: str) -> bool:
    """Envoy's ``dnsNameMatch``: ``*.example.com`` matches ``a.example.com``, one label only."""
    if not san.startswith("*."):
        return False
    head, _, rest = name.partition(".")
    return bool(head) and rest == san[2:]
