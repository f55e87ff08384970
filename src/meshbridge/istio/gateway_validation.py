"""Istio's validation of a Gateway, in one place: what the API server's webhook refuses, and what it takes with a
warning, in Istio's own words with the object, the field and the fix.

Source: istio/istio ``pkg/config/validation/validation.go`` (``ValidateGateway``, ``validateServer``,
``validateServerPort``, ``validateServerBind``, ``validateTLSOptions``), ``pkg/config/validation/agent/validation.go``
(``ValidateNamespaceSlashWildcardHostname``, ``ValidateWildcardDomain``, ``ValidateDNS1123Labels``,
``ValidateUnixAddress``), ``pkg/config/labels`` (``IsDNS1123Label``, ``IsWildcardDNS1123Label``) and
``pkg/config/security`` (``IsValidCipherSuite``). Only Istio's own Gateways: istiod converts Gateway API ones and
the webhook never sees them.

Like istiod's webhook, meshbridge says every error of a Gateway, one line each (Istio's words for one field joined
by '; ').
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from meshbridge.errors import IstioConfigError
from meshbridge.ipaddr import is_ip
from meshbridge.istio import protocol
from meshbridge.istio.config import ConfigWarning
from meshbridge.istio.resources import Gateway, Server, ServerTLSSettings


@dataclass(frozen=True)
class ValidationWarning(ConfigWarning):
    """A :class:`ConfigWarning` that is a warning of Istio's validation: ``kubectl apply`` takes the Gateway and
    prints it; lint reports it as ``MB005``.

    Attributes:
        fix: what to change so Istio says nothing.
    """

    fix: str = ""


_LABEL = re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?")
_WILDCARD_LABEL = re.compile(r"(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)")
_UNIX = "unix://"
_CIPHER_SUITES = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
        "DES-CBC3-SHA",
    }
)
"""The cipher suites Istio's validation knows (``security.ValidCipherSuites``: BoringSSL's, without PSK)."""
_KNOWN_PROTOCOLS = "HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TLS, TCP, MONGO, REDIS, MYSQL"


def is_dns_label(value: str) -> bool:
    """Istio's ``labels.IsDNS1123Label``: letters, digits and '-', at most 63 characters, no dots."""
    return len(value) <= 63 and _LABEL.fullmatch(value) is not None


def check_gateway(gw: Gateway, source: str) -> list[ConfigWarning]:
    """What Istio's ``ValidateGateway`` refuses, refused; what it warns about, returned.

    Returns:
        Istio's warnings (:class:`ValidationWarning`): httpsRedirect on a server that is not HTTP, cipher suites it
        ignores, certificates a passthrough server ignores, TLS below 1.2 without cipher suites.

    Raises:
        IstioConfigError: every error Istio's validation gives (the name, a server's hosts, port, bind, tls, two
            servers with one port name), one line each, in its words, naming the Gateway, the field and the fix.
    """
    where = f"{source}: Gateway {gw.metadata.namespace}/{gw.metadata.name}"
    out: list[str] = []
    if not is_dns_label(gw.metadata.name):
        out.append(
            f"{where}: metadata.name: invalid gateway name: {gw.metadata.name!r}, as Istio's validation says (a "
            "DNS label: letters, digits and '-', no dots, at most 63 characters; a VirtualService names it as "
            "<namespace>/<name>). Fix: a name without dots, e.g. " + re.sub(r"[^-a-zA-Z0-9]", "-", gw.metadata.name)
        )
    if not gw.spec.servers:
        out.append(_refuse(f"{where}: spec.servers", "", ["gateway must have at least one server"], "add a server"))
    warnings: list[ConfigWarning] = []
    for i, server in enumerate(gw.spec.servers):
        for field, said, fix in _server_warnings(server):
            warnings.append(
                ValidationWarning(
                    source, "Gateway", gw.metadata.namespace, gw.metadata.name, f"spec.servers[{i}]{field}", said, fix
                )
            )
        out += _check_server(server, f"{where}: spec.servers[{i}]")
    out += _check_unique_names(gw, where)
    if out:
        raise IstioConfigError("\n".join(out))
    return warnings


def _refuse(where: str, field: str, said: list[str], fix: str) -> str:
    return f"{where}{field}: {'; '.join(said)}, as Istio's validation says. Fix: {fix}"


def _check_server(server: Server, where: str) -> list[str]:
    """``validateServer``: hosts, port, bind, tls and, when the port has no error, the tls its protocol allows."""
    out: list[str] = []
    if not server.hosts:
        out.append(
            _refuse(
                where,
                ".hosts",
                ["server config must contain at least one host"],
                "list the hosts the server answers for ('*' for any)",
            )
        )
    for j, host in enumerate(server.hosts):
        said = host_errors(host)
        if said:
            out.append(
                _refuse(
                    where,
                    f".hosts[{j}]",
                    said,
                    "a host name with a dot ('api.example.com', '*.example.com', "
                    "'*'), optionally after a namespace and '/' ('*/', './' or 'my-namespace/')",
                )
            )
    port = _check_port(server, where)
    out += port + _check_bind(server, where)
    if server.tls is not None:
        out += _check_tls_options(server.tls, where + ".tls")
    return out + ([] if port else _check_tls_for_protocol(server, where))


def host_errors(host: str) -> list[str]:
    """Istio's errors on a Gateway server's host (``ValidateNamespaceSlashWildcardHostname`` for a gateway), in its
    words; none for a valid one."""
    namespace, slash, name = host.partition("/")
    if not slash:
        return _hostname_errors(host)
    said = []
    if not namespace or not name:
        said.append("config namespace and dnsName in host entry cannot be empty")
    if namespace not in ("*", ".") and not is_dns_label(namespace):
        said.append(f'invalid namespace value "{namespace}" in gateway')
    return said + _hostname_errors(name)


def _hostname_errors(name: str) -> list[str]:
    """``validateSidecarOrGatewayHostnamePart`` for a gateway: an FQDN, a wildcard, or an IP address."""
    said = []
    if name != "*" and "." not in name:
        said.append("short names (non FQDN) are not allowed")
    wrong = _wildcard_domain_error(name)
    if wrong and not is_ip(name):
        said.append(wrong)
    if "*" in name and len(name) != 1 and not name.startswith("*."):
        said.append(f'partial wildcard "{name}" not allowed')
    return said


def _wildcard_domain_error(domain: str) -> str | None:
    """``ValidateWildcardDomain``: an FQDN whose first label may be a wildcard (``*``, ``*foo``, ``*-foo``)."""
    if len(domain) > 255:
        return f'domain name "{domain}" too long (max 255)'
    if not domain:
        return "empty domain name not allowed"
    first, dot, rest = domain.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.fullmatch(first):
        return f'domain name "{domain}" invalid (label "{first}" invalid)'
    if not dot:
        return None
    labels = rest.split(".")
    if re.fullmatch(r"[+-]?[0-9]+", labels[-1]) and -(2**63) <= int(labels[-1]) < 2**63:  # Go's strconv.Atoi
        return f'domain name "{rest}" invalid (top level domain "{labels[-1]}" cannot be all-numeric)'
    for i, label in enumerate(labels):
        if i == len(labels) - 1 and not label:
            return None  # 'istio.io.'
        if not is_dns_label(label):
            return f'domain name "{rest}" invalid (label "{label}" invalid)'
    return None


def _check_port(server: Server, where: str) -> list[str]:
    """``validateServerPort``: a protocol Istio knows, a port number, no targetPort, a port name."""
    port, out = server.port, []
    if "protocol" not in port.model_fields_set or protocol.parse(port.protocol) == protocol.UNSUPPORTED:
        out.append(
            _refuse(
                where,
                ".port.protocol",
                [
                    f'invalid protocol "{port.protocol if "protocol" in port.model_fields_set else ""}", supported '
                    "protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP"
                ],
                f"one of the protocols Istio knows ({_KNOWN_PROTOCOLS}, any case)",
            )
        )
    if (port.number > 0 or not (server.bind or "").startswith(_UNIX)) and not 1 <= port.number <= 65535:
        out.append(
            _refuse(
                where,
                ".port.number",
                [f"port number {port.number} must be in the range 1..65535"],
                "the port the gateway listens on, 1 to 65535 (0 only with a bind of unix://)",
            )
        )
    if port.target_port:
        out.append(
            f"{where}.port.targetPort: targetPort has no impact on Gateways, as Istio's validation says (the gateway "
            "Service's targetPort is the pod's port). Fix: remove it"
        )
    if not port.name:
        out.append(
            f"{where}.port.name: port name must be set, as Istio's validation says. "
            f"Fix: name the port, e.g. {port.protocol.lower()}-{port.number}"
        )
    return out


def _check_bind(server: Server, where: str) -> list[str]:
    """``validateServerBind``: an IP address, or ``unix://`` and an absolute path (or ``@`` name) with port 0."""
    bind, out = server.bind or "", []
    if bind.startswith(_UNIX):
        path = bind[len(_UNIX) :]
        said = []
        if not path:
            said.append("unix address must not be empty")
        elif not path.startswith("@") and (not posixpath.isabs(path) or path.endswith("/")):
            said.append(f"{path} is not an absolute path to a file")
        if server.port.number != 0:
            said.append("port number must be 0 for unix domain socket")
        if said:
            out.append(
                _refuse(where, ".bind", said, "unix:// and an absolute file path (or @name), with port.number 0")
            )
    elif bind and not is_ip(bind):
        out.append(
            _refuse(
                where,
                ".bind",
                [f"{bind} is not a valid IP"],
                "an IP address of the gateway pod (0.0.0.0 for all), or no bind",
            )
        )
    return out


def _certificates(tls: ServerTLSSettings) -> list[dict[str, str]]:
    """``tls.tlsCertificates`` (not modelled: kept as written)."""
    written = (tls.model_extra or {}).get("tlsCertificates") or []
    return [c for c in written if isinstance(c, dict)]


def _check_tls_options(tls: ServerTLSSettings, where: str) -> list[str]:
    """``validateTLSOptions``'s errors: what ISTIO_MUTUAL cannot have, one certificate source, what SIMPLE and
    MUTUAL need without a credentialName, where a CRL goes."""
    out: list[str] = []
    if tls.mode == "ISTIO_MUTUAL":
        fields = [
            ("serverCertificate", tls.server_certificate, "server certificate"),
            ("privateKey", tls.private_key, "private key"),
            ("caCertificates", tls.ca_certificates, "CA bundle"),
            ("tlsCertificates", _certificates(tls), "tlsCertificates"),
            ("credentialName", tls.credential_name, "credentialName"),
            ("credentialNames", tls.credential_names, "credentialNames"),
        ]
        for field, value, what in fields:
            if value:
                out.append(
                    _refuse(
                        where,
                        f".{field}",
                        [f"ISTIO_MUTUAL TLS cannot have associated {what}"],
                        f"remove {field} (ISTIO_MUTUAL presents the gateway's workload certificate and verifies "
                        "with the mesh's root), or mode MUTUAL to present this one",
                    )
                )
        return out
    sources = [
        bool(tls.server_certificate and tls.private_key),
        bool(tls.credential_name),
        bool(tls.credential_names),
        bool(_certificates(tls)),
    ]
    if sum(sources) > 1:
        out.append(
            _refuse(
                where,
                "",
                [
                    "only one of credential_name, credential_names, server_certificate/private_key, tls_certificates "
                    "should be specified"
                ],
                "keep one certificate source: credentialName (the Secret the gateway reads) or the files",
            )
        )
    if tls.mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        if tls.credential_name or tls.credential_names:
            return out  # the gateway reads the credential (a caCrl too) from its Secret: Istio checks no more
        out += _check_tls_files(tls, where)
    if tls.ca_crl and tls.credential_name:
        out.append(
            _refuse(
                where,
                ".caCrl",
                ["CRL is not supported with credentialName. CRL has to be specified in the credential"],
                "put ca.crl in the credentialName's Secret and remove caCrl",
            )
        )
    if tls.ca_crl and tls.mode == "SIMPLE":
        out.append(
            _refuse(
                where,
                ".caCrl",
                ["CRL is not supported with SIMPLE TLS"],
                "remove caCrl (SIMPLE verifies no client certificate), or mode MUTUAL",
            )
        )
    return out


def _check_tls_files(tls: ServerTLSSettings, where: str) -> list[str]:
    """SIMPLE and MUTUAL without a credentialName: a client CA bundle (MUTUAL), a certificate and key each."""
    prefix, out = "SIMPLE TLS" if tls.mode == "SIMPLE" else "MUTUAL TLS", []
    if prefix == "MUTUAL TLS" and not tls.ca_certificates:
        out.append(
            _refuse(
                where,
                ".caCertificates",
                [f"{prefix} requires a client CA bundle"],
                "credentialName: a Secret with tls.crt, tls.key and ca.crt (the gateway reads it), or "
                "caCertificates: the file of the CA that verifies clients",
            )
        )
    pairs = [(c.get("serverCertificate"), c.get("privateKey")) for c in _certificates(tls)]
    for certificate, key in pairs or [(tls.server_certificate, tls.private_key)]:
        said = [f"{prefix} requires a server certificate"] if not certificate else []
        said += [f"{prefix} requires a private key"] if not key else []
        if said:
            out.append(
                _refuse(
                    where,
                    "" if pairs else (".serverCertificate" if not certificate else ".privateKey"),
                    said,
                    "credentialName: the Secret with tls.crt and tls.key, or serverCertificate and privateKey",
                )
            )
    return out


def _check_tls_for_protocol(server: Server, where: str) -> list[str]:
    """An HTTPS or TLS server needs tls; another server may have only a plain HTTP one's httpsRedirect."""
    tls, proto = server.tls, server.port.protocol
    if protocol.is_tls(proto) and tls is None:
        return [
            f"{where}.tls: server must have TLS settings for HTTPS/TLS protocols, as Istio's validation says. "
            "Fix: add tls (mode SIMPLE or MUTUAL and a credentialName)"
        ]
    if tls is None or protocol.is_tls(proto):
        return []
    if not protocol.is_http(proto):
        return [
            _refuse(
                where,
                ".tls",
                ["server cannot have TLS settings for non HTTPS/TLS ports"],
                f"protocol TLS to terminate or pass TLS through on port {server.port.number}, or remove tls",
            )
        ]
    passthrough = tls.mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH")
    if not passthrough or tls.ca_certificates or tls.private_key or tls.server_certificate:
        return [
            _refuse(
                where,
                ".tls",
                ["server cannot have TLS settings for plain text HTTP ports"],
                f"protocol HTTPS to terminate TLS on port {server.port.number}, or keep only "
                "tls.httpsRedirect: true (a redirect to HTTPS)",
            )
        ]
    return []


def _server_warnings(server: Server) -> list[tuple[str, str, str]]:
    """Istio's validation warnings on a server (``validateTLSOptions``, ``ValidateGateway``): field, words, fix."""
    tls = server.tls
    if tls is None:
        return []
    said = []
    if not protocol.is_http(server.port.protocol) and tls.https_redirect:
        said.append(
            (
                ".tls.httpsRedirect",
                "tls.httpsRedirect should only be used with http servers",
                "remove it: only a plain HTTP server redirects to HTTPS",
            )
        )
    if tls.min_protocol_version in ("TLSV1_0", "TLSV1_1") and not tls.cipher_suites:
        said.append(
            (
                ".tls.minProtocolVersion",
                "TLS version below TLSV1_2 require setting compatible ciphers as "
                "by default they no longer include compatible ciphers.",
                "list cipherSuites the old clients speak (e.g. ECDHE-RSA-AES128-SHA), or TLSV1_2",
            )
        )
    unknown = sorted({c for c in tls.cipher_suites if c and c != "ALL" and c[0].isalnum() and c not in _CIPHER_SUITES})
    if unknown:
        said.append(
            (
                ".tls.cipherSuites",
                f"ignoring invalid cipher suites: [{' '.join(unknown)}]",
                "OpenSSL names BoringSSL knows, e.g. ECDHE-ECDSA-AES128-GCM-SHA256",
            )
        )
    valid = [c for c in tls.cipher_suites if c not in unknown]
    twice = sorted({c for c in valid if valid.count(c) > 1})
    if twice:
        said.append((".tls.cipherSuites", f"ignoring duplicate cipher suites: [{' '.join(twice)}]", "list each once"))
    if tls.mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH") and (
        tls.ca_crl
        or tls.server_certificate
        or tls.private_key
        or tls.ca_certificates
        or _certificates(tls)
        or tls.credential_name
        or tls.credential_names
    ):
        said.append(
            (
                ".tls",
                f"{tls.mode} mode does not use certificates, they will be ignored",
                "remove them: the backend presents its own certificate",
            )
        )
    if tls.mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL") and len(_certificates(tls)) > 2:
        prefix = "SIMPLE TLS" if tls.mode == "SIMPLE" else "MUTUAL TLS"
        said.append(
            (
                ".tls.tlsCertificates",
                f"{prefix} can support up to 2 server certificates",
                "at most two (one RSA, one ECDSA)",
            )
        )
    return said


def _check_unique_names(gw: Gateway, where: str) -> list[str]:
    """Two servers with one port name (on one port or on two)."""
    named: dict[str, int] = {}
    out = []
    for i, server in enumerate(gw.spec.servers):
        port = server.port
        if port.name in named:
            first = named[port.name]
            out.append(
                f"{where}: spec.servers[{i}].port.name: port names in servers must be unique: duplicate name "
                f"{port.name} (spec.servers[{first}] on port {gw.spec.servers[first].port.number} and "
                f"spec.servers[{i}] on port {port.number}), as Istio's validation says, so the API server's "
                f"webhook refuses the Gateway. Fix: a name of its own for each server, e.g. {port.name}-{port.number}"
            )
        named[port.name] = i
    return out
