"""Conditions (``check``, ``status``, ``reason``, ``message``) and their table, JSON and JUnit forms.

Shaped like Kubernetes conditions (linkerd2's Link status): ``status`` is ``True`` when the check passed,
``False`` when it failed, ``Unknown`` when it could not run. ``reason`` is a CamelCase word a script can
match (``HandshakeRefused``, ``RouteNotFound``); ``message`` explains it for a person: the hop, the Envoy
response flag or TLS alert, and the configuration field to look at.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Literal

from meshbridge.tabwriter import format_table

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    """The result of one check.

    Attributes:
        check: the check's name, e.g. ``ExporterAcceptsImporterCert``.
        status: ``True`` (passed), ``False`` (failed) or ``Unknown`` (could not run).
        reason: a CamelCase machine-readable cause.
        message: what happened, and on failure the hop, the response flag or TLS alert, and the field to fix.
        hop: the part of the path checked (``app → egress``, ``egress → exporter``, ``exporter → ALB``, ``pki``).
        duration_ms: how long the check took.
    """

    check: str
    status: Status
    reason: str
    message: str
    hop: str = ""
    duration_ms: float = 0.0

    @property
    def passed(self) -> bool:
        """True when ``status`` is ``True``."""
        return self.status == "True"


def conditions_table(conditions: list[Condition]) -> str:
    """An aligned table: CHECK, HOP, STATUS, REASON, MESSAGE."""
    rows: list[list[object]] = [["CHECK", "HOP", "STATUS", "REASON", "MESSAGE"]]
    rows += [[c.check, c.hop, c.status, c.reason, c.message] for c in conditions]
    return format_table(rows)


def conditions_json(conditions: list[Condition]) -> str:
    """``{"passed": bool, "conditions": [...]}`` as indented JSON."""
    return json.dumps(
        {"passed": all(c.passed for c in conditions), "conditions": [asdict(c) for c in conditions]}, indent=2
    )


def conditions_junit(conditions: list[Condition], suite: str = "meshbridge.verify") -> str:
    """A JUnit XML report: one testcase per condition; ``False`` is a failure, ``Unknown`` an error."""
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(conditions)),
        failures=str(sum(c.status == "False" for c in conditions)),
        errors=str(sum(c.status == "Unknown" for c in conditions)),
        time=f"{sum(c.duration_ms for c in conditions) / 1000:.3f}",
    )
    for c in conditions:
        case = ET.SubElement(
            root, "testcase", classname=c.hop or suite, name=c.check, time=f"{c.duration_ms / 1000:.3f}"
        )
        if c.status == "False":
            ET.SubElement(case, "failure", message=c.reason).text = c.message
        elif c.status == "Unknown":
            ET.SubElement(case, "error", message=c.reason).text = c.message
        else:
            ET.SubElement(case, "system-out").text = c.message
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
