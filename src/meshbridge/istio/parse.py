"""Parse Istio/Kubernetes YAML (rendered by meshbridge or written by a user) into a :class:`ConfigSet`.

Accepted: ``networking.istio.io/v1`` and ``v1beta1`` (and ``v1alpha3``, same schema) Gateway,
VirtualService, DestinationRule, ServiceEntry; ``networking.istio.io/v1alpha3`` EnvoyFilter (the patches the
translation does not apply are reported, see :mod:`meshbridge.istio.envoyfilter`); ``security.istio.io/v1`` and
``v1beta1`` AuthorizationPolicy (ALLOW and DENY on principals, namespaces, hosts, methods, paths, ports and some
``when`` keys; CUSTOM, AUDIT and the other fields are reported); v1 Secret
and Service;
``install.istio.io`` IstioOperator, the istiod Helm chart's values (:func:`is_istiod_values`), and what a running
istiod reads (its mesh config ConfigMap, :func:`is_mesh_config_map`, and its Deployment,
:func:`is_istiod_deployment`): their pilot env and proxyMetadata become mesh settings. Anything else
is kept out of the model and reported: an unknown kind, a field outside the modelled subset. What Istio
removed (alpha security APIs, Mixer, EnvoyFilter ``config`` Structs, Citadel's ``/etc/certs/``) is reported as
removed, with the release and the replacement (:mod:`meshbridge.istio.removed`). Namespaces and other
Kubernetes kinds that carry no routing meaning (Namespace, Deployment, ...) are skipped quietly.

Every manifest is read by :func:`load_documents`, which expands variables as a shell heredoc does
(:func:`expand_env`): the article's manifests are heredocs, and ``lint``, ``local up`` and ``translate`` read
them the same way.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from meshbridge.errors import IstioConfigError
from meshbridge.istio.authz import authz_warnings
from meshbridge.istio.config import ConfigSet, ConfigWarning, MeshSettings, MisspelledWarning
from meshbridge.istio.envoyfilter import envoy_filter_warnings
from meshbridge.istio.gateway_validation import check_gateway
from meshbridge.istio.gatewayapi import convert as convert_gateway_api
from meshbridge.istio.removed import (
    Removal,
    citadel_paths,
    envoy_filter_uses,
    removed_kind,
    removed_warning,
)
from meshbridge.istio.resources import (
    CERT_MANAGER_API,
    DYNAMIC_DNS,
    RBAC_API,
    TRUST_MANAGER_API,
    AuthorizationPolicy,
    Certificate,
    DestinationRule,
    EnvoyFilter,
    Gateway,
    IstioModel,
    KubeService,
    Role,
    RoleBinding,
    Secret,
    ServiceEntry,
    TrustBundle,
    VirtualService,
)
from meshbridge.yamlerrors import yaml_problem

M = TypeVar("M", bound=BaseModel)

NETWORKING_APIS = {"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"}
ENVOY_FILTER_API = "networking.istio.io/v1alpha3"  # EnvoyFilter has no other version
SECURITY_APIS = {"security.istio.io/v1", "security.istio.io/v1beta1"}
_NETWORKING: dict[str, type[IstioModel]] = {
    "Gateway": Gateway,
    "VirtualService": VirtualService,
    "DestinationRule": DestinationRule,
    "ServiceEntry": ServiceEntry,
}
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
_QUIET_KINDS = {"Namespace", "Deployment", "ServiceAccount", "ConfigMap", "Pod", "Kustomization"}

# Fields that look unsupported to the walker but are modelled elsewhere or harmless.
_IGNORED_FIELDS = {
    "metadata.creationTimestamp",
    "metadata.resourceVersion",
    "metadata.uid",
    "metadata.generation",
    "metadata.managedFields",
    "status",
}


def load_documents(paths: Iterable[Path], env: Mapping[str, str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Read YAML files or folders (``*.yaml``/``*.yml``, sorted) into (source, document) pairs.

    ``kind: List`` documents are flattened. Empty documents are skipped. ``$VAR`` and ``${VAR}`` are expanded
    first, from ``env`` (default: the process environment), as the shell expands the article's heredocs
    (:func:`expand_env`).

    Raises:
        IstioConfigError: a path does not exist, a file is not YAML (with the line), or a variable is not set
            in ``env`` (with the file and the line).
    """
    values = os.environ if env is None else env
    out: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        if not path.exists():
            raise IstioConfigError(f"{path}: no such file or folder. Fix: pass a YAML file or a folder of them")
        for f in _yaml_files(path):
            out += parse_yaml_text(expand_env(_read_yaml_file(f), values, str(f)), str(f))
    return out


def _yaml_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.yaml``/``*.yml`` files under the folder ``path`` (sorted; folders whose
    name ends in .yaml are walked, not read)."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and not p.is_dir())


def _read_yaml_file(f: Path) -> str:
    """The UTF-8 text of one manifest file.

    Raises:
        IstioConfigError: the file cannot be read, or is not UTF-8 text.
    """
    try:
        return f.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise IstioConfigError(
            f"{f}: not UTF-8 text (byte {e.start}: {e.reason}). Fix: save the manifest as UTF-8 YAML"
        ) from e
    except OSError as e:
        raise IstioConfigError(f"{f}: cannot read it ({e.strerror}). Fix: pass a readable YAML file") from e


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(
    rf"\\[\\$]|\$(?:\{{(?P<braced>{_NAME})\}}|(?P<bare>{_NAME})|(?P<odd>\{{[#!]?{_NAME}[^}}\n]*\}}?))"
)
"""What a heredoc acts on: ``\\$`` (an escaped ``$``), ``\\\\`` (kept, so it escapes no ``$``), ``${VAR}``,
``$VAR``, and the ``${VAR...}`` forms a shell would evaluate (defaults, lengths, substitutions), which meshbridge
refuses rather than keep."""


@dataclass(frozen=True)
class _Reference:
    name: str
    written: str  # as in the file: ``$HOST`` or ``${HOST}``
    line: int


def _references(text: str) -> Iterator[tuple[re.Match[str], int]]:
    """Each :data:`_REFERENCE` match outside full-line comments, with its line number (from 1)."""
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.lstrip().startswith("#"):
            continue
        for m in _REFERENCE.finditer(line):
            yield m, number


def referenced_env(paths: Iterable[Path], env: Mapping[str, str]) -> dict[str, str]:
    """The variables the YAML files under ``paths`` refer to (``$VAR`` or ``${VAR}``) that ``env`` sets, name →
    value (so that a later reload expands them as the first one did, whatever the environment is by then)."""
    names: set[str] = set()
    for path in paths:
        for f in _yaml_files(path):
            if not f.is_file():
                continue
            for m, _ in _references(_read_yaml_file(f)):
                if m["braced"] or m["bare"]:
                    names.add(m["braced"] or m["bare"])
    return {n: env[n] for n in sorted(names) if n in env}


def expand_env(text: str, env: Mapping[str, str], source: str) -> str:
    """Expand ``text`` as a shell expands an unquoted heredoc (``cat <<EOF``), the way the article applies its
    manifests: ``$VAR`` and ``${VAR}`` become ``env[VAR]`` (empty when set empty); ``\\$`` is a literal ``$``
    (the backslash goes, as in the heredoc); a doubled backslash is kept as it is (YAML's own escape, where a
    heredoc would fold it) and does not escape a ``$`` after it. Other ``$`` are kept: ``$1``, ``$(...)``
    (Kubernetes' own ``$(VAR)`` in container args), ``$`` closing a regex. Full-line comments are left as they
    are.

    Raises:
        IstioConfigError: a variable is not set in ``env`` (each one named with its line, the fix
            ``export VAR=...``), or a ``${VAR...}`` form a shell would evaluate (``${VAR:-default}``,
            ``${#VAR}``) that meshbridge does not.
    """
    missing: list[_Reference] = []
    out: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.lstrip().startswith("#"):
            out.append(line)
            continue
        pieces: list[str] = []
        last = 0
        for m in _REFERENCE.finditer(line):
            pieces.append(line[last : m.start()])
            last = m.end()
            token = m.group(0)
            name = m["braced"] or m["bare"]
            if m["odd"] is not None:
                var = re.search(_NAME, token[2:])
                var_name = var.group(0) if var else "VAR"
                raise IstioConfigError(
                    f"{source}:{number}: {token}: meshbridge expands only $VAR and ${{VAR}}, not the shell's other "
                    f"${{...}} forms. Fix: export {var_name}=<value> and write ${{{var_name}}}, or write \\{token} to "
                    "keep it literal"
                )
            if name is None:
                pieces.append(token if token == "\\\\" else "$")  # \\ stays (YAML needs it); \$ is a literal $
            elif name in env:
                pieces.append(env[name])
            else:
                missing.append(_Reference(name, token, number))
                pieces.append(token)
        pieces.append(line[last:])
        out.append("".join(pieces))
    if missing:
        raise _unset(missing, source)
    return "".join(out)


def _unset(missing: list[_Reference], source: str) -> IstioConfigError:
    first = missing[0]
    more = [f"line {r.line} {r.written}" for r in missing[1:]]
    others = f" (also unset: {', '.join(more)})" if more else ""
    names = list(dict.fromkeys(r.name for r in missing))
    exports = " and ".join(f"export {n}=<value>" for n in names)
    return IstioConfigError(
        f"{source}:{first.line}: {first.written} is not set{others}. Fix: {exports} before running "
        f"(manifests are expanded like a shell heredoc), or write \\{first.written} to keep it literal"
    )


def parse_yaml_text(text: str, source: str) -> list[tuple[str, dict[str, Any]]]:
    """Split multi-document YAML into (``source#index``, document) pairs; ``kind: List`` flattened."""
    try:
        docs = list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError as e:
        p = yaml_problem(e, text)
        where = f"{source}:{p.line}" if p.line is not None else source
        raise IstioConfigError(f"{where}: not valid YAML ({p.problem}). Fix: {p.fix}") from e
    out = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise IstioConfigError(
                f"{source}#{i}: a document is not a mapping. Fix: each YAML document must be an object"
            )
        items = doc.get("items", []) if doc.get("kind") == "List" else [doc]
        out += [(f"{source}#{i}", item) for item in items]
    return out


def build_config(documents: Iterable[tuple[str, dict[str, Any]]], settings: MeshSettings | None = None) -> ConfigSet:
    """Model the documents; IstioOperator settings (if any) are layered over ``settings``.

    Raises:
        IstioConfigError: a modelled resource is malformed (names the source, the object and the field).
    """
    cfg = ConfigSet(settings=settings or MeshSettings())
    gateway_api: list[tuple[str, dict[str, Any]]] = []
    for source, doc in documents:
        kind = str(doc.get("kind", ""))
        api = str(doc.get("apiVersion", ""))
        name, ns = _ident(doc)
        removal = removed_kind(api, kind)
        if removal is not None and removal.applies(cfg.settings.minor):
            cfg.warnings.append(removed_warning(source, kind, ns, name, "", removal, f"{api} {kind}"))
        elif kind in _NETWORKING and api in NETWORKING_APIS:
            res = _validate(_NETWORKING[kind], doc, source)
            before = len(cfg.warnings)
            _add_networking(cfg, res, source, doc)
            misspelled = any(isinstance(w, MisspelledWarning) for w in cfg.warnings[before:])
            if isinstance(res, Gateway) and not misspelled:  # the API server refuses a misspelled field first
                cfg.warnings += check_gateway(res, source)  # not Gateway API's: the webhook never sees those
            cfg.warnings += _removed_uses(cfg, citadel_paths(doc), source, kind, ns, name)
        elif kind == "EnvoyFilter" and api == ENVOY_FILTER_API:
            ef = _validate(EnvoyFilter, doc, source)
            removed = _removed_uses(cfg, envoy_filter_uses(doc), source, kind, ns, name)
            said = {w.field for w in removed}
            modelling = unsupported_fields(ef, source, doc) + envoy_filter_warnings(ef, source)
            cfg.warnings += removed + [w for w in modelling if w.field not in said]
            cfg.envoy_filters.append(ef)
        elif kind == "AuthorizationPolicy" and api in SECURITY_APIS:
            policy = _validate(AuthorizationPolicy, doc, source)
            cfg.warnings += unsupported_fields(policy, source, doc) + authz_warnings(policy, source)
            cfg.authorization_policies.append(policy)
        elif kind == "Secret" and api == "v1":
            secret = _validate(Secret, doc, source)
            _check_base64(secret, source)
            cfg.secrets.append(secret)
        elif kind == "Service" and api == "v1":
            cfg.services.append(_validate(KubeService, doc, source))
        elif kind == "Certificate" and api == CERT_MANAGER_API:
            cfg.certificates.append(_validate(Certificate, doc, source))
        elif api == CERT_MANAGER_API and kind in ("Issuer", "ClusterIssuer"):
            continue  # what signs the Certificates: nothing a proxy reads
        elif api == TRUST_MANAGER_API and kind == "Bundle":
            cfg.trust_bundles.append(_validate(TrustBundle, doc, source))
        elif api == RBAC_API and kind in ("Role", "ClusterRole"):
            cfg.roles.append(_validate(Role, doc, source))
        elif api == RBAC_API and kind in ("RoleBinding", "ClusterRoleBinding"):
            cfg.role_bindings.append(_validate(RoleBinding, doc, source))
        elif kind == "IstioOperator":
            cfg.settings = _apply_istio_operator(cfg.settings, doc)
        elif is_istiod_values(doc):
            cfg.settings = _apply_istiod_values(cfg.settings, doc)
        elif is_mesh_config_map(doc):
            cfg.settings = _apply_mesh_config_map(cfg.settings, doc)
        elif is_istiod_deployment(doc):
            cfg.settings = _apply_istiod_deployment(cfg.settings, doc)
        elif api.startswith(GATEWAY_API_GROUP + "/") or (kind == "ConfigMap" and api == "v1"):
            cfg.cluster_objects.append(doc)
            if kind != "ConfigMap":
                gateway_api.append((source, doc))
        elif kind in _QUIET_KINDS:
            continue
        else:
            cfg.warnings.append(ConfigWarning(source, kind or "(no kind)", ns, name, "", _unmodelled(kind, api)))
    _add_gateway_api(cfg, gateway_api)
    return cfg


def _add_gateway_api(cfg: ConfigSet, documents: list[tuple[str, dict[str, Any]]]) -> None:
    """The Istio configuration istiod converts the Gateway API objects into (:mod:`meshbridge.istio.gatewayapi`),
    modelled as the mesh's own; the objects stay in ``cfg.cluster_objects`` for the oracle."""
    entries = {(se.metadata.namespace, se.metadata.name): list(se.spec.hosts) for se in cfg.service_entries}
    converted, warnings = convert_gateway_api(documents, entries)
    cfg.warnings += warnings
    for source, doc in converted:
        _add_networking(cfg, _validate(_NETWORKING[doc["kind"]], doc, source), source, doc)


_APIS = {
    **{kind: sorted(NETWORKING_APIS) for kind in _NETWORKING},
    "EnvoyFilter": [ENVOY_FILTER_API],
    "AuthorizationPolicy": sorted(SECURITY_APIS),
    "Secret": ["v1"],
    "Service": ["v1"],
}


def _unmodelled(kind: str, api: str) -> str:
    """Why a document is left out of the model: a known kind under another apiVersion (kubectl would refuse
    it too), or a kind meshbridge does not model."""
    if kind in _APIS:
        return (
            f"apiVersion {api or '(missing)'} is not {' or '.join(_APIS[kind])}; ignored. "
            f"Fix: apiVersion: {_APIS[kind][0]}"
        )
    return f"{api} {kind} is not modelled; ignored"


def _removed_uses(
    cfg: ConfigSet, uses: Iterable[tuple[str, Removal, str]], source: str, kind: str, ns: str, name: str
) -> list[ConfigWarning]:
    """A :class:`RemovedWarning` per use of something Istio removed (:mod:`meshbridge.istio.removed`), for the
    mesh's Istio version."""
    return [
        removed_warning(source, kind, ns, name, field, removal, used)
        for field, removal, used in uses
        if removal.applies(cfg.settings.minor)
    ]


def _add_networking(cfg: ConfigSet, res: IstioModel, source: str, doc: dict[str, Any]) -> None:
    cfg.warnings += unsupported_fields(res, source, doc)
    if isinstance(res, Gateway):
        cfg.gateways.append(res)
    elif isinstance(res, VirtualService):
        cfg.virtual_services.append(res)
        cfg.warnings += _sidecar_l4_routes(res, source)
    elif isinstance(res, DestinationRule):
        cfg.destination_rules.append(res)
    elif isinstance(res, ServiceEntry):
        cfg.service_entries.append(res)
        if res.spec.resolution == DYNAMIC_DNS:
            cfg.warnings.append(_dynamic_dns(res, source))


_DFP_PROTOCOLS = ("HTTP", "TLS", "GRPC", "HTTP2")
"""The port protocols istiod's validation takes for resolution DYNAMIC_DNS (those Envoy's dynamic forward proxy
serves)."""


def _dynamic_dns(se: ServiceEntry, source: str) -> ConfigWarning:
    """The warning for a ServiceEntry with resolution DYNAMIC_DNS, which the twin and lint leave out.

    Raises:
        IstioConfigError: Istio's validation refuses the entry: a host without a wildcard, addresses or endpoints,
            or a port of a protocol the dynamic forward proxy does not serve (its own words, and the fix).
    """
    spec = se.spec
    where = f"{source}: ServiceEntry {se.metadata.namespace}/{se.metadata.name}"
    plain = [h for h in spec.hosts if not h.startswith("*")]
    if plain:
        raise IstioConfigError(
            f"{where}: spec.hosts: host must be wildcarded for resolution mode DYNAMIC_DNS ({plain[0]}), as Istio's "
            "validation says. Fix: resolution DNS for named hosts, or a wildcard host (*.example.com)"
        )
    for name, value in (("addresses", spec.addresses), ("endpoints", spec.endpoints)):
        if value:
            raise IstioConfigError(
                f"{where}: spec.{name}: {name} cannot be set for resolution type DYNAMIC_DNS, as Istio's validation "
                f"says (the destination comes from each request's Host or SNI). Fix: remove spec.{name}"
            )
    for i, port in enumerate(spec.ports):
        if port.protocol.upper() not in _DFP_PROTOCOLS:
            raise IstioConfigError(
                f"{where}: spec.ports[{i}].protocol: {port.protocol}: only HTTP, TLS, GRPC, and HTTP2 protocols are "
                "supported for resolution type DYNAMIC_DNS, as Istio's validation says. Fix: TLS for HTTPS the app "
                "originates, HTTP for plain HTTP"
            )
    return ConfigWarning(
        source,
        "ServiceEntry",
        se.metadata.namespace,
        se.metadata.name,
        "spec.resolution",
        f"resolution DYNAMIC_DNS is not modelled: istiod gives {', '.join(se.spec.hosts)} a dynamic forward proxy "
        "(each request's Host or SNI looked up when it is sent); the twin and lint leave this ServiceEntry out, so "
        "a route to its hosts is judged as to a host no ServiceEntry declares (docs/fidelity.md FD09). Fix: judge "
        "it on the real control plane ('meshbridge translate --against-istiod'), or list the hosts with "
        "resolution DNS",
    )


def _sidecar_l4_routes(vs: VirtualService, source: str) -> list[ConfigWarning]:
    """TCP and TLS routes that sidecars would carry (the VirtualService binds ``mesh``): meshbridge translates
    them for gateways only, so the twin's sidecars do not route them and lint checks none of them."""
    if vs.spec.gateways and "mesh" not in vs.spec.gateways:
        return []
    return [
        ConfigWarning(
            source,
            "VirtualService",
            vs.metadata.namespace,
            vs.metadata.name,
            f"spec.{field}",
            f"{field} routes of sidecars (gateways: mesh) are not translated: the local twin's sidecars carry HTTP "
            "only and lint checks none of them (docs/fidelity.md FD04); gateways' are",
        )
        for field, routes in (("tcp", vs.spec.tcp), ("tls", vs.spec.tls))
        if routes
    ]


def secret_values(secret: Secret) -> dict[str, bytes]:
    """A Secret's keys and decoded values (``stringData`` wins over ``data``, as the API server merges them)."""
    out = {k: base64.b64decode(v) for k, v in secret.data.items()}
    out.update({k: v.encode("utf-8") for k, v in secret.string_data.items()})
    return out


def unsupported_fields(resource: BaseModel, source: str, doc: Mapping[str, Any] | None = None) -> list[ConfigWarning]:
    """A warning for every field of ``resource`` outside the modelled subset.

    Args:
        resource: the validated resource (kind and name come from it).
        source: where it came from.
        doc: the raw document it was validated from (default: the resource dumped back by alias).
    """
    kind = getattr(resource, "kind", "")
    md = getattr(resource, "metadata", None)
    name, ns = (md.name, md.namespace) if md is not None else ("", "")
    raw = doc if doc is not None else resource.model_dump(by_alias=True)
    out: list[ConfigWarning] = []
    for path, key, model in _unknown_keys(raw, type(resource), ""):
        if path in _IGNORED_FIELDS or any(path.startswith(p + ".") for p in _IGNORED_FIELDS):
            continue
        near = _misspelled(key, model)
        if near:
            message = f"unknown field; did you mean {near!r}? Istio's CRD schema refuses it (kubectl apply fails)"
            out.append(MisspelledWarning(source, kind, ns, name, path, message, near))
        else:
            out.append(ConfigWarning(source, kind, ns, name, path, "not supported by meshbridge's model; ignored"))
    return out


# Istio fields meshbridge does not model that are close to one it does at the same place (``mirrors`` beside
# ``mirror``): real fields, reported as not modelled, never as misspellings.
_UNMODELLED_NEAR_A_MODELLED_FIELD = frozenset({"mirrors", "mirror_percent", "mirrorPercent"})


def _misspelled(key: str, model: type[BaseModel]) -> str:
    """The field of ``model`` that ``key`` misspells (the same letters in another case, or a ratio of at least 0.8
    by :func:`difflib.get_close_matches`: a letter left out, added or swapped), or ``""``."""
    if key in _UNMODELLED_NEAR_A_MODELLED_FIELD:
        return ""
    fields = list(_schema(model))
    same = [f for f in fields if f.lower() == key.lower()]
    close = same or difflib.get_close_matches(key, fields, n=1, cutoff=0.8)
    return close[0] if close else ""


def _unknown_keys(value: Any, model: type[BaseModel], at: str) -> list[tuple[str, str, type[BaseModel]]]:
    """(path, key, the model that does not define it) for each key of the raw ``value`` outside ``model``,
    walking nested models."""
    if not isinstance(value, dict):
        return []
    schema = _schema(model)
    out: list[tuple[str, str, type[BaseModel]]] = []
    for key, child in value.items():
        path = f"{at}.{key}" if at else str(key)
        if key not in schema:
            out.append((path, str(key), model))
            continue
        nested, mapping = schema[key]
        if nested is None or not child:
            continue
        if isinstance(child, list):
            for i, item in enumerate(child):
                out += _unknown_keys(item, nested, f"{path}[{i}]")
        elif mapping and isinstance(child, dict):
            for k, item in child.items():
                out += _unknown_keys(item, nested, f"{path}.{k}")
        else:
            out += _unknown_keys(child, nested, path)
    return out


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, tuple[type[BaseModel] | None, bool]]:
    """YAML key → (the nested model, whether it sits in a ``dict[str, Model]``) for each field of ``model``."""
    return {f.alias or name: _nested(f.annotation) for name, f in model.model_fields.items()}


def _nested(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    mapping = getattr(annotation, "__origin__", None) is dict
    for arg in getattr(annotation, "__args__", ()) or ():
        found, inner_mapping = _nested(arg)
        if found is not None:
            return found, mapping or inner_mapping
    return None, False


def _validate(model: type[M], doc: dict[str, Any], source: str) -> M:
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        name, ns = _ident(doc)
        first = e.errors(include_url=False)[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")  # lint's form
        raise IstioConfigError(
            f"{source}: {doc.get('kind')} {ns}/{name}: {path}: {first['msg']}. "
            "Fix: correct the field (see the Istio API reference)"
        ) from e


def _check_base64(secret: Secret, source: str) -> None:
    for key, value in secret.data.items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as e:
            raise IstioConfigError(
                f"{source}: Secret {secret.metadata.namespace}/{secret.metadata.name}: data.{key} is not base64. "
                "Fix: base64-encode it, or move it to stringData"
            ) from e


def _ident(doc: Mapping[str, Any]) -> tuple[str, str]:
    md = doc.get("metadata") or {}
    return str(md.get("name", "")), str(md.get("namespace", "default"))


def is_istiod_values(doc: Mapping[str, Any]) -> bool:
    """Whether ``doc`` is the values of Istio's istiod Helm chart (``values-istiod.yaml`` of ``render --install``).

    Values files have no ``apiVersion`` or ``kind``; the istiod chart's are told by a ``meshConfig`` or ``pilot``
    key (the base and gateway charts have neither).
    """
    return "kind" not in doc and "apiVersion" not in doc and ("meshConfig" in doc or "pilot" in doc)


def is_mesh_config_map(doc: Mapping[str, Any]) -> bool:
    """Whether ``doc`` is the running istiod's mesh config: the ConfigMap ``istio`` (``istio-<revision>``) whose
    ``data.mesh`` holds the MeshConfig the istiod chart wrote (``kubectl get cm istio -n istio-system -o yaml``)."""
    name = str((doc.get("metadata") or {}).get("name", ""))
    return (
        doc.get("kind") == "ConfigMap"
        and doc.get("apiVersion") == "v1"
        and (name == "istio" or name.startswith("istio-"))
        and "mesh" in (doc.get("data") or {})
    )


def is_istiod_deployment(doc: Mapping[str, Any]) -> bool:
    """Whether ``doc`` is istiod's Deployment: an ``apps/v1`` Deployment with the chart's ``discovery`` container."""
    return doc.get("kind") == "Deployment" and doc.get("apiVersion") == "apps/v1" and _discovery(doc) is not None


def _discovery(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return next((c for c in pod.get("containers") or [] if c.get("name") == "discovery"), None)


def _apply_mesh_config_map(settings: MeshSettings, doc: Mapping[str, Any]) -> MeshSettings:
    try:
        mesh = yaml.safe_load(str(doc["data"]["mesh"])) or {}
    except yaml.YAMLError as e:
        name, ns = _ident(doc)
        raise IstioConfigError(
            f"ConfigMap {ns}/{name}: data.mesh is not YAML ({e}). Fix: it holds istiod's MeshConfig as YAML"
        ) from e
    return _with_mesh_settings(settings, {}, mesh if isinstance(mesh, Mapping) else {})


def _apply_istiod_deployment(settings: MeshSettings, doc: Mapping[str, Any]) -> MeshSettings:
    """istiod's environment (literal values; ``valueFrom`` is the pod's own, not a pilot setting) and, from the
    ``discovery`` image's tag (``istio/pilot:1.31.4``), the mesh's Istio version."""
    container = _discovery(doc) or {}
    env = {e["name"]: e["value"] for e in container.get("env") or [] if "name" in e and "value" in e}
    tag = str(container.get("image", "")).rpartition(":")[2]
    version = tag if re.match(r"^1\.\d+\.\d+$", tag) else settings.istio_version
    return replace(_with_mesh_settings(settings, env, {}), istio_version=version)


def _apply_istio_operator(settings: MeshSettings, doc: Mapping[str, Any]) -> MeshSettings:
    spec = doc.get("spec") or {}
    env = ((spec.get("components") or {}).get("pilot") or {}).get("k8s", {}).get("env") or []
    pilot_env = {e["name"]: e.get("value", "") for e in env if "name" in e}
    return _with_mesh_settings(settings, pilot_env, spec.get("meshConfig") or {})


def _apply_istiod_values(settings: MeshSettings, doc: Mapping[str, Any]) -> MeshSettings:
    # The chart reads `env`, and copies `.pilot` over the top level first (templates/zzy_descope_legacy.yaml).
    pilot_env = {**(doc.get("env") or {}), **((doc.get("pilot") or {}).get("env") or {})}
    return _with_mesh_settings(settings, pilot_env, doc.get("meshConfig") or {})


def _with_mesh_settings(settings: MeshSettings, pilot_env: Mapping[str, Any], mesh: Mapping[str, Any]) -> MeshSettings:
    meta = (mesh.get("defaultConfig") or {}).get("proxyMetadata") or {}
    return replace(
        settings,
        pilot_env={**settings.pilot_env, **{str(k): str(v) for k, v in pilot_env.items()}},
        proxy_metadata={**settings.proxy_metadata, **{str(k): str(v) for k, v in meta.items()}},
        trust_domain=str(mesh.get("trustDomain", settings.trust_domain)),
    )
