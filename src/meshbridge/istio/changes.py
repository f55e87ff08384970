"""What changed in istiod's defaults from one Istio release to the next, and where meshbridge follows it (pure).

Manifests are written for one release and run on another: the article's were written for Istio 1.17, and in
December 2026 the supported releases are 1.30 and 1.31. The table :data:`CHANGES` is the one place meshbridge
states each version-dependent behaviour it models: from which release it is istiod's default, the istiod
environment variable that turns it on or off in between, the release from which it can no longer be turned off,
and the public source that says so. :class:`~meshbridge.istio.config.MeshSettings` (what the translation and
lint read) and the spec's API versions answer through it; the supported lines are :data:`SUPPORTED_LINES`.

``oracle`` says how a row is known: at the pinned line (:data:`meshbridge.releases.CURRENT_ISTIO`) the
behaviour shows in what istiod's own code builds, and the oracle's conformance cases check it there; for the
other releases the row is researched (``source``), not run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshbridge.releases import CURRENT_ISTIO

SUPPORTED_LINES = ("1.30", "1.31")
"""Istio's supported minors in December 2026 (a minor is supported until six weeks after the release two minors
later; https://istio.io/latest/docs/releases/supported-releases/). Newest last."""

ARTICLE_RELEASE = "1.17.2"
"""The release the seed article's manifests were written for (end of life since October 2023)."""

MATRIX = (ARTICLE_RELEASE, "1.30.4", CURRENT_ISTIO)
"""The releases render, lint and translate are tested on: the article's, and the newest patch of each supported
line known here (1.30.4: https://istio.io/latest/news/releases/1.30.x/)."""

COMPATIBILITY_FROM = 25
"""The oldest line the pinned istiod's compatibility profiles describe (``manifests/helm-profiles/
compatibility-version-1.25.yaml`` to ``-1.30.yaml``): Istio's own statement, as istiod environment values, of how
an older line behaved. A mesh on one of these lines is judged by the oracle running with that profile."""

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Change:
    """One istiod behaviour whose default changed between releases.

    Attributes:
        key: the row's name in :data:`CHANGES`.
        behaviour: what istiod does when it is on, in the field's words.
        since: the minor from which it is on by default (21 for 1.21).
        flag: the istiod environment variable (``pilot_env``) that turns it on or off, or ``""`` for none.
        flag_before: whether ``flag`` already existed before ``since`` (an opt-in); if not, it is off there
            whatever the environment says.
        always_from: the minor from which the flag is gone and the behaviour is always on, or ``None``.
        source: the public source (release or upgrade note, Istio pull request or file).
        oracle: how the row is known at the pinned line: ``"checked"`` when the behaviour shows in what the
            oracle (istiod's own code) builds and a conformance case compares it, ``"researched"`` otherwise.
        modelled: ``""`` when meshbridge follows the change at every version; otherwise why it does not (the
            change does not touch what the bridge's proxies are sent, or meshbridge builds the newer behaviour
            at every version): the fidelity page lists these.
    """

    key: str
    behaviour: str
    since: int
    flag: str = ""
    flag_before: bool = False
    always_from: int | None = None
    source: str = ""
    oracle: str = "checked"
    modelled: str = ""

    def on(self, minor: int, pilot_env: Mapping[str, str] | None = None) -> bool:
        """Whether a mesh on Istio ``1.<minor>`` with istiod environment ``pilot_env`` has this behaviour."""
        if self.always_from is not None and minor >= self.always_from:
            return True
        if minor < self.since and not self.flag_before:
            return False
        value = (pilot_env or {}).get(self.flag) if self.flag else None
        if value is None:
            return minor >= self.since
        return value.strip().lower() in _TRUE

    @property
    def release(self) -> str:
        """The release it became the default (``1.21``)."""
        return f"1.{self.since}"


def _notes(minor: int) -> str:
    return f"https://istio.io/latest/news/releases/1.{minor}.x/announcing-1.{minor}/upgrade-notes/"


CHANGES: dict[str, Change] = {
    c.key: c
    for c in sorted(
        (
            Change(
                "networking-v1",
                "rendered networking and security resources use the v1 API (v1beta1 before)",
                22,
                source=_notes(22) + " (networking.istio.io/v1 and security.istio.io/v1 promoted)",
            ),
            Change(
                "auto-sni",
                "a client that originates TLS without `sni` sends the request's host as SNI",
                21,
                "ENABLE_AUTO_SNI",
                flag_before=True,
                always_from=26,
                source=_notes(21) + "; the flag was removed in 1.26",
            ),
            Change(
                "verify-certificate-at-client",
                "a SIMPLE or MUTUAL DestinationRule without caCertificates verifies the server against the OS bundle",
                21,
                "VERIFY_CERTIFICATE_AT_CLIENT",
                flag_before=True,
                always_from=24,
                source=_notes(21) + "; the flag was removed in 1.24",
            ),
            Change(
                "external-name-alias",
                "an ExternalName Service is an alias of the host it names (no cluster of its own)",
                21,
                "ENABLE_EXTERNAL_NAME_ALIAS",
                source="istio/istio#47664; " + _notes(21),
            ),
            Change(
                "ip-autoallocate",
                "ServiceEntries without addresses get a virtual IP from istiod's controller (240.240.0.0/16)",
                23,
                "PILOT_ENABLE_IP_AUTOALLOCATE",
                flag_before=True,
                source=_notes(23),
                oracle="researched",
            ),
            Change(
                "no-503-retry",
                "the default retry policy no longer retries 503 responses",
                24,
                source=_notes(24) + " (default retry policy)",
            ),
            Change(
                "stat-suffix",
                "stat prefixes and alt_stat_name end in ';'",
                24,
                source="pilot/pkg/networking/util (statPrefix), Istio 1.24",
            ),
            Change(
                "absolute-fqdn-vhost",
                "virtual hosts also match the host written with a trailing dot (lambda.external.)",
                26,
                "PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN",
                source="istio/istio#56008; " + _notes(26),
            ),
            Change(
                "ambient-ga",
                "ambient mode is GA: waypoints (Gateway class istio-waypoint) and istio.io/use-waypoint",
                24,
                source="https://istio.io/latest/news/releases/1.24.x/announcing-1.24/",
            ),
            Change(
                "ambient-dns-proxy",
                "ambient's DNS proxy (ztunnel answers for ServiceEntry hosts) is on by default",
                25,
                source="https://istio.io/latest/docs/ambient/usage/dns/ (DNS proxying)",
                oracle="researched",
            ),
            Change(
                "cacert-credential-name",
                "a Gateway's TLS settings take caCertCredentialName, the peer's CA apart from credentialName",
                28,
                source=_notes(28) + " (ServerTLSSettings.caCertCredentialName)",
            ),
            Change(
                "gateway-api-frontend-validation",
                "the Gateway API validates client certificates (GEP-91, spec.tls.frontend) and serves BackendTLSPolicy "
                "v1 with a ServiceEntry as target",
                28,
                source="https://istio.io/latest/news/releases/1.28.x/announcing-1.28/",
            ),
            Change(
                "native-sidecars",
                "the injector runs istio-proxy as a Kubernetes native sidecar (an init container that keeps running)",
                27,
                "ENABLE_NATIVE_SIDECARS",
                source=_notes(27),
                oracle="researched",
                modelled="the pod's container layout only; no proxy is sent anything else",
            ),
            Change(
                "no-shadow-host-suffix",
                "a mirrored request keeps its Host (no -shadow suffix appended)",
                28,
                "DISABLE_SHADOW_HOST_SUFFIX",
                source=_notes(28),
            ),
            Change(
                "upstream-span-for-gateway",
                "a gateway spawns an upstream tracing span for each request (with the Telemetry API)",
                31,
                "PILOT_SPAWN_UPSTREAM_SPAN_FOR_GATEWAY",
                always_from=31,
                source=_notes(31) + " (the flag is removed and the behaviour always on; the 1.30 compatibility "
                "profile turns it off)",
                oracle="researched",
                modelled="tracing only; meshbridge configures no tracing provider",
            ),
            Change(
                "no-track-remaining-cb-metrics",
                "circuit-breaker thresholds no longer track the remaining capacity (no track_remaining)",
                29,
                "DISABLE_TRACK_REMAINING_CB_METRICS",
                source=_notes(29),
            ),
            Change(
                "pick-best-service-namespace",
                "a sidecar that sees one host in several namespaces prefers the Kubernetes Service, then the oldest "
                "ServiceEntry (alphabetical namespace order before)",
                30,
                "PILOT_SIDECAR_PICK_BEST_SERVICE_NAMESPACE",
                source=_notes(30),
                oracle="researched",
                modelled="meshbridge builds the newer choice at every version; a bridge host defined in two namespaces "
                "is lint's MB1xx concern first",
            ),
            Change(
                "strict-gateway-merging",
                "managed Gateway API Gateways are not merged with Istio Gateways of other namespaces",
                31,
                "PILOT_ENABLE_STRICT_GATEWAY_MERGING",
                source=_notes(31),
                oracle="researched",
                modelled="Gateway API Gateways only",
            ),
            Change(
                "send-unhealthy-endpoints",
                "clusters have a healthy panic threshold of 0: requests never spread over endpoints that are not ready",
                31,
                "PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS",
                source=_notes(31) + " (default behaviour for sending unhealthy endpoints)",
            ),
            Change(
                "http10-not-sniffed",
                "a sidecar's outbound HTTP chain matches ALPN http/1.1 and h2c only (http/1.0 with PILOT_HTTP10)",
                COMPATIBILITY_FROM,
                source="pilot/pkg/networking/core/listener.go (plaintextHTTPALPNs); no compatibility flag, so at "
                f"least from 1.{COMPATIBILITY_FROM}: the release that introduced it is not known here",
            ),
            Change(
                "sidecar-passthrough-chain",
                "a sidecar's outbound HTTP listener has a default chain to PassthroughCluster and no TLS inspector",
                COMPATIBILITY_FROM,
                source="pilot/pkg/networking/core/listener.go; no compatibility flag, so at least from "
                f"1.{COMPATIBILITY_FROM}: the release that introduced it is not known here",
            ),
        ),
        key=lambda c: c.since,
    )
}
"""Every version-dependent default meshbridge models, by key, oldest first."""


def line(version: str) -> str:
    """The release line (``1.30``) of a version (``1.30.4``)."""
    return ".".join(version.split(".")[:2])


def minor(version: str) -> int:
    """The minor number (``30``) of a version or a line (``1.30.4``, ``1.30``)."""
    return int(line(version).split(".")[1])


def newer_than_known(version: str) -> bool:
    """Whether ``version`` is of a line after the newest of :data:`SUPPORTED_LINES` (a release this table could
    not know: its version-dependent behaviour is modelled as the newest line's)."""
    return minor(version) > minor(SUPPORTED_LINES[-1])


def past_end_of_life(version: str) -> bool:
    """Whether ``version`` is of a line older than every one of :data:`SUPPORTED_LINES` (Istio no longer patches
    it: no security fixes)."""
    return minor(version) < minor(SUPPORTED_LINES[0])


def compatibility_env(minor: int) -> dict[str, str]:
    """The istiod environment of Istio's compatibility profile for line ``1.<minor>`` (every flag of a later
    change set to ``false``), or ``{}`` when the pinned istiod has no profile for that line (before
    :data:`COMPATIBILITY_FROM`, or the pinned line itself and newer)."""
    if not has_compatibility_profile(minor):
        return {}
    return {c.flag: "false" for c in CHANGES.values() if c.flag and c.since > minor}


def has_compatibility_profile(minor: int) -> bool:
    """Whether the pinned istiod ships a compatibility profile for line ``1.<minor>``."""
    return COMPATIBILITY_FROM <= minor < _PINNED_MINOR


_PINNED_MINOR = minor(CURRENT_ISTIO)
