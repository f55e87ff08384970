"""``meshbridge peer``: two owners who never share keys (offer, accept, admit).

The documents and their checks are :mod:`meshbridge.peer`; this module reads and writes the files and the
state folder (:meth:`~meshbridge.pki.store.PkiStore.trust_peer`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    BridgeFile,
    JsonDocument,
    StateDir,
    err,
    out,
    print_json,
    read_bridge,
    store_for,
)
from meshbridge.errors import PkiError, SpecError
from meshbridge.fsutil import write_atomic
from meshbridge.peer import make_offer, make_reply, offer_problems, read_offer, read_reply, reply_problems, to_text
from meshbridge.pki.signing import fingerprint
from meshbridge.pki.store import PkiStore
from meshbridge.pki.x509 import CertBundle, utcnow
from meshbridge.spec.models import Bridge
from meshbridge.yamlerrors import yaml_problem

app = typer.Typer(
    help=(
        "Two owners who never share keys: each keeps a spec of their own side (the other owner's mesh marked "
        "'peer: true') and a state folder with their own keys only. The exporter runs 'peer offer', the importer "
        "'peer accept OFFER' (it writes a reply), the exporter 'peer admit REPLY'. The files carry CA "
        "certificates, addresses and identities, signed by the sender's CA key; never a private key. Then each "
        "side runs 'certs issue', 'render --mesh', 'lint' and the cluster commands ('plan', 'apply', 'status', "
        "'certs push', 'verify', 'delete' with --context for its own mesh only) on its own side."
    ),
    no_args_is_help=True,
)

Fingerprint = Annotated[
    str,
    typer.Option(
        "--fingerprint",
        metavar="SHA256",
        help="The fingerprint of the other owner's CA, as their command printed it (sha256:<hex>), told to you "
        "over another channel than the file (a call, a ticket): the file must be signed by that CA.",
    ),
]


@app.command("offer")
def offer(
    file: BridgeFile = DEFAULT_BRIDGE,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where the offer is written (YAML).")] = Path(
        "offer.yaml"
    ),
    state_dir: StateDir = None,
    mesh: Annotated[str | None, typer.Option("--mesh", help="The exporting mesh (default: your only one).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="The importing peer mesh (default: the only one).")] = None,
    valid_for: Annotated[
        float, typer.Option("--valid-for", min=0.01, help="Hours until the offer and any reply to it expire.")
    ] = 24.0,
    as_json: JsonDocument = False,
) -> None:
    """Exporter: write a signed offer for an importing peer mesh and print your CA's fingerprint.

    The offer holds the exports to that mesh (name, host, gatewayPort), your ingress gateway's address, your
    CA certificate (and the next one during a CA rollover), the identity you accept from the peer's egress
    gateway, and an expiry; it is signed with your CA key. Send the file; tell the fingerprint over another
    channel. --json prints {"offer": file, "mesh", "to", "expires", "fingerprint"}.
    """
    written, mesh, to, ca = _write_offer(file, output, state_dir, mesh, to, valid_for)
    if as_json:
        print_json({"offer": str(output), "mesh": mesh, "to": to, "expires": written, "fingerprint": fingerprint(ca)})
    else:
        out.print(f"offer from {mesh} to {to} written to {output} (expires {written})")
    _hand_over(output, mesh, ca, to, "accept", as_json)


def _write_offer(
    file: Path, output: Path, state_dir: Path | None, mesh: str | None, to: str | None, valid_for: float
) -> tuple[str, str, str, CertBundle]:
    """Write the offer of ``peer offer``; return its expiry (as written), the exporting mesh, the importing
    peer mesh and the CA that signed it."""
    bridge = read_bridge(file)
    store = store_for(file, state_dir)
    mesh, to = _pair(bridge, mesh, to)
    ca = _own_ca(store, mesh, bridge)
    expires = utcnow() + dt.timedelta(hours=valid_for)
    if expires > ca.not_after:
        err.print(
            f"note: --valid-for {valid_for:g} h ends after {mesh}'s CA does ({ca.not_after:%Y-%m-%dT%H:%M:%SZ}), "
            "which signs the offer: it expires with the CA",
            markup=False,
            highlight=False,
        )
        expires = ca.not_after
    doc = make_offer(bridge, mesh, to, ca, store.load(mesh, "ca-next"), expires)
    write_atomic(output, to_text(doc).encode(), mode=0o644)
    return str(doc["spec"]["expires"]), mesh, to, ca


def _hand_over(output: Path, mesh: str, ca: CertBundle, peer: str, command: str, as_json: bool) -> None:
    """Print ``mesh``'s CA fingerprint (``--json`` has it), and tell the user to send ``output`` to ``peer``'s
    owner, who runs ``meshbridge peer <command>`` on it with that fingerprint."""
    if not as_json:
        out.print(f"fingerprint of {mesh}'s CA: {fingerprint(ca)}")
    err.print(
        f"send {output} to {peer}'s owner and tell them the fingerprint over another channel; they run "
        f"'meshbridge peer {command} {output.name} --fingerprint {fingerprint(ca)}'"
    )


@app.command("accept")
def accept(
    offer_file: Annotated[Path, typer.Argument(metavar="OFFER", help="The offer file the exporter sent.")],
    pinned: Fingerprint,
    file: BridgeFile = DEFAULT_BRIDGE,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where the reply is written (YAML).")] = Path(
        "reply.yaml"
    ),
    state_dir: StateDir = None,
    as_json: JsonDocument = False,
) -> None:
    """Importer: check an offer (signature, expiry, the pinned fingerprint, your spec), trust the exporter's
    CA for its mesh, and write a signed reply with your CA and your egress gateway's identity.

    --json prints {"trusted": {mesh, fingerprint, subject, file}, "reply": file, "mesh", "fingerprint"}."""
    bridge = read_bridge(file)
    store = store_for(file, state_dir)
    got = read_offer(_read(offer_file), pinned, utcnow(), str(offer_file))
    _refuse(offer_file, offer_problems(bridge, got))
    mesh = next(d for ex in got.exports for d in ex.to if d in bridge.own_meshes)
    ca = _own_ca(store, mesh, bridge)
    store.trust_peer(bridge, got.exporter.mesh, got.exporter.ca, got.exporter.next_ca, str(offer_file.resolve()))
    doc = make_reply(bridge, got, mesh, ca, store.load(mesh, "ca-next"))
    write_atomic(output, to_text(doc).encode(), mode=0o644)
    x = got.exporter
    if as_json:
        trusted = _trusted(x.mesh, x.fingerprint, x.ca, store)
        print_json({"trusted": trusted, "reply": str(output), "mesh": mesh, "fingerprint": fingerprint(ca)})
    else:
        out.print(f"trusted {x.mesh}'s CA {x.fingerprint} ({x.ca.subject}) in {store.path(x.mesh, 'ca')}")
        out.print(f"reply from {mesh} written to {output}")
    _hand_over(output, mesh, ca, x.mesh, "admit", as_json)


def _trusted(mesh: str, fingerprint: str, ca: CertBundle, store: PkiStore) -> dict[str, str]:
    """A peer's CA as ``peer accept|admit --json`` show it: its mesh, fingerprint, subject and file in the store."""
    return {"mesh": mesh, "fingerprint": fingerprint, "subject": ca.subject, "file": str(store.path(mesh, "ca"))}


@app.command("admit")
def admit(
    reply_file: Annotated[Path, typer.Argument(metavar="REPLY", help="The reply file the importer sent.")],
    pinned: Fingerprint,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    as_json: JsonDocument = False,
) -> None:
    """Exporter: check a reply (signature, expiry, the pinned fingerprint, that it answers your offer, your
    spec) and trust the importer's CA, so that your ingress gateway admits its egress gateway.

    --json prints {"admitted": {mesh, identity, fingerprint, subject, file}}."""
    bridge = read_bridge(file)
    store = store_for(file, state_dir)
    got = read_reply(_read(reply_file), pinned, utcnow(), str(reply_file))
    mesh = got.offer_exporter
    own = fingerprint(_own_ca(store, mesh, bridge)) if mesh in bridge.own_meshes else ""  # else reply_problems says so
    _refuse(reply_file, reply_problems(bridge, got, own))
    i = got.importer
    store.trust_peer(bridge, i.mesh, i.ca, i.next_ca, str(reply_file.resolve()))
    if as_json:
        print_json({"admitted": {"identity": i.identity, **_trusted(i.mesh, i.fingerprint, i.ca, store)}})
    else:
        out.print(
            f"admitted {i.mesh} ({i.identity}): its CA {i.fingerprint} ({i.ca.subject}) in {store.path(i.mesh, 'ca')}"
        )
    err.print("now render your mesh again ('meshbridge render --mesh ...'): its gateway Secret trusts the new CA")


def _pair(bridge: Bridge, mesh: str | None, to: str | None) -> tuple[str, str]:
    """The exporting own mesh and the importing peer mesh of an offer (given, or the only choice)."""
    pairs = [
        (ex.from_, dest)
        for ex in bridge.spec.exports
        for dest in ex.to
        if ex.from_ in bridge.own_meshes and bridge.spec.meshes[dest].peer
    ]
    chosen = sorted({p for p in pairs if mesh in (None, p[0]) and to in (None, p[1])})
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        raise SpecError(
            f"no export of the bridge goes from {f'your own mesh {mesh!r}' if mesh else 'your own meshes'} to a "
            f"'peer: true' mesh{f' {to!r}' if to else ''}. Fix: mark the importer's mesh 'peer: true' in "
            "spec.meshes and list it in an export's 'to'"
        )
    raise SpecError(
        f"the bridge exports from {', '.join(f'{a} to {b}' for a, b in chosen)}: one offer is for one pair. "
        "Fix: choose with --mesh and --to"
    )


def _own_ca(store: PkiStore, mesh: str, bridge: Bridge) -> CertBundle:
    """``mesh``'s current CA with its key (it signs the document).

    Raises:
        PkiError: cert-manager issues (meshbridge holds no CA key to sign with), none issued yet, or its key is not
            here.
    """
    if bridge.issued_by_cert_manager:
        raise PkiError(
            "two owners with cert-manager (spec.tls.issuer: cert-manager) are not supported yet: an offer or a reply "
            "is signed with the mesh's CA key, which stays with cert-manager's issuer. Fix: peer with spec.tls.issuer: "
            "meshbridge, or keep both meshes in one spec, where cert-manager mode imports each issuer's CA "
            "certificate (README, cert-manager mode)"
        )
    ca = store.load(mesh, "ca")
    if ca is None:
        raise PkiError(f"mesh {mesh!r} has no CA in {store.root} to sign with. Fix: run 'meshbridge certs issue' first")
    store.require_key(mesh, "ca")
    return ca


def _read(path: Path) -> Any:
    """The YAML document in ``path``.

    Raises:
        PkiError: unreadable, or not YAML (the line and the problem).
    """
    try:
        text = path.read_text()
    except OSError as e:
        raise PkiError(f"{path}: cannot be read ({e.strerror or type(e).__name__}). Fix: give the file sent") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        p = yaml_problem(e, text)
        raise PkiError(f"{path}: line {p.line}: {p.problem}. Fix: ask for the file again, unedited") from None


def _refuse(path: Path, problems: list[str]) -> None:
    """Nothing is trusted while the file and your spec disagree."""
    if problems:
        raise SpecError(
            f"{path} does not match your spec: " + "; ".join(problems) + ". Fix: set these in your bridge file (or "
            "agree with the other owner on new values), then run the command again; nothing was trusted"
        )
