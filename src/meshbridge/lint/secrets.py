"""MB2xx: secrets and TLS settings inside one mesh (pure).

Whether a secret is served, and to whom, comes from the translation (``ProxyConfig.secrets``, built by
:func:`meshbridge.envoy.secrets.sds_resource` with istiod's key precedence); these checks only explain why
something is not served, and where it would have to be.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from meshbridge.envoy import names
from meshbridge.envoy.gateway import resolve_port
from meshbridge.envoy.names import SDS_CA_SUFFIX
from meshbridge.envoy.secrets import other_namespace, unlisted_secrets
from meshbridge.envoy.simulate import Request, simulate
from meshbridge.envoy.view import RouteRef
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.files import tls_files
from meshbridge.istio.parse import secret_values
from meshbridge.istio.protocol import is_tls
from meshbridge.istio.resources import (
    CERT_MANAGER_ANNOTATIONS,
    ClientTLSSettings,
    DestinationRule,
    Secret,
    ServerTLSSettings,
)
from meshbridge.istio.visibility import Proxy, destination_rule, dr_selects, gateways_for, qualify_host
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding
from meshbridge.lint.inputs import LintInput, MeshInput
from meshbridge.lint.paths import tls_for_port, tls_path

GENERIC = ("key", "cert", "cacert")
TLS_TYPE = ("tls.key", "tls.crt", "ca.crt")
EXPECTED = (
    "{key, cert, cacert} (generic), {tls.key, tls.crt, ca.crt} (kubernetes.io/tls), or {key, cert} plus a "
    "Secret <name>-cacert holding cacert"
)
_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PASS_PREFIXES = ("configmap://", "kubernetes-gateway://", "builtin://", "file-")


def _credentials(mesh: MeshInput) -> Iterator[tuple[str, str, str, str, str]]:
    """(kind, namespace, name, field path, credentialName) of every credentialName in Gateways and rules."""
    for gw in mesh.config.gateways:
        for i, s in enumerate(gw.spec.servers):
            if s.tls is None:
                continue
            if s.tls.credential_name:
                yield (
                    "Gateway",
                    gw.metadata.namespace,
                    gw.metadata.name,
                    f"spec.servers[{i}].tls.credentialName",
                    s.tls.credential_name,
                )
            for j, c in enumerate(s.tls.credential_names):
                yield (
                    "Gateway",
                    gw.metadata.namespace,
                    gw.metadata.name,
                    f"spec.servers[{i}].tls.credentialNames[{j}]",
                    c,
                )
    for dr in mesh.config.destination_rules:
        for path, tls, _, _ in mesh.tls_blocks(dr):
            if tls.credential_name:
                yield (
                    "DestinationRule",
                    dr.metadata.namespace,
                    dr.metadata.name,
                    f"{path}.credentialName",
                    tls.credential_name,
                )


# -- MB203, MB204: names and settings ---------------------------------------------------------------------


def check_credential_names(inp: LintInput) -> Iterator[Finding]:
    """MB203 (L03) and MB204: a credentialName must name a Secret, and must not end in ``-cacert``."""
    for mesh in inp.meshes:
        for kind, ns, name, path, cred in _credentials(mesh):
            ref = mesh.ref(kind, ns, name, path)
            if cred.startswith(_PASS_PREFIXES):
                continue
            bare = names.credential_name(cred)
            if bare.endswith(SDS_CA_SUFFIX):
                stem = bare[: -len(SDS_CA_SUFFIX)] or "mtls"
                renamed = stem if "credential" in stem else f"{stem}-credential"
                yield finding(
                    "MB203",
                    [ref],
                    f"credentialName {cred!r} ends in '-cacert', the suffix istiod reserves for CA bundles: it asks "
                    f"SDS for the CA of {stem!r} instead of a certificate",
                    f"rename the Secret and the credentialName (e.g. {renamed}); only a separate CA Secret is called "
                    "<name>-cacert",
                )
            elif not _SUBDOMAIN.match(bare):
                yield finding(
                    "MB204",
                    [ref],
                    f"credentialName {cred!r} is not a Secret name (lowercase letters, digits, '-' and '.'; no "
                    "namespace: the Secret is read from the gateway pod's namespace)",
                    "use the bare Secret name, e.g. mtls-credential, and put the Secret in the gateway pods' namespace",
                )


def check_tls_settings(inp: LintInput) -> Iterator[Finding]:
    """MB204: a MUTUAL DestinationRule that names no client certificate. A Gateway server's TLS settings are Istio's
    validation's (:mod:`meshbridge.istio.gateway_validation`): the parser refuses them in its words."""
    for mesh in inp.meshes:
        for dr in mesh.config.destination_rules:
            for path, ctls, _, _ in mesh.tls_blocks(dr):
                if (
                    ctls.mode == "MUTUAL"
                    and not ctls.credential_name
                    and not (ctls.client_certificate and ctls.private_key)
                ):
                    yield finding(
                        "MB204",
                        [mesh.ref("DestinationRule", dr.metadata.namespace, dr.metadata.name, path)],
                        "mode MUTUAL names neither credentialName nor clientCertificate/privateKey: istiod's "
                        "validation refuses the rule ('client certificate required for mutual tls') and cannot "
                        "build its TLS context",
                        "set credentialName to the egress gateway's Secret (e.g. mtls-credential)",
                        symptom="the rule is refused at apply; pushed anyway, the cluster sends plain text (no TLS "
                        "context): the exporter resets it or answers NR",
                    )


# -- MB205–MB208: served secrets -------------------------------------------------------------------------


def _unusable_names(mesh: MeshInput) -> set[str]:
    """SDS names of credentialNames MB203/MB204 already report (reserved suffix, not a Secret name)."""
    out = set()
    for *_, cred in _credentials(mesh):
        bare = names.credential_name(cred)
        if not cred.startswith(_PASS_PREFIXES) and (bare.endswith(SDS_CA_SUFFIX) or not _SUBDOMAIN.match(bare)):
            out |= {names.sds_name(cred), names.sds_ca_name(cred)}
    return out


def check_served_secrets(inp: LintInput) -> Iterator[Finding]:
    """MB205 (L04), MB206, MB207 (L05), MB208: every secret a proxy needs is served, from a clean layout."""
    for mesh in inp.meshes:
        unusable = _unusable_names(mesh)
        seen: set[tuple[str, str, str]] = set()
        for spec in mesh.proxies:
            proxy = spec.proxy
            pc = mesh.translation(proxy)
            for sds, served in pc.secrets.items():
                parsed = names.parse_sds_name(sds)
                if parsed is None or sds in unusable:
                    continue
                base, is_ca = parsed
                key = (proxy.namespace, base, "ca" if is_ca else "cert")
                if key in seen:
                    continue
                seen.add(key)
                if served is None:
                    yield from _unserved(mesh, spec.name, proxy, base, is_ca)
                else:
                    secret = mesh.config.secret(proxy.namespace, base)
                    if secret is not None and not is_ca:
                        yield from _mixed(mesh, secret)


def _unserved(mesh: MeshInput, who: str, proxy: Proxy, base: str, is_ca: bool) -> Iterator[Finding]:
    cfg = mesh.config
    ns = proxy.namespace
    main = cfg.secret(ns, base)
    ca = cfg.secret(ns, base + SDS_CA_SUFFIX)
    issued = cert_manager_issuer(cfg, ns, base)
    if main is None and issued is not None and (ca is not None or not is_ca):
        yield finding(
            "MB208",
            [mesh.ref("Secret", ns, base)],
            f"{who} needs Secret {ns}/{base}, which cert-manager writes in the cluster ({issued}); certificate "
            "checks for it were skipped",
            "once cert-manager has issued it, pass the Secret (kubectl get secret -o yaml) to check it",
        )
        return
    if main is None and ca is None:
        yield from _missing_secret(mesh, who, proxy, base)
        return
    if is_ca:
        holder = ca or main
        assert holder is not None
        found = sorted(secret_values(holder))
        yield finding(
            "MB205",
            [mesh.ref("Secret", ns, holder.metadata.name, "data")],
            f"{who} needs the CA of {base!r} (mutual TLS), but Secret {ns}/{holder.metadata.name} has keys {found} "
            f"and no non-empty cacert or ca.crt{'' if ca else f', and there is no Secret {base}-cacert'}",
            f"add the peer's CA as cacert (generic Secret) or ca.crt (kubernetes.io/tls); expected {EXPECTED}",
            symptom="the listener or cluster waits for the CA: handshake reset at the gateway, 503 at the egress",
        )
        return
    if main is None:
        yield finding(
            "MB205",
            [mesh.ref("Secret", ns, base)],
            f"{who} needs the certificate of {base!r}, but namespace {ns} only has Secret {base}-cacert (a CA bundle)",
            f"create Secret {ns}/{base} with the certificate and key; expected {EXPECTED}",
        )
        return
    values = secret_values(main)
    found = sorted(values)
    empty = sorted(k for k, v in values.items() if not v)
    tls_type = main.type == "kubernetes.io/tls"
    notes = []
    if empty:
        notes.append(f"empty: {empty}")
    if tls_type and not {"tls.crt", "tls.key"} <= set(values):
        notes.append("a kubernetes.io/tls Secret must have tls.crt and tls.key (the API server rejects it otherwise)")
    yield finding(
        "MB205",
        [mesh.ref("Secret", ns, base, "data")],
        f"{who} needs a certificate and key from Secret {ns}/{base}, which has keys {found}"
        + (f" ({'; '.join(notes)})" if notes else "")
        + ": istiod reads cert+key, else tls.crt+tls.key, both non-empty",
        f"use one layout: {EXPECTED}",
    )


def _missing_secret(mesh: MeshInput, who: str, proxy: Proxy, base: str) -> Iterator[Finding]:
    """``who`` reads credentialName ``base`` in its namespace and the input has neither it nor its ``-cacert``:
    MB207 when it is in another namespace, else MB208 (not rendered, or not in the input)."""
    ns = proxy.namespace
    yield from _certificate_elsewhere(mesh, who, proxy, base)
    names = (base, base + SDS_CA_SUFFIX)
    elsewhere = sorted(s.metadata.namespace for s in mesh.config.secrets if s.metadata.name in names)
    if elsewhere:
        rule, whose = other_namespace(proxy.kind)
        yield finding(
            "MB207",
            [mesh.ref("Secret", elsewhere[0], base, "metadata.namespace")],
            f"{who} runs in namespace {ns} and reads credentialName {base!r} there, but the Secret is in "
            f"{', '.join(dict.fromkeys(elsewhere))}: {rule}",
            f"create the Secret {base} in namespace {ns} ({whose})",
        )
    elif mesh.rendered:
        why, _, fix = mesh.unrendered.partition(". Fix: ")
        yield finding(
            "MB208",
            [mesh.ref("Secret", ns, base)],
            f"{who} needs Secret {ns}/{base}, which is not rendered because "
            f"{why or 'the certificates were never issued'}; certificate checks for it were skipped",
            f"{fix or 'run ' + repr('meshbridge certs issue')}, then lint again",
        )
    else:
        yield finding(
            "MB208",
            [mesh.ref("Secret", ns, base)],
            f"{who} needs Secret {ns}/{base}, which is not in the input; certificate checks for it were skipped",
            f"make sure Secret {ns}/{base} exists in the cluster, or pass it (manifests, or --cert "
            f"{mesh.name}:cert=FILE --cert {mesh.name}:key=FILE --cert {mesh.name}:cacert=FILE) to check it",
        )


def _mixed(mesh: MeshInput, secret: Secret) -> Iterator[Finding]:
    values = secret_values(secret)
    keys = set(values)
    ns, name = secret.metadata.namespace, secret.metadata.name
    generic, tls = keys & set(GENERIC), keys & set(TLS_TYPE)
    notes = []
    if generic and tls:
        notes.append(f"generic keys {sorted(generic)} and kubernetes.io/tls keys {sorted(tls)} in one Secret")
    if "crl" in keys and "cacert" not in keys:
        notes.append("crl is only read next to cacert")
    if "ca.crl" in keys and "ca.crt" not in keys:
        notes.append("ca.crl is only read next to ca.crt")
    ca_secret = mesh.config.secret(ns, name + SDS_CA_SUFFIX)
    issued = cert_manager_issuer(mesh.config, ns, name)  # its ca.crt is cert-manager's to write: the -cacert is the way
    if ca_secret is not None and keys & {"cacert", "ca.crt"} and issued is None:
        notes.append(f"Secret {name}-cacert exists, so this Secret's own CA key is ignored")
    if notes:
        yield finding(
            "MB206",
            [mesh.ref("Secret", ns, name, "data")],
            f"Secret {ns}/{name} is served, but: {'; '.join(notes)}",
            f"use one layout: {EXPECTED}",
        )


# -- MB201, MB202: which proxy consumes a DestinationRule's credentialName -------------------------------


def _rules_with_credential(mesh: MeshInput, host: str, port: int) -> list[tuple[DestinationRule, str]]:
    return [
        (d, tls_path(d, port))
        for d, tls in mesh.tls_rules_for(host, port)
        if tls.credential_name and tls.mode in ("SIMPLE", "MUTUAL")
    ]


def check_credential_consumers(inp: LintInput) -> Iterator[Finding]:
    """MB201 (L02): the proxy that sends the traffic must apply the rule's credentialName."""
    for mesh in inp.meshes:
        cfg = mesh.config
        seen: set[tuple[str, str, str]] = set()
        for spec in mesh.proxies:
            proxy = spec.proxy
            view = mesh.view(proxy)
            for cluster in view.routed:
                if cluster not in view.clusters:
                    continue
                parsed = names.parse_cluster_name(cluster)
                assert parsed is not None
                _, port, _, host = parsed
                tls = view.upstream_tls(cluster)
                if tls is not None and tls["common_tls_context"].get("tls_certificate_sds_secret_configs"):
                    continue
                for d, path in _rules_with_credential(mesh, host, port):
                    mode = tls_for_port(d, port)
                    assert mode is not None
                    if tls is not None and mode.mode == "SIMPLE":
                        continue  # SIMPLE needs no client certificate; the CA part is there
                    key = (spec.name, d.metadata.namespace, d.metadata.name)
                    if key in seen:
                        continue
                    svc = mesh.find(proxy, host)
                    applied = destination_rule(cfg, proxy, svc) if svc is not None else None
                    ref = mesh.ref("DestinationRule", d.metadata.namespace, d.metadata.name, f"{path}.credentialName")
                    if proxy.kind == "sidecar" and applied is not None and any(d is r for r in applied.rules):
                        seen.add(key)
                        yield finding(
                            "MB201",
                            [ref],
                            f"the sidecar of {spec.name} routes {host}:{port} to {cluster} itself and uses this "
                            "rule, but "
                            "a sidecar ignores credentialName unless the rule has a workloadSelector: the request "
                            f"leaves in plain text",
                            "send the apps' traffic through the egress gateway (a VirtualService bound to mesh that "
                            "routes the host to the egress gateway), or add a workloadSelector for the apps "
                            "(Istio ≥ 1.14)",
                        )
                    elif proxy.kind == "router" and d.spec.workload_selector is not None and not dr_selects(d, proxy):
                        seen.add(key)
                        yield finding(
                            "MB201",
                            [ref.at("spec.workloadSelector")],
                            f"gateway {spec.name} routes {host}:{port} to {cluster}, but the rule's workloadSelector "
                            f"{dict(d.spec.workload_selector.match_labels)} does not select it (a rule with a "
                            "workloadSelector applies only to the pods of its own namespace whose labels match, "
                            f"and the gateway runs in {proxy.namespace} with labels {dict(proxy.labels)}), so the "
                            "gateway sends without the credential",
                            f"put the rule in {proxy.namespace} with matchLabels the gateway's pod carries (e.g. "
                            "istio: egressgateway), or drop the workloadSelector",
                        )


def check_credential_rules_on_sidecars(inp: LintInput) -> Iterator[Finding]:
    """MB202: a credentialName rule that app sidecars see (and ignore) although they do not route there."""
    for mesh in inp.meshes:
        for d in mesh.config.destination_rules:
            creds = [p for p, t, _, _ in mesh.tls_blocks(d) if t.credential_name]
            if not creds or d.spec.workload_selector is not None:
                continue
            host = qualify_host(d.spec.host, d.metadata.namespace)
            apps = []
            for app in mesh.sidecars:
                svc = mesh.find(app, host)
                if svc is None:
                    continue
                applied = destination_rule(mesh.config, app, svc)
                if applied is None or not any(d is r for r in applied.rules):
                    continue
                if svc.hostname.lower() in mesh.view(app).routed_hosts:
                    continue  # it does route there: MB201's business
                apps.append(f"{app.namespace}/{app.name}")
            if apps:
                yield finding(
                    "MB202",
                    [mesh.ref("DestinationRule", d.metadata.namespace, d.metadata.name, "spec.exportTo")],
                    f"the app sidecars {', '.join(apps)} see this rule and would ignore its credentialName; today "
                    "they route elsewhere (through the egress gateway), so it only matters if that route goes",
                    f'keep it to the egress gateway\'s namespace: exportTo: ["."] (it lives in {d.metadata.namespace})',
                )


# -- MB209: plain text to a TLS port -----------------------------------------------------------------------


def check_plaintext_to_tls(inp: LintInput) -> Iterator[Finding]:
    """MB209: a proxy routes HTTP to a TLS port without originating TLS.

    A port is a TLS port by what its server does: when the destination is a gateway of the mesh, the simulator
    sends that gateway plain text on the port its endpoints name and reports whether a filter chain takes it (an
    egress Gateway server on 443 with protocol HTTP takes it, whatever the Service calls the port); any other
    destination by its declared protocol (HTTPS, TLS) or an endpoint port 443. A gateway is judged only on the
    clusters a VirtualService's route sends to (a subset's cluster with the subset's TLS): istiod's default route
    for the gateway Service's own host is no path anyone's traffic takes.
    """
    for mesh in inp.meshes:
        linked = {link.host.lower() for link in inp.links if link.importer == mesh.name}
        seen: set[tuple[str, str]] = set()
        for spec in mesh.proxies:
            view = mesh.view(spec.proxy)
            for cluster, routes in view.routed.items():
                if (spec.name, cluster) in seen or cluster not in view.clusters or view.upstream_tls(cluster):
                    continue
                found = _plaintext_to_tls(mesh, spec.name, spec.proxy, cluster, routes, linked)
                if found is not None:
                    seen.add((spec.name, cluster))
                    yield found


def _plaintext_to_tls(
    mesh: MeshInput, name: str, proxy: Proxy, cluster: str, routes: list[RouteRef], linked: set[str]
) -> Finding | None:
    """MB209 for ``proxy`` (called ``name``) sending plain text to ``cluster``, which ``routes`` send to."""
    parsed = names.parse_cluster_name(cluster)
    assert parsed is not None
    _, port, subset, host = parsed
    if host.lower() in linked:
        return None  # MB306 explains the link
    svc = mesh.find(proxy, host)
    p = svc.port(port) if svc is not None else None
    if svc is None or p is None:
        return None
    view = mesh.view(proxy)
    ep_ports = {ep for _, ep in view.endpoints(cluster)}
    gateways = _gateways_behind(mesh, host)
    if gateways and not any(r.virtual_service is not None for r in routes):
        return None  # only istiod's default route for the gateway Service's own host sends there
    served = _plaintext_served(mesh, gateways, host, ep_ports)
    if served is True or (served is None and not (is_tls(p.protocol) or 443 in ep_ports)):
        return None
    if mesh.tls_rules_for(host, port):
        return None  # a rule means TLS but does not apply: MB106/MB201 say why
    dr = destination_rule(mesh.config, proxy, svc)
    tls = dr.policy_for(port, subset or None).tls if dr is not None else None
    if tls is not None and tls.mode != "DISABLE":
        return None  # TLS originated as istiod merges it (a subset's port-level ISTIO_MUTUAL, say)
    kind, _, src = svc.source.partition(" ")
    src_ns, _, src_name = src.partition("/")
    where = f"its subset {subset}" if subset else "it"
    rule = f"DestinationRule {dr.first.metadata.namespace}/{dr.first.metadata.name}" if dr is not None else ""
    return finding(
        "MB209",
        [mesh.ref(kind, src_ns, src_name, "spec.ports")],
        f"{name} routes HTTP to {cluster} (port {port} {p.protocol}, endpoint ports {sorted(ep_ports)}) and no "
        f"DestinationRule originates TLS {'for ' + where if subset else 'there'}: plain text reaches a TLS port",
        f"{'in ' + rule + ' set' if rule else f'add a DestinationRule for {host} with'} "
        f"{f'subsets[name: {subset}].' if subset else ''}trafficPolicy.portLevelSettings"
        f"[{{port: {{number: {port}}}, tls: {_origination(_server_tls(mesh, gateways, ep_ports))}}}]",
    )


def _gateways_behind(mesh: MeshInput, host: str) -> list[Proxy]:
    """The mesh's gateways whose Service is ``host``."""
    return [s.proxy for s in mesh.proxies if s.proxy.service is not None and s.proxy.service.fqdn == host]


def _plaintext_served(mesh: MeshInput, gateways: list[Proxy], host: str, ports: set[int]) -> bool | None:
    """Whether ``gateways`` (the mesh's gateways behind Service ``host``) take plain text on each of ``ports``
    (their listener ports), as the simulator answers; ``None`` when there are none or one has no listener there."""
    if not gateways or not ports:
        return None
    answers = [
        simulate(mesh.view(gw), Request(port, host), secrets=False, rbac=False) for gw in gateways for port in ports
    ]
    if any(a.error == "NoListener" for a in answers):
        return None
    return not any(a.error in ("TLSRequired", "NoFilterChain") for a in answers)


def _server_tls(mesh: MeshInput, gateways: list[Proxy], ports: set[int]) -> tuple[str, str] | None:
    """(tls.mode, first host) of the Gateway server that terminates TLS on one of ``ports`` (listener ports) of
    ``gateways``, as the gateway resolves a server's port to its Service's targetPort."""
    for gw in gateways:
        for g in gateways_for(mesh.config, gw):
            for server in g.spec.servers:
                if server.tls is not None and resolve_port(gw, server.port.number) in ports:
                    hosts = [h.split("/", 1)[-1] for h in server.hosts]
                    return server.tls.mode, next((h for h in hosts if "*" not in h), "<host>")
    return None


def _origination(server: tuple[str, str] | None) -> str:
    """The client TLS that a server of ``server``'s mode and host takes: ISTIO_MUTUAL for ISTIO_MUTUAL (the
    workload certificate), MUTUAL with a client certificate for MUTUAL, else SIMPLE."""
    mode, sni = server if server is not None else ("SIMPLE", "<host>")
    if mode == "ISTIO_MUTUAL":
        return f"{{mode: ISTIO_MUTUAL, sni: {sni}}}"
    if mode in ("MUTUAL", "OPTIONAL_MUTUAL"):
        return f"{{mode: MUTUAL, credentialName: <Secret with the client certificate>, sni: {sni}}}"
    return f"{{mode: SIMPLE, sni: {sni}}}"


_SKIPPED = {
    "serverCertificate": "its validity, EKU and SANs, the peer's SAN pins and the chain to the peer's CA",
    "clientCertificate": "its validity, EKU and SANs, the peer's SAN pins and the chain to the peer's CA",
    "privateKey": "the key pair",
    "caCertificates": "the peer's chain to this CA and its validity",
    "caCrl": "revocation",
}
"""The checks a file's field feeds, which lint skips when the file is not given."""


def check_mounted_certificates(inp: LintInput) -> Iterator[Finding]:
    """MB210: TLS settings that read certificates from files in the pod that lint was not given (``--cert
    PATH=FILE``); Citadel's /etc/certs/ is MB003."""
    for mesh in inp.meshes:
        blocks: list[tuple[str, str, str, str, ServerTLSSettings | ClientTLSSettings]] = [
            ("Gateway", gw.metadata.namespace, gw.metadata.name, f"spec.servers[{i}].tls", s.tls)
            for gw in mesh.config.gateways
            for i, s in enumerate(gw.spec.servers)
            if s.tls is not None
        ]
        blocks += [
            ("DestinationRule", dr.metadata.namespace, dr.metadata.name, path, tls)
            for dr in mesh.config.destination_rules
            for path, tls, _, _ in mesh.tls_blocks(dr)
        ]
        for kind, ns, name, path, tls in blocks:
            missing = {
                api: value
                for api, value in tls_files(tls).items()
                if not value.startswith("/etc/certs/") and value not in mesh.files
            }
            if not missing:
                continue
            shown = ", ".join(f"{k}: {v}" for k, v in missing.items())
            skipped = "; ".join(dict.fromkeys(_SKIPPED[k] for k in missing))
            first = next(iter(missing.values()))
            others = any(first in {r.path for r in m.file_references} for m in inp.meshes if m is not mesh)
            option = f"--cert {mesh.name + ':' if others else ''}{first}=./{first.rsplit('/', 1)[-1]}"
            yield finding(
                "MB210",
                [mesh.ref(kind, ns, name, path)],
                f"reads certificates from files in the pod that lint was not given ({shown}): it skipped {skipped}",
                f"pass each file with --cert PATH=FILE (e.g. {option}): lint checks it and 'local up' mounts it; "
                "or use credentialName with a Secret",
            )


def cert_manager_issuer(cfg: ConfigSet, namespace: str, name: str) -> str | None:
    """What says cert-manager writes Secret ``namespace/name`` (a Certificate of the input with that
    ``secretName`` there, or the Secret's cert-manager annotations), or ``None``."""
    for c in cfg.certificates:
        if c.metadata.namespace == namespace and c.spec.secret_name == name:
            return f"Certificate {namespace}/{c.metadata.name}"
    secret = cfg.secret(namespace, name)
    marks = [a for a in CERT_MANAGER_ANNOTATIONS if secret is not None and a in secret.metadata.annotations]
    return f"its annotation {marks[0]}" if marks else None


def _certificate_elsewhere(mesh: MeshInput, who: str, proxy: Proxy, base: str) -> Iterator[Finding]:
    """MB207 for a cert-manager Certificate that writes the Secret ``base`` in another namespace than the proxy's."""
    ns = proxy.namespace
    for c in mesh.config.certificates:
        if c.spec.secret_name == base and c.metadata.namespace != ns:
            where = c.metadata.namespace
            rule, whose = other_namespace(proxy.kind)
            yield finding(
                "MB207",
                [mesh.ref("Certificate", where, c.metadata.name, "metadata.namespace")],
                f"{who} runs in namespace {ns} and reads credentialName {base!r} there, but Certificate "
                f"{where}/{c.metadata.name} has cert-manager write Secret {base} in {where}: {rule}",
                f"create the Certificate in namespace {ns} ({whose}); with an Issuer, that Issuer too (a "
                "ClusterIssuer serves every namespace)",
            )


def _peer_cas_given(cfg: ConfigSet, namespace: str, name: str) -> bool:
    """Whether Secret ``namespace/name`` is in the input, or a trust-manager Bundle of that name writes it there."""
    bundles = (b for b in cfg.trust_bundles if b.metadata.name == name)
    return cfg.secret(namespace, name) is not None or any(b.may_write_secret(namespace) for b in bundles)


def check_cert_manager_trust(inp: LintInput) -> Iterator[Finding]:
    """MB211: a mutual-TLS credential cert-manager issues, whose peer is trusted through its ``ca.crt``: cert-manager
    writes there the CA of its own issuer, so the peer mesh's certificates (its own CA) are refused."""
    for mesh in inp.meshes:
        seen: set[tuple[str, str]] = set()
        for spec in mesh.proxies:
            ns = spec.proxy.namespace
            for sds in mesh.translation(spec.proxy).secrets:
                parsed = names.parse_sds_name(sds)
                if parsed is None or not parsed[1] or (ns, parsed[0]) in seen:
                    continue
                base = parsed[0]
                issued = cert_manager_issuer(mesh.config, ns, base)
                if issued is None or _peer_cas_given(mesh.config, ns, base + SDS_CA_SUFFIX):
                    continue
                seen.add((ns, base))
                yield finding(
                    "MB211",
                    [mesh.ref("Secret", ns, base)],
                    f"{spec.name} checks its peer's certificate against the ca.crt of Secret {ns}/{base}, which "
                    f"cert-manager fills with its own issuer's CA ({issued}), and there is no Secret "
                    f"{base}{SDS_CA_SUFFIX}: the peer mesh's certificates, signed by its own CA, are refused",
                    f"put the peer's CA certificate (ca.crt only) in Secret {ns}/{base}{SDS_CA_SUFFIX}; on a Gateway "
                    f"also name it in tls.caCertCredentialName (Istio 1.28+). meshbridge render does both when "
                    "spec.tls.issuer is cert-manager",
                )


def check_secret_access(inp: LintInput) -> Iterator[Finding]:
    """MB212, MB213: istiod serves a proxy (gateway or sidecar) its certificate Secrets only if its ServiceAccount may
    *list* Secrets in its namespace (a SubjectAccessReview without a name, ``pilot/pkg/credentials/kube/secrets.go``
    Authorize, asked by ``pilot/pkg/xds/sds.go`` filterAuthorizedResources; a ``-cacert`` needs none). MB212: the
    input binds the account rules that list Secrets, every one limited by ``resourceNames``, which does not grant
    that. MB213: a sidecar's account, which Kubernetes grants nothing by default, is bound no rule of the input that
    lists Secrets at all (a gateway's comes with its chart's Role, so its absence from the input says nothing)."""
    for mesh in inp.meshes:
        for spec in mesh.proxies:
            proxy = spec.proxy
            needed = sorted(
                {p[0] for s in mesh.translation(proxy).secrets if (p := names.parse_sds_name(s)) and not p[1]}
                - _unusable_bases(mesh)
            )
            if not needed:
                continue
            rules = mesh.config.secret_list_rules(proxy.namespace, proxy.sa)
            if not rules and proxy.kind == "sidecar":
                yield _no_secret_role(mesh, spec.name, proxy, needed)
            elif rules and all(r.resource_names for r in rules):
                yield _names_only(mesh, spec.name, proxy, needed, sorted({n for r in rules for n in r.resource_names}))


def _unusable_bases(mesh: MeshInput) -> set[str]:
    """The credentialNames MB203/MB204 already report, by Secret name."""
    return {p[0] for sds in _unusable_names(mesh) if (p := names.parse_sds_name(sds))}


def _names_only(mesh: MeshInput, who: str, proxy: Proxy, needed: list[str], limited: list[str]) -> Finding:
    kind = "gateway" if proxy.kind == "router" else "sidecar"
    chart = "Istio's gateway chart's Role" if proxy.kind == "router" else "the Role of istio.io's TLS origination"
    return finding(
        "MB212",
        [mesh.ref("ServiceAccount", proxy.namespace, proxy.sa)],
        f"{who} runs as ServiceAccount {proxy.namespace}/{proxy.sa}, whose Roles let it list Secrets only by name "
        f"({', '.join(limited)}); istiod asks whether it may list Secrets in {proxy.namespace} at all (a "
        f"SubjectAccessReview without a name) before it serves {', '.join(needed)}, and the answer is no",
        f"grant get, list and watch on secrets in the {kind}'s namespace without resourceNames ({chart}); limit which "
        f"Secrets reach the {kind} by namespace, not by name",
    )


def _no_secret_role(mesh: MeshInput, who: str, proxy: Proxy, needed: list[str]) -> Finding:
    why, fix = unlisted_secrets(proxy.namespace, proxy.sa)
    return finding(
        "MB213",
        [mesh.ref("ServiceAccount", proxy.namespace, proxy.sa)],
        f"{who} reads credentialName {', '.join(needed)}, which {why}",
        fix,
    )


CHECKS = (
    check_credential_names,
    check_mounted_certificates,
    check_tls_settings,
    check_served_secrets,
    check_cert_manager_trust,
    check_secret_access,
    check_credential_consumers,
    check_credential_rules_on_sidecars,
    check_plaintext_to_tls,
)
