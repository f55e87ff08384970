"""The peering offer and reply (pure): what two owners exchange so that neither ever holds the other's keys.

The exporter's owner writes a ``PeeringOffer``; the importer's owner checks it and answers with a
``PeeringReply``; the exporter's owner checks that and trusts the importer's CA. The anchors: Consul cluster
peering's peering token, Skupper's ``AccessGrant``/``AccessToken`` (expiring), OpenShift Service Mesh
federation's exchange of root certificates and addresses only. Each document is shaped the Kubernetes way::

    apiVersion: meshbridge.io/v1alpha1
    kind: PeeringOffer                 # or PeeringReply
    metadata: {name: <bridge name>}
    spec:
      exporter:                        # a reply: importer (mesh, trustDomain, identity, caCertificate, ...)
        mesh: eks
        trustDomain: eks.example.com
        address: ingress.eks.example.com      # what the importer's egress gateway dials
        caCertificate: <PEM>           # the CA that signed this document; the peer's gateways trust it
        nextCaCertificate: <PEM>       # only during a CA rollover (stage 1 on): trusted beside it
      exports: [{name, host, gatewayPort, to: [gke]}]
      accepts: [{mesh: gke, identity: spiffe://gke.example.com/ns/istio-egress/sa/...}]
      expires: "2026-12-07T12:00:00Z"  # a reply carries its offer's
    signature:
      algorithm: ECDSA-SHA256          # or RSA-SHA256
      value: <base64>                  # over the canonical JSON of apiVersion, kind, metadata, spec

The canonical form is JSON with sorted keys, no spaces, UTF-8: what YAML reformatting cannot change. No
private key is ever part of a document; only certificates (``caCertificate``) cross.

Checks, in this order, each with its own error (:class:`~meshbridge.errors.PkiError`): the shape; the CA
certificate inside is a CA and its fingerprint is the one the receiver was told out of band; the signature
(a changed byte anywhere in ``spec`` or ``metadata`` fails it: *tampered*); the expiry. Then the content is
compared with the receiver's own spec (:func:`offer_problems`, :func:`reply_problems`), each difference
naming the field to set.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from meshbridge.errors import PkiError, SpecError
from meshbridge.pki import identities
from meshbridge.pki.checks import check_ca
from meshbridge.pki.signing import fingerprint, normalize_fingerprint, sign, verify
from meshbridge.pki.x509 import CertBundle, parse_certificate
from meshbridge.render.manifests import NoAliasDumper
from meshbridge.spec.models import API_VERSION, Bridge

Kind = Literal["PeeringOffer", "PeeringReply"]
_SIDE: dict[Kind, str] = {"PeeringOffer": "exporter", "PeeringReply": "importer"}


@dataclass(frozen=True)
class OfferedExport:
    """One export of an offer: its name, the host the exporter's gateway serves (SNI, server SAN) and port."""

    name: str
    host: str
    gateway_port: int
    to: tuple[str, ...]


@dataclass(frozen=True)
class Peer:
    """The side that signed a document: its mesh, trust domain, CA (and next CA), and what only one side has.

    ``address`` is the exporter's ingress gateway address (an offer); ``identity`` the importer's egress
    gateway SPIFFE ID (a reply).
    """

    mesh: str
    trust_domain: str
    ca: CertBundle
    next_ca: CertBundle | None
    address: str = ""
    identity: str = ""

    @property
    def fingerprint(self) -> str:
        """The CA certificate's fingerprint (what the other owner pins)."""
        return fingerprint(self.ca)


@dataclass(frozen=True)
class Offer:
    """A checked ``PeeringOffer``."""

    bridge: str
    exporter: Peer
    exports: tuple[OfferedExport, ...]
    accepts: dict[str, str]  # importing mesh -> the identity (SPIFFE ID) the exporter admits
    expires: dt.datetime


@dataclass(frozen=True)
class Reply:
    """A checked ``PeeringReply``: the importer, and the exporting mesh and CA whose offer it answers."""

    bridge: str
    importer: Peer
    offer_exporter: str
    offer_fingerprint: str
    expires: dt.datetime


# -- writing -------------------------------------------------------------------------------------------------


def make_offer(
    bridge: Bridge, mesh: str, peer: str, ca: CertBundle, next_ca: CertBundle | None, expires: dt.datetime
) -> dict[str, Any]:
    """The signed offer of ``mesh`` (own) to ``peer``: the exports from ``mesh`` that ``peer`` imports.

    Args:
        bridge: the exporter's spec.
        mesh: the exporting mesh (own; its CA key signs).
        peer: the importing mesh (``peer: true``).
        ca: ``mesh``'s current CA, with its key.
        next_ca: the CA being rolled in (certificate only is used), or ``None``.
        expires: when the offer (and any reply to it) stops being accepted (UTC).

    Raises:
        SpecError: ``mesh`` exports nothing to ``peer``, or its ingress gateway has no ``address``.
        PkiError: ``ca`` holds no usable key.
    """
    exports = [ex for ex in bridge.exports_from(mesh) if peer in ex.to]
    if not exports:
        raise SpecError(f"mesh {mesh!r} exports nothing to {peer!r}. Fix: add {peer!r} to an export's 'to'")
    ig = bridge.spec.meshes[mesh].ingress_gateway
    assert ig is not None  # validated: an exporting mesh has one
    if ig.address is None:
        raise SpecError(
            f"mesh {mesh!r}: ingressGateway.address is unset, and the importer's egress gateway needs it to dial "
            f"yours. Fix: set spec.meshes.{mesh}.ingressGateway.address (its load balancer's name or IP)"
        )
    m = bridge.spec.meshes[mesh]
    eg = bridge.spec.meshes[peer].egress_gateway
    assert eg is not None  # validated: an importing mesh has one
    spec = {
        "exporter": _side(mesh, m.trust_domain, ca, next_ca) | {"address": ig.address},
        "exports": [{"name": ex.name, "host": ex.host, "gatewayPort": ex.gateway_port, "to": [peer]} for ex in exports],
        "accepts": [{"mesh": peer, "identity": identities.spiffe_id(bridge.spec.meshes[peer].trust_domain, eg)}],
        "expires": _time(expires),
    }
    return _signed("PeeringOffer", bridge.metadata.name, spec, ca)


def make_reply(bridge: Bridge, offer: Offer, mesh: str, ca: CertBundle, next_ca: CertBundle | None) -> dict[str, Any]:
    """The signed reply of the importing ``mesh`` (own) to ``offer``: its CA and its egress gateway's identity.

    Raises:
        PkiError: ``ca`` holds no usable key.
    """
    m = bridge.spec.meshes[mesh]
    assert m.egress_gateway is not None  # offer_problems found it
    spec = {
        "importer": _side(mesh, m.trust_domain, ca, next_ca)
        | {"identity": identities.spiffe_id(m.trust_domain, m.egress_gateway)},
        "offer": {"exporter": offer.exporter.mesh, "fingerprint": offer.exporter.fingerprint},
        "expires": _time(offer.expires),
    }
    return _signed("PeeringReply", bridge.metadata.name, spec, ca)


def _side(mesh: str, trust_domain: str, ca: CertBundle, next_ca: CertBundle | None) -> dict[str, str]:
    out = {"mesh": mesh, "trustDomain": trust_domain, "caCertificate": ca.cert_pem.decode()}
    if next_ca is not None:
        out["nextCaCertificate"] = next_ca.cert_pem.decode()
    return out


def _signed(kind: Kind, name: str, spec: dict[str, Any], ca: CertBundle) -> dict[str, Any]:
    body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    algorithm, value = sign(ca, canonical(body))
    return body | {"signature": {"algorithm": algorithm, "value": base64.b64encode(value).decode()}}


class _Dumper(NoAliasDumper):
    """Certificates as YAML literal blocks (``|``), so the PEM reads as PEM."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def to_text(doc: dict[str, Any]) -> str:
    """The YAML file of a document (keys in document order, PEM as literal blocks)."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes a signature covers: JSON with sorted keys and no spaces, UTF-8 (what YAML turned into another
    type, e.g. an unquoted time, as its text: such a document was edited, and its signature fails)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- reading -------------------------------------------------------------------------------------------------


def read_offer(doc: object, pinned: str, now: dt.datetime, what: str = "the offer") -> Offer:
    """Check a ``PeeringOffer`` (shape, pinned CA, signature, expiry) and return it.

    Args:
        doc: the parsed YAML.
        pinned: the exporter CA's fingerprint, told out of band (``sha256:<hex>``).
        now: the time the expiry is checked against.
        what: how messages name the document (its file).

    Raises:
        PkiError: not an offer, another CA than the pinned one, tampered (the signature fails), or expired.
    """
    spec, signer = _checked(doc, "PeeringOffer", pinned, now, what)
    try:
        exports = tuple(
            OfferedExport(str(e["name"]), str(e["host"]), int(e["gatewayPort"]), tuple(map(str, e["to"])))
            for e in spec["exports"]
        )
        accepts = {str(a["mesh"]): str(a["identity"]) for a in spec["accepts"]}
        address = str(spec["exporter"]["address"])
    except (KeyError, TypeError, ValueError) as e:
        raise PkiError(f"{what}: signed, but not a complete PeeringOffer ({e!r} is wrong or missing)") from None
    assert isinstance(doc, dict)  # _checked
    exporter = Peer(signer.mesh, signer.trust_domain, signer.ca, signer.next_ca, address=address)
    return Offer(_name(doc), exporter, exports, accepts, _expires(spec))


def read_reply(doc: object, pinned: str, now: dt.datetime, what: str = "the reply") -> Reply:
    """Check a ``PeeringReply`` (shape, pinned CA, signature, expiry) and return it.

    Raises:
        PkiError: not a reply, another CA than the pinned one, tampered (the signature fails), or expired.
    """
    spec, signer = _checked(doc, "PeeringReply", pinned, now, what)
    try:
        identity = str(spec["importer"]["identity"])
        offer_exporter = str(spec["offer"]["exporter"])
        offer_fp = normalize_fingerprint(str(spec["offer"]["fingerprint"]))
    except (KeyError, TypeError, PkiError) as e:
        raise PkiError(f"{what}: signed, but not a complete PeeringReply ({e!r} is wrong or missing)") from None
    assert isinstance(doc, dict)  # _checked
    importer = Peer(signer.mesh, signer.trust_domain, signer.ca, signer.next_ca, identity=identity)
    return Reply(_name(doc), importer, offer_exporter, offer_fp, _expires(spec))


def _name(doc: dict[str, Any]) -> str:
    """``metadata.name`` (the bridge's name), or ``""`` when the signer wrote none."""
    md = doc.get("metadata")
    return str(md.get("name", "")) if isinstance(md, dict) else ""


def _checked(doc: object, kind: Kind, pinned: str, now: dt.datetime, what: str) -> tuple[dict[str, Any], Peer]:
    """The ``spec`` of a document whose pinned CA signed it and that has not expired, and its signer."""
    pinned = normalize_fingerprint(pinned)
    side = _SIDE[kind]
    if not (isinstance(doc, dict) and doc.get("apiVersion") == API_VERSION and doc.get("kind") == kind):
        found = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise PkiError(
            f"{what} is not a {kind} (apiVersion {API_VERSION}; found kind {found!r}). Fix: give the file "
            f"'meshbridge peer {'offer' if kind == 'PeeringOffer' else 'accept'}' wrote"
        )
    try:
        spec, sig = doc["spec"], doc["signature"]
        signer = spec[side]
        mesh, trust_domain = str(signer["mesh"]), str(signer["trustDomain"])
        ca = CertBundle(str(signer["caCertificate"]).encode())
        parse_certificate(ca.cert_pem, f"{what}: spec.{side}.caCertificate")
        nxt_pem = signer.get("nextCaCertificate")
        nxt = CertBundle(str(nxt_pem).encode()) if nxt_pem is not None else None
        if nxt is not None:
            parse_certificate(nxt.cert_pem, f"{what}: spec.{side}.nextCaCertificate")
        algorithm, value = str(sig["algorithm"]), base64.b64decode(str(sig["value"]), validate=True)
    except (KeyError, TypeError, AttributeError, ValueError) as e:  # ValueError: base64 (binascii.Error), non-ASCII
        raise PkiError(f"{what}: not a complete {kind} ({e!r} is wrong or missing). Fix: ask for a new one") from None
    errors = [f for f in check_ca(f"spec.{side}.caCertificate", ca) if f.severity == "error"]
    if errors:
        raise PkiError(f"{what}: {errors[0]}")
    actual = fingerprint(ca)
    if actual != pinned:
        raise PkiError(
            f"{what}: its CA ({ca.subject}) has fingerprint {actual}, not the {pinned} you were told: it is "
            f"not the {side}'s CA you expect. Fix: check the fingerprint with the {side}'s owner over another "
            "channel; do not trust this file"
        )
    body = {key: doc.get(key) for key in ("apiVersion", "kind", "metadata", "spec")}
    if not verify(ca, algorithm, canonical(body), value):
        raise PkiError(
            f"{what}: tampered: its signature ({algorithm}) does not match its content, which changed after the "
            f"{side}'s CA signed it. Fix: ask the {side}'s owner for a new file; do not edit it"
        )
    try:
        expires = _expires(spec)
    except PkiError as e:
        raise PkiError(f"{what}: {e}") from None
    if now >= expires:
        again = "meshbridge peer offer" if kind == "PeeringOffer" else "meshbridge peer offer', then 'peer accept"
        raise PkiError(
            f"{what}: expired at {_time(expires)} (now {_time(now)}). Fix: ask the exporter's owner for a new "
            f"offer ('{again}')"
        )
    return spec, Peer(mesh, trust_domain, ca, nxt)


def _expires(spec: dict[str, Any]) -> dt.datetime:
    try:
        return dt.datetime.strptime(str(spec["expires"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except (KeyError, ValueError):
        raise PkiError(f"spec.expires {spec.get('expires')!r} is not a time such as 2026-12-07T12:00:00Z") from None


# -- against the receiver's own spec -------------------------------------------------------------------------


def offer_problems(bridge: Bridge, offer: Offer) -> list[str]:
    """How the importer's spec differs from ``offer`` (empty: it matches); each names the field and its value.

    The importer's spec holds the exporter's mesh as ``peer: true`` with the offer's trust domain and
    ``ingressGateway.address``, and each offered export it imports with the offer's ``host`` and
    ``gatewayPort``; the identity the exporter accepts is the importer's own egress gateway's.
    """
    x = offer.exporter
    m = bridge.spec.meshes.get(x.mesh)
    if m is None or not m.peer:
        return [
            f"mesh {x.mesh!r} (the exporter) is not a 'peer: true' mesh of your spec: it needs spec.meshes."
            f"{x.mesh} with peer: true, trustDomain: {x.trust_domain}, ingressGateway.address: {x.address}"
        ]
    problems = []
    if m.trust_domain != x.trust_domain:
        problems.append(f"spec.meshes.{x.mesh}.trustDomain is {m.trust_domain!r}; the offer says {x.trust_domain!r}")
    address = m.ingress_gateway.address if m.ingress_gateway is not None else None
    if address != x.address:
        problems.append(f"spec.meshes.{x.mesh}.ingressGateway.address is {address!r}; the offer says {x.address!r}")
    mine = bridge.exports_by_name
    for ex in offer.exports:
        for dest in (d for d in ex.to if d in bridge.own_meshes):
            have = mine.get(ex.name)
            if have is None or have.from_ != x.mesh or dest not in have.to:
                problems.append(
                    f"export {ex.name!r} (host {ex.host}, gatewayPort {ex.gateway_port}) from {x.mesh} to {dest} is "
                    "not in your spec.exports"
                )
                continue
            if have.host != ex.host:
                problems.append(f"export {ex.name!r}: host is {have.host!r}; the offer says {ex.host!r}")
            if have.gateway_port != ex.gateway_port:
                problems.append(
                    f"export {ex.name!r}: gatewayPort is {have.gateway_port}; the offer says {ex.gateway_port}"
                )
    for dest, identity in offer.accepts.items():
        own = bridge.spec.meshes.get(dest)
        if dest not in bridge.own_meshes or own is None or own.egress_gateway is None:
            continue
        yours = identities.spiffe_id(own.trust_domain, own.egress_gateway)
        if yours != identity:
            problems.append(
                f"the exporter accepts {identity} from mesh {dest!r}; your egress gateway is {yours} (trustDomain, "
                "egressGateway.namespace and serviceAccount): agree on one with the exporter's owner"
            )
    if not any(d in bridge.own_meshes for ex in offer.exports for d in ex.to):
        problems.append(
            f"the offer is for {', '.join(sorted({d for ex in offer.exports for d in ex.to}))}, none of your own "
            f"meshes ({', '.join(bridge.own_meshes)})"
        )
    return problems


def reply_problems(bridge: Bridge, reply: Reply, own_ca: str) -> list[str]:
    """How the exporter's spec differs from ``reply`` (empty: it matches); ``own_ca`` is the fingerprint of the
    current CA of the reply's exporting mesh (``reply.offer_exporter``), which the reply's offer must carry."""
    i = reply.importer
    m = bridge.spec.meshes.get(i.mesh)
    if m is None or not m.peer:
        return [
            f"mesh {i.mesh!r} (the importer) is not a 'peer: true' mesh of your spec: it needs spec.meshes.{i.mesh} "
            f"with peer: true, trustDomain: {i.trust_domain} and its egressGateway"
        ]
    problems = []
    if reply.offer_exporter not in bridge.own_meshes or i.mesh not in {
        d for ex in bridge.exports_from(reply.offer_exporter) for d in ex.to
    }:
        problems.append(
            f"the reply answers an offer from mesh {reply.offer_exporter!r} to {i.mesh!r}, which your spec does not "
            f"export (your meshes: {', '.join(bridge.own_meshes)}). Fix: send the offer of the right pair"
        )
    elif reply.offer_fingerprint != own_ca:
        problems.append(
            f"the reply answers an offer signed by CA {reply.offer_fingerprint}, not by your CA {own_ca}: it "
            "answers another exporter's offer, or one made before your CA changed. Fix: send a new offer"
        )
    if m.trust_domain != i.trust_domain:
        problems.append(f"spec.meshes.{i.mesh}.trustDomain is {m.trust_domain!r}; the reply says {i.trust_domain!r}")
    if m.egress_gateway is not None:
        expected = identities.spiffe_id(m.trust_domain, m.egress_gateway)
        if expected != i.identity:
            problems.append(
                f"spec.meshes.{i.mesh}.egressGateway is identity {expected}; the reply says {i.identity} (set its "
                "namespace and serviceAccount to match)"
            )
    return problems
