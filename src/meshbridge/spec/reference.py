"""The spec reference (``docs/spec.md``), generated from the models' own field documentation (pure)."""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from meshbridge.spec import models

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("Bridge", models.Bridge),
    ("metadata", models.Metadata),
    ("spec", models.BridgeSpec),
    ("spec.meshes.&lt;name&gt;", models.Mesh),
    ("spec.meshes.&lt;name&gt;.istio", models.IstioInstall),
    ("spec.meshes.&lt;name&gt;.ingressGateway", models.IngressGateway),
    ("spec.meshes.&lt;name&gt;.ingressGateway.limits", models.EdgeLimits),
    ("spec.meshes.&lt;name&gt;.egressGateway", models.EgressGateway),
    ("…Gateway.ports[]", models.ServicePort),
    ("spec.meshes.&lt;name&gt;.apps[]", models.App),
    ("spec.meshes.&lt;name&gt;.certManager", models.CertManager),
    ("spec.meshes.&lt;name&gt;.certManager.issuerRef", models.IssuerRef),
    ("spec.exports[]", models.Export),
    ("spec.exports[].importAs", models.ImportAs),
    ("spec.exports[].backend", models.Backend),
    ("spec.exports[].backend.tls", models.BackendTLS),
    ("spec.exports[].backend.local", models.LocalBackend),
    ("spec.tls", models.TLSSettings),
    ("spec.aws", models.AwsSection),
    ("spec.aws.function", models.AwsFunction),
]


def spec_reference() -> str:
    """Markdown: one table per section (field, type, default, description)."""
    out = [
        "# Bridge spec reference",
        "",
        "`apiVersion: meshbridge.io/v1alpha1`, `kind: Bridge`. Generated from the models "
        "(`python -m meshbridge.spec.reference > docs/spec.md`); unknown keys are errors.",
        "",
    ]
    for title, model in SECTIONS:
        out += [
            f"## {title}",
            "",
            (model.__doc__ or "").strip().splitlines()[0],
            "",
            "| field | type | default | description |",
            "|---|---|---|---|",
        ]
        for name, field in model.model_fields.items():
            key = field.alias or name
            default = "required" if field.is_required() else _default(field)
            desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{key}` | {_type(field.annotation)} | {default} | {desc} |")
        out.append("")
    return "\n".join(out)


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(see section)"
    if value is None:
        return "unset"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return ", ".join(f"{getattr(v, 'port', '')}→{getattr(v, 'target_port', '')}" for v in value)
    return f"`{value}`"


def _type(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type(get_args(annotation)[0])
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin is None:
        name = getattr(annotation, "__name__", str(annotation))
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(name, name)
    if str(origin).endswith("Literal"):
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"map of {_type(args[1])}"
    if len(args) == 1:
        return _type(args[0])
    if args and all(get_origin(a) is None for a in args) and len(args) > 1:
        return " or ".join(_type(a) for a in args)
    return _type(args[0]) if args else str(annotation)


if __name__ == "__main__":
    print(spec_reference())
