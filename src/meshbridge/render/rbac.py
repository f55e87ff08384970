"""``render --rbac``: the Kubernetes RBAC meshbridge needs in each mesh's cluster, and nothing more (pure).

Per mesh, bound to the subjects given (``User:meshbridge`` by default), all named ``meshbridge-<bridge>`` and
labelled as the bridge's other documents:

* a ``ClusterRole`` and its ``ClusterRoleBinding``: what is cluster-scoped (Namespaces);
* a ``Role`` and its ``RoleBinding`` in each namespace the bridge uses there: each gateway namespace (where
  its objects live and its gateway pods run), istiod's namespace (:data:`ISTIOD_NAMESPACE`), and, in a mesh
  that imports, the namespace of the app ``verify`` calls from. Namespaces that coincide get one Role with
  the union of the rules.

Each rule below says which command needs it; the requests themselves are listed in
:mod:`meshbridge.kube.client`. The cluster suite runs every cluster command as a user bound by exactly these
documents, and with single verbs removed (tests/cluster/test_rbac.py).

Optional, not granted: ``list`` of pods and of the bridge's own kinds in *all* namespaces. With it, prune,
delete and status also find this bridge's objects in namespaces it no longer uses, preflight finds istiod
outside :data:`ISTIOD_NAMESPACE` and names the namespace where gateway pods run instead of the spec's (case
L05). Without it, each of those looks in the namespaces above and says so (plan's notes); listing Secrets in
all namespaces would mean reading every Secret of the cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from meshbridge.render.manifests import Document, ManifestSet, ownership_labels
from meshbridge.render.owned import owned_kinds
from meshbridge.spec.models import Bridge, Mesh

RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
ISTIOD_NAMESPACE = "istio-system"
"""Where preflight looks for istiod (``IstioRevision``) and its mesh config (``DnsCapture``) when the user may not
list pods in all namespaces: Istio's default, the article's."""
PURPOSE = "meshbridge.io/purpose"
"""The annotation that says what a document grants, for whom, and what is left out on purpose."""
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")

SubjectKind = Literal["User", "Group", "ServiceAccount"]
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Subject:
    """Who the bindings grant the permissions to: ``User:NAME``, ``Group:NAME`` or ``ServiceAccount:NS/NAME``.

    Attributes:
        kind: ``User``, ``Group`` or ``ServiceAccount``.
        name: the user or group name as the API server authenticates it, or the service account's name.
        namespace: the service account's namespace (``None`` for users and groups).
    """

    kind: SubjectKind
    name: str
    namespace: str | None = None

    @classmethod
    def parse(cls, text: str) -> Subject:
        """``User:meshbridge``, ``Group:ops`` or ``ServiceAccount:meshbridge/deployer`` (kinds in any case).

        Raises:
            ValueError: not ``KIND:NAME`` with one of the three kinds, an empty name, or a service account that is
                not ``NAMESPACE/NAME`` of valid Kubernetes names. The message says which forms are accepted.
        """
        forms = "use User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME (e.g. User:meshbridge)"
        kind_text, sep, name = text.partition(":")
        kinds: dict[str, SubjectKind] = {"user": "User", "group": "Group", "serviceaccount": "ServiceAccount"}
        kind = kinds.get(kind_text.strip().lower())
        if not sep or kind is None:
            raise ValueError(f"{text!r} is not a subject: {forms}")
        if not name.strip() or name != name.strip():
            raise ValueError(f"{text!r} names no {kind} (or has spaces around the name): {forms}")
        if kind != "ServiceAccount":
            return cls(kind, name)
        namespace, slash, account = name.partition("/")
        if not slash or not _DNS1123_LABEL.match(namespace) or not _DNS1123_SUBDOMAIN.match(account):
            raise ValueError(
                f"{text!r}: a service account is NAMESPACE/NAME, both lowercase Kubernetes names "
                "(e.g. ServiceAccount:ci/meshbridge)"
            )
        return cls(kind, account, namespace)

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}" if self.namespace else f"{self.kind}:{self.name}"

    def to_dict(self) -> Document:
        """The ``subjects[]`` entry of a binding."""
        if self.kind == "ServiceAccount":
            return {"kind": "ServiceAccount", "name": self.name, "namespace": self.namespace}
        return {"apiGroup": RBAC_GROUP, "kind": self.kind, "name": self.name}


DEFAULT_SUBJECT = Subject("User", "meshbridge")


@dataclass(frozen=True)
class _Rule:
    """One permission: ``verbs`` on ``resource`` of API group ``group`` (``""``: the core group)."""

    group: str
    resource: str
    verbs: tuple[str, ...]


# -- what each command needs -----------------------------------------------------------------------------

_OWNED_VERBS = ("get", "list", "create", "patch", "delete")
# get:    plan and status read each object the bridge renders; certs push reads the Secret before applying it.
# list:   prune (apply), delete and status find the objects labelled for the bridge (per namespace; see the
#         module's note on listing in all namespaces); preflight (IstioApi) and status list one object of
#         each kind to learn whether its CRD is installed.
# create: a server-side apply that creates the object, and its dry run (plan), is authorized as create.
# patch:  a server-side apply of an existing object (apply, plan's dry run, certs push); --force-conflicts'
#         take-over of what a client-side 'kubectl apply' owned (a JSON patch).
# delete: prune (apply) and delete, each guarded by the listed object's uid.


def _owned_rules(mesh: Mesh) -> list[_Rule]:
    """The kinds meshbridge writes and owns in a gateway namespace (:func:`meshbridge.render.owned.owned_kinds`),
    all five verbs."""
    return [_Rule(k.group, k.plural, _OWNED_VERBS) for k in owned_kinds(mesh) if k.namespaced]


def _owned_cluster_rules(mesh: Mesh) -> list[_Rule]:
    """The cluster-scoped kinds meshbridge writes and owns (trust-manager's Bundles), all five verbs: the
    ClusterRole's."""
    return [_Rule(k.group, k.plural, _OWNED_VERBS) for k in owned_kinds(mesh) if not k.namespaced]


_GATEWAY_RULES = (
    # preflight (GatewayService, LoadBalancer), status (the exporter's address) and verify (its target ports)
    # read the gateway Service.
    _Rule("", "services", ("get",)),
    # preflight (GatewayPods), status, proxy-config and apply's wait list the gateway pods by the Gateway's
    # selector.
    _Rule("", "pods", ("list",)),
    # apply's wait for routes, verify, proxy-config and certs rotate read each gateway's Envoy /config_dump
    # through a port-forward: the client opens the WebSocket with a GET, and the API server checks create too.
    _Rule("", "pods/portforward", ("get", "create")),
)
_ISTIOD_RULES = (
    # preflight (IstioRevision) lists the istiod pods here when it may not list pods in all namespaces.
    _Rule("", "pods", ("list",)),
)
_MESH_CONFIG_RULES = (
    # preflight (DnsCapture, importers only) reads the mesh config ConfigMap istio[-<revision>].
    _Rule("", "configmaps", ("get",)),
)
_APP_RULES = (
    # verify finds its caller pod: the app's Deployment (its selector), then its Ready pods.
    _Rule("apps", "deployments", ("get",)),
    _Rule("", "pods", ("list",)),
    # verify runs curl in that pod (kubectl exec): get and create, as for port-forward.
    _Rule("", "pods/exec", ("get", "create")),
)
_CLUSTER_RULES = (
    # plan and status read the gateway Namespaces; apply creates a missing one (server-side apply: patch, and
    # create when it does not exist yet). Namespaces are cluster-scoped, hence a ClusterRole.
    _Rule("", "namespaces", ("get", "create", "patch")),
)


_CLUSTER_USE = (
    "meshbridge, cluster-wide: the gateway Namespaces (plan, status; apply creates a missing one). Not granted: "
    "list in all namespaces (docs/clusters.md, Required RBAC)"
)
_GATEWAY_USE = (
    "the bridge's objects (plan, apply, delete, status, certs push); the gateway's pods, Service and Envoy "
    "(preflight, status, apply's wait, verify, proxy-config, certs rotate)"
)


def _namespace_rules(bridge: Bridge, mesh: str) -> dict[str, tuple[list[_Rule], list[str]]]:
    """Per namespace of ``mesh``: its rules and what the bridge uses it for (the Role's annotation), gateway
    namespaces first, then istiod's, then the app's."""
    spec = bridge.spec.meshes[mesh]
    out: dict[str, tuple[list[_Rule], list[str]]] = {}

    def add(namespace: str, rules: list[_Rule], use: str) -> None:
        have, uses = out.setdefault(namespace, ([], []))
        have += rules
        if use not in uses:
            uses.append(use)

    gateway_rules = [*_owned_rules(spec), *_GATEWAY_RULES]
    if bridge.exports_from(mesh) and spec.ingress_gateway is not None:
        add(spec.ingress_gateway.namespace, gateway_rules, f"the ingress gateway's namespace: {_GATEWAY_USE}")
    imports = bridge.exports_to(mesh)
    if imports and spec.egress_gateway is not None:
        add(spec.egress_gateway.namespace, gateway_rules, f"the egress gateway's namespace: {_GATEWAY_USE}")
    istiod_rules = [*_ISTIOD_RULES, *(_MESH_CONFIG_RULES if imports else ())]
    mesh_config = " and reads its mesh config" if imports else ""
    add(ISTIOD_NAMESPACE, istiod_rules, f"istiod's namespace: preflight finds istiod{mesh_config}")
    if imports:
        app = spec.callers()[0]
        add(app.namespace, list(_APP_RULES), f"app {app.name}'s namespace: verify runs curl in its pod")
    return out


# -- documents -------------------------------------------------------------------------------------------


def render_rbac(bridge: Bridge, subjects: list[Subject] | None = None) -> dict[str, ManifestSet]:
    """The RBAC documents of every mesh: a ClusterRole for Namespaces, a Role per namespace the bridge uses, and
    their bindings to ``subjects``.

    Args:
        bridge: the validated spec.
        subjects: who gets the permissions (default: :data:`DEFAULT_SUBJECT`, ``User:meshbridge``); duplicates
            are bound once.

    Returns:
        One :class:`ManifestSet` per mesh, in spec order: ClusterRole, ClusterRoleBinding, then a Role and its
        RoleBinding per namespace (gateway namespaces first, then istiod's, then the app's).
    """
    chosen = list(dict.fromkeys(subjects or [DEFAULT_SUBJECT]))
    labels = ownership_labels(bridge.metadata.name)
    name = f"meshbridge-{bridge.metadata.name}"
    out = {}
    for mesh in bridge.spec.meshes:
        owned = _owned_cluster_rules(bridge.spec.meshes[mesh])
        use = _CLUSTER_USE + ("; the trust-manager Bundles of the peers' CAs (apply, delete, status)" if owned else "")
        docs = _role_pair("ClusterRole", name, None, [*_CLUSTER_RULES, *owned], use, labels, chosen)
        for namespace, (rules, uses) in _namespace_rules(bridge, mesh).items():
            purpose = "meshbridge, " + "; ".join(uses)
            docs += _role_pair("Role", name, namespace, rules, purpose, labels, chosen)
        out[mesh] = ManifestSet.of(mesh, docs)
    return out


def _role_pair(
    kind: Literal["Role", "ClusterRole"],
    name: str,
    namespace: str | None,
    rules: list[_Rule],
    purpose: str,
    labels: dict[str, str],
    subjects: list[Subject],
) -> list[Document]:
    """A (Cluster)Role with ``rules`` and its (Cluster)RoleBinding to ``subjects``."""

    def metadata() -> Document:
        return {"name": name, **({"namespace": namespace} if namespace else {}), "labels": dict(labels)}

    role = {
        "apiVersion": RBAC_API,
        "kind": kind,
        "metadata": {**metadata(), "annotations": {PURPOSE: purpose}},
        "rules": _rules_yaml(rules),
    }
    binding = {
        "apiVersion": RBAC_API,
        "kind": f"{kind}Binding",
        "metadata": metadata(),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": name},
        "subjects": [s.to_dict() for s in subjects],
    }
    return [role, binding]


def _rules_yaml(rules: list[_Rule]) -> list[Document]:
    """``rules[]``: the verbs of each (group, resource) merged, then resources with the same group and verbs in
    one rule, in the order they first appear."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for r in rules:
        verbs.setdefault((r.group, r.resource), set()).update(r.verbs)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), vs in verbs.items():
        ordered = tuple(v for v in VERB_ORDER if v in vs)
        grouped.setdefault((group, ordered), []).append(resource)
    return [
        {"apiGroups": [group], "resources": resources, "verbs": list(vs)} for (group, vs), resources in grouped.items()
    ]
