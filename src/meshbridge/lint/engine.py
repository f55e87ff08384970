"""Run every check over a :class:`~meshbridge.lint.inputs.LintInput` and collect a :class:`LintReport` (pure)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from meshbridge.errors import MeshbridgeError
from meshbridge.istio.config import MisspelledWarning
from meshbridge.istio.gateway_validation import ValidationWarning
from meshbridge.istio.removed import RemovedWarning
from meshbridge.lint import (
    authz,
    bypass,
    certificates,
    crossmesh,
    envoyfilters,
    gatewayhop,
    posture,
    routing,
    secrets,
)
from meshbridge.lint.codes import CODES, finding
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.lint.inputs import LintInput
from meshbridge.tabwriter import TERMINAL_WIDTH, fit_table, format_table

Check = Callable[[LintInput], Iterable[Finding]]


def check_input_notes(inp: LintInput) -> Iterator[Finding]:
    """MB001 and the notes made while reading the input; MB002 for fields and kinds the model ignores; MB003 for
    what Istio removed (the parser's :class:`~meshbridge.istio.removed.RemovedWarning`, one table for both); MB004
    for a misspelled field (:class:`~meshbridge.istio.config.MisspelledWarning`); MB005 for a warning of Istio's
    validation of a Gateway (:class:`~meshbridge.istio.gateway_validation.ValidationWarning`)."""
    yield from inp.notes
    for mesh in inp.meshes:
        for w in mesh.config.warnings:
            if w.source == "translate":
                continue
            if isinstance(w, RemovedWarning):
                yield finding(
                    "MB003",
                    [ObjectRef(mesh.name, w.kind, w.namespace, w.name, w.field, w.source)],
                    w.problem,
                    f"{w.fix} (Istio {w.removal.release}: {w.removal.source})",
                )
                continue
            if isinstance(w, ValidationWarning):
                yield finding(
                    "MB005", [ObjectRef(mesh.name, w.kind, w.namespace, w.name, w.field, w.source)], w.message, w.fix
                )
                continue
            if isinstance(w, MisspelledWarning):
                yield finding(
                    "MB004",
                    [ObjectRef(mesh.name, w.kind, w.namespace, w.name, w.field, w.source)],
                    w.message,
                    f"rename it to {w.suggestion!r}",
                )
                continue
            yield finding(
                "MB002",
                [ObjectRef(mesh.name, w.kind, w.namespace, w.name, w.field, w.source)],
                w.message,
                "check this field by hand (istioctl analyze), or remove it if it is not needed",
            )


CHECKS: tuple[Check, ...] = (
    check_input_notes,
    *routing.CHECKS,
    *bypass.CHECKS,
    *gatewayhop.CHECKS,
    *authz.CHECKS,
    *envoyfilters.CHECKS,
    *secrets.CHECKS,
    *crossmesh.CHECKS,
    *certificates.CHECKS,
    *posture.CHECKS,
)


@dataclass(frozen=True)
class LintReport:
    """The findings of one lint run, errors first.

    Attributes:
        findings: every finding not ignored, sorted by severity, code, mesh and object.
        ignored: how many findings ``ignore`` suppressed.
        input_error: the message of an input error that stopped lint before any check ran (exit code 2), or
            ``""``: ``--json`` still prints a document, so a script that reads only stdout sees the error.
    """

    findings: tuple[Finding, ...]
    ignored: int = 0
    input_error: str = ""

    @property
    def errors(self) -> list[Finding]:
        """The error findings."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def exit_code(self) -> int:
        """2 for an input error, 1 when there is an error finding, else 0."""
        if self.input_error:
            return 2
        return 1 if self.errors else 0

    def codes(self) -> list[str]:
        """The codes found, in report order (with repeats)."""
        return [f.code for f in self.findings]

    def summary(self) -> str:
        """``2 errors, 1 warning, 3 info`` (and how many were ignored)."""
        c = Counter(f.severity for f in self.findings)
        parts = [
            f"{c['error']} error{'s' if c['error'] != 1 else ''}",
            f"{c['warning']} warning{'s' if c['warning'] != 1 else ''}",
            f"{c['info']} info",
        ]
        if self.ignored:
            parts.append(f"{self.ignored} ignored")
        return ", ".join(parts)

    def to_json(self) -> str:
        """``{"findings": [...], "summary": {...}}``, stable keys, for scripts and CI annotations; after an input
        error, also ``"error": {"message": ..., "exit_code": 2}`` (and no findings)."""
        c = Counter(f.severity for f in self.findings)
        doc: dict[str, object] = {
            "findings": [f.to_dict(CODES[f.code].title) for f in self.findings],
            "summary": {"error": c["error"], "warning": c["warning"], "info": c["info"], "ignored": self.ignored},
        }
        if self.input_error:
            doc["error"] = {"message": self.input_error, "exit_code": self.exit_code}
        return json.dumps(doc, indent=2)

    def table(self, wide: bool = False) -> str:
        """An aligned table: SEVERITY CODE MESH OBJECT FIELD within :data:`TERMINAL_WIDTH` columns (the object and
        field wrap onto continuation lines), each MESSAGE under its row, as verify prints its checks; with ``wide``,
        one finding per line (for grep and awk) with MESSAGE, SYMPTOM and FIX."""
        header: list[object] = ["SEVERITY", "CODE", "MESH", "OBJECT", "FIELD"]
        header += ["MESSAGE", "SYMPTOM", "FIX"] if wide else []
        rows: list[list[object]] = [header]
        for f in self.findings:
            first = f.objects[0] if f.objects else ObjectRef("-", "-", "", "-")
            row: list[object] = [f.severity, f.code, first.mesh, first.display, first.field or "-"]
            rows.append(row + ([f.message, f.symptom, f.fix] if wide else []))
        if wide:
            return format_table(rows).rstrip("\n")
        notes = [f.message for f in self.findings]
        return fit_table(rows, width=TERMINAL_WIDTH, wrap=(3, 4), notes=notes).rstrip("\n")  # OBJECT, FIELD wrap


def lint(inp: LintInput, *, ignore: Iterable[str] = (), checks: Iterable[Check] = CHECKS) -> LintReport:
    """Run ``checks`` over ``inp``.

    Args:
        inp: the meshes, their worlds and links (see :mod:`meshbridge.lint.inputs`).
        ignore: codes to leave out of the report (counted in ``ignored``).
        checks: the checks to run; default: all of them.

    Returns:
        The report; identical findings from different proxies are reported once, and findings on stand-in meshes
        alone (:attr:`~meshbridge.lint.inputs.MeshInput.stand_in`) not at all.

    Raises:
        MeshbridgeError: ``ignore`` names an unknown code.
    """
    ignored = set(ignore)
    unknown = sorted(ignored - set(CODES))
    if unknown:
        raise MeshbridgeError(
            f"--ignore {unknown[0]}: no such lint code. Fix: use a code listed in docs/lint.md ({min(CODES)} to "
            f"{max(CODES)})"
        )
    stand_ins = {m.name for m in inp.meshes if m.stand_in}  # read for the walk, not linted: not the user's input
    found: dict[tuple[object, ...], Finding] = {}
    for check in checks:
        for f in check(inp):
            if stand_ins and f.objects and all(o.mesh in stand_ins for o in f.objects):
                continue
            found.setdefault((f.code, f.objects, f.message), f)
    kept = sorted((f for f in found.values() if f.code not in ignored), key=Finding.sort_key)
    return LintReport(tuple(kept), len(found) - len(kept))
