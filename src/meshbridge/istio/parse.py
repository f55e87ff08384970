"""Parse Istio/Kubernetes YAML (rendered by meshbridge or written by a user) into a :class:`ConfigSet`.

Accepted: ``networking.istio.io/v1`` and ``v1beta1`` (and ``v1alpha3``, same schema) Gateway,
VirtualService, DestinationRule, ServiceEntry; ``networking.istio.io/v1alpha3`` EnvoyFilter (the patches the
translation does not apply are reported, see :mod:`meshbridge.istio.envoyfilter`); v1 Secret and Service;
``install.istio.io`` IstioOperator (its pilot env and proxyMetadata become mesh settings). Anything else
is kept out of the model and reported: an unknown kind, a field outside the modelled subset. Namespaces
and other Kubernetes kinds that carry no routing meaning (Namespace, Deployment, ...) are skipped quietly.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from meshbridge.errors import IstioConfigError
from meshbridge.gcpause import paused_gc
from meshbridge.istio.config import ConfigSet, ConfigWarning, MeshSettings
from meshbridge.istio.envoyfilter import envoy_filter_warnings
from meshbridge.istio.resources import (
    DestinationRule,
    EnvoyFilter,
    Gateway,
    IstioModel,
    KubeService,
    Secret,
    ServiceEntry,
    VirtualService,
)
from meshbridge.yamlerrors import yaml_problem

M = TypeVar("M", bound=BaseModel)

NETWORKING_APIS = {"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"}
ENVOY_FILTER_API = "networking.istio.io/v1alpha3"  # EnvoyFilter has no other version
_NETWORKING: dict[str, type[IstioModel]] = {
    "Gateway": Gateway,
    "VirtualService": VirtualService,
    "DestinationRule": DestinationRule,
    "ServiceEntry": ServiceEntry,
}
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

    ``kind: List`` documents are flattened. Empty documents are skipped. With ``env``, ``${VAR}``
    references are expanded first (as the article's heredocs are by the shell).

    Raises:
        IstioConfigError: a path does not exist, a file is not YAML (with the line), or a ``${VAR}`` is
            not set in ``env``.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        if not path.exists():
            raise IstioConfigError(f"{path}: no such file or folder. Fix: pass a YAML file or a folder of them")
        for f in _yaml_files(path):
            text = _read_yaml_file(f)
            out += parse_yaml_text(expand_env(text, env, str(f)) if env is not None else text, str(f))
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


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def referenced_env(paths: Iterable[Path], env: Mapping[str, str]) -> dict[str, str]:
    """The ``${VAR}`` references of the YAML files under ``paths`` that ``env`` sets, name → value (so that
    a later reload expands them as the first one did, whatever the environment is by then)."""
    names: set[str] = set()
    for path in paths:
        for f in _yaml_files(path):
            if f.is_file():
                names |= {m.group(1) for m in _VAR.finditer(_read_yaml_file(f))}
    return {n: env[n] for n in sorted(names) if n in env}


def expand_env(text: str, env: Mapping[str, str], source: str) -> str:
    """Replace each ``${VAR}`` with ``env[VAR]``; comments are left alone.

    Raises:
        IstioConfigError: a referenced variable is not set (every missing name is listed).
    """
    code = "\n".join(line.split("#", 1)[0] if line.lstrip().startswith("#") else line for line in text.splitlines())
    missing = sorted({m.group(1) for m in _VAR.finditer(code) if m.group(1) not in env})
    if missing:
        raise IstioConfigError(
            f"{source} refers to {', '.join('${' + v + '}' for v in missing)}, which is not set. "
            f"Fix: export {missing[0]}=<value> before running (the manifests are expanded like a shell heredoc)"
        )
    return _VAR.sub(lambda m: env[m.group(1)], code)


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
    with paused_gc():  # batch work: many short-lived dicts, no cycles (see meshbridge.gcpause)
        cfg = ConfigSet(settings=settings or MeshSettings())
        for source, doc in documents:
            kind = str(doc.get("kind", ""))
            api = str(doc.get("apiVersion", ""))
            name, ns = _ident(doc)
            if kind in _NETWORKING and api in NETWORKING_APIS:
                _add_networking(cfg, _validate(_NETWORKING[kind], doc, source), source, doc)
            elif kind == "EnvoyFilter" and api == ENVOY_FILTER_API:
                ef = _validate(EnvoyFilter, doc, source)
                cfg.warnings += unsupported_fields(ef, source, doc) + envoy_filter_warnings(ef, source)
                cfg.envoy_filters.append(ef)
            elif kind == "Secret" and api == "v1":
                secret = _validate(Secret, doc, source)
                _check_base64(secret, source)
                cfg.secrets.append(secret)
            elif kind == "Service" and api == "v1":
                cfg.services.append(_validate(KubeService, doc, source))
            elif kind == "IstioOperator":
                cfg.settings = _apply_istio_operator(cfg.settings, doc)
            elif kind in _QUIET_KINDS:
                continue
            else:
                cfg.warnings.append(ConfigWarning(source, kind or "(no kind)", ns, name, "", _unmodelled(kind, api)))
        return cfg


_APIS = {
    **{kind: sorted(NETWORKING_APIS) for kind in _NETWORKING},
    "EnvoyFilter": [ENVOY_FILTER_API],
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


def _add_networking(cfg: ConfigSet, res: IstioModel, source: str, doc: dict[str, Any]) -> None:
    cfg.warnings += unsupported_fields(res, source, doc)
    if isinstance(res, Gateway):
        cfg.gateways.append(res)
    elif isinstance(res, VirtualService):
        cfg.virtual_services.append(res)
    elif isinstance(res, DestinationRule):
        cfg.destination_rules.append(res)
    elif isinstance(res, ServiceEntry):
        cfg.service_entries.append(res)


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
    out = []
    for path in _unknown_keys(raw, type(resource), ""):
        if path in _IGNORED_FIELDS or any(path.startswith(p + ".") for p in _IGNORED_FIELDS):
            continue
        out.append(ConfigWarning(source, kind, ns, name, path, "not supported by meshbridge's model; ignored"))
    return out


def _unknown_keys(value: Any, model: type[BaseModel], at: str) -> list[str]:
    """Paths of keys of the raw ``value`` that ``model`` does not define, walking nested models."""
    if not isinstance(value, dict):
        return []
    schema = _schema(model)
    out: list[str] = []
    for key, child in value.items():
        path = f"{at}.{key}" if at else str(key)
        if key not in schema:
            out.append(path)
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
        path = ".".join(str(p) for p in first["loc"])
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


def _apply_istio_operator(settings: MeshSettings, doc: Mapping[str, Any]) -> MeshSettings:
    spec = doc.get("spec") or {}
    env = ((spec.get("components") or {}).get("pilot") or {}).get("k8s", {}).get("env") or []
    mesh = spec.get("meshConfig") or {}
    meta = (mesh.get("defaultConfig") or {}).get("proxyMetadata") or {}
    return replace(
        settings,
        pilot_env={**settings.pilot_env, **{e["name"]: str(e.get("value", "")) for e in env if "name" in e}},
        proxy_metadata={**settings.proxy_metadata, **{str(k): str(v) for k, v in meta.items()}},
        trust_domain=str(mesh.get("trustDomain", settings.trust_domain)),
    )
