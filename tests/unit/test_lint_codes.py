"""One failing fixture and one passing twin per lint code, each variant of a kind a case of its own.

Every fixture is the rendered seed (a clean link, certificates included) plus one change; its twin is the
same change done right. The failing fixture must report the code; the twin must not.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from meshbridge.lint import CODES, LintReport
from meshbridge.pki import CertBundle, issue_crl, issue_leaf
from tests.builders import ROOT, bridge_from, seed_dict
from tests.istio_builders import istio_mutual_egress
from tests.lint_builders import (
    NOW,
    Docs,
    doc,
    drop,
    foreign_leaf,
    lint_docs,
    odd_leaf,
    secret_data,
    seed_ca,
    seed_docs,
    set_secret_data,
)
from tests.unit.test_sidecar_bypass import mesh_half_without_gateways

Change = Callable[[Docs], None]
SpecChange = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Case:
    """A fixture: ``bad`` breaks the seed, ``good`` is the same edit done right (``None``: the seed itself).

    ``spec`` changes the bridge (the world) for both; ``world=False`` lints without a spec; ``meshes`` keeps
    only those meshes' manifests.
    """

    code: str
    id: str
    bad: Change
    good: Change | None = None
    spec: SpecChange | None = None
    good_spec: SpecChange | None = None
    world: bool = True
    good_world: bool = True
    meshes: tuple[str, ...] = ("eks", "gke")
    good_meshes: tuple[str, ...] = ("eks", "gke")


def run(change: Change | None, spec: SpecChange | None, world: bool, meshes: tuple[str, ...]) -> LintReport:
    data = seed_dict()
    if spec is not None:
        spec(data)
    bridge = bridge_from(data)
    docs = seed_docs(bridge)
    if change is not None:
        change(docs)
    return lint_docs({m: docs[m] for m in meshes}, bridge, world=world)


def nothing(_: Docs) -> None:
    return None


# -- edits -----------------------------------------------------------------------------------------------


def ns_of(d: dict[str, Any], ns: str) -> None:
    d["metadata"]["namespace"] = ns


def vs_in(docs: Docs) -> dict[str, Any]:
    return doc(docs, "eks", "VirtualService", "vs-lambda")


def authz_spec(docs: Docs) -> dict[str, Any]:
    return doc(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]


def authz_source(docs: Docs) -> dict[str, Any]:
    return authz_spec(docs)["rules"][0]["from"][0]["source"]


def authz_operation(docs: Docs) -> dict[str, Any]:
    return authz_spec(docs)["rules"][0]["to"][0]["operation"]


def tcp_server_beside_the_export(docs: Docs) -> None:
    """The exporter's gateway also passes plain TCP on 31400 (the chart's tcp port) to the export's backend."""
    gw = doc(docs, "eks", "Gateway", "eastwestgateway")
    gw["spec"]["servers"].append({"port": {"number": 31400, "name": "tcp-db", "protocol": "TCP"}, "hosts": ["*"]})
    route = {
        "match": [{"port": 31400}],
        "route": [{"destination": {"host": "lambda.external", "port": {"number": 443}}}],
    }
    meta = {"name": "db", "namespace": gw["metadata"]["namespace"]}
    spec = {"hosts": ["*"], "gateways": [gw["metadata"]["name"]], "tcp": [route]}
    docs["eks"].append(
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta, "spec": spec}
    )


def tcp_server_and_a_policy_on_sources(docs: Docs) -> None:
    tcp_server_beside_the_export(docs)
    authz_operation(docs).pop("hosts")


def passthrough_beside_the_export(source: dict[str, Any]) -> Change:
    """The exporter's gateway also passes TLS through for pg.db.example.internal on 443 (the pods' 8443, beside the
    export's MUTUAL server), and its policy admits ``source`` there by the port and the SNI."""

    def change(docs: Docs) -> None:
        gw = doc(docs, "eks", "Gateway", "eastwestgateway")
        port = {"number": 443, "name": "tls-pg", "protocol": "TLS"}
        gw["spec"]["servers"].append({"port": port, "hosts": [PG], "tls": {"mode": "PASSTHROUGH"}})
        route = {"match": [{"sniHosts": [PG]}], "route": [{"destination": {"host": "lambda.external"}}]}
        meta = {"name": "pg", "namespace": gw["metadata"]["namespace"]}
        spec = {"hosts": [PG], "gateways": [gw["metadata"]["name"]], "tls": [route]}
        docs["eks"].append(
            {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta, "spec": spec}
        )
        rule = {
            "from": [{"source": source}],
            "to": [{"operation": {"ports": ["8443"]}}],
            "when": [{"key": "connection.sni", "values": [PG]}],
        }
        authz_spec(docs)["rules"].append(rule)

    return change


PG = "pg.db.example.internal"


def vs_out(docs: Docs) -> dict[str, Any]:
    return doc(docs, "gke", "VirtualService", "direct-lambda-through-egress-gateway")


def se_out(docs: Docs) -> dict[str, Any]:
    return doc(docs, "gke", "ServiceEntry", "se-lambda-ext")


def se_backend(docs: Docs) -> dict[str, Any]:
    return doc(docs, "eks", "ServiceEntry", "se-lambda-backend")


def dr_out(docs: Docs) -> dict[str, Any]:
    return doc(docs, "gke", "DestinationRule", "dr-lambda-ext")


def dr_out_tls(docs: Docs) -> dict[str, Any]:
    tls: dict[str, Any] = dr_out(docs)["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
    return tls


def dr_backend(docs: Docs) -> dict[str, Any]:
    return doc(docs, "eks", "DestinationRule", "dr-lambda-backend")


def gw_in(docs: Docs) -> dict[str, Any]:
    return doc(docs, "eks", "Gateway", "eastwestgateway")


def passthrough_in(docs: Docs) -> None:
    """eks's Gateway passes lambda.external's TLS through (istio.io's ingress TLS passthrough task): its server in
    PASSTHROUGH, its VirtualService a tls route on that SNI."""
    server = gw_in(docs)["spec"]["servers"][0]
    server["tls"] = {"mode": "PASSTHROUGH"}
    spec = vs_in(docs)["spec"]
    spec["tls"] = [{"match": [{"port": 443, "sniHosts": ["lambda.external"]}], "route": spec.pop("http")[0]["route"]}]


def gw_in_tls(docs: Docs) -> dict[str, Any]:
    tls: dict[str, Any] = gw_in(docs)["spec"]["servers"][0]["tls"]
    return tls


def gw_out(docs: Docs) -> dict[str, Any]:
    return doc(docs, "gke", "Gateway", "istio-egressgateway")


def ef_in(docs: Docs) -> dict[str, Any]:
    return doc(docs, "eks", "EnvoyFilter", "istio-ingressgateway-edge-limits")


def ef_listener(index: int) -> Callable[[Docs], dict[str, Any]]:
    """``match.listener`` of the edge-limits EnvoyFilter's patch ``index`` (0: MERGE, 1: INSERT_BEFORE)."""

    def get(docs: Docs) -> dict[str, Any]:
        listener: dict[str, Any] = ef_in(docs)["spec"]["configPatches"][index]["match"]["listener"]
        return listener

    return get


def subset_rule(docs: Docs) -> dict[str, Any]:
    return doc(docs, "gke", "DestinationRule", "egressgateway-for-lambda")


def proxy_metadata(meta: dict[str, str]) -> SpecChange:
    def change(d: dict[str, Any]) -> None:
        d["spec"]["meshes"]["gke"]["istio"]["proxyMetadata"] = meta

    return change


def pilot_env(env: dict[str, str]) -> SpecChange:
    def change(d: dict[str, Any]) -> None:
        d["spec"]["meshes"]["eks"]["istio"]["pilotEnv"] = env

    return change


def istio_version(version: str) -> SpecChange:
    def change(d: dict[str, Any]) -> None:
        d["spec"]["meshes"]["gke"]["istio"]["version"] = version

    return change


def trust_domain(mesh: str, domain: str) -> SpecChange:
    def change(d: dict[str, Any]) -> None:
        d["spec"]["meshes"][mesh]["trustDomain"] = domain

    return change


def client_cert(cert_key: tuple[bytes, bytes]) -> Change:
    def change(docs: Docs) -> None:
        data = secret_data(docs, "gke")
        data["cert"], data["key"] = cert_key
        set_secret_data(docs, "gke", data)

    return change


def server_cert(cert_key: tuple[bytes, bytes]) -> Change:
    def change(docs: Docs) -> None:
        data = secret_data(docs, "eks")
        data["cert"], data["key"] = cert_key
        set_secret_data(docs, "eks", data)

    return change


SPIFFE = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"


def client_leaf(**kw: Any) -> Change:
    """The gke client Secret holds a leaf of the gke CA with the given profile (the exporter trusts that CA)."""

    def change(docs: Docs) -> None:
        client_cert(odd_leaf(seed_ca("gke"), **kw))(docs)

    return change


def good_client(**kw: Any) -> Change:
    return client_leaf(uris=[SPIFFE], ekus=["clientAuth"], **kw)


def rule(docs: Docs, mesh: str, name: str, ns: str, spec: dict[str, Any]) -> None:
    docs[mesh].append(
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }
    )


def set_(getter: Callable[[Docs], dict[str, Any]], key: str, value: Any) -> Change:
    def change(docs: Docs) -> None:
        getter(docs)[key] = value

    return change


def rename(getter: Callable[[Docs], dict[str, Any]], key: str, to: str) -> Change:
    def change(docs: Docs) -> None:
        found = getter(docs)
        found[to] = found.pop(key)

    return change


def pop(getter: Callable[[Docs], dict[str, Any]], key: str) -> Change:
    def change(docs: Docs) -> None:
        getter(docs).pop(key, None)

    return change


def both(*changes: Change) -> Change:
    def change(docs: Docs) -> None:
        for c in changes:
            c(docs)

    return change


def leaf_with_dates(not_before: dt.datetime, days: int) -> Change:
    def change(docs: Docs) -> None:
        leaf = issue_leaf(seed_ca("gke"), "client", common_name="c", uris=[SPIFFE], not_before=not_before, days=days)
        assert leaf.key_pem is not None
        client_cert((leaf.cert_pem, leaf.key_pem))(docs)

    return change


def crl_beside(mesh: str, issuer: str, revoked_cert_of: str | None) -> Change:
    """``mesh``'s gateway Secret gets a ``crl`` beside its ``cacert``, signed by ``issuer``'s CA, revoking the
    serial of ``revoked_cert_of``'s served leaf (``None``: a serial no certificate has)."""

    def change(docs: Docs) -> None:
        serial = CertBundle(secret_data(docs, revoked_cert_of)["cert"]).serial if revoked_cert_of else 4242
        data = secret_data(docs, mesh)
        data["crl"] = issue_crl(seed_ca(issuer), [serial], now=NOW - dt.timedelta(hours=1), days=30)
        set_secret_data(docs, mesh, data)

    return change


def _crl_text(text: bytes) -> Change:
    def change(docs: Docs) -> None:
        data = secret_data(docs, "eks")
        data["crl"] = text
        set_secret_data(docs, "eks", data)

    return change


# -- the cases --------------------------------------------------------------------------------------------


def _vs_moved(export_to: list[str]) -> Change:
    def change(docs: Docs) -> None:
        vs = vs_in(docs)
        ns_of(vs, "lambda-ns")
        vs["spec"]["gateways"] = ["istio-ingress/eastwestgateway"]
        vs["spec"]["exportTo"] = export_to

    return change


def _se_backend_moved(export_to: list[str]) -> Change:
    def change(docs: Docs) -> None:
        se = se_backend(docs)
        ns_of(se, "lambda-ns")
        se["spec"]["exportTo"] = export_to

    return change


def _dr_backend_moved(export_to: list[str]) -> Change:
    def change(docs: Docs) -> None:
        dr = dr_backend(docs)
        ns_of(dr, "lambda-ns")
        dr["spec"]["exportTo"] = export_to

    return change


def _wildcard_backend(docs: Docs) -> None:
    se = se_backend(docs)
    se["spec"]["hosts"] = ["*.internal.example.com"]
    se["spec"]["resolution"] = "NONE"


def _concrete_host_too(docs: Docs) -> None:
    """Beside the wildcard, a ServiceEntry for the host the route names (its cluster is built after it)."""
    se = copy.deepcopy(se_backend(docs))
    se["metadata"]["name"] = "se-alb"
    se["spec"].update(hosts=["alb.internal.example.com"], resolution="DNS")
    docs["eks"].append(se)


def _delegate(docs: Docs) -> None:
    vs = vs_in(docs)
    child = {
        "apiVersion": vs["apiVersion"],
        "kind": "VirtualService",
        "metadata": {"name": "vs-lambda-routes", "namespace": "istio-ingress"},
        "spec": {"http": vs["spec"]["http"]},
    }
    vs["spec"]["http"] = [{"delegate": {"name": "vs-lambda-routes", "namespace": "istio-ingress"}}]
    docs["eks"].append(child)


def _extra_http(match: dict[str, Any]) -> Change:
    def change(docs: Docs) -> None:
        vs_out(docs)["spec"]["http"].append(
            {"match": [match], "route": [{"destination": {"host": "lambda.external", "port": {"number": 80}}}]}
        )

    return change


def _mesh_leg_removed(docs: Docs) -> None:
    vs = vs_out(docs)
    vs["spec"]["http"] = vs["spec"]["http"][1:]
    vs["spec"]["gateways"] = ["istio-egressgateway"]


def _secret_moved(ns: str) -> Change:
    def change(docs: Docs) -> None:
        ns_of(doc(docs, "eks", "Secret", "mtls-credential"), ns)

    return change


def _cert_manager(
    mesh: str, ns: str, *, annotate: bool = False, where: str | None = None, peer_ca: bool = False
) -> Change:
    """cert-manager issues ``mesh``'s mtls-credential: its Secret carries cert-manager's annotation (``annotate``)
    or a Certificate writes it (in ``where``, default ``ns``); ``peer_ca``: the peer's CA is also in
    mtls-credential-cacert, as meshbridge renders it in cert-manager mode."""

    def change(docs: Docs) -> None:
        secret = doc(docs, mesh, "Secret", "mtls-credential")
        if annotate:
            secret["metadata"]["annotations"] = {"cert-manager.io/issuer-name": "corp-ca"}
        else:
            meta = {"name": "c2-mtls", "namespace": where or ns}
            spec = {"secretName": "mtls-credential", "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}
            docs[mesh].append(
                {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta, "spec": spec}
            )
        if where is not None:
            drop(docs, mesh, "Secret", "mtls-credential")
        if peer_ca:
            ca = base64.b64encode(secret_data(docs, mesh)["cacert"]).decode()
            meta = {"name": "mtls-credential-cacert", "namespace": ns}
            docs[mesh].append({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {"ca.crt": ca}})

    return change


def _secret_role(mesh: str, names: list[str], *, cluster_role: bool = False) -> Change:
    """The gateway's ServiceAccount gets get/list/watch on Secrets through a Role (or a ClusterRole bound in its
    namespace), limited to ``names`` (none: any Secret, Istio's gateway chart's rule)."""

    def change(docs: Docs) -> None:
        m = bridge_from(seed_dict()).spec.meshes[mesh]
        gw = m.ingress_gateway if mesh == "eks" else m.egress_gateway
        assert gw is not None
        rule: dict[str, Any] = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}
        if names:
            rule["resourceNames"] = names
        kind = "ClusterRole" if cluster_role else "Role"
        meta = {"name": "gateway-secrets"} | ({} if cluster_role else {"namespace": gw.namespace})
        rbac = "rbac.authorization.k8s.io/v1"
        docs[mesh].append({"apiVersion": rbac, "kind": kind, "metadata": meta, "rules": [rule]})
        binding = {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": "gateway-secrets", "namespace": gw.namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "gateway-secrets"},
            "subjects": [{"kind": "ServiceAccount", "name": gw.sa, "namespace": gw.namespace}],
        }
        docs[mesh].append(binding)

    return change


def at_sidecar(secret_ns: str = "sleep", names: list[str] | None = None) -> Change:
    """istio.io's egress TLS origination "at sidecar": the importer's rule moves to the app's namespace (sleep) and
    selects the app, its Secret goes to ``secret_ns``; ``names``: a Role in sleep bound to the app's ServiceAccount
    lists Secrets, limited to those names (empty: any Secret, the task's client-credential-role)."""

    def change(docs: Docs) -> None:
        _mesh_leg_removed(docs)
        dr = dr_out(docs)
        dr["metadata"]["namespace"] = "sleep"
        dr["spec"].pop("exportTo", None)
        dr["spec"]["workloadSelector"] = {"matchLabels": {"app": "sleep"}}
        for d in docs["gke"]:
            if d["kind"] == "Secret":
                d["metadata"]["namespace"] = secret_ns
        if names is None:
            return
        rule: dict[str, Any] = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}
        if names:
            rule["resourceNames"] = names
        rbac = "rbac.authorization.k8s.io/v1"
        meta = {"name": "client-credential-role", "namespace": "sleep"}
        docs["gke"].append({"apiVersion": rbac, "kind": "Role", "metadata": meta, "rules": [rule]})
        docs["gke"].append(
            {
                "apiVersion": rbac,
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": meta["name"]},
                "subjects": [{"kind": "ServiceAccount", "name": "sleep", "namespace": "sleep"}],
            }
        )

    return change


def _keys(mapping: dict[str, str], mesh: str = "gke") -> Change:
    """Rename the Secret's keys (old → new)."""

    def change(docs: Docs) -> None:
        data = secret_data(docs, mesh)
        set_secret_data(docs, mesh, {mapping.get(k, k): v for k, v in data.items()})

    return change


def _ca_apart(docs: Docs) -> None:
    data = secret_data(docs, "gke")
    set_secret_data(docs, "gke", {"key": data["key"], "cert": data["cert"]})
    docs["gke"].append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mtls-credential-cacert", "namespace": "istio-egress"},
            "data": {"cacert": __import__("base64").b64encode(data["cacert"]).decode()},
        }
    )


def _no_ca(docs: Docs) -> None:
    data = secret_data(docs, "gke")
    set_secret_data(docs, "gke", {"key": data["key"], "cert": data["cert"]})


def _authority(value: str) -> Change:
    def change(docs: Docs) -> None:
        vs_out(docs)["spec"]["http"][1]["rewrite"] = {"authority": value}

    return change


def _add_host(with_vs: bool) -> Change:
    def change(docs: Docs) -> None:
        gw_out(docs)["spec"]["servers"][0]["hosts"].append("other.external")
        if with_vs:
            vs_out(docs)["spec"]["hosts"].append("other.external")

    return change


def _add(mesh: str, api: str, kind: str, name: str, ns: str, spec: dict[str, Any]) -> Change:
    """Add a document (a kind the seed does not have) to ``mesh``."""

    def change(docs: Docs) -> None:
        docs[mesh].append({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec})

    return change


def ef_patch_value(index: int) -> Callable[[Docs], dict[str, Any]]:
    """``patch.value`` of the edge-limits EnvoyFilter's patch ``index`` (1: the connection_limit filter)."""

    def get(docs: Docs) -> dict[str, Any]:
        value: dict[str, Any] = ef_in(docs)["spec"]["configPatches"][index]["patch"]["value"]
        return value

    return get


def _untyped_filter_config(docs: Docs) -> None:
    """The connection_limit filter written as before Istio 1.7: ``config`` (a Struct), no ``@type``."""
    value = ef_patch_value(1)(docs)
    typed = value.pop("typed_config")
    typed.pop("@type")
    value["config"] = typed


MESH_POLICY = _add("gke", "authentication.istio.io/v1alpha1", "MeshPolicy", "default", "", {"peers": [{"mtls": {}}]})
PEER_AUTHENTICATION = _add(
    "gke", "security.istio.io/v1", "PeerAuthentication", "default", "istio-system", {"mtls": {"mode": "STRICT"}}
)
CITADEL_CERT = "/etc/certs/cert-chain.pem"
MOUNTED_CERT = "/etc/istio/ingressgateway-certs/tls.crt"  # a user's own mount: still works

REMOVED_CASES = [
    # each kind of thing Istio removed (meshbridge.istio.removed.REMOVALS), the twin written as Istio wants it now
    Case("MB003", "mesh-policy", MESH_POLICY, PEER_AUTHENTICATION),
    Case(
        "MB003",
        "mesh-policy-on-a-mesh-before-1.6",  # the twin: the same MeshPolicy, in a mesh that still serves it
        MESH_POLICY,
        MESH_POLICY,
        good_spec=istio_version("1.5.10"),
    ),
    Case(
        "MB003",
        "authentication-policy",
        _add("gke", "authentication.istio.io/v1alpha1", "Policy", "jwt", "sleep", {"origins": [{"jwt": {}}]}),
        _add("gke", "security.istio.io/v1", "RequestAuthentication", "jwt", "sleep", {"jwtRules": [{"issuer": "x"}]}),
    ),
    Case(
        "MB003",
        "rbac-service-role",
        _add(
            "eks", "rbac.istio.io/v1alpha1", "ServiceRole", "viewer", "istio-ingress", {"rules": [{"methods": ["GET"]}]}
        ),
        _add("eks", "security.istio.io/v1", "AuthorizationPolicy", "viewer", "istio-ingress", {"action": "ALLOW"}),
    ),
    Case(
        "MB003",
        "rbac-cluster-config",
        _add("eks", "rbac.istio.io/v1alpha1", "ClusterRbacConfig", "default", "", {"mode": "ON"}),
        nothing,
    ),
    Case(
        "MB003",
        "mixer-handler",
        _add("eks", "config.istio.io/v1alpha2", "handler", "prom", "istio-system", {"compiledAdapter": "prometheus"}),
        _add("eks", "telemetry.istio.io/v1", "Telemetry", "mesh-default", "istio-system", {"metrics": []}),
    ),
    Case(
        "MB003",
        "mixer-rule-policy-group",
        _add("eks", "policy.istio.io/v1beta1", "rule", "deny", "istio-system", {"match": "true"}),
        nothing,
    ),
    Case(
        "MB003",
        "route-rule",
        _add("gke", "config.istio.io/v1alpha2", "RouteRule", "lambda", "sleep", {"destination": {"name": "x"}}),
        nothing,
    ),
    Case("MB003", "envoy-filter-config-struct", _untyped_filter_config, nothing),
    Case(
        "MB003",
        "envoy-filter-matches-the-mixer-filter",
        set_(lambda d: ef_listener(0)(d)["filterChain"]["filter"], "subFilter", {"name": "mixer"}),
        set_(lambda d: ef_listener(0)(d)["filterChain"]["filter"], "subFilter", {"name": "envoy.filters.http.router"}),
    ),
    Case(
        "MB003",
        "envoy-filter-inserts-the-mixer-filter",
        set_(ef_patch_value(1), "name", "envoy.filters.http.mixer"),
        set_(ef_patch_value(1), "name", "envoy.filters.network.connection_limit"),
    ),
    Case(
        "MB003",
        "gateway-citadel-cert-file",
        set_(gw_in_tls, "serverCertificate", CITADEL_CERT),
        set_(gw_in_tls, "serverCertificate", MOUNTED_CERT),
    ),
    Case(
        "MB003",
        "destination-rule-citadel-cert-file",
        set_(dr_out_tls, "caCertificates", "/etc/certs/root-cert.pem"),
        set_(dr_out_tls, "caCertificates", "/etc/ssl/certs/ca-certificates.crt"),
    ),
]


def second_backend_entry(resolution: str) -> Change:
    """A second ServiceEntry for the exporter's backend host, adding port 8443 with ``resolution``."""

    def change(docs: Docs) -> None:
        se = copy.deepcopy(se_backend(docs))
        se["metadata"]["name"] = "se-orders-backend"
        se["spec"]["ports"] = [{"name": "https-alt", "number": 8443, "protocol": "HTTPS"}]
        se["spec"]["resolution"] = resolution
        if resolution == "STATIC":
            se["spec"]["endpoints"] = [{"address": "10.0.1.20"}]
        docs["eks"].append(se)

    return change


def pool_rule_for_backend(first: bool) -> Change:
    """A second DestinationRule for the exporter's backend host, a connection pool only, before (``first``) or
    after the rule that sets its TLS."""

    def change(docs: Docs) -> None:
        tls_rule = doc(docs, "eks", "DestinationRule", "dr-lambda-backend")
        pool = copy.deepcopy(tls_rule)
        pool["metadata"]["name"] = "dr-orders-pool"
        pool["spec"]["trafficPolicy"] = {"connectionPool": {"tcp": {"maxConnections": 10}}}
        at = docs["eks"].index(tls_rule)
        docs["eks"].insert(at if first else at + 1, pool)

    return change


def egress_sni(value: str | None) -> Change:
    """Istio's egress TLS-origination task on the seed's importer (ISTIO_MUTUAL from the sidecar to an ISTIO_MUTUAL
    egress Gateway server on 443), the subset's ``sni`` set to ``value`` (``None``: removed)."""

    def change(docs: Docs) -> None:
        istio_mutual_egress(docs)
        subset = doc(docs, "gke", "DestinationRule", "egressgateway-for-lambda")["spec"]["subsets"][0]
        tls = subset["trafficPolicy"]["portLevelSettings"][0]["tls"]
        tls.pop("sni")
        if value is not None:
            tls["sni"] = value

    return change


CASES = [
    # MB0xx
    Case("MB001", "no-spec", nothing, world=False),
    Case("MB002", "cors-policy", set_(lambda d: vs_in(d)["spec"]["http"][0], "corsPolicy", {"allowOrigins": []})),
    Case(
        "MB002",
        "sidecar-is-not-removed",  # Istio still serves Sidecar: not modelled (MB002), never MB003
        _add("gke", "networking.istio.io/v1alpha3", "Sidecar", "default", "sleep", {"egress": [{"hosts": ["./*"]}]}),
    ),
    *REMOVED_CASES,
    Case("MB004", "credentialname", rename(gw_in_tls, "credentialName", "credentialname")),
    Case(
        "MB004",
        "rout-for-route",  # the twin: Istio's own mirrors, beside the modelled mirror, is not modelled (MB002)
        rename(lambda d: vs_in(d)["spec"]["http"][0], "route", "rout"),
        set_(lambda d: vs_in(d)["spec"]["http"][0], "mirrors", [{"destination": {"host": "shadow.example.com"}}]),
    ),
    Case("MB005", "https-redirect-on-https", set_(gw_in_tls, "httpsRedirect", True)),
    Case(
        "MB005",
        "tls13-cipher-suite",  # a TLS 1.3 suite's name is no BoringSSL cipher suite name: ignored
        set_(gw_in_tls, "cipherSuites", ["ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256"]),
        set_(gw_in_tls, "cipherSuites", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]),
    ),
    # MB101 (L01): every way an app's lookup of a made-up host fails
    Case(
        "MB101",
        "no-dns-capture",
        nothing,
        spec=proxy_metadata({}),
        good_spec=proxy_metadata({"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"}),
    ),
    Case(
        "MB101",
        "capture-without-auto-allocate",
        nothing,
        set_(lambda d: se_out(d)["spec"], "addresses", ["240.240.10.10"]),
        spec=proxy_metadata({"ISTIO_META_DNS_CAPTURE": "true"}),
        good_spec=proxy_metadata({"ISTIO_META_DNS_CAPTURE": "true"}),
    ),
    Case(
        "MB101",
        "opted-out-of-auto-allocation",
        set_(lambda d: se_out(d)["metadata"], "labels", {"networking.istio.io/enable-autoallocate-ip": "false"}),
        set_(lambda d: se_out(d)["metadata"], "labels", {"networking.istio.io/enable-autoallocate-ip": "true"}),
    ),
    Case(
        "MB101",
        "resolution-none",
        set_(lambda d: se_out(d)["spec"], "resolution", "NONE"),
        both(
            set_(lambda d: se_out(d)["spec"], "resolution", "NONE"),
            set_(lambda d: se_out(d)["spec"], "addresses", ["240.240.10.10"]),
        ),
    ),
    Case(
        "MB101",
        "wildcard-host-never-auto-allocated",
        set_(lambda d: se_out(d)["spec"], "hosts", ["*.external"]),
        both(
            set_(lambda d: se_out(d)["spec"], "hosts", ["*.external"]),
            set_(lambda d: se_out(d)["spec"], "addresses", ["240.240.10.10"]),
        ),
    ),
    Case(
        "MB101",
        "not-exported-to-apps",
        set_(lambda d: se_out(d)["spec"], "exportTo", ["."]),
        set_(lambda d: se_out(d)["spec"], "exportTo", ["*"]),
    ),
    # MB102 (L08): every way to write a gateway reference
    Case(
        "MB102",
        "short-name-in-wrong-namespace",
        both(lambda d: ns_of(vs_out(d), "sleep"), set_(lambda d: vs_out(d)["spec"], "exportTo", ["*"])),
        both(
            lambda d: ns_of(vs_out(d), "sleep"),
            lambda d: vs_out(d)["spec"].update(gateways=["mesh", "istio-egress/istio-egressgateway"]),
            lambda d: [
                m.update(gateways=["istio-egress/istio-egressgateway"]) for m in vs_out(d)["spec"]["http"][1]["match"]
            ],
        ),
    ),
    Case(
        "MB102",
        "namespaced-name",
        set_(lambda d: vs_out(d)["spec"], "gateways", ["mesh", "default/istio-egressgateway"]),
        set_(lambda d: vs_out(d)["spec"], "gateways", ["mesh", "istio-egress/istio-egressgateway"]),
    ),
    Case(
        "MB102",
        "fqdn-form",
        set_(lambda d: vs_out(d)["spec"], "gateways", ["mesh", "istio-egressgateway.default.svc.cluster.local"]),
        set_(lambda d: vs_out(d)["spec"], "gateways", ["mesh", "istio-egressgateway.istio-egress.svc.cluster.local"]),
    ),
    Case(
        "MB102",
        "match-gateways",
        set_(lambda d: vs_out(d)["spec"]["http"][1]["match"][0], "gateways", ["istio-egress-gateway"]),
        set_(lambda d: vs_out(d)["spec"]["http"][1]["match"][0], "gateways", ["./istio-egressgateway"]),
    ),
    # MB103
    Case(
        "MB103",
        "revision-label",
        set_(lambda d: gw_out(d)["spec"]["selector"], "istio.io/rev", "1-18"),
        set_(lambda d: gw_out(d)["spec"]["selector"], "istio.io/rev", "1-17"),
    ),
    # MB115, MB116 (the exporter's edge-limits EnvoyFilter)
    Case(
        "MB115",
        "selector-typo",
        set_(lambda d: ef_in(d)["spec"]["workloadSelector"]["labels"], "istio", "ingress-gateway"),
        set_(lambda d: ef_in(d)["spec"]["workloadSelector"]["labels"], "istio", "ingressgateway"),
    ),
    Case(
        "MB115",
        "namespace-without-the-gateway",
        lambda d: ns_of(ef_in(d), "default"),
        lambda d: ns_of(ef_in(d), "istio-system"),  # the root namespace reaches every namespace's pods
    ),
    Case(
        "MB116",
        "service-port-instead-of-target-port",
        set_(ef_listener(1), "portNumber", 443),
        set_(ef_listener(1), "portNumber", 8443),
    ),
    Case(
        "MB116",
        "filter-name",
        set_(lambda d: ef_listener(1)(d)["filterChain"]["filter"], "name", "envoy.http_connection_manager"),
        set_(
            lambda d: ef_listener(0)(d)["filterChain"]["filter"],
            "name",
            "envoy.filters.network.http_connection_manager",
        ),
    ),
    Case(
        "MB116",
        "sidecar-context-on-a-gateway",
        set_(lambda d: ef_in(d)["spec"]["configPatches"][1]["match"], "context", "SIDECAR_OUTBOUND"),
        set_(lambda d: ef_in(d)["spec"]["configPatches"][1]["match"], "context", "ANY"),
    ),
    Case(
        "MB116",
        "sni-of-no-export",
        set_(lambda d: ef_listener(1)(d)["filterChain"], "sni", "orders.external"),
        set_(lambda d: ef_listener(1)(d)["filterChain"], "sni", "lambda.external"),
    ),
    # MB104
    Case(
        "MB104",
        "hosts-do-not-meet",
        set_(lambda d: vs_in(d)["spec"], "hosts", ["other.external"]),
        set_(lambda d: vs_in(d)["spec"], "hosts", ["lambda.external", "other.external"]),
    ),
    Case(
        "MB104",
        "target-port-in-match",
        set_(lambda d: vs_in(d)["spec"]["http"][0]["match"][0], "port", 8443),
        set_(lambda d: vs_in(d)["spec"]["http"][0]["match"][0], "port", 443),
    ),
    Case(
        "MB104",
        "source-labels-of-another-revision",
        set_(lambda d: vs_in(d)["spec"]["http"][0]["match"][0], "sourceLabels", {"istio.io/rev": "1-16"}),
        set_(lambda d: vs_in(d)["spec"]["http"][0]["match"][0], "sourceLabels", {"istio.io/rev": "1-17"}),
    ),
    # MB105
    Case(
        "MB105",
        "target-port",
        _extra_http({"gateways": ["istio-egressgateway"], "port": 8080, "uri": {"prefix": "/v2"}}),
        _extra_http({"gateways": ["istio-egressgateway"], "port": 80, "uri": {"prefix": "/v2"}}),
    ),
    Case(
        "MB105",
        "match-gateway-not-bound",
        _extra_http({"gateways": ["istio-egress/other"], "uri": {"prefix": "/v2"}}),
        _extra_http({"gateways": ["istio-egressgateway"], "uri": {"prefix": "/v2"}}),
    ),
    # MB106 (L12): visibility is for the namespace of the proxy that acts
    Case("MB106", "virtual-service-private", _vs_moved(["."]), _vs_moved(["*"])),
    Case("MB106", "service-entry-private", _se_backend_moved(["."]), _se_backend_moved(["istio-ingress"])),
    Case("MB106", "destination-rule-private", _dr_backend_moved(["."]), _dr_backend_moved(["*"])),
    Case(
        "MB106",
        "destination-rule-shadowed",
        both(
            _se_backend_moved(["*"]),
            _dr_backend_moved(["*"]),
            lambda d: rule(d, "eks", "alb-defaults", "istio-ingress", {"host": "alb.internal.example.com"}),
        ),
        both(
            _se_backend_moved(["*"]),
            _dr_backend_moved(["*"]),
            lambda d: rule(d, "eks", "alb-defaults", "istio-ingress", {"host": "other.internal.example.com"}),
        ),
    ),
    # MB107, MB108
    Case(
        "MB107",
        "host-typo",
        set_(lambda d: vs_in(d)["spec"]["http"][0]["route"][0]["destination"], "host", "alb.internal.exmaple.com"),
        set_(lambda d: vs_in(d)["spec"]["http"][0]["route"][0]["destination"], "host", "alb.internal.example.com"),
    ),
    Case(
        "MB108",
        "port-not-in-service",
        set_(lambda d: vs_in(d)["spec"]["http"][0]["route"][0]["destination"], "port", {"number": 8443}),
        set_(lambda d: vs_in(d)["spec"]["http"][0]["route"][0]["destination"], "port", {"number": 443}),
    ),
    Case(
        "MB107",
        "host-under-wildcard-service-entry",
        _wildcard_backend,
        both(_wildcard_backend, _concrete_host_too),
    ),
    Case(
        "MB107",
        "host-spelled-otherwise",
        set_(lambda d: vs_in(d)["spec"]["http"][0]["route"][0]["destination"], "host", "ALB.internal.example.com"),
        set_(lambda d: vs_in(d)["spec"]["http"][0]["route"][0]["destination"], "host", "alb.internal.example.com"),
    ),
    # MB109 (L10)
    Case(
        "MB109",
        "delegate-not-bound",
        _delegate,
        _delegate,
        good_spec=pilot_env({"PILOT_FILTER_GATEWAY_CLUSTER_CONFIG": "false"}),
    ),
    # MB110 (L09)
    Case(
        "MB110",
        "subset-typo",
        set_(lambda d: vs_out(d)["spec"]["http"][0]["route"][0]["destination"], "subset", "lambda-v2"),
        both(
            set_(lambda d: vs_out(d)["spec"]["http"][0]["route"][0]["destination"], "subset", "lambda-v2"),
            set_(lambda d: subset_rule(d)["spec"], "subsets", [{"name": "lambda-v2"}]),
        ),
    ),
    Case(
        "MB110",
        "subset-rule-not-exported",
        set_(lambda d: subset_rule(d)["spec"], "exportTo", ["."]),
        set_(lambda d: subset_rule(d)["spec"], "exportTo", ["*"]),
    ),
    # MB111
    Case(
        "MB111",
        "subset-labels-match-no-pod",
        set_(lambda d: subset_rule(d)["spec"], "subsets", [{"name": "lambda", "labels": {"version": "v2"}}]),
        set_(
            lambda d: subset_rule(d)["spec"], "subsets", [{"name": "lambda", "labels": {"app": "istio-egressgateway"}}]
        ),
    ),
    # MB112 (L07)
    Case(
        "MB112",
        "server-on-target-port",
        set_(lambda d: gw_in(d)["spec"]["servers"][0]["port"], "number", 8443),
        set_(lambda d: gw_in(d)["spec"]["servers"][0]["port"], "number", 443),
    ),
    Case(
        "MB112",
        "privileged-port",
        set_(lambda d: gw_out(d)["spec"]["servers"][0]["port"], "number", 81),
        set_(lambda d: gw_out(d)["spec"]["servers"][0]["port"], "number", 80),
    ),
    # MB113 (L11)
    Case(
        "MB113",
        "https-port-declared-http",
        set_(lambda d: se_backend(d)["spec"], "ports", [{"name": "http", "number": 443, "protocol": "HTTP"}]),
        set_(lambda d: se_backend(d)["spec"], "ports", [{"name": "https", "number": 443, "protocol": "HTTPS"}]),
    ),
    # MB114
    Case("MB114", "host-without-route", _add_host(False), _add_host(True)),
    # MB117: ServiceEntry resolution that never resolves its host names
    Case("MB117", "exporter-alb-resolution-unset", pop(lambda d: se_backend(d)["spec"], "resolution"), nothing),
    Case("MB117", "importer-host-endpoint-resolution-unset", pop(lambda d: se_out(d)["spec"], "resolution"), nothing),
    Case(
        "MB117",
        "static-with-host-name",
        set_(lambda d: se_out(d)["spec"], "resolution", "STATIC"),
        both(
            set_(lambda d: se_out(d)["spec"], "resolution", "STATIC"),
            set_(lambda d: se_out(d)["spec"]["endpoints"][0], "address", "203.0.113.10"),
        ),
    ),
    # MB118: a second ServiceEntry for one host that istiod cannot merge (its twin: the same resolution, merged)
    Case("MB118", "second-entry-other-resolution", second_backend_entry("STATIC"), second_backend_entry("DNS")),
    # MB119: the TLS rule after a pool rule for the same host (its twin: the TLS rule first, its policy kept)
    Case("MB119", "tls-rule-after-a-pool-rule", pool_rule_for_backend(True), pool_rule_for_backend(False)),
    Case(
        "MB120", "policy-on-hosts-over-a-tcp-server", tcp_server_beside_the_export, tcp_server_and_a_policy_on_sources
    ),
    # MB121: a rule on the Service's port 443 (its twin: on the pods' 8443, which the RBAC filter sees)
    Case(
        "MB121",
        "policy-on-the-service-port",
        set_(authz_operation, "ports", ["443"]),
        set_(authz_operation, "ports", ["8443"]),
    ),
    # MB122: the importer's VirtualService binds the egress Gateway only (its twin: with mesh, or a sidecars' half)
    Case(
        "MB122",
        "one-virtual-service-without-mesh",
        set_(lambda d: vs_out(d)["spec"], "gateways", ["istio-egress/istio-egressgateway"]),
        set_(lambda d: vs_out(d)["spec"], "gateways", ["mesh", "istio-egress/istio-egressgateway"]),
    ),
    Case("MB122", "two-virtual-services-mesh-half-missing", _mesh_leg_removed, mesh_half_without_gateways),
    # MB123: principals on a rule whose port and SNI leave only a passthrough chain (its twin: the address instead)
    Case(
        "MB123",
        "principals-on-a-passthrough-server",
        passthrough_beside_the_export(
            {"principals": ["gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"]}
        ),
        passthrough_beside_the_export({"ipBlocks": ["198.51.100.4/32"]}),
    ),
    # MB201 (L02)
    Case(
        "MB201",
        "sidecar-consumes-credential",
        both(pop(lambda d: dr_out(d)["spec"], "exportTo"), _mesh_leg_removed),
        pop(lambda d: dr_out(d)["spec"], "exportTo"),
    ),
    Case(
        "MB201",
        "gateway-ignores-workload-selector-rule",
        set_(lambda d: dr_out(d)["spec"], "workloadSelector", {"matchLabels": {"app": "sleep"}}),
        nothing,
    ),
    Case(
        "MB201",
        "workload-selector-picks-the-gateway",
        set_(lambda d: dr_out(d)["spec"], "workloadSelector", {"matchLabels": {"istio": "ingressgateway"}}),
        set_(lambda d: dr_out(d)["spec"], "workloadSelector", {"matchLabels": {"istio": "egressgateway"}}),
    ),
    # MB202
    Case("MB202", "rule-visible-to-sidecars", pop(lambda d: dr_out(d)["spec"], "exportTo"), nothing),
    # MB203 (L03)
    Case(
        "MB203",
        "destination-rule",
        set_(dr_out_tls, "credentialName", "mtls-cacert"),
        set_(dr_out_tls, "credentialName", "mtls-credential"),
    ),
    Case(
        "MB203",
        "gateway",
        set_(gw_in_tls, "credentialName", "mtls-credential-cacert"),
        set_(gw_in_tls, "credentialName", "mtls-credential"),
    ),
    # MB204
    Case(
        "MB204",
        "namespaced-credential",
        set_(gw_in_tls, "credentialName", "istio-ingress/mtls-credential"),
        set_(gw_in_tls, "credentialName", "kubernetes://mtls-credential"),
    ),
    Case("MB204", "mutual-without-credential", pop(dr_out_tls, "credentialName"), nothing),
    # MB205, MB206 (L04)
    Case(
        "MB205",
        "tls-key-with-generic-cert",
        _keys({"key": "tls.key", "cacert": "ca.crt"}),
        _keys({"key": "tls.key", "cert": "tls.crt", "cacert": "ca.crt"}),
    ),
    Case("MB205", "no-ca-for-mutual", _no_ca, _ca_apart),
    Case("MB206", "generic-with-tls-ca", _keys({"cacert": "ca.crt"}), nothing),
    # MB207 (L05), MB208
    Case("MB207", "secret-in-gateway-resource-namespace", _secret_moved("app-ns"), _secret_moved("istio-ingress")),
    Case("MB208", "secret-not-in-input", lambda d: drop(d, "eks", "Secret", "mtls-credential"), nothing),
    # MB209
    Case("MB209", "no-tls-to-https-backend", lambda d: drop(d, "eks", "DestinationRule", "dr-lambda-backend"), nothing),
    Case(
        "MB207",
        "certificate-in-gateway-resource-namespace",
        _cert_manager("eks", "istio-ingress", where="app-ns"),
        _cert_manager("eks", "istio-ingress", where="istio-ingress"),
    ),
    # MB211
    Case(
        "MB211",
        "cert-manager-secret-own-ca-at-exporter",
        _cert_manager("eks", "istio-ingress", annotate=True),
        _cert_manager("eks", "istio-ingress", annotate=True, peer_ca=True),
    ),
    Case(
        "MB211",
        "certificate-own-ca-at-importer",
        _cert_manager("gke", "istio-egress"),
        _cert_manager("gke", "istio-egress", peer_ca=True),
    ),
    # MB212
    Case("MB212", "role-resource-names", _secret_role("eks", ["mtls-credential"]), _secret_role("eks", [])),
    Case(
        "MB212",
        "cluster-role-resource-names-at-egress",
        _secret_role("gke", ["c2-mtls", "mtls-credential"], cluster_role=True),
        _secret_role("gke", [], cluster_role=True),
    ),
    Case("MB212", "sidecar-role-resource-names", at_sidecar(names=["mtls-credential"]), at_sidecar(names=[])),
    # MB213
    Case("MB213", "sidecar-credential-without-role", at_sidecar(), at_sidecar(names=[])),
    # MB214
    Case("MB214", "sidecar-to-egress-istio-mutual-without-sni", egress_sni(None), egress_sni("lambda.external")),
    # MB210
    Case("MB210", "gateway-mounted-cert-files", set_(gw_in_tls, "serverCertificate", MOUNTED_CERT), nothing),
    Case("MB210", "rule-mounted-ca-file", set_(dr_out_tls, "caCertificates", "/etc/ssl/alb/ca.pem"), nothing),
    # MB3xx
    Case("MB301", "importer-service-entry-missing", lambda d: drop(d, "gke", "ServiceEntry", "se-lambda-ext"), nothing),
    # without a spec: with one, a mesh that exports to a given mesh is the spec's rendering (a stand-in)
    Case("MB302", "exporter-not-in-input", nothing, world=False, good_world=False, meshes=("gke",)),
    Case(
        "MB303",
        "load-balancer-name-as-sni",
        set_(dr_out_tls, "sni", "ingress.eks.example.com"),
        set_(dr_out_tls, "sni", "lambda.external"),
    ),
    Case(
        "MB303",
        "no-sni-before-auto-sni",
        pop(dr_out_tls, "sni"),
        pop(dr_out_tls, "sni"),
        spec=istio_version("1.17.2"),
        good_spec=istio_version("1.22.3"),
    ),
    Case(
        "MB304",
        "port-not-on-exporter-service",
        set_(lambda d: se_out(d)["spec"]["endpoints"][0], "ports", {"http": 8443}),
        set_(lambda d: se_out(d)["spec"]["endpoints"][0], "ports", {"http": 443}),
    ),
    Case(
        "MB304",
        "port-keyed-by-wrong-name",
        set_(lambda d: se_out(d)["spec"]["endpoints"][0], "ports", {"https": 443}),
        nothing,
    ),
    Case(
        "MB305",
        "wrong-address",
        set_(lambda d: se_out(d)["spec"]["endpoints"][0], "address", "ingress.eks.example.org"),
        set_(lambda d: se_out(d)["spec"]["endpoints"][0], "address", "ingress.eks.example.com"),
    ),
    Case("MB305", "no-endpoints", pop(lambda d: se_out(d)["spec"], "endpoints"), nothing),
    Case("MB306", "simple-to-mutual", set_(dr_out_tls, "mode", "SIMPLE"), set_(dr_out_tls, "mode", "MUTUAL")),
    Case("MB306", "plain-text", lambda d: drop(d, "gke", "DestinationRule", "dr-lambda-ext"), nothing),
    Case("MB307", "host-rewritten", _authority("other.external"), _authority("lambda.external")),
    Case("MB308", "client-from-foreign-ca", client_cert(foreign_leaf("client", uris=[SPIFFE])), good_client()),
    Case("MB309", "server-from-foreign-ca", server_cert(foreign_leaf("server", dns=["lambda.external"])), nothing),
    Case(
        "MB310",
        "importer-pins-another-san",
        set_(dr_out_tls, "subjectAltNames", ["other.external"]),
        set_(dr_out_tls, "subjectAltNames", ["lambda.external"]),
    ),
    Case("MB310", "client-lacks-pinned-uri", client_leaf(uris=["spiffe://gke.example.com/ns/x/sa/y"]), good_client()),
    Case("MB311", "client-on-exporter-crl", crl_beside("eks", "gke", "gke"), crl_beside("eks", "gke", None)),
    Case("MB311", "server-on-importer-crl", crl_beside("gke", "eks", "eks"), crl_beside("gke", "eks", None)),
    Case(
        "MB312",
        "policy-leaves-out-the-importer",
        set_(authz_source, "principals", ["gke.example.com/ns/istio-egress/sa/other"]),
        set_(authz_source, "principals", ["gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"]),
    ),
    Case(
        "MB312",
        "deny-policy-matches-the-importer",
        set_(authz_spec, "action", "DENY"),
        set_(authz_spec, "action", "ALLOW"),
    ),
    Case(
        "MB313",
        "policy-admits-the-importer-on-some-paths",
        set_(authz_operation, "paths", ["/hello-world", "/api/*"]),
        set_(authz_operation, "paths", ["/*"]),
    ),
    Case("MB314", "exporter-passes-tls-through", passthrough_in),
    # MB4xx
    Case("MB401", "not-pem", client_cert((b"not a certificate", b"not a key")), good_client()),
    Case("MB401", "crl-not-pem", _crl_text(b"not a CRL"), crl_beside("eks", "gke", None)),
    Case(
        "MB402",
        "key-of-another-leaf",
        lambda d: client_cert((secret_data(d, "gke")["cert"], odd_leaf(seed_ca("gke"))[1]))(d),
        nothing,
    ),
    Case(
        "MB403",
        "expired",
        leaf_with_dates(NOW - dt.timedelta(days=100), 90),
        leaf_with_dates(NOW - dt.timedelta(days=1), 90),
    ),
    Case("MB403", "not-yet-valid", leaf_with_dates(NOW + dt.timedelta(days=2), 90), nothing),
    Case(
        "MB404",
        "expires-soon",
        leaf_with_dates(NOW - dt.timedelta(days=80), 90),
        leaf_with_dates(NOW - dt.timedelta(days=50), 90),
    ),
    Case(  # valid 1 day in all, shorter than the horizon: warned about past half of it, not from its issue on
        "MB404",
        "short-lived-past-half",
        leaf_with_dates(NOW - dt.timedelta(hours=16), 1),
        leaf_with_dates(NOW - dt.timedelta(hours=1), 1),
    ),
    Case("MB405", "server-leaf-as-client", client_leaf(uris=[SPIFFE], ekus=["serverAuth"]), good_client()),
    Case("MB406", "no-eku", client_leaf(uris=[SPIFFE], ekus=[]), good_client()),
    Case("MB406", "dual-eku", client_leaf(uris=[SPIFFE], ekus=["serverAuth", "clientAuth"]), good_client()),
    Case("MB407", "cn-only", both(client_leaf(), set_(gw_in_tls, "subjectAltNames", [])), good_client()),
    Case("MB408", "self-signed", lambda d: client_cert_self_signed(d), nothing),
    Case("MB409", "rsa-1024", good_client(rsa_bits=1024), good_client(rsa_bits=2048)),
    Case("MB409", "long-lifetime", good_client(days=825), good_client(days=90)),
    # MB5xx
    Case("MB501", "optional-mutual", set_(gw_in_tls, "mode", "OPTIONAL_MUTUAL"), set_(gw_in_tls, "mode", "MUTUAL")),
    Case("MB501", "simple", set_(gw_in_tls, "mode", "SIMPLE"), set_(gw_in_tls, "mode", "MUTUAL")),
    Case(
        "MB502",
        "any-host",
        set_(lambda d: gw_in(d)["spec"]["servers"][0], "hosts", ["*"]),
        set_(lambda d: gw_in(d)["spec"]["servers"][0], "hosts", ["lambda.external"]),
    ),
    Case(
        "MB503",
        "skip-verify",
        set_(dr_out_tls, "insecureSkipVerify", True),
        set_(dr_out_tls, "insecureSkipVerify", False),
    ),
    Case("MB504", "no-san-pins", pop(dr_out_tls, "subjectAltNames"), nothing),
    Case(
        "MB505",
        "no-sni",
        pop(dr_out_tls, "sni"),
        nothing,
        spec=istio_version("1.22.3"),
        good_spec=istio_version("1.22.3"),
    ),
    Case(
        "MB506",
        "no-client-san-pins",
        both(
            pop(gw_in_tls, "subjectAltNames"),
            lambda docs: drop(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers"),
        ),
        pop(gw_in_tls, "subjectAltNames"),  # the AuthorizationPolicy admits only the importers' principals
    ),
    Case(
        "MB507",
        "tls-1.1",
        set_(gw_in_tls, "minProtocolVersion", "TLSV1_1"),
        set_(gw_in_tls, "minProtocolVersion", "TLSV1_3"),
    ),
    Case(
        "MB508",
        "cbc-suite",
        set_(gw_in_tls, "cipherSuites", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA"]),
        set_(gw_in_tls, "cipherSuites", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"]),
    ),
    Case(
        "MB509",
        "one-trust-domain",
        nothing,
        nothing,
        spec=trust_domain("gke", "eks.example.com"),
        good_spec=trust_domain("gke", "gke.example.com"),
    ),
]


def client_cert_self_signed(docs: Docs) -> None:
    """The importer presents a self-signed leaf; the exporter trusts that very certificate."""
    from tests.lint_builders import openssl_self_signed

    cert, key = openssl_self_signed("Wakanda")
    client_cert((cert, key))(docs)
    data = secret_data(docs, "eks")
    data["cacert"] = cert
    set_secret_data(docs, "eks", data)
    gw_in_tls(docs).pop("subjectAltNames")


@pytest.mark.parametrize("case", CASES, ids=[f"{c.code}-{c.id}" for c in CASES])
def test_failing_fixture_reports_the_code(case: Case) -> None:
    report = run(case.bad, case.spec, case.world, case.meshes)
    assert case.code in report.codes(), report.table(wide=True)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.code}-{c.id}" for c in CASES])
def test_passing_twin_does_not(case: Case) -> None:
    report = run(
        case.good, case.good_spec if case.good_spec is not None else case.spec, case.good_world, case.good_meshes
    )
    assert case.code not in report.codes(), report.table(wide=True)


def test_every_code_has_a_case() -> None:
    assert sorted(CODES) == sorted({c.code for c in CASES})


def test_every_code_is_documented() -> None:
    text = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    documented = re.findall(r"^## (MB\d{3})\b", text, flags=re.M)
    assert documented == sorted(CODES), "docs/lint.md: one '## MB###' section per code, in order"
    for code, info in CODES.items():
        section = text.split(f"## {code}", 1)[1].split("\n## ", 1)[0]
        for part in ("Symptom", "Fix", "Example"):
            assert f"**{part}" in section, f"{code}: docs/lint.md lacks **{part}**"
        assert f"## {code} — {info.title}\n" in text, f"{code}: the heading must be '## {code} — {info.title}'"
        assert f"**Severity:** {info.severity}." in section, (
            f"{code}: docs/lint.md must say **Severity:** {info.severity}."
        )


def test_a_misspelled_field_names_the_field_it_is_close_to() -> None:
    report = run(rename(gw_in_tls, "credentialName", "credentialname"), None, True, ("eks", "gke"))
    (f,) = [f for f in report.findings if f.code == "MB004"]
    assert f.severity == "error" and f.objects[0].field == "spec.servers[0].tls.credentialname"
    assert "unknown field; did you mean 'credentialName'?" in f.message and f.fix == "rename it to 'credentialName'"
    assert "MB002" not in report.codes()
    # the twin: credentialNames is a field of its own, not a misspelling (in place of credentialName: Istio's
    # validation refuses both at once)
    names = both(pop(gw_in_tls, "credentialName"), set_(gw_in_tls, "credentialNames", ["mtls-credential"]))
    assert "MB004" not in run(names, None, True, ("eks", "gke")).codes()


def test_a_port_key_naming_no_service_entry_port_says_rename_it() -> None:
    report = run(set_(lambda d: se_out(d)["spec"]["endpoints"][0], "ports", {"https": 443}), None, True, ("eks", "gke"))
    (f,) = [f for f in report.findings if f.code == "MB304"]
    assert "key 'https' names no port of the ServiceEntry" in f.message
    assert f.fix == "rename the key to the ServiceEntry port's name: endpoints[0].ports: {http: 443}"
    other = run(set_(lambda d: se_out(d)["spec"]["endpoints"][0], "ports", {"http": 8443}), None, True, ("eks", "gke"))
    assert all("rename the key" not in f.fix for f in other.findings)  # the twin: a right key, a wrong port


def test_a_workload_selector_missing_the_gateway_names_its_labels_and_namespace() -> None:
    report = run(
        set_(lambda d: dr_out(d)["spec"], "workloadSelector", {"matchLabels": {"app": "sleep"}}),
        None,
        True,
        ("eks", "gke"),
    )
    (f,) = [f for f in report.findings if f.code == "MB201"]
    assert "the rule's workloadSelector {'app': 'sleep'} does not select it" in f.message
    assert "the gateway runs in istio-egress with labels" in f.message
    assert f.fix.startswith("put the rule in istio-egress with matchLabels the gateway's pod carries")
    selected = run(
        set_(lambda d: dr_out(d)["spec"], "workloadSelector", {"matchLabels": {"istio": "egressgateway"}}),
        None,
        True,
        ("eks", "gke"),
    )
    assert [f for f in selected.findings if f.code in ("MB201", "MB306")] == []  # the twin: it selects the gateway


def test_a_wildcard_host_unresolved_says_istiod_never_allocates_it_not_that_allocation_is_off() -> None:
    report = run(set_(lambda d: se_out(d)["spec"], "hosts", ["*.external"]), None, True, ("eks", "gke"))
    (f,) = [f for f in report.findings if f.code == "MB101"]
    assert "cannot resolve names under *.external: istiod never auto-allocates an address for a wildcard host" in (
        f.message
    )
    assert "AUTO_ALLOCATE off" not in f.message
    assert f.fix.startswith("give the ServiceEntry spec.addresses")
    off = run(set_(lambda d: se_out(d)["spec"], "hosts", ["lambda.external"]), None, True, ("eks", "gke"))
    assert "MB101" not in off.codes()  # the twin: the concrete host is auto-allocated


@pytest.mark.parametrize("subset", ["", "v1"])
def test_a_route_to_a_name_under_a_wildcard_names_both_clusters_and_a_fix_that_works(subset: str) -> None:
    def change(docs: Docs) -> None:
        _wildcard_backend(docs)
        if subset:
            set_(lambda d: vs_in(d)["spec"]["http"][0]["route"][0]["destination"], "subset", subset)(docs)
            dr_backend(docs)["spec"]["host"] = "*.internal.example.com"
            dr_backend(docs)["spec"]["subsets"] = [{"name": subset}]

    for filtered in ("true", "false"):  # the cluster is missing with or without the gateway's filter
        report = run(change, pilot_env({"PILOT_FILTER_GATEWAY_CLUSTER_CONFIG": filtered}), True, ("eks", "gke"))
        (f,) = [f for f in report.findings if f.code in ("MB107", "MB109")]
        assert f.code == "MB107"
        assert (
            f"istiod names the route's cluster after the host it names (outbound|443|{subset}|alb.internal.example.com)"
            f" and builds clusters after the service's own host (outbound|443|{subset}|*.internal.example.com)"
        ) in f.message
        assert f.fix.startswith("add a ServiceEntry whose hosts list alb.internal.example.com itself")
        assert "FILTER" not in f.fix
    fixed = run(both(change, _concrete_host_too), None, True, ("eks", "gke"))
    assert not {"MB107", "MB109"} & set(fixed.codes())  # the twin: the host has its own ServiceEntry


@pytest.mark.parametrize("filtered", ["true", "false"])
def test_a_subset_selecting_no_endpoint_of_a_dns_service_entry_is_a_missing_cluster_not_gateway_filtering(
    filtered: str,
) -> None:
    def subset(labels: dict[str, str]) -> Change:
        def change(docs: Docs) -> None:
            set_(lambda d: vs_in(d)["spec"]["http"][0]["route"][0]["destination"], "subset", "v1")(docs)
            dr_backend(docs)["spec"]["subsets"] = [{"name": "v1", "labels": labels}]
            se_backend(docs)["spec"]["endpoints"] = [{"address": "alb.internal.example.com", "labels": {"tier": "a"}}]

        return change

    spec = pilot_env({"PILOT_FILTER_GATEWAY_CLUSTER_CONFIG": filtered})
    report = run(subset({"version": "v1"}), spec, True, ("eks", "gke"))
    (f,) = [f for f in report.findings if f.code in ("MB109", "MB111")]
    assert f.code == "MB111" and "FILTER" not in f.message + f.fix
    assert "istiod builds no DNS cluster without endpoints, so the route's cluster" in f.message
    assert "outbound|443|v1|alb.internal.example.com does not exist" in f.message
    assert f.symptom == "503 NC cluster_not_found for outbound|443|v1|alb.internal.example.com"
    assert f.fix.startswith("drop the subset's labels, or give the ServiceEntry's spec.endpoints those labels")
    matched = run(subset({"tier": "a"}), spec, True, ("eks", "gke"))
    assert not {"MB109", "MB111"} & set(matched.codes())  # the twin: the labels select the endpoint


def test_the_seed_lints_clean() -> None:
    report = run(None, None, True, ("eks", "gke"))
    assert report.findings == (), report.table(wide=True)


GARBAGE = [
    b"",
    b"\x00\x01binary",
    b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
]


@pytest.mark.parametrize("value", GARBAGE)
@pytest.mark.parametrize("key", ["cert", "key", "cacert"])
def test_bad_pem_is_a_finding_never_an_exception(key: str, value: bytes) -> None:
    def change(docs: Docs) -> None:
        for mesh in ("eks", "gke"):
            data = secret_data(docs, mesh)
            data[key] = value
            set_secret_data(docs, mesh, data)

    report = run(change, None, True, ("eks", "gke"))
    assert report.errors, report.table()
    assert {f.code for f in report.errors} <= {"MB401", "MB205"}, report.table()
