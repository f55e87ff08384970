"""TLS transport sockets as istiod builds them.

Sources (istio/istio ``pilot/pkg/networking/core/``): ``gateway.go`` (``buildGatewayListenerTLSContext``),
``cluster_tls.go`` (``buildUpstreamClusterTLSContext``, ``buildUpstreamTLSSettings``).

* Gateway server (``buildGatewayListenerTLSContext``): ALPN ``h2,http/1.1``; the server certificate from
  SDS ``kubernetes://<credentialName>``; for MUTUAL/OPTIONAL_MUTUAL a combined validation context (SAN
  matchers + SDS ``kubernetes://<credentialName>-cacert``); ``require_client_certificate`` for MUTUAL only;
  ``tls_params`` only when the server sets versions or ciphers. Without a credentialName
  (``ApplyToCommonTLSContext``) the files in the pod, which the istio-agent serves: the certificate from SDS
  ``file-cert:<serverCertificate>~<privateKey>`` (``default`` when either is unset), the client's CA from
  ``file-root:<caCertificates>`` (``ROOTCA`` when unset), ``caCrl`` as a file of the validation context.
* Upstream (``buildUpstreamClusterTLSContext``): ``tls_params`` TLS 1.2–1.3; ``sni``; for MUTUAL with a
  credentialName the client certificate and the ``-cacert`` validation; SIMPLE without a CA verifies
  against the OS bundle (``file-root:system``) when ``VERIFY_CERTIFICATE_AT_CLIENT`` is on;
  ``insecureSkipVerify`` removes verification. Without a credentialName (``constructUpstreamTLS``) the files in
  the pod: MUTUAL's client certificate from SDS ``file-cert:<clientCertificate>~<privateKey>`` (without both,
  istiod builds no TLS at all: the cluster sends plain text), the CA from ``file-root:<caCertificates>``,
  ``caCrl`` as a file of the validation context. ISTIO_MUTUAL (``buildUpstreamTLSSettings``): the workload
  certificate (SDS ``default``) validated by the mesh's roots (``ROOTCA``), the peer's SANs pinned (the rule's
  ``subjectAltNames``, else the service's accounts), the rule's SNI else ``outbound_.<port>_.<subset>_.<host>``,
  ALPN ``istio-peer-exchange, istio`` (``h2`` after them for an HTTP/2 cluster); ``insecureSkipVerify`` and a
  credentialName change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from meshbridge.envoy.names import (
    SYSTEM_ROOTS,
    WORKLOAD_CERT,
    WORKLOAD_ROOTS,
    file_cert_name,
    file_root_name,
    sds_ca_name,
    sds_name,
)
from meshbridge.istio.resources import ClientTLSSettings, ServerTLSSettings

TLS_SOCKET = "envoy.transport_sockets.tls"
DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_VERSIONS = {"TLSV1_0": "TLSv1_0", "TLSV1_1": "TLSv1_1", "TLSV1_2": "TLSv1_2", "TLSV1_3": "TLSv1_3"}
ALPN_IN_MESH = ("istio-peer-exchange", "istio")
"""The ALPN an ISTIO_MUTUAL upstream offers (istiod's ``ALPNInMeshWithMxc``, metadata exchange on by default)."""

SdsConfig = Callable[[str], dict[str, Any]]
PodFile = Callable[[str], str]
"""Where Envoy reads a file the configuration names by its path in the pod (``Placement.pod_file``)."""


def san_matchers(names: Sequence[str]) -> list[dict[str, Any]]:
    """Exact SAN matchers for each name, typed DNS and URI (Istio's untyped matchers check both)."""
    return [{"san_type": san_type, "matcher": {"exact": name}} for name in names for san_type in ("DNS", "URI")]


def sds_secret(name: str, sds_config: SdsConfig) -> dict[str, Any]:
    """An SDS secret reference: ``{name, sds_config}``."""
    return {"name": name, "sds_config": sds_config(name)}


def downstream_tls(
    tls: ServerTLSSettings, sds_config: SdsConfig, *, pod_file: PodFile
) -> tuple[dict[str, Any], list[str]]:
    """The transport socket of a terminating gateway server and the SDS names it needs.

    Args:
        tls: the server's TLS settings.
        sds_config: the config source of an SDS name.
        pod_file: where Envoy reads a file named by its path in the pod (``caCrl``).
    """
    cred = tls.credential_name or (tls.credential_names[0] if tls.credential_names else None)
    names: list[str] = []
    common: dict[str, Any] = {"alpn_protocols": ["h2", "http/1.1"]}
    if tls.mode == "ISTIO_MUTUAL" or not cred:  # the pod's own: the workload certificate, or files in the pod
        certificate, roots = WORKLOAD_CERT, WORKLOAD_ROOTS
        if tls.mode != "ISTIO_MUTUAL":
            if tls.server_certificate and tls.private_key:
                certificate = file_cert_name(tls.server_certificate, tls.private_key)
            if tls.ca_certificates:
                roots = file_root_name(tls.ca_certificates)
        common["tls_certificate_sds_secret_configs"] = [sds_secret(certificate, sds_config)]
        names.append(certificate)
        if tls.mode in ("ISTIO_MUTUAL", "MUTUAL", "OPTIONAL_MUTUAL"):
            default: dict[str, Any] = {}
            if tls.subject_alt_names:
                default["match_typed_subject_alt_names"] = san_matchers(tls.subject_alt_names)
            if tls.ca_crl:
                default["crl"] = {"filename": pod_file(tls.ca_crl)}
            common["combined_validation_context"] = {
                "default_validation_context": default,
                "validation_context_sds_secret_config": sds_secret(roots, sds_config),
            }
            names.append(roots)
        if tls.mode == "ISTIO_MUTUAL":
            ctx = {"@type": DOWNSTREAM, "common_tls_context": common, "require_client_certificate": True}
            return {"name": TLS_SOCKET, "typed_config": ctx}, names
    else:
        certs = [cred, *tls.credential_names[1:]] if tls.credential_names else [cred]
        common["tls_certificate_sds_secret_configs"] = [sds_secret(sds_name(c), sds_config) for c in certs]
        names += [sds_name(c) for c in certs]
    if tls.mode in ("MUTUAL", "OPTIONAL_MUTUAL") and cred:
        ca = sds_name(tls.ca_cert_credential_name) if tls.ca_cert_credential_name else sds_ca_name(cred)
        default = {}
        if tls.subject_alt_names:
            default["match_typed_subject_alt_names"] = san_matchers(tls.subject_alt_names)
        if tls.verify_certificate_spki:
            default["verify_certificate_spki"] = list(tls.verify_certificate_spki)
        if tls.verify_certificate_hash:
            default["verify_certificate_hash"] = list(tls.verify_certificate_hash)
        common["combined_validation_context"] = {
            "default_validation_context": default,
            "validation_context_sds_secret_config": sds_secret(ca, sds_config),
        }
        names.append(ca)
    params = _tls_params(tls.min_protocol_version, tls.max_protocol_version, tls.cipher_suites)
    if params:
        common["tls_params"] = params
    ctx = {"@type": DOWNSTREAM, "common_tls_context": common, "require_client_certificate": tls.mode == "MUTUAL"}
    return {"name": TLS_SOCKET, "typed_config": ctx}, names


def upstream_tls(
    tls: ClientTLSSettings,
    sds_config: SdsConfig,
    *,
    fallback_sans: Sequence[str] = (),
    verify_at_client: bool,
    pod_file: PodFile,
    mesh_sni: str = "",
    http2: bool = False,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The transport socket of a cluster for a DestinationRule's ``tls``, and the SDS names it needs.

    Args:
        tls: the rule's TLS settings, as they apply to the cluster's port and subset.
        sds_config: the config source of an SDS name.
        fallback_sans: the SANs pinned when the rule sets none: the ServiceEntry's (SIMPLE, MUTUAL), or the
            service's accounts (ISTIO_MUTUAL, :meth:`~meshbridge.istio.visibility.MeshService.service_accounts`).
        verify_at_client: ``VERIFY_CERTIFICATE_AT_CLIENT`` (SIMPLE without a CA verifies against the OS bundle).
        pod_file: where Envoy reads a file named by its path in the pod (``caCrl``).
        mesh_sni: the SNI ISTIO_MUTUAL sends when the rule names none (:func:`~meshbridge.envoy.names.
            istio_mutual_sni`).
        http2: the cluster speaks HTTP/2 to its endpoints: ISTIO_MUTUAL then offers ``h2`` too, SIMPLE and
            MUTUAL offer ``h2`` alone (istiod's ``constructUpstreamTLS``: ``ALPNH2Only``).

    Returns:
        The transport socket (``None`` for ``DISABLE``, and for MUTUAL with neither a credentialName nor both
        client files, which istiod refuses to build) and the SDS names it uses.
    """
    files = tls.mode != "ISTIO_MUTUAL" and not tls.credential_name
    if tls.mode == "DISABLE" or (files and tls.mode == "MUTUAL" and not (tls.client_certificate and tls.private_key)):
        return None, []
    names: list[str] = []
    common: dict[str, Any] = {
        "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"}
    }
    sans = list(tls.subject_alt_names) or list(fallback_sans)
    certificate: str | None = None
    validation: str | None = None
    sni: str | None
    if tls.mode == "ISTIO_MUTUAL":  # the mesh's own workload certificate and roots, as the sidecars use them
        certificate, validation, sni = WORKLOAD_CERT, WORKLOAD_ROOTS, tls.sni or mesh_sni
        common["alpn_protocols"] = [*ALPN_IN_MESH, "h2"] if http2 else list(ALPN_IN_MESH)
    elif files:
        sni = tls.sni
        if tls.mode == "MUTUAL" and tls.client_certificate and tls.private_key:
            certificate = file_cert_name(tls.client_certificate, tls.private_key)
        if not tls.insecure_skip_verify:
            if tls.ca_certificates:
                validation = file_root_name(tls.ca_certificates)
            elif verify_at_client:
                validation = SYSTEM_ROOTS
    else:
        cred, sni = tls.credential_name or "", tls.sni
        if tls.mode == "MUTUAL":
            certificate = sds_name(cred)
        if not tls.insecure_skip_verify:
            validation = sds_ca_name(cred)
    if certificate is not None:
        common["tls_certificate_sds_secret_configs"] = [sds_secret(certificate, sds_config)]
        names.append(certificate)
    if validation is not None:
        default: dict[str, Any] = {"match_typed_subject_alt_names": san_matchers(sans)} if sans else {}
        if files and tls.ca_crl:
            default["crl"] = {"filename": pod_file(tls.ca_crl)}
        common["combined_validation_context"] = {
            "default_validation_context": default,
            "validation_context_sds_secret_config": sds_secret(validation, sds_config),
        }
        names.append(validation)
    if http2 and tls.mode != "ISTIO_MUTUAL":
        common["alpn_protocols"] = ["h2"]
    ctx: dict[str, Any] = {"@type": UPSTREAM, "common_tls_context": common}
    if sni:
        ctx["sni"] = sni
    return {"name": TLS_SOCKET, "typed_config": ctx}, names


def _tls_params(min_v: str, max_v: str, ciphers: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if min_v in _VERSIONS:
        out["tls_minimum_protocol_version"] = _VERSIONS[min_v]
    if max_v in _VERSIONS:
        out["tls_maximum_protocol_version"] = _VERSIONS[max_v]
    if ciphers:
        out["cipher_suites"] = list(ciphers)
    return out
