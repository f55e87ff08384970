"""Certificate rotation without downtime: leaf rotation and a staged CA rollover, pushed and checked.

Each step changes the PKI store, pushes the gateways' Secrets where they run (the local twin: an atomic
SDS file swap, no restart; real clusters: a server-side apply of the Secrets), then checks the path before
the next step. The order guarantees that at no moment does one side present a certificate the other does
not trust:

* **leaf** (``--leaf``): new key and certificate from the same CA; peers already trust that CA.
* **CA rollover** (``--ca``), per mesh: stage 1 adds the new CA to what peers trust (both trusted); stage 2
  reissues the mesh's leaves from the new CA; stage 3 drops the old CA. A stage starts only after the
  previous one was pushed and checked: with nowhere to push, a mesh runs its next stage only, and beside another
  owner's mesh it stops after stage 1 until the peer trusts both CAs (:func:`hold_stages`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from meshbridge.errors import MeshbridgeError
from meshbridge.pki import IssueAction, PkiStore
from meshbridge.spec.models import Bridge
from meshbridge.verify.report import Condition

Kind = Literal["leaf", "ca"]
STAGE_TITLES = {
    1: "stage 1: issue the new CA; peers trust the old and the new",
    2: "stage 2: reissue the leaves from the new CA",
    3: "stage 3: drop the old CA",
}


@dataclass(frozen=True)
class Step:
    """One step of a rotation plan: what it does to which mesh."""

    kind: Kind
    mesh: str
    stage: int
    title: str


@dataclass
class StepResult:
    """What a step did, where it was pushed, and the checks after it."""

    step: Step
    actions: list[IssueAction] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    checks: list[Condition] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check after the step passed (also when none ran: see :attr:`checked`)."""
        return all(c.passed for c in self.checks)

    @property
    def checked(self) -> bool:
        """True when a check ran after the step (it was pushed somewhere)."""
        return bool(self.checks)


class RotationError(MeshbridgeError):
    """A rotation step could not be pushed everywhere, or the check after it failed or could not run; later steps
    were not run. The message names the step, where it was pushed and where not, and the steps left."""


def plan_rotation(
    store: PkiStore, bridge: Bridge, kind: Kind, meshes: list[str], stages: list[int] | None
) -> list[Step]:
    """The steps of a rotation, in order.

    Args:
        store: the PKI store (a CA rollover resumes at the mesh's current stage).
        bridge: the spec.
        kind: ``leaf`` or ``ca``.
        meshes: which meshes (default in the CLI: all but ``peer: true`` ones).
        stages: for ``ca``, the stages to run (default: the remaining ones, in order).

    Raises:
        MeshbridgeError: a mesh is unknown or another owner's (``peer: true``), or ``stages`` do not continue a
            mesh's rollover where it stands (checked here, before anything runs or is printed as planned).
    """
    unknown = [m for m in meshes if m not in bridge.spec.meshes]
    if unknown:
        raise MeshbridgeError(
            f"--mesh {', '.join(unknown)}: not a mesh of the bridge (meshes: {', '.join(bridge.spec.meshes)})"
        )
    peers = [m for m in meshes if bridge.spec.meshes[m].peer]
    if peers:
        raise MeshbridgeError(
            f"--mesh {', '.join(peers)}: another owner's mesh ('peer: true'), whose certificates its owner rotates; "
            "a CA rollover there reaches you as a new offer or reply. Fix: rotate your own mesh "
            f"({', '.join(bridge.own_meshes)})"
        )
    if kind == "leaf":
        return [Step("leaf", m, 0, f"reissue the leaves of {m} from its current CA") for m in meshes]
    steps = []
    for m in meshes:
        current = store.rollover_stage(m)
        todo = stages or [s for s in (1, 2, 3) if s > current]
        if todo != list(range(current + 1, current + 1 + len(todo))):
            raise MeshbridgeError(
                f"mesh {m!r} is at rollover stage {current}; the next stage is {current + 1}, not "
                f"{', '.join(map(str, todo))}. Fix: 'meshbridge certs rotate --ca --mesh {m}' runs the remaining stages"
            )
        steps += [Step("ca", m, s, f"{m}: {STAGE_TITLES[s]}") for s in todo]
    return steps


def rotate(
    bridge: Bridge,
    store: PkiStore,
    steps: list[Step],
    *,
    push: Callable[[], list[str]],
    check: Callable[[], list[Condition]],
    progress: Callable[[str], None] = lambda _: None,
) -> list[StepResult]:
    """Run ``steps``: change the store, ``push`` the Secrets, ``check`` the path; stop at the first failure.

    Args:
        bridge: the spec.
        store: the PKI store.
        steps: from :func:`plan_rotation`.
        push: applies the current Secrets wherever the bridge runs; returns where it pushed.
        check: the checks between steps (conditions; all must pass).
        progress: one line per step.

    Raises:
        RotationError: a step's push failed part-way (the error of the push says which clusters hold the new
            certificates and which do not), or the check after a step failed or could not run. The message names
            the step and the steps not run; the store holds the step's result, so fixing the cause and re-running
            resumes (a CA rollover at its next stage; ``certs push`` delivers what the store holds).
    """
    results = []
    for i, step in enumerate(steps, 1):
        progress(f"[{i}/{len(steps)}] {step.title}")
        if step.kind == "leaf":
            actions = store.rotate_leaves(bridge, [step.mesh])
        else:
            actions = store.rollover(bridge, step.mesh, step.stage)
        where = f"step {i} of {len(steps)} ({step.title})"
        left = _not_run(steps, i)
        try:
            result = StepResult(step, actions, push())
        except MeshbridgeError as e:
            raise RotationError(
                f"{where}: the store holds its new certificates, but pushing them failed{left}:\n{e}\n"
                + _resume(steps, i)
            ) from e
        if not result.pushed:
            progress("      pushed nowhere (nothing is running); not checked")
            results.append(result)
            continue
        pushed = ", ".join(result.pushed)
        progress(f"      pushed to {pushed}; checking")
        try:
            result.checks = check()
        except MeshbridgeError as e:
            raise RotationError(
                f"{where} was pushed to {pushed}, but the check after it could not run{left}:\n{e}\n"
                + _resume(steps, i)
            ) from e
        results.append(result)
        if not result.ok:
            failed = "; ".join(dict.fromkeys(f"{c.check}: {c.message}" for c in result.checks if not c.passed))
            raise RotationError(
                f"after '{step.title}' a check failed, later steps were not run: {failed}\n{_resume(steps, i)}"
            )
    return results


def hold_stages(steps: list[Step], *, delivered: bool, peers: list[str]) -> tuple[list[Step], list[str]]:
    """The steps of a CA rollover that may run now, and for each mesh held back what to do before its next stage.

    A stage starts only once the previous one reached the gateways: with nowhere to push (``delivered`` false: no
    running twin, no cluster) a mesh runs its next stage only; with another owner's mesh (``peers``) a mesh stops
    after stage 1, as the peer must trust the new CA (a new offer or reply) before any leaf is issued from it.
    """
    if not steps or steps[0].kind != "ca" or (delivered and not peers):
        return steps, []
    now: list[Step] = []
    held: list[str] = []
    for m in dict.fromkeys(s.mesh for s in steps):
        mine = [s for s in steps if s.mesh == m]
        cut = 1 if not delivered else next((i + 1 for i, s in enumerate(mine) if s.stage == 1), len(mine))
        now += mine[:cut]
        if cut < len(mine):
            held.append(_before_next(mine[cut - 1], delivered, peers))
    return now, held


def _before_next(done: Step, delivered: bool, peers: list[str]) -> str:
    """What to do after ``done`` (a held mesh's last stage run) before its next stage, and how to run it."""
    m, n = done.mesh, done.stage + 1
    todo = []
    if not delivered:
        todo.append(
            "push it (nothing received it: no local twin runs and no --context was given): 'meshbridge certs push "
            "--context MESH=CONTEXT ...' (or 'meshbridge apply'), or start the twin with 'meshbridge local up'"
        )
    if peers and done.stage == 1:
        todo.append(
            f"send {', '.join(peers)} a new 'meshbridge peer offer' (or, as the importer, the reply of "
            "'meshbridge peer accept'), which carries both CAs, and wait until its owner applied it"
        )
    return (
        f"{m}: stopped after stage {done.stage}, the old and the new CA stay trusted side by side"
        if done.stage == 1
        else f"{m}: stopped after stage {done.stage}"
    ) + (
        f"; stage {n} did not run. Before it: {'; then '.join(todo)}. "
        f"Then continue with 'meshbridge certs rotate --ca --mesh {m} --stage {n}'"
    )


def _resume(steps: list[Step], stopped: int) -> str:
    """Where a rotation that stopped at step number ``stopped`` stands, and the commands that resume it."""
    step, rest = steps[stopped - 1], list(dict.fromkeys(s.mesh for s in steps[stopped:]))
    kind = "--leaf" if step.kind == "leaf" else "--ca"
    done = list(dict.fromkeys(s.mesh for s in steps[:stopped] if s.kind == "leaf"))
    again = f" (rotating {', '.join(done)} again would reissue its leaves once more)" if done and rest else ""
    then = f", then 'meshbridge certs rotate {kind} {' '.join(f'--mesh {m}' for m in rest)}'{again}"
    before = f"; steps 1 to {stopped - 1} were pushed and checked" if stopped > 1 else ""
    return (
        f"Where it stands: the store holds the certificates of step {stopped}, written only where said above"
        f"{before}. To resume once the cause is fixed: 'meshbridge certs push' delivers and checks what the store "
        f"holds{then if rest else ''}"
    )


def _not_run(steps: list[Step], done: int) -> str:
    """``; not run: step 2 (...), ...`` for the steps after step number ``done``, or ``""``."""
    rest = [f"step {n} ({s.title})" for n, s in enumerate(steps, 1) if n > done]
    return f"; not run: {', '.join(rest)}" if rest else ""
