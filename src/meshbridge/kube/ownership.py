"""Field ownership on a live object: who else manages it, what a 409 says, and how meshbridge takes over an object
that a client-side ``kubectl apply`` made (pure).

An object made by ``meshbridge render | kubectl apply -f -`` (the README's GitOps path, or the article's own
``kubectl apply``) is managed by ``kubectl-client-side-apply`` (an ``Update`` entry of ``managedFields``) and
carries the ``kubectl.kubernetes.io/last-applied-configuration`` annotation. meshbridge's first server-side
apply of the same values only *shares* those fields; the next change of one of them is a 409 conflict, and a
field meshbridge stops setting stays as long as the other manager still claims it. ``--force-conflicts``
takes such an object over the way ``kubectl apply --server-side`` migrates one (client-go's ``csaupgrade``):
the client-side manager's fields join meshbridge's apply entry, its entry and the last-applied annotation
(which only kubectl's own server-side apply keeps up to date) are removed, in one JSON patch guarded by the
object's ``resourceVersion``. meshbridge then owns the object alone, and later applies converge.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

Document = dict[str, Any]

FIELD_MANAGER = "meshbridge"
"""The field manager meshbridge's server-side applies and patches are made as."""

CLIENT_SIDE_MANAGERS = ("kubectl-client-side-apply", "before-first-apply")
"""The managers of a client-side ``kubectl apply`` (the second names fields an object had before its first
server-side apply)."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def client_side_managers(doc: Document) -> list[str]:
    """The client-side ``kubectl apply`` managers of a live object's ``managedFields`` (``[]`` when none)."""
    found = []
    for entry in (doc.get("metadata") or {}).get("managedFields") or []:
        name = str(entry.get("manager", ""))
        if name in CLIENT_SIDE_MANAGERS and entry.get("operation") == "Update" and name not in found:
            found.append(name)
    return found


def co_owned(doc: Document) -> str:
    """Why a live object of ours is not meshbridge's alone, in words, or ``""``."""
    managers = client_side_managers(doc)
    if not managers:
        return ""
    return (
        f"co-owned with {', '.join(managers)} (it was made by a client-side 'kubectl apply'): changing a field "
        "that manager set is a conflict, and a field meshbridge stops setting stays; --force-conflicts takes the "
        "object over"
    )


def takeover_patch(doc: Document, manager: str = FIELD_MANAGER, now: dt.datetime | None = None) -> list[Document]:
    """The JSON patch that moves a client-side apply's ownership of ``doc`` to ``manager`` (as ``csaupgrade``).

    The client-side managers' fields are merged into ``manager``'s ``Apply`` entry (created with their API version
    when there is none), their entries removed, and so is the last-applied annotation (from the object and from
    the fields). The first operation tests ``metadata.resourceVersion``: a patch computed from an object that
    changed since is refused (409) instead of writing stale ownership.

    Returns:
        The operations; ``[]`` when no client-side manager owns anything.
    """
    md = doc.get("metadata") or {}
    entries = [copy.deepcopy(e) for e in md.get("managedFields") or []]
    csa = [e for e in entries if e.get("manager") in CLIENT_SIDE_MANAGERS and e.get("operation") == "Update"]
    if not csa:
        return []
    keep = [e for e in entries if e not in csa]
    mine = next((e for e in keep if e.get("manager") == manager and e.get("operation") == "Apply"), None)
    if mine is None:
        mine = {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": csa[0].get("apiVersion", doc.get("apiVersion")),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
        keep.append(mine)
    fields: dict[str, Any] = dict(mine.get("fieldsV1") or {})
    for e in csa:
        fields = _union(fields, e.get("fieldsV1") or {})
    annotations = (fields.get("f:metadata") or {}).get("f:annotations")
    if isinstance(annotations, dict):
        annotations.pop(f"f:{LAST_APPLIED}", None)
        if set(annotations) <= {"."}:
            fields["f:metadata"].pop("f:annotations")
    mine["fieldsV1"] = fields
    mine["time"] = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ops: list[Document] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": md.get("resourceVersion")},
        {"op": "replace", "path": "/metadata/managedFields", "value": keep},
    ]
    if LAST_APPLIED in (md.get("annotations") or {}):
        ops.append(
            {"op": "remove", "path": "/metadata/annotations/" + LAST_APPLIED.replace("~", "~0").replace("/", "~1")}
        )
    return ops


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two ``fieldsV1`` sets merged (a field set is a tree of ``f:``/``k:``/``v:``/``i:`` keys)."""
    out = {k: copy.deepcopy(v) for k, v in a.items()}
    for k, v in b.items():
        out[k] = _union(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else copy.deepcopy(v)
    return out


_CONFLICT = re.compile(r'conflicts? with "([^"]+)"(?: using [^:\s]+)?:?\s*(?:- )?(\S+)')


def conflict_summary(message: str) -> str:
    """A 409's message as one line: which manager owns which fields, e.g.
    ``kubectl-client-side-apply owns .spec.host, .spec.trafficPolicy.portLevelSettings``.

    The API server writes ``Apply failed with 2 conflicts: conflicts with "M" using G/V:\\n- .a\\n- .b`` (and the
    causes, appended by :func:`meshbridge.kube.errors.parse_status`, as ``.a: conflict with "M" ...``).
    """
    owners: dict[str, list[str]] = {}
    for cause in re.finditer(r'(\.[^\s;:()]+): conflict with "([^"]+)"', message):
        owners.setdefault(cause.group(2), [])
        if cause.group(1) not in owners[cause.group(2)]:
            owners[cause.group(2)].append(cause.group(1))
    if not owners:
        head = re.search(r'conflicts? with "([^"]+)"', message)
        fields = re.findall(r"(?:^|\s)-?\s*(\.[A-Za-z][^\s;:()]*)", message)
        if head:
            owners[head.group(1)] = list(dict.fromkeys(fields))
    if not owners:
        return " ".join(message.split())
    return owners_text(owners)


def owners_text(owners: Mapping[str, list[str]]) -> str:
    """Managers and their fields in words, e.g. ``kubectl-edit owns .spec.servers; x owns .spec.http``."""
    parts = []
    for who, fields in owners.items():
        what = ", ".join(fields) if fields else "fields meshbridge sets"
        kind = " (a client-side 'kubectl apply')" if who in CLIENT_SIDE_MANAGERS else ""
        parts.append(f"{who}{kind} owns {what}")
    return "; ".join(parts)


def taken_fields(live: Document, desired: Document, manager: str = FIELD_MANAGER) -> dict[str, list[str]]:
    """The fields meshbridge renders that another field manager owns on the live object: manager → paths.

    Someone's update (``kubectl edit``, a PUT) takes the fields it changes from meshbridge, and an Istio list is
    atomic, so adding ``timeout`` to one route of ``.spec.http`` makes the editor own all of ``.spec.http``; the
    next apply of meshbridge's value is then a 409 conflict naming that manager. A value that was *added* leaves
    every field meshbridge renders equal (:func:`~meshbridge.kube.plan.contains` cannot see it); its owner can.
    A client-side ``kubectl apply`` only co-owns the object (:func:`co_owned`) and is not counted.

    Args:
        live: the object as read, with ``metadata.managedFields``.
        desired: the rendered document.
        manager: meshbridge's field manager.

    Returns:
        e.g. ``{"kubectl-edit": [".spec.http"]}``; ``{}`` when meshbridge alone owns what it renders.
    """
    owners: dict[str, list[str]] = {}
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        who = str(entry.get("manager", ""))
        if who == manager or who in CLIENT_SIDE_MANAGERS:
            continue
        found = _overlap(entry.get("fieldsV1") or {}, desired, "")
        if found:
            owners.setdefault(who, [])
            owners[who] += [f for f in found if f not in owners[who]]
    return owners


def _overlap(fields: Mapping[str, Any], doc: Any, path: str) -> list[str]:
    """The paths of ``doc`` a ``fieldsV1`` tree claims: a leaf or an atomic value whole, a list by any element."""
    found: list[str] = []
    for key, sub in fields.items():
        if key.startswith("f:") and isinstance(doc, dict) and key[2:] in doc:
            here = f"{path}.{key[2:]}"
            inner = {k: v for k, v in (sub or {}).items() if k != "."}
            found += _overlap(inner, doc[key[2:]], here) if inner else [here]
        elif key[:2] in ("k:", "v:", "i:") and isinstance(doc, list):
            found.append(path)
    return list(dict.fromkeys(found))
