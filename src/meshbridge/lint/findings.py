"""What lint reports: a :class:`Finding` with a stable code, a severity, the objects involved, the symptom
at run time and the fix (pure).

A finding's code never changes meaning; its severity is fixed per code (see :mod:`meshbridge.lint.codes`),
so CI can ignore a code knowingly (``meshbridge lint --ignore MB202``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshbridge.severity import SEVERITY_RANK, Severity


@dataclass(frozen=True)
class ObjectRef:
    """One object a finding is about.

    Attributes:
        mesh: the mesh it belongs to (a key of the bridge's ``spec.meshes``, or a ``--mesh`` name).
        kind: ``Gateway``, ``VirtualService``, ``DestinationRule``, ``ServiceEntry``, ``Secret``, ``Service``,
            ``MeshConfig`` (mesh settings) or ``Bridge`` (the spec).
        namespace: its namespace (empty for cluster-wide objects and the spec).
        name: its name.
        field: the field path inside it, e.g. ``spec.trafficPolicy.portLevelSettings[0].tls.sni``; empty for
            the whole object.
        source: where it was read from (``eks.yaml#2``, ``rendered``, ``--cert``); empty when unknown.
    """

    mesh: str
    kind: str
    namespace: str
    name: str
    field: str = ""
    source: str = ""

    @property
    def display(self) -> str:
        """``Kind namespace/name`` (``Kind name`` without a namespace)."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def at(self, field: str) -> ObjectRef:
        """The same object, another field."""
        return ObjectRef(self.mesh, self.kind, self.namespace, self.name, field, self.source)

    def to_dict(self) -> dict[str, str]:
        """JSON form: every attribute, empty strings included (stable keys for scripts)."""
        return {
            "mesh": self.mesh,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "field": self.field,
            "source": self.source,
        }


@dataclass(frozen=True)
class Finding:
    """One problem lint found.

    Attributes:
        code: stable code, ``MB`` + 3 digits (``MB303``); the hundreds group the kind (see ``codes``).
        severity: ``error`` (breaks traffic or security; exit 1), ``warning`` (works, but weak or fragile),
            ``info`` (what lint assumed or could not check).
        objects: the objects involved, most relevant first.
        message: what is wrong, with the values lint saw.
        symptom: what a user sees at run time: status code, Envoy response flag, TLS alert, log line.
        fix: what to change, with the value to use where lint knows it.
    """

    code: str
    severity: Severity
    objects: tuple[ObjectRef, ...]
    message: str
    symptom: str
    fix: str

    @property
    def mesh(self) -> str:
        """The mesh of the first object (``-`` when there is none)."""
        return self.objects[0].mesh if self.objects else "-"

    def sort_key(self) -> tuple[Any, ...]:
        """Errors first, then by code, mesh and object."""
        first = self.objects[0] if self.objects else ObjectRef("", "", "", "")
        return (
            SEVERITY_RANK[self.severity],
            self.code,
            first.mesh,
            first.kind,
            first.namespace,
            first.name,
            self.message,
        )

    def to_dict(self, title: str) -> dict[str, Any]:
        """JSON form, with the code's ``title`` (:data:`meshbridge.lint.codes.CODES`)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "title": title,
            "objects": [o.to_dict() for o in self.objects],
            "message": self.message,
            "symptom": self.symptom,
            "fix": self.fix,
        }

    def __str__(self) -> str:
        where = "; ".join(o.display + (f" {o.field}" if o.field else "") for o in self.objects)
        return f"{self.severity} {self.code} [{self.mesh}] {where}: {self.message}. Fix: {self.fix}"
