"""``meshbridge certs``: issue, show, check and import the gateways' certificates."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    BridgeFile,
    DryRun,
    JsonDocument,
    Kubeconfig,
    StateDir,
    err,
    json_errors,
    out,
    print_json,
    read_bridge,
    store_for,
    table,
)
from meshbridge.delivery import Targets
from meshbridge.errors import KubeError, MeshbridgeError, PkiError
from meshbridge.local.twin import shown
from meshbridge.pki import CertBundle, CertFinding, CertInfo, PkiStore, describe, identities
from meshbridge.pki.store import SLOTS, ImportSlot
from meshbridge.pki.x509 import parse_certificates, revoked_serials, utcnow
from meshbridge.tabwriter import fit_table
from meshbridge.verify.report import conditions_table

if TYPE_CHECKING:
    from rich.console import Console

    from meshbridge.local.twin import LocalTwin
    from meshbridge.rotation import Step, StepResult
    from meshbridge.spec import Bridge


class LeafChoice(StrEnum):
    """Which of a mesh's current leaves ``revoke --current`` revokes."""

    server = "server"
    client = "client"


PushContexts = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        metavar="MESH=CONTEXT",
        help="Also push to the clusters: every mesh's gateway Secrets, with this kubeconfig context for MESH "
        "(repeatable; meshes not named use spec.meshes.<mesh>.context; MESH=@in-cluster: this Pod's own cluster, as "
        "its service account). Each step waits until every gateway pod serves them.",
    ),
]

PushForceConflicts = Annotated[
    bool,
    typer.Option(
        "--force-conflicts",
        help="With --context: take over gateway Secrets that are not this bridge's, or whose fields another field "
        "manager owns (e.g. made by 'kubectl create secret' or a client-side 'kubectl apply'). Off by default: "
        "the push refuses and names them.",
    ),
]
PushTimeout = Annotated[
    float,
    typer.Option(
        "--timeout", min=1, help="With --context: seconds to wait for every gateway pod to serve the new Secrets."
    ),
]


class SlotChoice(StrEnum):
    """Where an imported certificate goes."""

    ca = "ca"
    server = "server"
    client = "client"


app = typer.Typer(
    help=(
        "Certificates between the gateways: one CA per mesh (its key stays on that mesh's side), a server "
        "leaf for each exporter's ingress gateway (DNS SANs of the exported hosts, EKU serverAuth), a client "
        "leaf for each importer's egress gateway (SPIFFE URI SAN, EKU clientAuth)."
    ),
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (stable keys, for scripts) instead of the table.")]


def _note(line: str) -> None:
    """A note on stderr (connecting to the clusters)."""
    err.print(line, markup=False, highlight=False)


def _print_json(doc: object) -> None:
    out.print(json.dumps(doc, indent=2))


def _finding(f: CertFinding) -> dict[str, str]:
    return {"severity": f.severity, "certificate": f.subject, "problem": f.problem, "fix": f.fix}


@app.command("issue")
def issue(
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    force: Annotated[
        bool, typer.Option("--force", help="Reissue everything, CAs included (peers must get the new CAs).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Issue each mesh's CA and the gateway leaves the spec needs; keep what is still valid.

    Idempotent: a second run keeps every certificate that still matches the spec. Leaves are reissued
    when missing, when their private key is missing, unreadable or not theirs, when their SANs no longer
    match the spec, when they are revoked, when their key type is not spec.tls.keyType, or when they expire
    within 30 days. A CA is never replaced without --force: one of another key type is kept with a warning
    (roll it over: 'meshbridge certs rotate --ca --mesh MESH'), and a CA whose certificate is missing while
    its key is there stops the command (restore the certificate, or replace the CA knowingly).
    Imported certificates ('certs import') of another key type are kept too, with a note.
    """
    bridge = read_bridge(file)
    store = store_for(file, state_dir)
    actions = store.issue(bridge, force=force)
    warnings = store.key_type_findings(bridge)
    if not as_json:
        inside = shown(store.root) != str(store.root)  # the store is under the working folder
        files = [store.path(a.mesh, a.slot) for a in actions]
        named = [shown(f) if inside else str(f.relative_to(store.root)) for f in files]
        rows = [(a.mesh, a.slot, a.action, a.reason, f) for a, f in zip(actions, named, strict=True)]
        header = ("MESH", "CERTIFICATE", "ACTION", "WHY", "FILE")
        out.print(fit_table([header, *rows], TABLE_WIDTH, wrap=[3, 4]).rstrip())
        if not inside:
            out.print(f"FILE is in {store.root}")
        for finding in warnings:
            out.print(str(finding))
    pushed: list[str] = []
    if any(a.action != "kept" for a in actions):
        with Targets(bridge, file, state_dir, store, None, 0, None) as targets:
            pushed = targets.push()
    if as_json:
        _print_json(
            {
                "certificates": [
                    {
                        "mesh": a.mesh,
                        "slot": a.slot,
                        "action": a.action,
                        "reason": a.reason,
                        "file": str(store.path(a.mesh, a.slot)),
                    }
                    for a in actions
                ],
                "warnings": [_finding(f) for f in warnings],
                "pushed": pushed,
            }
        )
        return
    for where in pushed:
        out.print(f"pushed: {where}")


@app.command("push")
def push(
    contexts: PushContexts = None,
    timeout: PushTimeout = 120.0,
    force_conflicts: PushForceConflicts = False,
    kubeconfig: Kubeconfig = None,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    as_json: AsJson = False,
) -> None:
    """Send the store's certificates, trust bundles and CRLs to where the bridge runs, and check they are served.

    The running local twin gets them through an atomic SDS swap (no restart; when trust narrowed, the
    gateways' open connections are drained); with --context, every mesh's gateway Secrets are applied to its
    cluster and the command waits until every gateway pod serves them. Use it after a change recorded in the
    store but not delivered (a push that failed, 'certs import', a revocation made with nothing running).
    Exits 1 when a gateway still serves something else.
    """
    bridge = read_bridge(file)
    store = store_for(file, state_dir)
    with Targets(bridge, file, state_dir, store, contexts, timeout, kubeconfig, force_conflicts, _note) as targets:
        if not targets.local and not targets.clients:
            raise PkiError(
                "nothing to push to: no local twin runs for this bridge and no --context was given. Fix: "
                "'meshbridge certs push --context MESH=CONTEXT' (or 'meshbridge local up')"
            )
        theirs = _not_the_stores(targets)
        if theirs is not None:
            err.print(
                f"warning: {theirs[0]}; the push changes what the store's Secrets hold, not those, and the check "
                f"below compares the gateways with the store. Fix: {theirs[1]}",
                markup=False,
                highlight=False,
            )
        pushed = targets.push()
        if not as_json:  # said before the check, which may fail: what landed is known either way
            for where in pushed:
                out.print(f"pushed: {where}")
        checks = [c for c in targets.check() if c.check == "GatewaysServeCurrentCerts"]
    if as_json:
        _print_json({"pushed": pushed, "conditions": [asdict(c) for c in checks]})
    else:
        out.print(conditions_table(checks).rstrip(), markup=False, highlight=False)
    if not all(c.passed for c in checks):
        raise typer.Exit(1)


TABLE_WIDTH = 100
"""The width the default tables of ``certs show`` and ``certs check`` fit (``--wide`` lifts it)."""


def _days_left(info: CertInfo) -> str:
    """``DAYS LEFT`` of the table: whole days, with the hours when under a day (``0 (5 h)``)."""
    if info.days_left != 0:
        return str(info.days_left)
    hours = max(0, int((info.not_after - utcnow()).total_seconds() // 3600))
    return f"0 ({hours} h)"


@app.command("show")
def show(
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    as_json: AsJson = False,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", "-w", help="Add SUBJECT, ISSUER and SERIAL (for 'certs revoke --serial'); one line each."
        ),
    ] = False,
) -> None:
    """List every certificate: name, EKU, SANs, not-after and days left; --wide adds subject, issuer and serial.

    The table fits 100 columns (long SANs wrap); --wide prints every column, one certificate per line, for
    grep and awk; --json prints all of it, with the key type, whether it was imported, and the file. Keys are
    never shown.
    """
    bridge = read_bridge(file)
    store = store_for(file, state_dir)
    found = []
    for mesh in bridge.spec.meshes:
        for slot in SLOTS:
            b = store.load(mesh, slot)
            if b is not None:
                found.append((mesh, slot, b, describe(f"{mesh}/{slot}", b)))
    if not found:
        raise PkiError(f"no certificates yet in {store.root}. Fix: run 'meshbridge certs issue'")
    if as_json:
        doc = {
            "certificates": [
                {
                    "name": i.name,
                    "mesh": mesh,
                    "slot": slot,
                    "subject": i.subject,
                    "sans": i.sans,
                    "ekus": i.ekus,
                    "is_ca": i.is_ca,
                    "issuer": i.issuer,
                    "serial": f"{i.serial:x}",
                    "not_before": f"{b.not_before:%Y-%m-%dT%H:%M:%SZ}",
                    "not_after": f"{i.not_after:%Y-%m-%dT%H:%M:%SZ}",
                    "days_left": i.days_left,
                    "key_type": b.key_type,
                    "imported": store.is_imported(mesh, slot),
                    "file": str(store.path(mesh, slot)),
                }
                for mesh, slot, b, i in found
            ]
        }
        out.print(json.dumps(doc, indent=2))
        return
    infos = [i for _, _, _, i in found]
    if wide:
        out.print(
            table(
                ["NAME", "SUBJECT", "SANS", "EKU", "ISSUER", "SERIAL", "NOT AFTER", "DAYS LEFT"],
                [
                    (
                        i.name,
                        i.subject,
                        ", ".join(i.sans) or "-",
                        _eku(i),
                        i.issuer,
                        f"{i.serial:x}",
                        f"{i.not_after:%Y-%m-%dT%H:%M:%SZ}",
                        _days_left(i),
                    )
                    for i in infos
                ],
            )
        )
        return
    rows = [(i.name, _eku(i), "\n".join(i.sans) or "-", f"{i.not_after:%Y-%m-%d}", _days_left(i)) for i in infos]
    out.print(fit_table([("NAME", "EKU", "SANS", "NOT AFTER", "DAYS LEFT"), *rows], TABLE_WIDTH, wrap=[2]).rstrip())


def _eku(i: CertInfo) -> str:
    return ", ".join(i.ekus) or ("CA" if i.is_ca else "-")


@app.command("check")
def check(
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    as_json: AsJson = False,
    wide: Annotated[
        bool, typer.Option("--wide", "-w", help="PROBLEM and FIX in columns of their own, one line per finding.")
    ] = False,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            metavar="MESH=CONTEXT",
            help="cert-manager mode (spec.tls.issuer): check what cert-manager issued in the clusters instead, the "
            "gateway Secrets read with this kubeconfig context for MESH (repeatable; meshes not named use "
            "spec.meshes.<mesh>.context).",
        ),
    ] = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Check every certificate as its peer will: validity window, revocation, chain to the trusted CA, EKU, SANs, key.

    Exits 1 on what makes Envoy or the peer fail the handshake: an expired, not-yet-valid or revoked
    certificate (on the CRL of its CA, which the peers check), a broken chain, an EKU without the role's
    purpose, a SAN the peer pins missing (none with spec.tls.pinSubjectAltNames: false), a private key that
    is missing, unreadable or not the certificate's ('certs issue' reissues such a leaf), or a CA certificate
    missing beside its key; warns (exit 0) when one expires within 30 days, when its key type is not
    spec.tls.keyType (a leaf: 'certs issue' reissues it; a CA: 'certs rotate --ca' rolls it over; an
    imported one is yours to replace), and about what RFC 5280 merely prefers (a CA without keyUsage, a
    critical SAN, a leaf without EKU: the rules in docs/security.md, the same as 'certs import' and lint).

    The table fits 100 columns (each problem wraps, its fix below it); --wide prints one finding per line
    (SEVERITY CERTIFICATE PROBLEM FIX) for grep and awk; --json prints the findings and their counts.
    """
    bridge = read_bridge(file)
    store = store_for(file, state_dir)
    findings = _issued_findings(bridge, store, context, kubeconfig) if context else store.check(bridge)
    errors = sum(f.severity == "error" for f in findings)
    if as_json:
        doc = {
            "passed": errors == 0,
            "findings": [
                {"severity": f.severity, "certificate": f.subject, "problem": f.problem, "fix": f.fix} for f in findings
            ],
            "summary": {"error": errors, "warning": len(findings) - errors},
        }
        out.print(json.dumps(doc, indent=2))
    elif not findings:
        out.print("all certificates are valid and chain to the CAs their peers trust")
    elif wide:
        out.print(
            table(
                ["SEVERITY", "CERTIFICATE", "PROBLEM", "FIX"],
                [(f.severity, f.subject, f.problem, f.fix) for f in findings],
            )
        )
    else:
        rows = [(f.severity, f.subject, f"{f.problem}\nfix: {f.fix}") for f in findings]
        out.print(fit_table([("SEVERITY", "CERTIFICATE", "PROBLEM"), *rows], TABLE_WIDTH, wrap=[2]).rstrip())
    if errors:
        raise typer.Exit(1)


def _issued_findings(bridge: Bridge, store: PkiStore, context: list[str], kubeconfig: Path | None) -> list[CertFinding]:
    """``certs check --context``: the gateway Secrets cert-manager issued, read from the clusters and checked."""
    from meshbridge.kube import connect, parse_context_overrides
    from meshbridge.kube.certmanager import read_issued

    if not bridge.issued_by_cert_manager:
        raise PkiError(
            "certs check --context reads what cert-manager issued in the clusters, but spec.tls.issuer is "
            "'meshbridge': the certificates are in this state folder. Fix: 'meshbridge certs check' (no --context)"
        )
    clients = connect(bridge, parse_context_overrides(context), meshes=bridge.own_meshes, kubeconfig=kubeconfig)
    try:
        return store.check_issued(bridge, read_issued(bridge, clients))
    finally:
        for c in clients.values():
            c.close()


@app.command("import")
def import_(
    mesh: Annotated[str, typer.Option("--mesh", help="The mesh the certificate belongs to.")],
    slot: Annotated[
        SlotChoice,
        typer.Option("--slot", help="ca, server (exporter's ingress gateway) or client (importer's egress gateway)."),
    ],
    cert: Annotated[
        Path,
        typer.Option(
            "--cert",
            help="PEM certificate; a leaf's file may carry its intermediates (any order), served after the leaf.",
            exists=True,
            dir_okay=False,
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="PEM private key (unencrypted; stored 0600). Required for a leaf; optional for a CA, which "
            "meshbridge then cannot issue leaves from.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="With --slot ca: replace the mesh's current CA at once (the peers trust the old one until "
            "the new one is pushed; the mesh's leaves must then be reissued or imported).",
        ),
    ] = False,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    as_json: JsonDocument = False,
) -> None:
    """Bring your own certificate: validate it exactly like issued ones, then store it (key 0600).

    The rules are those of 'certs check' and lint: what makes Envoy fail the handshake is refused, what RFC
    5280 merely prefers (a CA without keyUsage, a critical SAN, a leaf without EKU) is a warning. A leaf
    must come with its own key, chain to the mesh's CA in the store (through the intermediates its file
    holds, if any, within their path lengths), have its role's purpose if it has an EKU, and carry the SANs
    the peer pins (none with spec.tls.pinSubjectAltNames: false); it is stored leaf first, then its
    intermediates in chain order, as the gateway serves it. A CA must be a self-signed CA; its key is
    optional: without it the peers still trust the CA, and you import the mesh's leaves (issued by your PKI)
    instead of having meshbridge issue or rotate them. Nothing is written when a check fails.

    Examples: 'meshbridge certs import --mesh eks --slot ca --cert corp-root.pem';
    'meshbridge certs import --mesh eks --slot server --cert leaf-chain.pem --key leaf.key'.

    --json prints {"imported": {mesh, slot, from, file, intermediates, key}, "findings": [...]} (notes on stderr);
    refused, {"findings": [...], "error": {"message", "exit_code": 2}}.
    """
    s: ImportSlot = slot.value
    rows: list[dict[str, str]] = []  # the findings, filled below: the error document carries them too
    with json_errors(as_json, findings=rows):
        bridge = read_bridge(file)
        store = store_for(file, state_dir)
        stored, findings = _import_checked(bridge, store, mesh, s, cert, key, force, file)
        rows += [_finding(f) for f in findings]
        if not as_json:
            for f in findings:
                out.print(str(f))
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            raise PkiError(f"{cert} was not imported: {len(errors)} problem(s) {'listed' if as_json else 'above'}")
    _say_imported(bridge, store, (mesh, s), cert, stored, rows if as_json else None)


def _say_imported(
    bridge: Bridge,
    store: PkiStore,
    where: tuple[str, ImportSlot],
    cert: Path,
    stored: CertBundle,
    findings: list[dict[str, str]] | None,
) -> None:
    """What ``certs import`` stored: a line, or with ``--json`` (``findings`` given) the document; then a note
    on a CA without its key (on stderr with --json)."""
    mesh, s = where
    as_json = findings is not None
    chain = len(parse_certificates(stored.cert_pem)) - 1 if s != "ca" else 0
    if as_json:
        imported = {"mesh": mesh, "slot": s, "from": str(cert), "file": str(store.path(mesh, s))}
        print_json(
            {"imported": {**imported, "intermediates": chain, "key": stored.key_pem is not None}, "findings": findings}
        )
    else:
        carried = f" with {chain} intermediate(s) after the leaf" if chain else ""
        out.print(f"imported {cert} as {mesh}/{s}{carried} → {store.path(mesh, s)}")
    say = err.print if as_json else out.print
    if s == "ca" and stored.key_pem is None and bridge.issued_by_cert_manager:
        say(f"{mesh}/ca is the CA the peers of {mesh} trust; cert-manager issues its gateway certificates")
    elif s == "ca" and stored.key_pem is None:
        say(
            f"{mesh}/ca has no key here: peers trust it, but meshbridge issues and rotates no leaf of {mesh}. "
            f"Import them: 'meshbridge certs import --mesh {mesh} --slot server|client --cert LEAF.pem --key LEAF.key'"
        )


def _import_checked(
    bridge: Bridge, store: PkiStore, mesh: str, s: ImportSlot, cert: Path, key: Path | None, force: bool, file: Path
) -> tuple[CertBundle, list[CertFinding]]:
    """``certs import``: the certificate stored, unless a finding is an error, and the findings.

    Raises:
        PkiError: ``mesh`` is not in the bridge, or ``s`` is ``ca`` and the mesh has another CA and not ``force``.
    """
    if mesh not in bridge.spec.meshes:
        raise PkiError(f"mesh {mesh!r} is not in {file} (meshes: {', '.join(bridge.spec.meshes)})")
    bundle = CertBundle(cert.read_bytes(), key.read_bytes() if key is not None else None)
    current = store.load(mesh, "ca") if s == "ca" else None
    if current is not None and not force and parse_certificates(bundle.cert_pem, str(cert))[0] != current.cert:
        raise PkiError(
            f"mesh {mesh!r} already has a CA ({current.subject}): importing {cert} would replace it at once, and "
            f"until every peer trusts the new one the link breaks (and {mesh}'s leaves no longer chain). Fix: to "
            "replace it now, add --force, then reissue or import the mesh's leaves and push ('meshbridge certs "
            "push'); 'meshbridge certs rotate --ca' changes a CA without a break, with a CA meshbridge issues"
        )
    return store.import_(bridge, mesh, s, bundle, name=str(cert))


def _require_keys(store: PkiStore, bridge: Bridge, steps: list[Step], named_meshes: bool) -> None:
    """Before any step runs: each step's CA key is held (a CA imported without its key signs nothing here).

    Raises:
        PkiError: a key is missing; when the meshes were not named, with the ``--mesh`` that rotates the others.
    """
    for step in steps:
        if step.kind == "ca" or identities.leaves(bridge, step.mesh):
            try:
                store.require_key(step.mesh, step.kind)
            except PkiError as e:
                others = sorted({s.mesh for s in steps} - {step.mesh})
                if named_meshes or not others:
                    raise
                only = " ".join(f"--mesh {m}" for m in others)
                raise PkiError(f"{e}; nothing was rotated. To rotate the other meshes: add {only}") from None


def _rotation_json(r: StepResult) -> dict[str, object]:
    """One rotation step's result in ``certs rotate --json``."""
    return {
        "mesh": r.step.mesh,
        "step": r.step.title,
        "certificates": [{"slot": a.slot, "action": a.action, "reason": a.reason} for a in r.actions],
        "pushed": r.pushed,
        "ok": r.ok if r.checked else None,
    }


def _check_rotate_flags(leaf: bool, ca: bool, stage: int | None) -> None:
    """``certs rotate`` takes exactly one of ``--leaf`` and ``--ca``, and ``--stage`` only with ``--ca``.

    Raises:
        PkiError: otherwise, with the fix.
    """
    if leaf == ca:
        raise PkiError(
            f"{'--leaf and --ca together' if leaf else 'nothing to rotate'}. Fix: pass exactly one of --leaf "
            "(new leaves from the same CAs) or --ca (a staged CA rollover)"
        )
    if stage is not None and not ca:
        raise PkiError("--stage applies to --ca only (the stages of a CA rollover). Fix: add --ca, or drop --stage")


RotateLeaf = Annotated[
    bool, typer.Option("--leaf", help="New keys and certificates for the gateways, from the same CAs.")
]
RotateCa = Annotated[
    bool, typer.Option("--ca", help="A staged CA rollover: trust both, reissue leaves, drop the old CA.")
]
RotateMeshes = Annotated[
    list[str] | None, typer.Option("--mesh", help="Only this mesh (repeatable). Default: every mesh.")
]
RotateStage = Annotated[
    int | None,
    typer.Option(
        "--stage", min=1, max=3, help="With --ca: run only this stage (1, 2 or 3). Default: the remaining ones."
    ),
]


@app.command("rotate")
def rotate(
    leaf: RotateLeaf = False,
    ca: RotateCa = False,
    mesh: RotateMeshes = None,
    stage: RotateStage = None,
    contexts: PushContexts = None,
    timeout: PushTimeout = 120.0,
    force_conflicts: PushForceConflicts = False,
    kubeconfig: Kubeconfig = None,
    dry_run: DryRun = False,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    as_json: AsJson = False,
) -> None:
    """Rotate certificates with no downtime, pushing each step where the bridge runs and checking it.

    --leaf reissues the gateway leaves from the same CA. --ca rolls a mesh's CA over in three stages (1: the
    peers trust the old and the new CA, issued with spec.tls.keyType; 2: the leaves are reissued from the new
    CA; 3: the old CA is dropped),
    so that at no moment does one side present a certificate the other does not trust. After every step the
    Secrets are pushed — to the running local twin (an atomic SDS swap, no restart) and to the clusters named
    with --context — and the path is checked before the next step.
    """
    from meshbridge.rotation import hold_stages, plan_rotation
    from meshbridge.rotation import rotate as run_rotation

    _check_rotate_flags(leaf, ca, stage)
    bridge = read_bridge(file)
    store = store_for(file, state_dir)
    steps = plan_rotation(store, bridge, "ca" if ca else "leaf", mesh or bridge.own_meshes, [stage] if stage else None)
    _require_keys(store, bridge, steps, named_meshes=bool(mesh))
    targets = Targets(bridge, file, state_dir, store, contexts, timeout, kubeconfig, force_conflicts, _note)
    peers = [m for m, spec in bridge.spec.meshes.items() if spec.peer]
    steps, held = hold_stages(steps, delivered=targets.local or bool(targets.contexts), peers=peers)
    planned = [{"step": i, "mesh": s.mesh, "what": s.title} for i, s in enumerate(steps, 1)]
    refused = _manifest_secrets_refusal(targets) if steps else None
    if refused and not dry_run:
        raise PkiError(refused)
    if not as_json:
        out.print(table(["STEP", "MESH", "WHAT"], [(p["step"], p["mesh"], p["what"]) for p in planned]))
    if refused:
        err.print(f"warning: the rotation would be refused: {refused}", markup=False, highlight=False)
    if dry_run or not steps:
        done = "" if as_json else "dry run: nothing changed" if dry_run else "nothing to do"
        _say_rotated(planned, [], held, done, as_json=as_json, dry_run=dry_run)
        return
    with targets:
        try:
            targets.ready()  # before the store changes: a cluster that does not answer stops the rotation here
        except KubeError as e:
            raise KubeError(f"{e}\nNothing was rotated: the store and the clusters are unchanged") from e
        results = run_rotation(
            bridge,
            store,
            steps,
            push=targets.push,
            check=targets.check,
            progress=lambda line: err.print(line, markup=False),
        )
    nowhere = (
        "note: nothing is running here; the store was updated. Push with 'meshbridge certs push --context "
        "MESH=CONTEXT ...' (or 'meshbridge apply'), or start the twin with 'meshbridge local up'"
    )
    _say_rotated(planned, results, held, "" if held or targets.local or targets.contexts else nowhere, as_json=as_json)


def _not_the_stores(targets: Targets) -> tuple[str, str] | None:
    """What the running local twin serves that is not the store's, or ``None``: certificate files given with
    ``--cert``, or Secrets of the user's ``--manifests`` (:func:`meshbridge.verify.local.manifest_secrets`), which the
    store does not change and which win over it. ``(what, fix)``: the first clause names them, the second says how to
    put the store's certificates in their place."""
    if not targets.local:
        return None
    from meshbridge.verify.local import manifest_secrets, read_running

    files = _mounted_files(targets.twin)
    if files:
        return (
            f"the running local twin was started with certificate files of your --manifests ({files}): its proxies "
            "read those files, which the store does not change",
            "change those files yourself and run 'meshbridge local up' again with them; or run the twin on the "
            "store's certificates (credentialName Secrets, no --cert)",
        )
    own = manifest_secrets(targets.twin, read_running(targets.twin).credentials)
    if not own:
        return None
    served = "; ".join(f"{mesh}'s {role} gateway serves {what}" for (mesh, role), what in sorted(own.items()))
    return (
        f"the running local twin does not serve the store's certificates everywhere: {served} (your --manifests), "
        "which the store does not change and which wins over it",
        "change the certificate in that Secret yourself and run 'meshbridge local up' again with it; or remove "
        "that Secret from the manifests so the twin serves the store's certificates ('meshbridge local down', "
        "then 'meshbridge local up' without it)",
    )


def _manifest_secrets_refusal(targets: Targets) -> str | None:
    """Why a rotation cannot run on the running local twin (:func:`_not_the_stores`), or ``None``: the check after
    the first step would fail with the store already changed."""
    found = _not_the_stores(targets)
    if found is None:
        return None
    what, fix = found
    return (
        f"{what}. A rotation changes the store and pushes it, but the twin keeps serving those, so the check after "
        f"the first step would fail and leave the store and the twin apart. Nothing was rotated. Fix: {fix}, then "
        "rotate"
    )


def _mounted_files(twin: LocalTwin) -> str:
    """The ``--cert [MESH:]PATH=FILE`` files the running twin was started with (``PATH (FILE)``, comma-separated),
    or ``""``."""
    try:
        certs = twin.plan().get("certs", [])
    except MeshbridgeError:  # a start that stopped before writing its plan
        return ""
    return ", ".join(f"{c['path']} ({c['file']})" for c in certs)


def _say_rotated(
    planned: list[dict[str, object]],
    results: list[StepResult],
    held: list[str],
    note: str,
    *,
    as_json: bool,
    dry_run: bool = False,
) -> None:
    """``certs rotate``'s answer: the results table (or ``--json``, its lines on stderr), then ``note`` and, for
    each mesh held back (:func:`meshbridge.rotation.hold_stages`), how to continue. A step pushed nowhere is not
    checked: its check is ``not run`` (``ok``: null)."""
    say = err.print if as_json else out.print
    if as_json:
        _print_json(
            {
                "dry_run": dry_run,
                "steps": planned,
                "results": [_rotation_json(r) for r in results],
                "held": held,
            }
        )
    else:
        rows = [
            (
                r.step.mesh,
                r.step.title,
                ", ".join(f"{a.slot} {a.action}" for a in r.actions),
                "; ".join(r.pushed) or "-",
                ("ok" if r.ok else "FAILED") if r.checked else "not run",
            )
            for r in results
        ]
        if rows:
            header = ("MESH", "STEP", "CERTIFICATES", "PUSHED TO", "CHECK")
            out.print(fit_table([header, *rows], TABLE_WIDTH, wrap=[1, 2, 3]).rstrip())
    for line in [note] * bool(note) + held:
        say(line, markup=False, highlight=False)


def _known_serials(store: PkiStore, mesh: str) -> dict[int, str]:
    """Serial → where meshbridge knows it from: every leaf certificate in the mesh's store folder (current
    leaves, and any kept beside them), then the serials already on its CRLs (``ca``, ``ca-next``,
    ``ca-retired``). CA certificates are not listed: a CA is not revoked on its own CRL."""
    folder = store.root / mesh
    known: dict[int, str] = {}
    for path in sorted(folder.glob("*.crt")):
        try:
            bundle = CertBundle(path.read_bytes())
            if not bundle.is_ca:
                known.setdefault(bundle.serial, f"{path.stem} leaf")
        except (OSError, PkiError):
            continue
    for path in sorted(folder.glob("*.crl")):
        try:
            serials = revoked_serials(path.read_bytes(), str(path))
        except (OSError, PkiError):
            continue
        for number in serials:
            known.setdefault(number, f"on {path.name}")
    return known


def _serial_to_revoke(store: PkiStore, mesh: str, serial: str | None, current: LeafChoice | None, force: bool) -> int:
    """The serial ``--serial HEX`` or ``--current server|client`` names.

    Raises:
        PkiError: the leaf does not exist, the serial is not hex, or (without ``force``) it is none of the mesh's
            certificates meshbridge knows.
    """
    if current is not None:
        leaf = store.load(mesh, current.value)
        if leaf is None:
            raise PkiError(
                f"mesh {mesh!r} has no {current.value} leaf in {store.root}. Fix: 'meshbridge certs show' lists "
                "what exists"
            )
        return leaf.serial
    else:
        assert serial is not None
        try:
            number = int(serial.lower().removeprefix("0x").replace(":", ""), 16)
        except ValueError:
            raise PkiError(
                f"--serial {serial!r} is not a hex number (e.g. 3f2a9c...; 'certs show --wide' prints them)"
            ) from None
        known = _known_serials(store, mesh)
        if number > 0 and number not in known and not force:  # 0 and below: the store says why
            shown = [f"{n:x} ({what})" for n, what in known.items()]
            listed = ", ".join(shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "") or "none"
            raise PkiError(
                f"--serial {number:x} is not a certificate of mesh {mesh!r} that meshbridge knows (known: {listed}). "
                f"Fix: copy the serial from 'meshbridge certs show --wide'; to revoke a certificate {mesh}'s CA issued "
                "elsewhere, add --force"
            )
    return number


def _say_revoked(
    notes: Console, mesh: str, holder: str | None, pushed: list[str], restart: str | None, problems: list[str]
) -> None:
    """What ``certs revoke`` says after its table (on ``notes``: stderr with ``--json``, whose stdout is the JSON
    alone): where the CRL went, the restart that drains clusters' connections, and the leaf to reissue.

    Raises:
        PkiError: a gateway does not serve the CRL yet (``problems``).
    """

    def say(text: str) -> None:
        notes.print(text, markup=False, highlight=False)

    if pushed:
        say(f"pushed to: {'; '.join(pushed)}")
    else:
        say(
            "recorded in the store only (no local twin runs here): push it with "
            "'meshbridge certs push --context MESH=CONTEXT ...'"
        )
    if restart is not None:
        say(restart)
    if problems:
        raise PkiError(
            "the CRL is recorded and was pushed, but not every gateway serves it yet: " + "; ".join(problems)
        )
    if holder is not None:
        say(
            f"{mesh}'s current {holder} leaf is revoked: its peers refuse it from now on. "
            f"Issue a new one: 'meshbridge certs rotate --leaf --mesh {mesh}'"
        )


RevokeMesh = Annotated[
    str,
    typer.Option(
        "--mesh",
        help="The mesh whose CA issued the certificate: the importer for its egress gateway's client leaf, "
        "the exporter for its ingress gateway's server leaf.",
    ),
]
RevokeSerial = Annotated[
    str | None,
    typer.Option("--serial", metavar="HEX", help="Serial number in hex, as 'certs show --wide' prints it."),
]
RevokeCurrent = Annotated[
    LeafChoice | None,
    typer.Option("--current", help="Revoke the mesh's current server or client leaf (then rotate it)."),
]
RevokeForce = Annotated[
    bool,
    typer.Option(
        "--force",
        help="With --serial: revoke it even if it is none of the mesh's certificates meshbridge knows (a "
        "leaf its CA issued elsewhere, or one replaced and not kept).",
    ),
]


@app.command("revoke")
def revoke(
    mesh: RevokeMesh,
    serial: RevokeSerial = None,
    current: RevokeCurrent = None,
    force: RevokeForce = False,
    contexts: PushContexts = None,
    timeout: PushTimeout = 120.0,
    force_conflicts: PushForceConflicts = False,
    kubeconfig: Kubeconfig = None,
    file: BridgeFile = DEFAULT_BRIDGE,
    state_dir: StateDir = None,
    as_json: AsJson = False,
) -> None:
    """Revoke a certificate: put its serial on its CA's CRL, which the peers' gateways check.

    The CRL (<state>/pki/<mesh>/ca.crl) is signed by the mesh's CA and stays valid until the CA expires. It
    reaches the peers' gateways as the 'crl' key beside 'cacert' in their Secret (istiod's layout): pushed
    at once to a running local twin and to the clusters named with --context ('meshbridge certs push' later
    otherwise). Once any trusted CA has revocations, every trusted CA gets a CRL (an empty one if need be):
    Envoy refuses a chain with a CRL for only some of its CAs.

    Envoy checks a peer only when a connection is opened. On the local twin the push also drains the
    gateways' open connections, so the revoked certificate loses its access at once; on clusters the
    command prints the 'kubectl rollout restart' that does the same.

    Revoking a --current leaf cuts the link until a new leaf is issued: run
    'meshbridge certs rotate --leaf --mesh MESH' (or 'certs issue', which replaces revoked leaves).

    --serial takes only a certificate of that mesh meshbridge knows: a leaf in the store (current, or kept
    from a CA rollover) or a serial already on one of its CRLs, so that a typo never revokes nothing while
    looking done. --force revokes any serial (a certificate the mesh's CA issued outside meshbridge).

    Examples: 'meshbridge certs revoke --mesh gke --current client';
    'meshbridge certs revoke --mesh gke --serial 3f2a...'.
    """

    if (serial is None) == (current is None):
        raise PkiError("say what to revoke: --serial HEX or --current server|client (one of them)")
    bridge = read_bridge(file)
    if mesh not in bridge.spec.meshes:
        raise PkiError(f"mesh {mesh!r} is not in {file} (meshes: {', '.join(bridge.spec.meshes)})")
    store = store_for(file, state_dir)
    number = _serial_to_revoke(store, mesh, serial, current, force)
    with Targets(bridge, file, state_dir, store, contexts, timeout, kubeconfig, force_conflicts, _note) as targets:
        targets.ready()  # before the CRL is written: a push that cannot happen fails first
        done = store.revoke(mesh, number)
        pushed = targets.push()
        problems = [c for c in targets.check() if c.check == "GatewaysServeCurrentCerts" and not c.passed]
    cas = [
        (slot, "revoked" if added else "already revoked", path)
        for (slot, added), path in zip(done.cas, done.crl_paths(store), strict=True)
    ]
    if as_json:
        _print_json(
            {
                "mesh": mesh,
                "serial": f"{number:x}",
                "holder": done.holder,
                "cas": [{"ca": slot, "action": action, "crl": str(path)} for slot, action, path in cas],
                "pushed": pushed,
            }
        )
    else:
        rows = [(mesh, f"{number:x}", done.holder or "-", slot, action) for slot, action, _ in cas]
        crls = [f"CRL: {shown(path)}" for _, _, path in cas]  # under its row: a path does not fit a column
        header = ("MESH", "SERIAL", "HOLDER", "CA", "ACTION")
        out.print(fit_table([header, *rows], TABLE_WIDTH, wrap=[], notes=crls).rstrip(), markup=False, highlight=False)
    restart = targets.restart_hint() if targets.clients else None
    _say_revoked(err if as_json else out, mesh, done.holder, pushed, restart, [c.message for c in problems])
