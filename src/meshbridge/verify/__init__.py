"""Verify: hop-by-hop checks of a bridge, reported as Kubernetes-style conditions."""

from meshbridge.verify.report import (
    Condition,
    Status,
    conditions_json,
    conditions_junit,
    conditions_summary,
    conditions_table,
    not_run,
)

__all__ = [
    "Condition",
    "Status",
    "conditions_json",
    "conditions_junit",
    "conditions_summary",
    "conditions_table",
    "not_run",
]
