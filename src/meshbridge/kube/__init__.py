"""Real clusters through the Kubernetes API: plan, apply, delete, status and verify a bridge.

Layers (I/O at the edges, decisions pure)::

    resources   kind → REST path (pure)            plan      desired vs live → actions + diffs (pure)
    routes      expected gateway routes (pure)     clusters  contexts from the spec / --context
    client      the thin seam over the official client: get/list/apply/delete, exec, port-forward
    preflight   read-only checks, each failure naming its fix
    apply       plan_bridge / apply_bridge / delete_bridge / wait_for_routes
    status      cluster_status (read-only)         verify    verify_clusters → list[Condition]

Errors: everything raised is a :class:`meshbridge.errors.KubeError`; the subclasses live in
:mod:`meshbridge.kube.errors`.
"""

from meshbridge.kube.apply import (
    ApplyOutcome,
    MeshResult,
    PlanOutcome,
    apply_bridge,
    delete_bridge,
    plan_bridge,
    wait_for_routes,
)
from meshbridge.kube.client import ExecResult, KubeClient, fetch_config_dump
from meshbridge.kube.clusters import connect, parse_context_overrides, resolve_contexts
from meshbridge.kube.errors import ApplyError, ConflictError, KubeApiError, PreflightError
from meshbridge.kube.plan import MeshPlan, PlannedChange
from meshbridge.kube.preflight import PreflightCheck, PreflightReport, gateway_pods, preflight
from meshbridge.kube.status import MeshStatus, cluster_status
from meshbridge.kube.verify import verify_clusters

__all__ = [
    "ApplyError",
    "ApplyOutcome",
    "ConflictError",
    "ExecResult",
    "KubeApiError",
    "KubeClient",
    "MeshPlan",
    "MeshResult",
    "MeshStatus",
    "PlanOutcome",
    "PlannedChange",
    "PreflightCheck",
    "PreflightError",
    "PreflightReport",
    "apply_bridge",
    "cluster_status",
    "connect",
    "delete_bridge",
    "fetch_config_dump",
    "gateway_pods",
    "parse_context_overrides",
    "plan_bridge",
    "preflight",
    "resolve_contexts",
    "verify_clusters",
    "wait_for_routes",
]
