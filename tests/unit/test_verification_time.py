"""The time served certificates are judged at (``pki.x509.verification_time``): a CA issued a moment ago, as
cert-manager or openssl make one just before ``local up``, is valid at it; it used to be truncated to the minute,
up to 59 s before the CA existed, so the path check predicted a refusal the curl never met."""

from __future__ import annotations

import datetime as dt

from meshbridge.pki.checks import served_verifies
from meshbridge.pki.x509 import _BACKDATE, issue_ca, issue_leaf, utcnow, verification_time


def _issued_this_second() -> tuple[bytes, bytes]:
    """A CA whose notBefore is this very second (no backdating) and a client leaf from it: (leaf PEM, CA PEM)."""
    ca = issue_ca("just issued CA", now=utcnow() + _BACKDATE)
    leaf = issue_leaf(ca, "client", common_name="client", uris=["spiffe://gke.example/ns/e/sa/g"])
    return leaf.cert_pem, ca.cert_pem


def test_a_ca_issued_this_second_is_valid_at_the_verification_time() -> None:
    leaf, ca = _issued_this_second()
    now = verification_time()
    assert now.microsecond == 0
    assert served_verifies(leaf, ca, now, "client") is None


def test_negative_twin_the_same_ca_a_minute_earlier_is_not_valid_and_the_reason_gives_the_times() -> None:
    leaf, ca = _issued_this_second()
    earlier = verification_time() - dt.timedelta(seconds=59)
    why = served_verifies(leaf, ca, earlier, "client")
    assert why is not None
    assert f"is not valid at {earlier:%Y-%m-%d %H:%M:%S} UTC" in why
    assert why.endswith(" UTC)")  # the window to the second, not two dates that read as 'valid today'
