"""MB5xx: the security posture of the link, as ``docs/security.md`` states it (pure).

* The exporter's Gateway requires client certificates (``MUTUAL``, never ``OPTIONAL_MUTUAL``), serves named
  hosts (never ``*``), pins the importers' SANs, and allows TLS 1.2 or more with AEAD suites only.
* The importer's DestinationRule verifies the exporter (no ``insecureSkipVerify``), sends an explicit
  ``sni`` and pins ``subjectAltNames``.

An *exporter server* is a TLS-terminating Gateway server that serves a linked host, or any ``MUTUAL`` /
``OPTIONAL_MUTUAL`` server (client certificates mean another mesh is expected). An *importer cluster* is a
gateway cluster that originates mutual TLS (or any cluster of a link); what it verifies is read from its
translation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshbridge.envoy import sans
from meshbridge.envoy.authz import applies_to, dry_run
from meshbridge.envoy.handshake import istio_mutual
from meshbridge.envoy.names import parse_cluster_name
from meshbridge.istio.resources import Gateway, Server
from meshbridge.istio.visibility import gateway_key, gateways_for, host_matches
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.lint.inputs import LintInput, MeshInput
from meshbridge.pki.identities import importer_ids

_TERMINATING = ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")
_OLD_VERSIONS = ("TLSV1_0", "TLSV1_1")
_AEAD = ("GCM", "CHACHA20", "POLY1305", "CCM")


def _servers(mesh: MeshInput) -> Iterator[tuple[Gateway, int, Server]]:
    """Terminating servers of Gateways that select a gateway of the world (each once)."""
    seen: set[tuple[str, int]] = set()
    for proxy in mesh.routers:
        for gw in gateways_for(mesh.config, proxy):
            for i, s in enumerate(gw.spec.servers):
                if s.tls is None or s.tls.mode not in _TERMINATING or (gateway_key(gw), i) in seen:
                    continue
                seen.add((gateway_key(gw), i))
                yield gw, i, s


def _exporter_servers(inp: LintInput, mesh: MeshInput) -> Iterator[tuple[Gateway, int, Server, bool]]:
    exported = {link.host.lower() for link in inp.links if link.exporter == mesh.name}
    for gw, i, s in _servers(mesh):
        assert s.tls is not None
        hosts = [h.split("/", 1)[-1] for h in s.hosts]
        linked = any(h.lower() in exported for h in hosts) or any(
            host_matches(h, e) for h in hosts if h.startswith("*") for e in exported
        )
        if linked or s.tls.mode in ("MUTUAL", "OPTIONAL_MUTUAL"):
            yield gw, i, s, linked


def check_exporter_gateways(inp: LintInput) -> Iterator[Finding]:
    """MB501, MB502, MB506: the exporter Gateway demands, names and pins its clients."""
    for mesh in inp.meshes:
        for gw, i, s, linked in _exporter_servers(inp, mesh):
            assert s.tls is not None
            ref = mesh.ref("Gateway", gw.metadata.namespace, gw.metadata.name, f"spec.servers[{i}]")
            mode = s.tls.mode
            if mode == "OPTIONAL_MUTUAL" or (mode == "SIMPLE" and linked):
                yield finding(
                    "MB501",
                    [ref.at(f"spec.servers[{i}].tls.mode")],
                    f"tls.mode {mode} on the server for {s.hosts}: a client without a certificate is "
                    f"{'accepted' if mode == 'OPTIONAL_MUTUAL' else 'never asked for one'}",
                    "set tls.mode: MUTUAL (with the importers' CA in the Secret's cacert)",
                )
            hosts = [h.split("/", 1)[-1] for h in s.hosts]
            if "*" in hosts:
                yield finding(
                    "MB502",
                    [ref.at(f"spec.servers[{i}].hosts")],
                    f'hosts {s.hosts} include "*": this server takes any SNI and any Host, so every VirtualService '
                    "bound to the Gateway is reachable through the link",
                    "list the exported hosts only (e.g. hosts: [lambda.external])",
                )
            tls = s.tls
            if (
                mode in ("MUTUAL", "OPTIONAL_MUTUAL")
                and not (tls.subject_alt_names or tls.verify_certificate_spki or tls.verify_certificate_hash)
                and not _principals_pinned(mesh, gw)
            ):
                yield finding(
                    "MB506",
                    [ref.at(f"spec.servers[{i}].tls.subjectAltNames")],
                    f"the server for {s.hosts} checks only that a client certificate chains to its CA; it pins no "
                    "client SAN, so any certificate that CA ever issued gets in",
                    f"set tls.subjectAltNames to the importers' identities ({_importer_identities(inp, mesh, hosts)}"
                    "), or add an AuthorizationPolicy on the gateway",
                )


def _importer_identities(inp: LintInput, mesh: MeshInput, hosts: list[str]) -> str:
    """MB506's pins: the SPIFFE IDs of the egress gateways of the meshes the spec lets call the exports ``mesh``
    serves on ``hosts`` (every export of ``mesh`` when none is on them), built from the spec's trust domains and
    egress gateways (:func:`~meshbridge.pki.identities.importer_ids`); said unknown without a spec."""
    exports = inp.spec.exports_from(mesh.name) if inp.spec is not None else []
    served = [ex for ex in exports if any(host_matches(h, ex.host) for h in hosts)] or exports
    ids = sorted({i for ex in served for i in importer_ids(inp.spec, ex.name)}) if inp.spec is not None else []
    if ids:
        return ", ".join(ids)
    why = "lint has no bridge spec" if inp.spec is None else f"the bridge spec has no export from {mesh.name}"
    unknown = "spiffe://<trust domain>/ns/<namespace>/sa/<service account> of each importer's egress gateway"
    return f"{unknown}; {why} to name them"


def _principals_pinned(mesh: MeshInput, gw: Gateway) -> bool:
    """Every gateway pod ``gw`` binds has ALLOW AuthorizationPolicies whose every rule admits only named principals
    (MB506's other fix): a certificate from the CA then passes the handshake but no other identity gets a route.
    A dry-run policy (``istio.io/dry-run``) only logs what it would refuse, so it pins nothing.
    A Gateway API listener has no field to pin SANs with, so this is how its clients are pinned."""
    root = mesh.config.settings.root_namespace
    pods = [p.proxy for p in mesh.proxies if gw in gateways_for(mesh.config, p.proxy)]
    for proxy in pods:
        allow = [
            p
            for p in mesh.config.authorization_policies
            if p.spec.action == "ALLOW" and not dry_run(p) and applies_to(p, proxy, root)
        ]
        rules = [r for p in allow for r in p.spec.rules]
        if not allow or not all(r.from_ and all(f.source.principals for f in r.from_) for r in rules):
            return False
    return bool(pods)


def check_tls_versions(inp: LintInput) -> Iterator[Finding]:
    """MB507, MB508: terminating servers allow TLS 1.2 or more, with AEAD cipher suites only."""
    for mesh in inp.meshes:
        for gw, i, s in _servers(mesh):
            tls = s.tls
            assert tls is not None
            ref = mesh.ref("Gateway", gw.metadata.namespace, gw.metadata.name)
            if tls.min_protocol_version in _OLD_VERSIONS or tls.max_protocol_version in _OLD_VERSIONS:
                old_min = tls.min_protocol_version in _OLD_VERSIONS
                field = "minProtocolVersion" if old_min else "maxProtocolVersion"
                value = tls.min_protocol_version if old_min else tls.max_protocol_version
                yield finding(
                    "MB507",
                    [ref.at(f"spec.servers[{i}].tls.{field}")],
                    f"server for {s.hosts} allows {field} {value}",
                    "set minProtocolVersion: TLSV1_2 (or TLSV1_3) and leave maxProtocolVersion unset",
                )
            weak = [c for c in tls.cipher_suites if not any(a in c.upper() for a in _AEAD)]
            if weak:
                yield finding(
                    "MB508",
                    [ref.at(f"spec.servers[{i}].tls.cipherSuites")],
                    f"server for {s.hosts} allows non-AEAD suites {weak}",
                    "keep ECDHE with AES-GCM or CHACHA20-POLY1305 only, e.g. ECDHE-ECDSA-AES128-GCM-SHA256",
                )


def check_skip_verify(inp: LintInput) -> Iterator[Finding]:
    """MB503: no DestinationRule turns certificate verification off."""
    for mesh in inp.meshes:
        for dr in mesh.config.destination_rules:
            for path, tls, _, _ in mesh.tls_blocks(dr):
                if tls.insecure_skip_verify:
                    yield finding(
                        "MB503",
                        [
                            mesh.ref(
                                "DestinationRule", dr.metadata.namespace, dr.metadata.name, f"{path}.insecureSkipVerify"
                            )
                        ],
                        f"insecureSkipVerify: true for {dr.spec.host}: the proxy accepts any server certificate",
                        "remove it; trust the peer's CA with credentialName (cacert) and pin subjectAltNames",
                    )


def check_importer_pins(inp: LintInput) -> Iterator[Finding]:
    """MB504, MB505: the importer's cluster sends an explicit SNI and pins the exporter's SANs."""
    for mesh in inp.meshes:
        linked = {link.host.lower() for link in inp.links if link.importer == mesh.name}
        seen: set[tuple[str, str, str]] = set()
        for spec in mesh.proxies:
            proxy = spec.proxy
            view = mesh.view(proxy)
            for cluster in view.routed:
                tls = view.upstream_tls(cluster)
                parsed = parse_cluster_name(cluster)
                if tls is None or parsed is None:
                    continue
                _, port, subset, host = parsed
                common: dict[str, Any] = tls["common_tls_context"]
                mutual = bool(common.get("tls_certificate_sds_secret_configs"))
                if host.lower() not in linked and not (mutual and proxy.kind == "router"):
                    continue
                if host.lower() in linked and istio_mutual(view, cluster):
                    continue  # ISTIO_MUTUAL to the exporter: MB306 names the cluster (and istiod's sni)
                rule = mesh.client_tls(proxy, host, port, subset)
                if rule is None:
                    continue
                ref, user_sni = rule
                key = (ref.namespace, ref.name, ref.field)
                if key in seen:
                    continue
                seen.add(key)
                _, auto_san = view.auto_sni(cluster)
                verifies = "combined_validation_context" in common  # insecureSkipVerify: MB503 says it
                if verifies and not sans.matchers(common) and not auto_san:
                    yield finding(
                        "MB504",
                        [ref.at(ref.field + ".subjectAltNames")],
                        f"the TLS to {host} checks only that the server certificate chains to the trusted CA; no "
                        "subjectAltNames are pinned"
                        + (f" (and its sni {user_sni} turns automatic SAN checks off)" if user_sni else ""),
                        f"set tls.subjectAltNames: [{host}] (the exporter's server certificate carries DNS:{host})",
                    )
                if "sni" not in tls:
                    yield finding(
                        "MB505",
                        [ref.at(ref.field + ".sni")],
                        f"the TLS to {host} sets no sni; the exporter's filter chain is then chosen by whatever Host "
                        "the request carries (automatic SNI, Istio ≥ 1.21), or by no SNI at all before 1.21",
                        f"set tls.sni: {host}",
                    )


def check_trust_domains(inp: LintInput) -> Iterator[Finding]:
    """MB509: two meshes the spec links (an export from one to the other) have one trust domain."""
    if inp.spec is None:
        return  # without a spec each mesh's trust domain is a guess (MB001): nothing to compare
    meshes = inp.spec.spec.meshes
    pairs = sorted({tuple(sorted((ex.from_, to))) for ex in inp.spec.spec.exports for to in ex.to})
    for a, b in pairs:
        if a not in meshes or b not in meshes or meshes[a].trust_domain != meshes[b].trust_domain:
            continue
        domain = meshes[a].trust_domain
        name = inp.spec.metadata.name
        refs = [ObjectRef(m, "Bridge", "", name, f"spec.meshes.{m}.trustDomain", "bridge spec") for m in (a, b)]
        yield finding(
            "MB509",
            refs,
            f"meshes {a} and {b} share the trust domain {domain}: a workload of one has the same SPIFFE identity "
            f"(spiffe://{domain}/ns/<namespace>/sa/<account>) as a workload of the other in a namespace and "
            "service account of the same names, so a principal an AuthorizationPolicy admits names both",
            f"give each mesh its own trust domain (spec.meshes.<mesh>.trustDomain, e.g. {a}.example.com and "
            f"{b}.example.com; Istio's meshConfig.trustDomain, set at install)",
        )


CHECKS = (check_exporter_gateways, check_tls_versions, check_skip_verify, check_importer_pins, check_trust_domains)
