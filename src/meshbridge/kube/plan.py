"""Plan: desired documents against live objects → create / update / unchanged / conflict / prune (pure).

The I/O (reading live objects, the server-side dry run, listing owned objects) happens in
:mod:`meshbridge.kube.apply`; this module only decides and explains.

Rules:

* An object is **ours** when it carries both ``app.kubernetes.io/managed-by=meshbridge`` and
  ``meshbridge.io/bridge=<bridge>``. An existing object that is not ours (no labels, or another bridge's)
  is a **conflict**: meshbridge refuses to take it over unless ``--force-conflicts``.
* **Namespaces** are never deleted (they hold the gateways and other workloads) and never taken over: a
  Namespace that exists and is not ours is used as it is (``keep``); an owned Namespace no longer rendered
  is reported as kept, never pruned.
* **Prune**: owned objects (both labels) that the bridge no longer renders are deleted.
* An object a client-side ``kubectl apply`` made (``kubectl-client-side-apply`` in its ``managedFields``) is
  only *co-owned* by meshbridge's server-side apply: the plan says so, and with ``--force-conflicts`` it is
  taken over (:mod:`meshbridge.kube.ownership`) instead of meeting a 409 on the next change.
* Diffs compare the live object with the server's dry-run answer, both stripped of server-managed fields
  (``managedFields``, ``resourceVersion``, ``uid``, ``status`` ...), so defaulted fields never show as
  changes. Secret values are never printed: they appear as ``<redacted>``, or ``<redacted: changed>``.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from meshbridge.kube.ownership import client_side_managers, co_owned, conflict_summary
from meshbridge.kube.resources import ResourceRef
from meshbridge.render.manifests import BRIDGE_LABEL, MANAGED_BY, MANAGER, NoAliasDumper

Document = dict[str, Any]
Key = tuple[str, str, str, str]
Action = Literal["create", "update", "unchanged", "conflict", "prune", "keep"]

#: metadata fields the API server owns; a diff never shows them.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
#: annotations written by tools, not by the user's intent.
TOOL_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted: changed>"


@dataclass(frozen=True)
class PlannedChange:
    """What apply would do to one object.

    Attributes:
        mesh: the mesh (cluster) it lives in.
        ref: the object.
        action: ``create``, ``update``, ``unchanged``, ``conflict`` (exists, not ours: refused),
            ``prune`` (ours, no longer rendered: deleted) or ``keep`` (left untouched, e.g. a Namespace).
        reason: why, in words (always set for ``conflict``, ``prune`` and ``keep``).
        diff: a unified diff (``live`` → ``desired``) of the object's YAML, Secret values redacted; empty
            when unchanged.
        uid: the live object's uid (prune deletes with this precondition), or ``""``.
        takeover: apply first moves a client-side ``kubectl apply``'s ownership of the object to meshbridge
            (``--force-conflicts`` on an object that manager made).
    """

    mesh: str
    ref: ResourceRef
    action: Action
    reason: str = ""
    diff: str = ""
    uid: str = ""
    takeover: bool = False

    @property
    def writes(self) -> bool:
        """True when apply sends this object (create or update)."""
        return self.action in ("create", "update")


@dataclass(frozen=True)
class MeshPlan:
    """The plan of one mesh.

    Attributes:
        mesh: the mesh.
        context: its kubeconfig context.
        changes: desired objects in apply order, then prunes and kept objects.
        notes: things the user should know that are not object changes (e.g. prune limited to namespaces).
    """

    mesh: str
    context: str
    changes: tuple[PlannedChange, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def conflicts(self) -> list[PlannedChange]:
        """Changes refused because the object is not ours."""
        return [c for c in self.changes if c.action == "conflict"]

    @property
    def writes(self) -> list[PlannedChange]:
        """Creates and updates, in apply order."""
        return [c for c in self.changes if c.writes]

    @property
    def prunes(self) -> list[PlannedChange]:
        """Owned objects to delete."""
        return [c for c in self.changes if c.action == "prune"]

    def count(self, action: Action) -> int:
        """How many changes have ``action``."""
        return sum(c.action == action for c in self.changes)


# -- ownership -------------------------------------------------------------------------------------------


def label_selector(bridge: str) -> str:
    """The label selector of this bridge's objects (both labels; prune and delete select only on it)."""
    return f"{MANAGED_BY}={MANAGER},{BRIDGE_LABEL}={bridge}"


def owner(doc: Document) -> str | None:
    """The bridge that owns ``doc`` (both labels), ``None`` when it is not meshbridge's."""
    labels = (doc.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY) != MANAGER:
        return None
    value = labels.get(BRIDGE_LABEL)
    return str(value) if value else None


def is_ours(doc: Document, bridge: str) -> bool:
    """True when ``doc`` carries both ownership labels for ``bridge``."""
    return owner(doc) == bridge


def why_not_ours(doc: Document, bridge: str) -> str:
    """Why a live object is not this bridge's, in words."""
    other = owner(doc)
    if other is not None:
        return f"it belongs to bridge {other!r} ({BRIDGE_LABEL}={other})"
    labels = (doc.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY) == MANAGER:
        return f"it is labelled {MANAGED_BY}={MANAGER} but has no {BRIDGE_LABEL} label"
    if labels.get(MANAGED_BY):
        return f"it is managed by {labels[MANAGED_BY]!r} ({MANAGED_BY})"
    return f"it exists without meshbridge's labels ({MANAGED_BY}={MANAGER}, {BRIDGE_LABEL}={bridge})"


# -- normalisation and diffs -----------------------------------------------------------------------------


def normalize(doc: Document) -> Document:
    """A copy of ``doc`` without server-managed fields (see :data:`SERVER_METADATA`) and ``status``."""
    out = copy.deepcopy(doc)
    out.pop("status", None)
    md = out.get("metadata")
    if isinstance(md, dict):
        for k in SERVER_METADATA:
            md.pop(k, None)
        ann = md.get("annotations")
        if isinstance(ann, dict):
            for k in TOOL_ANNOTATIONS:
                ann.pop(k, None)
            if not ann:
                md.pop("annotations")
    return out


def redact_pair(before: Document | None, after: Document | None) -> tuple[Document | None, Document | None]:
    """Both sides of a Secret diff with every value replaced; a value that differs shows as changed."""
    if not any(d is not None and d.get("kind") == "Secret" for d in (before, after)):
        return before, after
    b = copy.deepcopy(before) if before is not None else None
    a = copy.deepcopy(after) if after is not None else None
    for section in ("data", "stringData"):
        old = (b or {}).get(section) or {}
        new = (a or {}).get(section) or {}
        if b is not None and section in b:
            b[section] = {k: REDACTED for k in old}
        if a is not None and section in a:
            a[section] = {k: REDACTED if k in old and old[k] == v else REDACTED_CHANGED for k, v in new.items()}
    return b, a


def redact(doc: Document) -> Document:
    """``doc`` with Secret values replaced by ``<redacted>`` (other kinds unchanged)."""
    _, out = redact_pair(None, doc)
    assert out is not None
    return out


def diff(before: Document | None, after: Document | None, name: str) -> str:
    """A unified diff ``before`` → ``after`` (normalised, Secret values redacted); ``""`` when equal.

    Args:
        before: the live object, or ``None`` (create).
        after: the desired object (the dry-run answer), or ``None`` (delete).
        name: the label of both sides, e.g. ``Gateway istio-ingress/eastwestgateway``.
    """
    b, a = redact_pair(
        normalize(before) if before is not None else None, normalize(after) if after is not None else None
    )
    old = _yaml(b)
    new = _yaml(a)
    if old == new:
        return ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"live/{name}",
        tofile=f"desired/{name}",
        n=3,
    )
    return "".join(lines)


def _yaml(doc: Document | None) -> str:
    if doc is None:
        return ""
    return yaml.dump(doc, Dumper=NoAliasDumper, sort_keys=True, default_flow_style=False, width=1000)


def contains(live: Any, desired: Any) -> bool:
    """True when every field of ``desired`` has the same value in ``live`` (lists element by element).

    ``status`` uses this read-only comparison (extra fields the server defaulted are ignored); ``plan``
    uses the server's dry run instead, which also sees fields meshbridge would remove.
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(x, y) for x, y in zip(live, desired, strict=True))
        )
    return bool(live == desired)


# -- the plan --------------------------------------------------------------------------------------------


def plan_mesh(
    mesh: str,
    context: str,
    bridge: str,
    desired: Sequence[Document],
    live: Mapping[Key, Document | None],
    dry_run: Mapping[Key, Document],
    owned: Sequence[Document],
    *,
    field_conflicts: Mapping[Key, str] | None = None,
    force_conflicts: bool = False,
    prunable_kinds: frozenset[str] | None = None,
    notes: Sequence[str] = (),
) -> MeshPlan:
    """Decide, for every object of one mesh, what apply would do.

    Args:
        mesh: the mesh name.
        context: its kubeconfig context.
        bridge: the bridge name (``metadata.name``).
        desired: the rendered documents, in apply order.
        live: the live object of every desired document by :attr:`ResourceRef.key` (``None``: absent).
        dry_run: the server's dry-run apply answer by key (absent when it was not run, e.g. the namespace
            does not exist yet, or the object is a conflict).
        owned: live objects labelled for this bridge (from the label-selected lists).
        field_conflicts: keys whose dry run was refused with 409 (another field manager owns a field),
            with the server's message.
        force_conflicts: take over objects that are not ours and fields other managers own.
        prunable_kinds: kinds that may be pruned (default: all but Namespace); ``--no-secrets`` leaves
            ``Secret`` out so that Secrets applied earlier are not deleted.
        notes: extra notes to carry into the plan.

    Returns:
        The :class:`MeshPlan`: desired objects in the given order, then prunes and kept Namespaces.
    """
    field_conflicts = field_conflicts or {}
    changes: list[PlannedChange] = []
    wanted: set[Key] = set()
    for doc in desired:
        key = ResourceRef.of(doc).key
        wanted.add(key)
        conflict = field_conflicts.get(key)
        changes.append(_desired_change(mesh, bridge, doc, (live.get(key), dry_run.get(key)), conflict, force_conflicts))
    changes += _prune_changes(mesh, bridge, owned, wanted, prunable_kinds)
    return MeshPlan(mesh, context, tuple(changes), tuple(notes))


def _desired_change(
    mesh: str,
    bridge: str,
    doc: Document,
    found: tuple[Document | None, Document | None],
    field_conflict: str | None,
    force_conflicts: bool,
) -> PlannedChange:
    """What apply would do with one rendered document. ``found``: its live object (``None``: absent) and the
    server's dry-run answer (``None``: not run); ``field_conflict``: the server's 409 message, if its dry run
    was refused."""
    cur, result = found
    ref = ResourceRef.of(doc)
    uid = str((cur or {}).get("metadata", {}).get("uid") or "")
    if cur is None:
        return PlannedChange(mesh, ref, "create", diff=diff(None, result or doc, str(ref)))
    if ref.kind == "Namespace" and not is_ours(cur, bridge):
        return PlannedChange(
            mesh, ref, "keep", reason="exists and is not meshbridge's; used as it is, never changed", uid=uid
        )
    client_side = client_side_managers(cur)
    takeover = force_conflicts and bool(client_side)
    moved = (
        f"; the fields {', '.join(client_side)} set, and its last-applied-configuration annotation, move to meshbridge"
        if takeover
        else ""
    )
    if not is_ours(cur, bridge):
        why = why_not_ours(cur, bridge)
        if not force_conflicts:
            return PlannedChange(mesh, ref, "conflict", reason=why, diff=diff(cur, doc, str(ref)), uid=uid)
        return PlannedChange(
            mesh,
            ref,
            "update",
            reason=f"taken over (--force-conflicts): {why}{moved}",
            diff=diff(cur, result or doc, str(ref)),
            uid=uid,
            takeover=takeover,
        )
    if field_conflict is not None and not force_conflicts:
        return PlannedChange(
            mesh,
            ref,
            "conflict",
            reason=f"fields meshbridge sets are owned by another field manager: "
            f"{conflict_summary(field_conflict)}; --force-conflicts takes them over",
            diff=diff(cur, doc, str(ref)),
            uid=uid,
        )
    text = diff(cur, result, str(ref)) if result is not None else diff(cur, doc, str(ref))
    if result is None and contains(cur, doc):
        text = ""
    if takeover:
        return PlannedChange(
            mesh,
            ref,
            "update",
            reason=f"taken over (--force-conflicts) from {', '.join(client_side)} (a client-side 'kubectl "
            f"apply'){moved}",
            diff=text,
            uid=uid,
            takeover=True,
        )
    return PlannedChange(mesh, ref, "update" if text else "unchanged", reason=co_owned(cur), diff=text, uid=uid)


def _prune_changes(
    mesh: str, bridge: str, owned: Sequence[Document], wanted: set[Key], kinds: frozenset[str] | None
) -> list[PlannedChange]:
    """The objects of this bridge no longer rendered: pruned, or kept (Namespaces; kinds not in ``kinds``)."""
    changes = []
    for obj in sorted(owned, key=lambda d: ResourceRef.of(d).key):
        ref = ResourceRef.of(obj)
        if ref.key in wanted or not is_ours(obj, bridge):
            continue
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if ref.kind == "Namespace":
            changes.append(
                PlannedChange(mesh, ref, "keep", reason="no longer rendered; Namespaces are never deleted", uid=uid)
            )
        elif kinds is not None and ref.kind not in kinds:
            changes.append(PlannedChange(mesh, ref, "keep", reason=f"{ref.kind}s are not pruned in this run", uid=uid))
        else:
            changes.append(
                PlannedChange(
                    mesh,
                    ref,
                    "prune",
                    reason="owned by this bridge and no longer rendered",
                    diff=diff(obj, None, str(ref)),
                    uid=uid,
                )
            )
    return changes
