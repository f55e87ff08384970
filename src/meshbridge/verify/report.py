"""Conditions (``check``, ``status``, ``reason``, ``message``) and their table, JSON and JUnit forms.

Shaped like Kubernetes conditions (linkerd2's Link status): ``status`` is ``True`` when the check passed,
``False`` when it failed, ``Unknown`` when it could not run. ``reason`` is a CamelCase word a script can
match (``HandshakeRefused``, ``RouteNotFound``); ``message`` explains it for a person: the hop, the Envoy
response flag or TLS alert, and the configuration field to look at.

A check that was not run because one it depends on did not pass is never left out: it is ``Unknown`` with the
reason ``NotRunWithout<Check>`` (:func:`not_run`), so a report always lists every check it was meant to make,
and its summary (:func:`conditions_summary`) counts them apart.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Literal

from meshbridge.tabwriter import TERMINAL_WIDTH, fit_table, format_table

Status = Literal["True", "False", "Unknown"]
NOT_RUN = "NotRunWithout"
"""The prefix of the reason of a condition whose check was not run (:func:`not_run`)."""


@dataclass(frozen=True)
class Condition:
    """The result of one check.

    Attributes:
        check: the check's name (its type), e.g. ``ExporterAcceptsImporterCert``.
        status: ``True`` (passed), ``False`` (failed) or ``Unknown`` (could not run, or was not run).
        reason: a CamelCase machine-readable cause.
        message: what happened, and on failure the hop, the response flag or TLS alert, and the field to fix.
        hop: the part of the path checked (``app → egress``, ``egress → exporter``, ``exporter → ALB``, ``pki``).
        duration_ms: how long the check took.
        subject: what the check is about when it runs more than once in a report: the export and the
            importing mesh (``lambda → gke``), an export alone, or a mesh. Part of :attr:`name`.
    """

    check: str
    status: Status
    reason: str
    message: str
    hop: str = ""
    duration_ms: float = 0.0
    subject: str = ""

    @property
    def passed(self) -> bool:
        """True when ``status`` is ``True``."""
        return self.status == "True"

    @property
    def not_run(self) -> bool:
        """True when the check was not run because a check it depends on did not pass (:func:`not_run`)."""
        return self.status == "Unknown" and self.reason.startswith(NOT_RUN)

    @property
    def name(self) -> str:
        """``check[subject]`` (``check`` alone without a subject): what the table and JUnit call it."""
        return f"{self.check}[{self.subject}]" if self.subject else self.check


def not_run(check: str, because: Condition, hop: str = "", subject: str = "") -> Condition:
    """The condition of ``check``, not run because ``because`` (a check it depends on) did not pass.

    ``Unknown``, reason ``NotRunWithout<because.check>``; the message names the failed check, its status and
    reason, and says to fix that one first.
    """
    word = re.sub(r"[^A-Za-z0-9]", "", because.check)
    return Condition(
        check,
        "Unknown",
        f"{NOT_RUN}{word}",
        f"not run: it needs {because.name}, which is {because.status} ({because.reason}); fix that first "
        "(see its message), then verify again",
        hop,
        subject=subject,
    )


def conditions_summary(conditions: list[Condition]) -> str:
    """One line: ``5 passed, 1 failed, 3 not run`` (and ``, 2 unknown`` when checks could not decide)."""
    c = _counts(conditions)
    text = f"{c['passed']} passed, {c['failed']} failed, {c['not_run']} not run"
    return text + (f", {c['unknown']} unknown" if c["unknown"] else "")


def _counts(conditions: list[Condition]) -> Counter[str]:
    counts: Counter[str] = Counter(passed=0, failed=0, unknown=0, not_run=0)
    for c in conditions:
        counts[
            "passed" if c.passed else "failed" if c.status == "False" else "not_run" if c.not_run else "unknown"
        ] += 1
    return counts


def conditions_table(conditions: list[Condition], wide: bool = False) -> str:
    """An aligned table of CHECK (with its subject, :attr:`Condition.name`), STATUS, REASON and HOP within
    :data:`~meshbridge.tabwriter.TERMINAL_WIDTH` columns, each MESSAGE under its row; with ``wide``, one check per
    line however wide: CHECK, HOP, STATUS, REASON, MESSAGE."""
    if wide:
        rows: list[list[object]] = [["CHECK", "HOP", "STATUS", "REASON", "MESSAGE"]]
        rows += [[c.name, c.hop, c.status, c.reason, c.message] for c in conditions]
        return format_table(rows)
    table = [["CHECK", "STATUS", "REASON", "HOP"], *([c.name, c.status, c.reason, c.hop] for c in conditions)]
    names = {0: max((len(c.check) for c in conditions), default=0)}  # a check's name never breaks, its subject may
    return fit_table(table, TERMINAL_WIDTH, wrap=[0, 3], notes=[c.message for c in conditions], least=names)


def conditions_json(conditions: list[Condition]) -> str:
    """``{"passed": bool, "summary": {...}, "conditions": [...]}`` as indented JSON."""
    return json.dumps(
        {
            "passed": all(c.passed for c in conditions),
            "summary": dict(_counts(conditions)),
            "conditions": [{**asdict(c), "name": c.name} for c in conditions],
        },
        indent=2,
    )


def conditions_junit(conditions: list[Condition], suite: str = "meshbridge.verify") -> str:
    """A JUnit XML report: one testcase per condition; ``False`` is a failure, a check not run is skipped, any
    other ``Unknown`` an error.

    Testcase names are unique within the report (CI tools key their history on them): the condition's
    :attr:`~Condition.name`, and in the unlikely case two are still alike, ``#2``, ``#3`` after the later ones.
    """
    counts = _counts(conditions)
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(conditions)),
        failures=str(counts["failed"]),
        errors=str(counts["unknown"]),
        skipped=str(counts["not_run"]),
        time=f"{sum(c.duration_ms for c in conditions) / 1000:.3f}",
    )
    seen: Counter[str] = Counter()
    for c in conditions:
        seen[c.name] += 1
        name = c.name if seen[c.name] == 1 else f"{c.name} #{seen[c.name]}"
        case = ET.SubElement(root, "testcase", classname=c.hop or suite, name=name, time=f"{c.duration_ms / 1000:.3f}")
        if c.status == "False":
            ET.SubElement(case, "failure", message=c.reason).text = c.message
        elif c.not_run:
            ET.SubElement(case, "skipped", message=c.reason).text = c.message
        elif c.status == "Unknown":
            ET.SubElement(case, "error", message=c.reason).text = c.message
        else:
            ET.SubElement(case, "system-out").text = c.message
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
