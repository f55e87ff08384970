"""The Bridge spec: typed models of ``bridge.yaml`` (``apiVersion: meshbridge.io/v1alpha1``, ``kind: Bridge``).

A bridge names two or more independent Istio meshes and the services one mesh exports to others. The
reference scenario (the seed article) is one export, ``lambda.external``, from an EKS mesh whose ingress
gateway demands client certificates, to a GKE mesh whose egress gateway originates the mutual TLS.

Field names are the YAML's camelCase (``trustDomain``, ``credentialName``); Python attributes are
snake_case. Unknown keys are errors. Cross-field rules (meshes referenced by exports exist, the gateway
Service exposes the server port, ...) are checked by :meth:`Bridge._check_references`. Defaults that
follow another field are read through one accessor each: :attr:`Export.import_host`,
:attr:`Export.egress_port`, :meth:`Bridge.credential_name`.
"""

from __future__ import annotations

import ipaddress
import re
import types
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from meshbridge.errors import SpecError
from meshbridge.istio.changes import CHANGES
from meshbridge.releases import CURRENT_ISTIO

API_VERSION = "meshbridge.io/v1alpha1"
KIND = "Bridge"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_ISTIO_VERSION = re.compile(r"^1\.(\d+)(\.\d+)?([-+].*)?$")
_HANDLER = re.compile(r"^(?P<file>[^:]+\.py):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")


def _dns_label(value: str) -> str:
    if not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters, "
            "starting and ending with a letter or digit)"
        )
    return value


def _hostname(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"host {value!r} must be lowercase (Istio matches hosts case-insensitively)")
    if not _HOSTNAME.match(value):
        raise ValueError(f"{value!r} is not a valid DNS host name (no wildcards, no scheme, no port)")
    return value


def _credential_name(value: str) -> str:
    if _dns_label(value).endswith("-cacert"):
        raise ValueError(
            f"credentialName {value!r} ends in '-cacert', a suffix istiod reserves for CA bundles (the gateway "
            "would answer 503 'Secret is not supplied by SDS'); pick a name without it, e.g. 'mtls-credential'"
        )
    return value


def _address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        return _hostname(value)


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
        if not _LABEL_VALUE.match(val):
            raise ValueError(f"label value {val!r} of {key!r} is not a valid Kubernetes label value")
    return value


def _istio_version(value: str) -> str:
    if not _ISTIO_VERSION.match(value):
        raise ValueError(f"{value!r} is not an Istio 1.x version such as '1.17.2' or '1.22'")
    return value


def _handler(value: str) -> str:
    if not _HANDLER.match(value):
        raise ValueError(f"{value!r} is not of the form FILE.py:FUNCTION (e.g. 'handler.py:lambda_handler')")
    return value


def aws_region(value: str) -> str:
    """An AWS region code (``us-east-1``, ``us-gov-west-1``, ``us-isob-east-1``); ``spec.aws.region`` and the
    CLI's ``--region`` are checked by this one function.

    Raises:
        ValueError: the value is not a region code; the message ends with ``; <the fix>``.
    """
    if not _AWS_REGION.match(value):
        raise ValueError(
            f"{value!r} is not an AWS region code such as 'us-east-1' or 'eu-west-3'; use a region code "
            "('aws account list-regions' lists those of your account)"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
CredentialName = Annotated[str, AfterValidator(_credential_name)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Address = Annotated[str, AfterValidator(_address)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]


def _selecting(selects: str, example: str) -> AfterValidator:
    """Labels that select pods (valid :data:`Labels`, and not none): an empty selector matches every pod, so
    ``selects`` (what the rendered documents would then apply to) says why it is refused, ``example`` the fix."""

    def check(value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError(f"an empty map selects every pod: {selects}; set the pods' own labels, e.g. {example}")
        return _labels(value)

    return AfterValidator(check)


IngressLabels = Annotated[
    dict[str, str],
    _selecting(
        "the rendered Gateway (selector: {}) would apply to every gateway pod of the mesh, the ALLOW "
        "AuthorizationPolicy (matchLabels: {}) and the EnvoyFilter (workloadSelector.labels: {}) to every workload "
        "of the gateway's namespace",
        "{app: istio-ingressgateway, istio: ingressgateway}",
    ),
]
EgressLabels = Annotated[
    dict[str, str],
    _selecting(
        "the rendered Gateway (selector: {}) would apply to every gateway pod of the mesh",
        "{app: istio-egressgateway, istio: egressgateway}",
    ),
]
AppLabels = Annotated[
    dict[str, str],
    _selecting(
        "the app's Deployment (selector: {}) would take every pod of its namespace, and verify could not find the "
        "app's pod by its labels",
        "{app: sleep}",
    ),
]
IstioVersion = Annotated[str, AfterValidator(_istio_version)]
Handler = Annotated[str, AfterValidator(_handler)]
AwsRegion = Annotated[str, AfterValidator(aws_region)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]

ISTIO_PORTS: dict[int, str] = {
    15000: "Envoy's admin port",
    15001: "the sidecar's outbound capture port (Envoy's outbound listener)",
    15004: "Istio's debug port",
    15006: "the sidecar's inbound capture port (Envoy's inbound listener)",
    15008: "Istio's HBONE mTLS tunnel port",
    15009: "Istio's HBONE port for secure networks",
    15010: "istiod's plaintext XDS and CA port",
    15012: "istiod's XDS and CA port (TLS and mTLS)",
    15014: "istiod's control-plane monitoring port",
    15017: "istiod's webhook port",
    15020: "Istio's merged Prometheus telemetry port",
    15021: "Istio's health-check port",
    15053: "Istio's DNS proxy port",
    15090: "Envoy's Prometheus telemetry port",
}
"""Ports Istio uses itself, in every proxy (sidecars and gateways) or in istiod, and what for.

Source: Istio, *Application Requirements*, "Ports used by Istio"
(https://istio.io/latest/docs/ops/deployment/requirements/#ports-used-by-istio). A port a user picks for
the bridge's traffic must be none of them: the proxy already serves the port itself (its health check,
its admin or Prometheus endpoint, its capture listeners), so a Gateway server or a route there never sees
the traffic and callers get 503 or 404 while everything validates. Refused for ``gatewayPort``, an
export's ``port`` and the gateways' Service ports; a Service port that maps one of them to itself (the
gateways' ``status-port`` 15021→15021, istiod's 15012 and 15017 on an east-west gateway) is Istio's own
and kept.
"""


_ISTIO_PORT_LIST = ", ".join(str(p) for p in ISTIO_PORTS)


def _istio_port_problem(port: int) -> str | None:
    """``"15021 is Istio's health-check port"`` for a port Istio uses itself, else ``None``."""
    return f"{port} is {ISTIO_PORTS[port]}" if port in ISTIO_PORTS else None


_NUMBER = "number"
"""Shape of a field whose value is a number (``int`` or ``float``); see :func:`_number_shape`."""

_Shape = Any  # _NUMBER | ("items", _Shape) | ("values", _Shape)


def _number_shape(annotation: Any) -> _Shape | None:
    """Where numbers sit in a field's type: the value itself, list items or mapping values; ``None``: nowhere.

    ``int | None`` is a number; ``list[int]`` has numbers as items; a union of a number with a non-number
    (``int | str``) is not checked, a boolean may be meant there.
    """
    origin = get_origin(annotation)
    if origin is Annotated:
        return _number_shape(get_args(annotation)[0])
    if annotation is int or annotation is float:
        return _NUMBER
    if origin in (list, set, frozenset) or (origin is tuple and get_args(annotation)[1:] == (Ellipsis,)):
        inner = _number_shape(get_args(annotation)[0])
        return None if inner is None else ("items", inner)
    if origin is dict:
        inner = _number_shape(get_args(annotation)[1])
        return None if inner is None else ("values", inner)
    if origin is Union or origin is types.UnionType:
        shapes = [_number_shape(a) for a in get_args(annotation) if a is not type(None)]
        if len(shapes) == 1 or (shapes and all(s == _NUMBER for s in shapes)):
            return shapes[0]
    return None


def _boolean_in(shape: _Shape, value: Any) -> tuple[tuple[str | int, ...], bool] | None:
    """The first boolean where ``shape`` wants a number: (its path inside ``value``, the boolean)."""
    if shape == _NUMBER:
        return ((), value) if isinstance(value, bool) else None
    kind, inner = shape
    items: list[tuple[str | int, Any]] = []
    if kind == "items" and isinstance(value, list | tuple | set | frozenset):
        items = list(enumerate(value))
    elif kind == "values" and isinstance(value, dict):
        items = list(value.items())
    for key, item in items:
        found = _boolean_in(inner, item)
        if found is not None:
            return (key, *found[0]), found[1]
    return None


_NUMBER_FIELDS: dict[type, dict[str, tuple[_Shape, Any]]] = {}


def _number_fields(model: type[BaseModel]) -> dict[str, tuple[_Shape, Any]]:
    """The fields of ``model`` that hold numbers: name → (shape, an example value for the fix)."""
    found = _NUMBER_FIELDS.get(model)
    if found is None:
        found = {}
        for name, field in model.model_fields.items():
            shape = _number_shape(field.annotation)
            if shape is not None:
                example = field.examples[0] if field.examples else field.default
                number = isinstance(example, int | float) and not isinstance(example, bool)
                found[name] = (shape, example if number else None)
        _NUMBER_FIELDS[model] = found
    return found


class _Model(BaseModel):
    """Base: camelCase keys in YAML, unknown keys forbidden, frozen values, no booleans for numbers.

    Pydantic's lax mode reads ``true`` as 1 (and 1.0) in a number field; a YAML boolean (``true``,
    ``yes``, ``on``) where a number belongs is a mistake (``leafValidityDays: true`` would issue 1-day
    leaves), so every ``int`` or ``float`` field of every model, optional or inside a list or a mapping,
    refuses one: the error ``bool_not_number``, whose context holds ``at`` (the path inside the field's
    value, ``()`` for the value itself) and ``example`` (a number for the fix, or ``None``). Numbers
    written as strings (``port: "443"``) are read as the number, as before.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        spec = _number_fields(cls).get(info.field_name or "")
        if spec is None or value is None:
            return value
        found = _boolean_in(spec[0], value)
        if found is None:
            return value
        at, boolean = found
        raise PydanticCustomError(
            "bool_not_number",
            "must be a number, got a boolean ({got})",
            {"got": "true" if boolean else "false", "at": at, "example": spec[1]},
        )


class ServicePort(_Model):
    """One port of a gateway's Kubernetes Service (``spec.ports[]``)."""

    name: str = Field(description="Port name; Istio infers the protocol from its prefix (``http2``, ``https``).")
    port: PortNumber = Field(
        examples=[443],
        description=(
            "The Service port clients dial (e.g. 443). One of Istio's own ports "
            f"({_ISTIO_PORT_LIST}) only maps to itself, as the charts' ``status-port`` 15021→15021 does."
        ),
    )
    target_port: PortNumber = Field(
        examples=[8443],
        description=(
            "The container port the gateway's Envoy listens on (e.g. 8443). istiod binds a Gateway server "
            "on port N to the targetPort of the first Service port equal to N; Istio's legacy gateway charts "
            "map 80→8080 and 443→8443 so the pod needs no privileged port. Not one of Istio's own ports unless "
            "the Service port is that same port: the gateway's proxy serves those itself."
        ),
    )

    @model_validator(mode="after")
    def _no_istio_port_for_traffic(self) -> ServicePort:
        if self.port == self.target_port:  # Istio's own entries: status-port 15021→15021, istiod's on east-west
            return self
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if (used := _istio_port_problem(self.port)) is not None:
            problems.append(
                (
                    ("port",),
                    f"{used}, reserved by Istio: a Service port {self.port} may only map to itself "
                    f"({self.port}→{self.port}, as Istio's charts expose it), not to targetPort {self.target_port}; "
                    "pick another Service port for traffic, e.g. 443",
                )
            )
        if (used := _istio_port_problem(self.target_port)) is not None:
            problems.append(
                (
                    ("targetPort",),
                    f"{used}: the gateway's proxy serves it itself, so traffic to Service port {self.port} would "
                    "never reach a Gateway server (callers get 503 or 404); pick another targetPort, e.g. "
                    f"{8080 if self.port == 80 else 8443}",
                )
            )
        if problems:
            raise CrossFieldError(problems)
        return self


def _default_ports() -> list[ServicePort]:
    return [
        ServicePort(name="status-port", port=15021, target_port=15021),
        ServicePort(name="http2", port=80, target_port=8080),
        ServicePort(name="https", port=443, target_port=8443),
    ]


class GatewayWorkload(_Model):
    """An Istio gateway deployment and its Service: the workload a ``Gateway`` resource selects."""

    namespace: DnsLabel = Field(
        description=(
            "Namespace of the gateway *pods*. Secrets named by ``credentialName`` must live here (istiod "
            "only serves a gateway the Secrets of its own namespace; lint MB207)."
        )
    )
    name: DnsLabel = Field(description="Deployment and Service name, e.g. ``istio-ingressgateway``.")
    labels: Labels = Field(
        description=(
            "Pod labels. The rendered ``Gateway.spec.selector`` uses exactly these, so they must be a subset of "
            "the real pods' labels (the article selects ``app``, ``istio`` and ``istio.io/rev``). Not empty: an "
            "empty selector matches every pod."
        )
    )
    service_account: DnsLabel | None = Field(
        default=None,
        description=(
            "ServiceAccount of the gateway pods; it becomes the SPIFFE identity in an importer's client "
            "certificate (``spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>``). Default: "
            "``<name>-service-account``, as Istio's gateway charts name it."
        ),
    )
    ports: list[ServicePort] = Field(
        default_factory=_default_ports,
        min_length=1,
        description="The gateway Service's ports. Default: Istio's legacy chart (15021, 80→8080, 443→8443).",
    )
    gateway: DnsLabel = Field(
        description=(
            "Name of the Istio ``Gateway`` resource meshbridge renders for this workload (the article uses "
            "``eastwestgateway`` on the ingress side and ``istio-egressgateway`` on the egress side)."
        )
    )

    @property
    def sa(self) -> str:
        """The ServiceAccount name, with the chart default applied."""
        return self.service_account or f"{self.name}-service-account"

    def target_port(self, port: int) -> int | None:
        """The targetPort of the first Service port equal to ``port``, or ``None`` (istiod's resolvePorts)."""
        for p in self.ports:
            if p.port == port:
                return p.target_port
        return None


class EdgeLimits(_Model):
    """Edge limits of the exporter's ingress gateway, which istiod has no Gateway field for.

    The exporter's gateway is an edge proxy facing another organisation's network, and Envoy's defaults
    "are tailored for the service mesh use case" (Envoy, *Configuring Envoy as an edge proxy*): no
    connection limit, no request-headers timeout. istiod keeps them (it sets ``stream_idle_timeout: 0s``
    and no ``request_headers_timeout`` on gateway listeners; istio/istio#44329 proposed one, unmerged), and
    the Istio way to set them is an EnvoyFilter on the gateway (Istio's *Envoy Filter* reference;
    istio/istio#33623). meshbridge renders one, ``<gateway name>-edge-limits`` in the gateway's namespace,
    selecting the gateway pods and patching the HTTP connection manager of each exported port's listener
    (the targetPort, e.g. 8443).

    **On by default**, with the figures below: the link is reachable from the importers' network by
    anyone who can route to the load balancer, and a connection flood or a slowloris client costs the
    exporter its gateway before mutual TLS can help (the limits act after the handshake, on every peer,
    including a compromised importer). The defaults only bound what a legitimate importer never reaches:
    its egress gateway keeps one pooled connection per worker and sends a whole header block at once.
    ``enabled: false`` renders no EnvoyFilter (Envoy's and Istio's defaults then apply: no limit, 1 h
    idle, no headers timeout, 60 KiB of headers).
    """

    enabled: bool = Field(
        default=True,
        description=(
            "Render the gateway's EnvoyFilter. Default: on. The exporter's gateway is an edge proxy reachable "
            "from another network, and a connection flood or a slowloris client exhausts it after the TLS "
            "handshake, whoever the peer is (a compromised importer too); the defaults bound only what a "
            "legitimate importer's egress gateway never reaches (it pools one connection per worker and sends "
            "a header block in one write). ``false`` leaves Envoy's and Istio's defaults: no connection limit, "
            "1 h idle, no headers timeout, 60 KiB of headers."
        ),
    )
    max_connections: int = Field(
        default=10000,
        ge=1,
        le=1_000_000,
        description=(
            "Concurrent downstream connections, per gateway pod, that the listener of an exported port "
            "accepts for one exported host (Envoy's ``envoy.filters.network.connection_limit`` filter, "
            "inserted before the HTTP connection manager; it counts per filter chain, and each exported host "
            "is a filter chain of its own). Beyond it a new connection is closed before its TLS handshake "
            "(``connection_limit.exporter_edge.limited_connections``); established connections are served. "
            "Default 10000: the per-listener ``connection_limit`` of Envoy's edge best-practices example."
        ),
    )
    idle_timeout: float = Field(
        default=3600,
        gt=0,
        le=86400,
        description=(
            "Seconds a downstream HTTP connection may stay without an active request before the gateway "
            "closes it (the HCM's ``common_http_protocol_options.idle_timeout``; counter "
            "``downstream_cx_idle_timeout``). Default 3600 (1 h): Envoy's edge best-practices value. Keep it "
            "at or above the importers' upstream idle timeout (Istio's ``connectionPool.http.idleTimeout``, "
            "1 h by default): below it the exporter closes connections the egress still pools, and a request "
            "sent as the close arrives fails with 503 UC."
        ),
    )
    request_headers_timeout: float = Field(
        default=10,
        gt=0,
        le=3600,
        description=(
            "Seconds a client has to send a request's whole header block, from its first byte (the HCM's "
            "``request_headers_timeout``; Envoy answers 408 and counts ``downstream_rq_header_timeout``). "
            "It stops slowloris clients, which otherwise hold a connection for the idle timeout. Envoy "
            "recommends it for untrusted downstreams but gives no figure and leaves it off; default 10: the "
            "header read timeout of Apache's shipped ``mod_reqtimeout`` example (``header=10-20``), far above "
            "what an egress gateway needs (one write)."
        ),
    )
    max_request_headers_kb: int = Field(
        default=60,
        ge=1,
        le=8192,
        description=(
            "Largest request header block, in KiB (the HCM's ``max_request_headers_kb``); beyond it the "
            "gateway answers 431. Default 60: Envoy's own default, which Istio keeps, written out so the "
            "limit is visible and adjustable (Envoy allows up to 8192)."
        ),
    )


GATEWAY_API = CHANGES["gateway-api-frontend-validation"]
"""The Istio release whose Gateway API implementation the exporter's ``api: gateway-api`` needs."""


class IngressGateway(GatewayWorkload):
    """The exporter's ingress gateway: terminates the importers' mutual TLS."""

    namespace: DnsLabel = Field(
        default="istio-ingress", description=GatewayWorkload.model_fields["namespace"].description
    )
    name: DnsLabel = Field(default="istio-ingressgateway", description="Deployment and Service name.")
    labels: IngressLabels = Field(
        default_factory=lambda: {"app": "istio-ingressgateway", "istio": "ingressgateway"},
        description=GatewayWorkload.model_fields["labels"].description,
    )
    gateway: DnsLabel = Field(
        default="eastwestgateway", description=GatewayWorkload.model_fields["gateway"].description
    )
    address: Address | None = Field(
        default=None,
        description=(
            "The load-balancer host name or IP of this gateway's Service, which importers dial. Unset: "
            "``meshbridge apply`` discovers it from the Service status, the local twin names it "
            "``<name>.<namespace>.<mesh>.lb.local``; ``render`` and ``lint`` need it set."
        ),
    )
    limits: EdgeLimits = Field(
        default_factory=EdgeLimits,
        description=(
            "Edge limits (connection limit, idle and request-headers timeouts, header size), rendered as an "
            "EnvoyFilter on the gateway. Default: on, with Envoy's edge best-practice figures."
        ),
    )
    api: Literal["istio", "gateway-api"] = Field(
        default="istio",
        description=(
            "The API the exporter's routing is rendered in. ``istio`` (default): an Istio ``Gateway`` selecting "
            "this workload and a ``VirtualService`` per export, as in the article. ``gateway-api``: the "
            "Kubernetes Gateway API (Istio >= 1.28, its CRDs installed): a ``Gateway`` of class ``istio`` named "
            "``gateway``, which Istio deploys itself (Deployment and Service ``name``, the ``serviceAccount``, pods "
            "with ``labels``), with one HTTPS listener per export, client certificates validated against the "
            "importers' CA (``spec.tls.frontend``), an ``HTTPRoute`` per export and a ``BackendTLSPolicy`` for "
            "the TLS to the backend; no RBAC is needed for its Secrets. Its Service maps each port to itself: "
            "unless ``ports`` is given, the default ports do (80→80, 443→443). The importers' side stays Istio's "
            "API (docs/gateway-api.md)."
        ),
    )
    authorize_importers: bool = Field(
        default=True,
        description=(
            "Render an AuthorizationPolicy (ALLOW) on this gateway that admits, per export, only its importers' "
            "egress gateway identities (``source.principals``: the SPIFFE URI SAN of their client certificate) "
            "and only that export's host (``to.operation.hosts``, with any port); every other request gets 403 "
            "``RBAC: access denied``. Default: on, so an importer trusted for one export (its CA passes the TLS "
            "handshake) cannot call another mesh's export on the same gateway. ``false``: no policy; any peer "
            "whose certificate passes the handshake may call any exported host. An ALLOW policy denies every "
            "request it does not match, so a gateway that also serves other traffic needs its own ALLOW policy "
            "for that traffic, or this switch off."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _gateway_api_default_ports(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("api") == "gateway-api" and "ports" not in data:
            # Istio's deployment controller gives the Service each listener port, to the same pod port
            return {**data, "ports": [{"name": p.name, "port": p.port, "targetPort": p.port} for p in _default_ports()]}
        return data

    @model_validator(mode="after")
    def _gateway_api_ports(self) -> IngressGateway:
        if self.api != "gateway-api":
            return self
        moved = [p for p in self.ports if p.port != p.target_port]
        if moved:
            p = moved[0]
            raise ValueError(
                f"port {p.name!r} maps {p.port} to targetPort {p.target_port}, but with api: gateway-api Istio "
                f"deploys the gateway's Service itself, each listener port to the same pod port; set targetPort: "
                f"{p.port}"
            )
        return self


class EgressGateway(GatewayWorkload):
    """The importer's egress gateway: receives plain HTTP from apps and originates the mutual TLS."""

    namespace: DnsLabel = Field(
        default="istio-egress", description=GatewayWorkload.model_fields["namespace"].description
    )
    name: DnsLabel = Field(default="istio-egressgateway", description="Deployment and Service name.")
    labels: EgressLabels = Field(
        default_factory=lambda: {"app": "istio-egressgateway", "istio": "egressgateway"},
        description=GatewayWorkload.model_fields["labels"].description,
    )
    gateway: DnsLabel = Field(
        default="istio-egressgateway", description=GatewayWorkload.model_fields["gateway"].description
    )


class App(_Model):
    """An application workload of an importing mesh, used by the local twin and ``verify`` as the caller."""

    name: DnsLabel = Field(default="sleep", description="Deployment name (the article's ``sleep``).")
    namespace: DnsLabel = Field(default="sleep", description="Namespace of the app's pods.")
    labels: AppLabels = Field(
        default_factory=lambda: {"app": "sleep", "version": "v1"},
        description=(
            "Pod labels (matched against ``sourceLabels`` in VirtualService routes). Not empty: they select the "
            "app's pods."
        ),
    )


class IstioInstall(_Model):
    """The Istio control plane of a mesh."""

    version: IstioVersion = Field(
        default=CURRENT_ISTIO,
        description=(
            "Istio version running in the mesh. It selects the API version of rendered resources "
            "(``networking.istio.io/v1beta1`` before 1.22, ``v1`` from 1.22) and version-dependent data-plane "
            "behaviour in the local twin (automatic SNI from 1.21). Default: a supported release of the line "
            "meshbridge's translation is checked against with istiod's own code (``docs/fidelity.md``)."
        ),
    )
    revision: str | None = Field(
        default=None,
        description=(
            "Control-plane revision (``istio.io/rev``), e.g. ``1-17``. When set, gateway selectors and the "
            "app's pod labels carry ``istio.io/rev: <revision>``, as in the article."
        ),
    )
    pilot_env: dict[str, str] = Field(
        default_factory=lambda: {
            "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG": "true",
            "VERIFY_CERTIFICATE_AT_CLIENT": "true",
        },
        description=(
            "istiod environment (``components.pilot.k8s.env``). ``PILOT_FILTER_GATEWAY_CLUSTER_CONFIG=true`` "
            "sends a gateway only the clusters its bound VirtualServices reference (lint MB109). Default: the "
            "article's values."
        ),
    )
    proxy_metadata: dict[str, str] = Field(
        default_factory=lambda: {"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"},
        description=(
            "``meshConfig.defaultConfig.proxyMetadata``. DNS capture plus auto-allocation let apps resolve a "
            "made-up host such as ``lambda.external`` (lint MB101). Default: the article's values."
        ),
    )

    @property
    def minor(self) -> int:
        """The minor version number (17 for ``1.17.2``)."""
        m = _ISTIO_VERSION.match(self.version)
        assert m is not None  # validated
        return int(m.group(1))

    @property
    def networking_api_version(self) -> str:
        """``networking.istio.io/v1`` from Istio 1.22 on, ``networking.istio.io/v1beta1`` before."""
        return "networking.istio.io/v1" if CHANGES["networking-v1"].on(self.minor) else "networking.istio.io/v1beta1"

    @property
    def security_api_version(self) -> str:
        """``security.istio.io/v1`` from Istio 1.22 on, ``security.istio.io/v1beta1`` before."""
        return "security.istio.io/v1" if CHANGES["networking-v1"].on(self.minor) else "security.istio.io/v1beta1"


class IssuerRef(_Model):
    """An existing cert-manager ``Issuer`` or ``ClusterIssuer`` (a Certificate's ``spec.issuerRef``)."""

    name: Hostname = Field(description="The issuer's name, e.g. ``eks-mesh-ca``.")
    kind: Literal["Issuer", "ClusterIssuer"] = Field(
        default="Issuer",
        description=(
            "``Issuer``: namespaced, so it must exist in each gateway's namespace (where the Certificates are); "
            "``ClusterIssuer``: one for the whole cluster."
        ),
    )
    group: Hostname = Field(
        default="cert-manager.io",
        description="API group of the issuer (another group for an external issuer, e.g. ``awspca.cert-manager.io``).",
    )


class CertManager(_Model):
    """How cert-manager issues one mesh's gateway certificates (``spec.tls.issuer: cert-manager``).

    The peers trust the issuer's CA certificate (public), which meshbridge keeps in its state folder as it keeps a
    peer's: ``meshbridge certs import --mesh M --slot ca --cert CA.pem`` (no key).
    """

    issuer_ref: IssuerRef | None = Field(
        default=None,
        description=(
            "An existing issuer that signs the mesh's gateway certificates. Exactly one of ``issuerRef`` and "
            "``caSecret``."
        ),
    )
    ca_secret: Hostname | None = Field(
        default=None,
        description=(
            "Name of a Secret holding the mesh's CA (``tls.crt``, ``tls.key``) in each gateway's namespace: "
            "meshbridge renders a CA ``Issuer`` on it there (``meshbridge-<bridge>``), so the CA key stays in "
            "the cluster and meshbridge never reads it."
        ),
    )

    peer_trust: Literal["Secret", "Bundle"] = Field(
        default="Secret",
        description=(
            "How the peers' CA certificates reach this mesh's gateways, as ``<credentialName>-cacert`` (``ca.crt`` "
            "only). ``Secret``: meshbridge renders that Secret. ``Bundle``: it renders a trust-manager ``Bundle`` "
            "(``trust.cert-manager.io/v1alpha1``, cluster-scoped) of that name, which writes the Secret into the "
            "gateway namespaces; trust-manager must be allowed to write it (Helm: ``secretTargets.enabled`` and "
            "the name in ``secretTargets.authorizedSecrets``)."
        ),
    )

    @model_validator(mode="after")
    def _one_issuer(self) -> CertManager:
        if self.issuer_ref is not None and self.ca_secret is not None:
            raise ValueError(
                "issuerRef and caSecret are both set: cert-manager signs with one issuer; keep issuerRef to use an "
                "existing Issuer or ClusterIssuer, or caSecret to have meshbridge render a CA Issuer on that Secret"
            )
        return self


class Mesh(_Model):
    """One independent Istio mesh (one cluster, its own root of trust)."""

    context: str | None = Field(
        default=None,
        description=(
            "kubeconfig context of the cluster (``--context MESH=CONTEXT`` overrides it). Unset: the local twin only."
        ),
    )
    istio: IstioInstall = Field(default_factory=IstioInstall, description="The mesh's Istio control plane.")
    peer: bool = Field(
        default=False,
        description=(
            "The mesh belongs to another owner (two owners, ``meshbridge peer``): this spec holds only what its "
            "owner's offer or reply brings (trust domain, the gateway's address or identity, the exports) and "
            "this state folder only its CA certificate, trusted through ``peer accept`` or ``peer admit``. "
            "meshbridge issues nothing and renders nothing for it. Default ``false``: one owner holds both "
            "meshes and both CA keys (the single-spec mode)."
        ),
    )
    trust_domain: Hostname = Field(
        default="cluster.local",
        description=(
            "SPIFFE trust domain of the mesh; it appears in the client certificate's URI SAN. Give each mesh its "
            "own (e.g. ``gke.example.com``) so identities of two meshes never collide."
        ),
    )
    ingress_gateway: IngressGateway | None = Field(
        default=None, description="Required when the mesh exports a service."
    )
    egress_gateway: EgressGateway | None = Field(default=None, description="Required when the mesh imports a service.")
    dataplane: Literal["sidecar", "ambient"] = Field(
        default="sidecar",
        description=(
            "The data plane of an importing mesh. ``sidecar``: apps run Envoy sidecars and the egress gateway is "
            "an Istio ``Gateway`` on the ``egressGateway`` pods (the article). ``ambient`` (Istio 1.24 or later, "
            "ambient GA): apps run without sidecars, ztunnel carries their connections, and the egress gateway is a "
            "waypoint, a Gateway API ``Gateway`` of class ``istio-waypoint`` named ``egressGateway.name`` in "
            "``egressGateway.namespace``, which originates the mutual TLS (Istio's ambient *Egress gateways* "
            "guide). Default ``sidecar``: the article's mode, and the only one before 1.24."
        ),
    )
    credential_name: CredentialName | None = Field(
        default=None,
        description=(
            "Name of this mesh's gateway Secrets: the ingress gateway's Gateway ``tls.credentialName`` (what it "
            "serves and whom it trusts), the egress gateway's DestinationRule ``tls.credentialName`` (the client "
            "certificate it presents), the Secrets ``certs push`` and ``certs rotate`` write, the SDS names the "
            "local twin serves. Each mesh is run by its own team, which may already name its Secrets (e.g. "
            "``c2-mtls``); the other mesh never sees the name. Unset: ``spec.tls.credentialName``, one name for "
            "all meshes as in the article. Must not end in ``-cacert`` (lint MB203)."
        ),
    )
    apps: list[App] = Field(
        default_factory=list,
        description=(
            "Callers in this mesh for the local twin and ``verify`` (default for an importer: the article's ``sleep``)."
        ),
    )
    cert_manager: CertManager | None = Field(
        default=None,
        description=(
            "Who issues this mesh's gateway certificates when ``spec.tls.issuer`` is ``cert-manager`` (required "
            "then for each own mesh of the bridge; not allowed otherwise, nor in a ``peer: true`` mesh, whose owner "
            "issues its certificates)."
        ),
    )

    def callers(self) -> list[App]:
        """The apps, or the article's ``sleep`` app when none is declared."""
        return self.apps or [App()]

    @model_validator(mode="after")
    def _gateway_api_needs_istio(self) -> Mesh:
        ig = self.ingress_gateway
        if ig is not None and ig.api == "gateway-api" and not GATEWAY_API.on(self.istio.minor):
            raise ValueError(
                f"ingressGateway.api: gateway-api needs Istio {GATEWAY_API.release} or later (client-certificate "
                f"validation on a Gateway listener, spec.tls.frontend, and BackendTLSPolicy v1 on a ServiceEntry "
                f"arrived in {GATEWAY_API.release}), but istio.version is {self.istio.version!r}; upgrade Istio and "
                "set istio.version, or remove ingressGateway.api (the Istio Gateway and VirtualService work on "
                "every version)"
            )
        return self

    def pod_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """A pod's ``labels`` in this mesh, plus ``istio.io/rev: <revision>`` when it runs a revision (the one rule:
        the gateway Services and the rendered Gateways select these labels, the apps' pods carry them)."""
        out = dict(labels)
        if self.istio.revision:
            out.setdefault("istio.io/rev", self.istio.revision)
        return out


class BackendTLS(_Model):
    """How the exporter's ingress gateway reaches the backend (the article's ``dr-alb-ext``)."""

    mode: Literal["DISABLE", "SIMPLE"] = Field(
        default="SIMPLE",
        description="``SIMPLE``: TLS to the backend (the ALB's HTTPS listener); ``DISABLE``: plain HTTP.",
    )
    ca_file: str | None = Field(
        default=None,
        description=(
            "PEM file (relative to the bridge file) of the CA that signed the backend's certificate. Unset: "
            "the gateway verifies against the OS bundle (``VERIFY_CERTIFICATE_AT_CLIENT``), right for an ALB "
            "with a public ACM certificate."
        ),
    )
    sni: Hostname | None = Field(
        default=None,
        description=(
            "SNI sent to the backend. Default: the backend host. Without it, Istio ≥ 1.21 sends the request's "
            "Host (the exported host) as SNI and checks the backend certificate against it."
        ),
    )
    subject_alt_names: list[str] | None = Field(
        default=None,
        description="SANs the backend certificate must carry. Default: ``[<backend host>]``; ``[]`` disables the pin.",
    )


class LocalBackend(_Model):
    """The backend run by the local twin: a Lambda handler behind an emulated ALB."""

    handler: Handler = Field(
        description="``FILE.py:FUNCTION`` relative to the bridge file, e.g. ``handler.py:lambda_handler``."
    )
    multi_value_headers: bool = Field(
        default=False,
        description="Target group attribute ``lambda.multi_value_headers.enabled`` (AWS default: false).",
    )
    concurrency: int = Field(
        default=10,
        ge=0,
        le=1000,
        description=(
            "Reserved concurrency: environments at most; beyond it invocations are throttled (ALB 502). "
            "0 throttles all. Default: 10."
        ),
    )
    timeout: float = Field(
        default=3.0, gt=0, le=900, description="Function timeout in seconds (AWS default: 3, maximum 900)."
    )
    memory: int = Field(
        default=128,
        ge=128,
        le=10240,
        description="Memory size in MB, reported to the handler (AWS default: 128).",
    )


class Backend(_Model):
    """The service behind the exporter's gateway (the article's internal ALB)."""

    host: Hostname = Field(
        description="Host name the exporter's gateway dials, e.g. the internal ALB's DNS name. Exports of one mesh "
        "on one host share its ServiceEntry and DestinationRule (named after the first of them) and, in the local "
        "twin, the first one's ALB and Lambda; they must set the same ``port`` and ``tls``."
    )
    port: PortNumber = Field(default=443, description="Backend port (443: the ALB's HTTPS listener).")
    tls: BackendTLS = Field(default_factory=BackendTLS, description="TLS from the exporter gateway to the backend.")
    local: LocalBackend | None = Field(
        default=None,
        description="What the local twin runs as this backend. Unset: the local twin cannot serve this export.",
    )


def _import_host(value: str) -> str:
    if "." not in value:
        raise ValueError(
            f"{value!r} is a short name: a VirtualService reads it as '{value}.<its namespace>.svc.cluster.local' "
            "but a ServiceEntry as it stands, so the apps' calls would bypass the egress gateway; write the name "
            f"in full, e.g. '{value}.sleep.svc.cluster.local' (apps in namespace sleep still call "
            f"http://{value}/, through their DNS search path)"
        )
    return value


class ImportAs(_Model):
    """The name apps in the importing meshes call, when it is not the exported host (Istio's egress tasks and
    two-cluster posts: apps call ``http://hw:5000/`` while the exporter's gateway serves ``c2.example.com``)."""

    host: Annotated[Hostname, AfterValidator(_import_host)] = Field(
        description=(
            "Host apps call, e.g. ``hw.sleep.svc.cluster.local``: the importer's ServiceEntry and sidecar "
            "VirtualService name it, and the sidecar's route rewrites the request's authority (``Host``) to the "
            "exported ``host`` on the way to the egress gateway, so the SNI, the server certificate's DNS SAN and "
            "the exporter's Gateway keep the exported host. A full name: Istio reads a short one (``hw``) in a "
            "VirtualService as ``hw.<its namespace>.svc.cluster.local``; apps in namespace ``sleep`` still call "
            "``http://hw:<port>/`` through their DNS search path. Pick a name no Kubernetes Service has."
        )
    )


class Export(_Model):
    """One service shared by one mesh (``from``) with others (``to``)."""

    name: DnsLabel = Field(description="Export name; it prefixes the rendered resources (``vs-<name>``).")
    host: Hostname = Field(
        description=(
            "Exported host: the SNI between the gateways, the server certificate's DNS SAN, the exporter's "
            "Gateway and VirtualService host, and the name apps call (``lambda.external``) unless ``importAs`` "
            "names another."
        )
    )
    import_as: ImportAs | None = Field(
        default=None,
        description=(
            "The name apps in the importing meshes call, when it differs from ``host``. Unset: apps call ``host``, "
            "as in the article."
        ),
    )
    port: PortNumber = Field(
        default=80,
        description=(
            "Port apps in the importing meshes call (plain HTTP): the importer's ServiceEntry port and the port "
            "its sidecar route matches. Not one of Istio's own ports "
            f"({_ISTIO_PORT_LIST}): the proxies use them themselves."
        ),
    )
    egress_gateway_port: PortNumber | None = Field(
        default=None,
        examples=[80],
        description=(
            "Port of the importer egress gateway's Service that the apps' sidecars send the export's traffic to "
            "(a port of egressGateway.ports): the egress Gateway server's port, bound by istiod on that Service "
            "port's targetPort (80→8080 in Istio's chart). Apps may call any ``port`` (5000) while the Service "
            "exposes only 80 and 443, as in Istio's egress tasks. Unset: ``port``, which the Service must then "
            "expose. Not one of Istio's own ports (see ``port``)."
        ),
    )
    protocol: Literal["HTTP"] = Field(
        default="HTTP",
        description="Protocol apps speak on ``port``. Only ``HTTP``: the egress gateway originates the TLS.",
    )
    gateway_port: PortNumber = Field(
        default=443,
        description=(
            "Port of the exporter ingress gateway's MUTUAL server (the Service port importers dial); a port of "
            "the exporter's ingressGateway.ports, not one of Istio's own ports (see ``port``)."
        ),
    )
    from_: DnsLabel = Field(alias="from", description="Exporting mesh (a key of ``spec.meshes``).")
    to: list[DnsLabel] = Field(min_length=1, description="Importing meshes (keys of ``spec.meshes``).")
    declared_backend: Backend | None = Field(
        default=None,
        alias="backend",
        description=(
            "The service behind the exporter gateway. Required for an export from one of this spec's own meshes; "
            "an export from a ``peer: true`` mesh (two owners) may leave it out: it is its owner's."
        ),
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        examples=[30],
        description=(
            "Request timeout at the exporter gateway, in seconds: the rendered VirtualService route's "
            "``timeout``, after which the gateway answers 504 (``UT``) instead of waiting for the backend. "
            "Unset: Istio's default, no route timeout (``0s``), so a hanging backend holds the importer's "
            "request as long as the backend's own limit (a Lambda's timeout). Set it a little above the "
            "backend's own timeout."
        ),
    )

    @property
    def backend(self) -> Backend:
        """``backend``: present for every export from an own mesh (the spec refuses one without).

        Raises:
            SpecError: the export is a peer's (two owners) and its copy here gives no backend.
        """
        if self.declared_backend is None:
            raise SpecError(
                f"export {self.name!r} has no backend: it comes from mesh {self.from_!r}, another owner's (peer: "
                "true), whose spec holds it. Fix: add its backend (and backend.local for the local twin) to this "
                "copy of the export, or run this command in the exporter's folder"
            )
        return self.declared_backend

    @property
    def import_host(self) -> str:
        """The host apps in the importing meshes call: ``importAs.host``, else ``host``."""
        return self.import_as.host if self.import_as is not None else self.host

    @property
    def egress_port(self) -> int:
        """The egress gateway Service port the importers' sidecars send to: ``egressGatewayPort``, else ``port``."""
        return self.egress_gateway_port if self.egress_gateway_port is not None else self.port

    @field_validator("port", "gateway_port", "egress_gateway_port")
    @classmethod
    def _no_istio_port(cls, value: int | None, info: ValidationInfo) -> int | None:
        used = None if value is None else _istio_port_problem(value)
        if used is None:
            return value
        if info.field_name == "egress_gateway_port":
            raise ValueError(
                f"{used}: the egress gateway's proxy serves it itself, so a Gateway server there never sees the "
                "apps' traffic (503 or 404); pick another port of egressGateway.ports, e.g. 80"
            )
        if info.field_name == "gateway_port":
            raise ValueError(
                f"{used}: the exporter's ingress gateway serves it itself, so a Gateway server there never sees "
                "the importers' traffic (they get 503 or 404); pick another port, e.g. 443 or 8443, and list it "
                "in ingressGateway.ports"
            )
        raise ValueError(
            f"{used}: Istio's proxies use it themselves (the apps' sidecars, the egress gateway), so the apps' "
            "calls on it never reach the export's route (503 or 404); pick another port, e.g. 80 or 8080"
        )


class TLSSettings(_Model):
    """Certificates between the gateways."""

    credential_name: CredentialName = Field(
        default="mtls-credential",
        description=(
            "Name of the gateway Secrets (Gateway ``tls.credentialName`` and DestinationRule "
            "``tls.credentialName``) in every mesh that does not name its own (``meshes.<name>.credentialName``). "
            "Must not end in ``-cacert``: istiod reserves that suffix (lint MB203). Default: the article's name."
        ),
    )
    key_type: Literal["ECDSA_P256", "RSA_2048"] = Field(
        default="ECDSA_P256",
        description=(
            "Key algorithm of CAs and leaves. ECDSA P-256 signs ~14× faster than RSA-2048 (the article's choice)."
        ),
    )
    leaf_validity_days: int = Field(
        default=90, ge=1, le=366, description="Leaf lifetime in days (Mozilla: 90 recommended, 366 at most)."
    )
    ca_validity_days: int = Field(default=365, ge=1, le=3650, description="CA lifetime in days.")
    issuer: Literal["meshbridge", "cert-manager"] = Field(
        default="meshbridge",
        description=(
            "Who issues the gateway certificates. ``meshbridge``: ``certs issue`` signs them with CAs in the local "
            "state folder and ``render`` writes them as Secrets. ``cert-manager``: ``render`` emits a cert-manager "
            "``Certificate`` per gateway (signed by each mesh's ``certManager`` issuer, in the cluster) and a "
            "``<credentialName>-cacert`` Secret with the peers' CA certificates; no key leaves a cluster, and the "
            "state folder holds only the CA certificates (``certs import --slot ca``)."
        ),
    )
    min_protocol_version: Literal["TLSV1_2", "TLSV1_3"] = Field(
        default="TLSV1_2",
        description="Minimum TLS version of the exporter gateway's server (never below 1.2).",
    )
    pin_subject_alt_names: bool = Field(
        default=True,
        description=(
            "Pin peers by SAN: the importer checks the server's DNS SAN, the exporter checks the importer's "
            "SPIFFE URI. ``false``: neither the DestinationRule nor the Gateway carries ``subjectAltNames``, and "
            "``certs import``, ``certs check``, ``certs issue`` and ``lint`` demand no SAN of a leaf (meshbridge "
            "still issues its leaves with theirs). The article pins nothing (any certificate from the CA passes)."
        ),
    )

    @model_validator(mode="after")
    def _leaf_within_ca(self) -> TLSSettings:
        if self.leaf_validity_days > self.ca_validity_days:
            raise ValueError(
                f"leafValidityDays ({self.leaf_validity_days}) is longer than caValidityDays "
                f"({self.ca_validity_days}): a leaf cannot outlive the CA that signs it; shorten leafValidityDays "
                "or lengthen caValidityDays"
            )
        return self


class AwsFunction(_Model):
    """The Lambda function ``meshbridge aws deploy`` creates (AWS's own parameter names, ``CreateFunction``)."""

    handler: Handler = Field(
        description=(
            "``FILE.py:FUNCTION`` relative to the bridge file. The file is zipped alone at the zip root, so "
            "Lambda's ``Handler`` becomes ``<file stem>.<FUNCTION>``; it may import only the runtime's modules."
        )
    )
    function_name: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$", description="``FunctionName`` (letters, digits, '-', '_'; ≤ 64)."
    )
    runtime: str = Field(
        default="python3.12",
        pattern=r"^python3\.\d+$",
        description="``Runtime``, e.g. python3.12 (a Python runtime: the handler is checked as Python).",
    )
    memory_size: int = Field(
        default=128, ge=128, le=10240, description="``MemorySize`` in MB (AWS default 128, the smallest)."
    )
    timeout: int = Field(
        default=3,
        ge=1,
        le=900,
        description="``Timeout`` in seconds (AWS default 3, maximum 900; behind an ALB the client waits that long).",
    )
    role_name: str | None = Field(
        default=None,
        pattern=r"^[\w+=,.@-]{1,64}$",
        description=(
            "``RoleName`` of the execution role meshbridge creates for the function (trust: "
            "lambda.amazonaws.com; policy: AWSLambdaBasicExecutionRole, for CloudWatch Logs). Default: "
            "``<functionName>-role``."
        ),
    )

    @property
    def execution_role_name(self) -> str:
        """The role name, with the default applied."""
        return self.role_name or f"{self.function_name}-role"

    @model_validator(mode="after")
    def _role_name_fits(self) -> AwsFunction:
        if self.role_name is None and len(self.function_name) > 59:
            raise ValueError(
                f"the default role name {self.function_name + '-role'!r} is longer than IAM's 64 characters; "
                "set function.roleName"
            )
        return self


_SUBNET_ID = r"^subnet-[0-9a-f]+$"
_SG_ID = r"^sg-[0-9a-f]+$"


class AwsSection(_Model):
    """The AWS side of an export: the Lambda, its internal ALB, target group and listeners.

    The ALB gets an HTTP listener on port 80 and, when ``certificateArn`` is set, an HTTPS listener on port
    443, both forwarding to the target group; the export's ``backend`` must dial one of them.
    """

    region: AwsRegion | None = Field(
        default=None,
        description=(
            "AWS region, e.g. ``us-east-1``. ``--region`` overrides it; unset, the standard AWS configuration "
            "decides (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's ``region``)."
        ),
    )
    export: DnsLabel | None = Field(
        default=None,
        description="The export whose backend this ALB is. Default: the bridge's only export.",
    )
    load_balancer_name: str = Field(
        default="meshbridge-alb",
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$",
        description="``Name`` of the internal ALB (≤ 32 characters, not starting with 'internal-').",
    )
    target_group_name: str = Field(
        default="meshbridge-lambda",
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$",
        description="``Name`` of the target group of type ``lambda`` (≤ 32 characters).",
    )
    vpc_id: str = Field(
        pattern=r"^vpc-[0-9a-f]+$", description="``VpcId`` the ALB lives in; every subnet must be in it."
    )
    subnet_ids: list[Annotated[str, Field(pattern=_SUBNET_ID)]] = Field(
        min_length=2,
        description="``Subnets`` of the internal ALB: at least two, in at least two Availability Zones.",
    )
    security_group_ids: list[Annotated[str, Field(pattern=_SG_ID)]] = Field(
        default_factory=list,
        description=(
            "``SecurityGroups`` of the ALB. Empty: AWS attaches the VPC's default security group, and "
            "meshbridge then leaves the ALB's groups as they are."
        ),
    )
    certificate_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:(acm|iam):",
        description=(
            "``CertificateArn`` of the HTTPS listener: an ACM certificate in the ALB's region (or an IAM "
            "server certificate). Unset: HTTP listener only."
        ),
    )
    ssl_policy: str | None = Field(
        default=None,
        description=(
            "``SslPolicy`` of the HTTPS listener, e.g. ``ELBSecurityPolicy-TLS13-1-2-2021-06``. Unset: AWS's "
            "default, and meshbridge leaves the listener's policy as it is."
        ),
    )
    multi_value_headers: bool = Field(
        default=False,
        description="Target group attribute ``lambda.multi_value_headers.enabled`` (AWS default: false).",
    )
    function: AwsFunction = Field(description="The Lambda function.")

    @model_validator(mode="after")
    def _distinct_ids(self) -> AwsSection:
        if self.load_balancer_name.lower().startswith("internal-"):
            raise ValueError("loadBalancerName must not start with 'internal-' (AWS reserves it); rename the ALB")
        if len(set(self.subnet_ids)) != len(self.subnet_ids):
            raise ValueError("subnetIds lists a subnet twice; list each subnet once")
        if len(set(self.security_group_ids)) != len(self.security_group_ids):
            raise ValueError("securityGroupIds lists a security group twice; list each group once")
        return self


class BridgeSpec(_Model):
    """``spec`` of a Bridge."""

    meshes: dict[DnsLabel, Mesh] = Field(min_length=2, description="The meshes, by name (at least two).")
    exports: list[Export] = Field(min_length=1, description="The services shared between the meshes.")
    tls: TLSSettings = Field(default_factory=TLSSettings, description="Certificates between the gateways.")
    aws: AwsSection | None = Field(default=None, description="Provisioning of the AWS side (``meshbridge aws``).")


class Metadata(_Model):
    """``metadata`` of a Bridge."""

    name: DnsLabel = Field(description="Bridge name; rendered objects carry ``meshbridge.io/bridge: <name>``.")


class Bridge(_Model):
    """A bridge file: ``apiVersion``, ``kind``, ``metadata``, ``spec``."""

    api_version: Literal["meshbridge.io/v1alpha1"] = Field(description="Always ``meshbridge.io/v1alpha1``.")
    kind: Literal["Bridge"] = Field(description="Always ``Bridge``.")
    metadata: Metadata = Field(description="The bridge's name.")
    spec: BridgeSpec = Field(description="Meshes, exports, TLS settings and the optional AWS section.")

    # -- cross-field rules -------------------------------------------------------------------------------

    @model_validator(mode="after")
    def _check_references(self) -> Bridge:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        meshes = self.spec.meshes
        names: set[str] = set()
        hosts: dict[tuple[str, str], str] = {}
        for i, ex in enumerate(self.spec.exports):
            at: tuple[str | int, ...] = ("spec", "exports", i)
            if ex.name in names:
                problems.append(((*at, "name"), f"export name {ex.name!r} is used twice; names must be unique"))
            names.add(ex.name)
            if ex.from_ not in meshes:
                problems.append(((*at, "from"), f"mesh {ex.from_!r} is not defined in spec.meshes ({_known(meshes)})"))
            else:
                ig = meshes[ex.from_].ingress_gateway
                if ig is None:
                    problems.append(
                        (
                            (*at, "from"),
                            f"mesh {ex.from_!r} exports {ex.host!r} but has no ingressGateway; add one",
                        )
                    )
                elif ig.target_port(ex.gateway_port) is None:
                    problems.append(
                        (
                            (*at, "gatewayPort"),
                            f"the ingress gateway Service {ig.namespace}/{ig.name} of mesh {ex.from_!r} exposes no "
                            f"port {ex.gateway_port} (it has {sorted(p.port for p in ig.ports)}); add it to "
                            "ingressGateway.ports or change gatewayPort",
                        )
                    )
            if ex.declared_backend is None and ex.from_ in meshes and not meshes[ex.from_].peer:
                problems.append(
                    (
                        (*at, "backend"),
                        f"export {ex.name!r} comes from mesh {ex.from_!r}, which this spec owns, and has no backend; "
                        "add backend.host (what its ingress gateway dials, e.g. the internal ALB's DNS name). Only "
                        "an export from a 'peer: true' mesh may leave it out",
                    )
                )
            problems += _import_problems(meshes, ex, at, hosts)
            if ex.import_host == ex.host and ex.import_as is not None:
                problems.append(
                    (
                        (*at, "importAs", "host"),
                        f"importAs.host is the exported host {ex.host!r} itself; remove importAs (apps call host "
                        "without it)",
                    )
                )
            twice = sorted({m for m in ex.to if ex.to.count(m) > 1})
            if twice:
                once = ", ".join(dict.fromkeys(ex.to))
                problems.append(((*at, "to"), f"mesh {twice[0]!r} is listed twice; list each mesh once: to: [{once}]"))
        problems.extend(_ambient_problems(self))
        problems.extend(_shared_backend_problems(self))
        if all(m.peer for m in meshes.values()):
            problems.append(
                (
                    ("spec", "meshes"),
                    "every mesh is marked 'peer: true', so this owner holds none; remove 'peer' from your own mesh",
                )
            )
        problems.extend(_cert_manager_problems(self))
        if self.spec.aws is not None:
            problems += _aws_problems(self, self.spec.aws, names)
        if problems:
            raise CrossFieldError(problems)
        return self

    # -- queries ---------------------------------------------------------------------------------------

    def export(self, name: str) -> Export:
        """The export called ``name``; ``KeyError`` if there is none."""
        return self.exports_by_name[name]

    @cached_property
    def exports_by_name(self) -> dict[str, Export]:
        """The exports by name (names are unique)."""
        return {ex.name: ex for ex in self.spec.exports}

    def exports_from(self, mesh: str) -> list[Export]:
        """Exports whose ``from`` is ``mesh``, in spec order."""
        return [ex for ex in self.spec.exports if ex.from_ == mesh]

    def exports_to(self, mesh: str) -> list[Export]:
        """Exports that ``mesh`` imports, in spec order."""
        return [ex for ex in self.spec.exports if mesh in ex.to]

    def backend_owner(self, ex: Export) -> Export:
        """The export whose name the backend's ServiceEntry and DestinationRule carry: the first export of
        ``ex``'s mesh (in spec order) with its ``backend.host``. Exports on one backend share them, as istiod
        builds one cluster per host and port (the spec refuses exports on one host that disagree)."""
        return self._backend_owners[(ex.from_, ex.backend.host)]

    @cached_property
    def _backend_owners(self) -> dict[tuple[str, str], Export]:
        """(mesh, backend host) → the first export of that mesh on that host, in spec order."""
        owners: dict[tuple[str, str], Export] = {}
        for e in self.spec.exports:
            if e.declared_backend is not None:
                owners.setdefault((e.from_, e.declared_backend.host), e)
        return owners

    @property
    def own_meshes(self) -> list[str]:
        """The meshes this spec's owner holds (not ``peer: true``), in spec order: those meshbridge issues
        certificates for and renders."""
        return [name for name, m in self.spec.meshes.items() if not m.peer]

    @property
    def issued_by_cert_manager(self) -> bool:
        """Whether cert-manager issues the gateway certificates in the clusters (``spec.tls.issuer``), rather than
        meshbridge from its local store."""
        return self.spec.tls.issuer == "cert-manager"

    def credential_name(self, mesh: str) -> str:
        """The name of ``mesh``'s gateway Secrets: its own ``credentialName``, else ``spec.tls.credentialName``."""
        return self.spec.meshes[mesh].credential_name or self.spec.tls.credential_name

    def aws_export(self) -> Export:
        """The export the ``aws`` section provisions (its own ``export``, or the only one)."""
        assert self.spec.aws is not None
        return self.export(self.spec.aws.export) if self.spec.aws.export else self.spec.exports[0]


def _import_problems(
    meshes: dict[str, Mesh], ex: Export, at: tuple[str | int, ...], hosts: dict[tuple[str, str], str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with each mesh ``ex`` is exported to: not defined, the exporter itself, no egress gateway or
    port, a host it already imports (``hosts``: (mesh, host) → export, filled here)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for j, dest in enumerate(ex.to):
        if dest in ex.to[:j]:
            continue  # listed twice: said once, on spec.exports[].to
        if dest not in meshes:
            problems.append(((*at, "to", j), f"mesh {dest!r} is not defined in spec.meshes ({_known(meshes)})"))
            continue
        if dest == ex.from_:
            problems.append(((*at, "to", j), f"mesh {dest!r} cannot import its own export"))
            continue
        eg = meshes[dest].egress_gateway
        if eg is None:
            problems.append(
                (
                    (*at, "to", j),
                    f"mesh {dest!r} imports {ex.host!r} but has no egressGateway; add one",
                )
            )
        elif meshes[dest].dataplane == "sidecar" and eg.target_port(ex.egress_port) is None:
            problems.append(_egress_port_problem(ex, at, dest, eg))  # a waypoint listens on HBONE only
        for host, field in {ex.import_host: ("importAs", "host"), ex.host: ("host",)}.items():
            if (dest, host) in hosts:
                problems.append(
                    (
                        (*at, *field),
                        f"mesh {dest!r} imports host {host!r} twice (also from export {hosts[(dest, host)]!r})",
                    )
                )
        for host in (ex.host, ex.import_host):
            hosts[(dest, host)] = ex.name
    return problems


def _aws_problems(bridge: Bridge, aws: AwsSection, names: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with ``spec.aws`` (``aws``): which export its ALB serves (``names``: the exports), and its
    listeners."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if aws.export is None and len(bridge.spec.exports) != 1:
        problems.append(
            (
                ("spec", "aws", "export"),
                "the bridge has several exports; name the one this ALB serves",
            )
        )
    elif aws.export is not None and aws.export not in names:
        problems.append((("spec", "aws", "export"), f"export {aws.export!r} is not defined in spec.exports"))
    else:
        problems.extend(_alb_listener_problems(bridge))
    return problems


def _egress_port_problem(
    ex: Export, at: tuple[str | int, ...], dest: str, eg: EgressGateway
) -> tuple[tuple[str | int, ...], str]:
    """The export's egress gateway port is not a port of the importer's egress gateway Service."""
    has = sorted(p.port for p in eg.ports)
    where = f"the egress gateway Service {eg.namespace}/{eg.name} of mesh {dest!r}"
    usable = [p for p in has if p not in ISTIO_PORTS]
    if ex.egress_gateway_port is not None:
        return (
            (*at, "egressGatewayPort"),
            f"{where} exposes no port {ex.egress_port} (it has {has}); add it to egressGateway.ports"
            + (f" or set egressGatewayPort to one of its ports, e.g. {usable[0]}" if usable else ""),
        )
    return (
        (*at, "port"),
        f"{where} exposes no port {ex.port} (it has {has}), and without egressGatewayPort the apps' port is also "
        "the egress gateway's; "
        + (
            f"set egressGatewayPort to one of its ports, e.g. {usable[0]} (apps keep calling {ex.port}), or "
            if usable
            else ""
        )
        + f"add {ex.port} to egressGateway.ports",
    )


def _cert_manager_problems(bridge: Bridge) -> list[tuple[tuple[str | int, ...], str]]:
    """``spec.tls.issuer`` and each mesh's ``certManager`` agree (see :class:`CertManager`)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    cert_manager = bridge.issued_by_cert_manager
    for name, mesh in bridge.spec.meshes.items():
        at: tuple[str | int, ...] = ("spec", "meshes", name, "certManager")
        cm = mesh.cert_manager
        if cm is None:
            if cert_manager and not mesh.peer and (bridge.exports_from(name) or bridge.exports_to(name)):
                problems.append(
                    (
                        at[:-1],
                        f"spec.tls.issuer is cert-manager but mesh {name!r} has no certManager; add certManager with "
                        "issuerRef (an existing Issuer or ClusterIssuer) or caSecret (a CA Secret in the gateway "
                        "namespaces)",
                    )
                )
        elif not cert_manager:
            problems.append(
                (
                    at,
                    "certManager is set but spec.tls.issuer is 'meshbridge' (meshbridge issues from its local "
                    "store); set spec.tls.issuer: cert-manager, or remove certManager",
                )
            )
        elif mesh.peer:
            problems.append(
                (
                    at,
                    f"mesh {name!r} is another owner's (peer: true): its owner issues its certificates and "
                    "'peer accept' or 'peer admit' brings its CA; remove certManager",
                )
            )
        elif cm.issuer_ref is None and cm.ca_secret is None:
            problems.append(
                (
                    at,
                    f"mesh {name!r} names no issuer; set issuerRef (an existing Issuer or ClusterIssuer) or "
                    "caSecret (a CA Secret in the gateway namespaces, for a CA Issuer meshbridge renders)",
                )
            )
    return problems


AMBIENT = CHANGES["ambient-ga"]
"""The first Istio release with ambient mode GA (waypoints, ``istio.io/use-waypoint``)."""


def _shared_backend_problems(bridge: Bridge) -> list[tuple[tuple[str | int, ...], str]]:
    """Exports of one mesh on one ``backend.host`` that disagree on its port or TLS: they share one backend
    ServiceEntry and DestinationRule (istiod keeps one cluster per host and port in a namespace)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, ex in enumerate(bridge.spec.exports):
        if ex.declared_backend is None:
            continue
        first = bridge.backend_owner(ex)
        if first is ex:
            continue
        if (ex.backend.port, ex.backend.tls) != (first.backend.port, first.backend.tls):
            problems.append(
                (
                    ("spec", "exports", i, "backend"),
                    f"exports {first.name!r} and {ex.name!r} of mesh {ex.from_!r} both reach backend "
                    f"{ex.backend.host!r} but disagree on its port or tls ({_port_and_tls(first.backend)} vs "
                    f"{_port_and_tls(ex.backend)}); they share one ServiceEntry and DestinationRule for that "
                    f"host, so give {ex.name!r} the same backend.port and backend.tls as {first.name!r}",
                )
            )
    return problems


def _port_and_tls(backend: Backend) -> str:
    tls = backend.tls.model_dump(mode="json", by_alias=True, exclude_none=True)
    return f"port {backend.port}, tls {tls}"


def _ambient_problems(bridge: Bridge) -> list[tuple[tuple[str | int, ...], str]]:
    """``dataplane: ambient`` on a mesh it does not apply to: one before 1.24, one that imports nothing, an
    import through ``importAs`` (the waypoint routes by the called host; no route rewrites it yet)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, mesh in bridge.spec.meshes.items():
        if mesh.dataplane != "ambient":
            continue
        at = ("spec", "meshes", name, "dataplane")
        if not AMBIENT.on(mesh.istio.minor):
            problems.append(
                (
                    at,
                    f"mesh {name!r} runs Istio {mesh.istio.version}, before ambient mode (GA in {AMBIENT.release}, "
                    f"which made a waypoint the egress gateway); set istio.version to {AMBIENT.release} or later, "
                    "or remove dataplane (sidecar)",
                )
            )
        imports = bridge.exports_to(name)
        if not imports:
            problems.append(
                (
                    at,
                    f"mesh {name!r} imports no service, and dataplane: ambient only changes how a mesh imports (its "
                    "egress gateway becomes a waypoint); remove dataplane, or list the mesh in an export's 'to'",
                )
            )
        for ex in imports:
            if ex.import_as is not None:
                i = bridge.spec.exports.index(ex)
                problems.append(
                    (
                        ("spec", "exports", i, "importAs"),
                        f"mesh {name!r} imports {ex.host!r} with dataplane: ambient, whose waypoint routes by the "
                        f"called host and rewrites none, so {ex.import_host!r} would reach the exporter under a "
                        f"host it does not serve; remove importAs (apps call {ex.host!r}) or use dataplane: sidecar",
                    )
                )
    return problems


class CrossFieldError(ValueError):
    """Raised inside validation with (field path, problem) pairs; the loader turns them into SpecIssues."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(p for _, p in problems))
        self.problems = problems


def _alb_listener_problems(bridge: Bridge) -> list[tuple[tuple[str | int, ...], str]]:
    """The export's backend must dial a listener ``meshbridge aws deploy`` creates (80/HTTP, 443/HTTPS)."""
    aws = bridge.spec.aws
    assert aws is not None
    ex = bridge.aws_export()
    if ex.declared_backend is None:
        return []  # refused as a missing backend, or a peer's export, which spec.aws cannot provision
    i = bridge.spec.exports.index(ex)
    at: tuple[str | int, ...] = ("spec", "exports", i, "backend")
    port, mode = ex.backend.port, ex.backend.tls.mode
    if port == 443 and mode == "SIMPLE":
        if aws.certificate_arn is None:
            return [
                (
                    (*at, "port"),
                    f"export {ex.name!r} dials the ALB's HTTPS listener (443) but spec.aws has no certificateArn, "
                    "so the ALB gets no HTTPS listener; set spec.aws.certificateArn, or use backend port 80 with "
                    "tls.mode DISABLE",
                )
            ]
        return []
    if port == 80 and mode == "DISABLE":
        return []
    return [
        (
            (*at, "port"),
            f"export {ex.name!r} dials port {port} with tls.mode {mode}, but the ALB meshbridge creates listens "
            "on 443 (HTTPS) and 80 (HTTP); use port 443 with tls.mode SIMPLE, or port 80 with tls.mode DISABLE",
        )
    ]


def _known(meshes: dict[str, Mesh]) -> str:
    return "defined: " + ", ".join(sorted(meshes)) if meshes else "none defined"
