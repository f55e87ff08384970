"""Managed Istio control planes: a cluster whose istiod someone else installs and upgrades.

On Google Cloud Service Mesh (managed) istiod does not run in the cluster at all; on OpenShift Service Mesh it
is installed and upgraded by an operator from one resource (OSSM 3: the Sail operator's ``Istio``; OSSM 2: a
``ServiceMeshControlPlane``). On such a cluster ``render --install``'s Helm commands must not run (they would
install a second control plane over the provider's), the mesh settings the bridge needs are set through the
provider's resource, and "no istiod pod" is not a failure. :data:`PROVIDERS` is the one table of these
facts; :func:`managed_control_plane` finds one through the API server's discovery (any version the provider
serves) and one object of its resource.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshbridge.kube.client import KubeClient
from meshbridge.kube.errors import KubeApiError


@dataclass(frozen=True)
class Provider:
    """One managed control plane and how to recognise it.

    Attributes:
        product: its name, as its vendor writes it.
        group: the API group of the resource that declares the control plane.
        plural: that resource (``controlplanerevisions``).
        kind: its kind.
        settings: where the mesh settings the bridge needs go instead of Helm values.
        source: the vendor's documentation.
    """

    product: str
    group: str
    plural: str
    kind: str
    settings: str
    source: str


PROVIDERS = (
    Provider(
        "Google Cloud Service Mesh (managed)",
        "mesh.cloud.google.com",
        "controlplanerevisions",
        "ControlPlaneRevision",
        "the fleet's mesh settings and the mesh config ConfigMap istio-system/istio-<revision>",
        "https://cloud.google.com/service-mesh/docs/onboarding/provision-control-plane",
    ),
    Provider(
        "OpenShift Service Mesh 3 (Sail operator)",
        "sailoperator.io",
        "istios",
        "Istio",
        "the Istio resource's spec.values (meshConfig, pilot.env)",
        "https://github.com/istio-ecosystem/sail-operator",
    ),
    Provider(
        "OpenShift Service Mesh 2",
        "maistra.io",
        "servicemeshcontrolplanes",
        "ServiceMeshControlPlane",
        "the ServiceMeshControlPlane's spec (proxy, techPreview.meshConfig)",
        "https://github.com/maistra/istio-operator",
    ),
)
"""The managed control planes meshbridge recognises, in the order it looks for them."""


@dataclass(frozen=True)
class ManagedControlPlane:
    """A managed control plane found in a cluster: its provider and the object that declares it (``name`` is
    ``""`` when the user may not list those objects)."""

    provider: Provider
    name: str
    namespace: str

    def describe(self) -> str:
        """``Google Cloud Service Mesh (managed): ControlPlaneRevision istio-system/asm-managed``; without a name
        (the user may not list them), the API that is served."""
        if not self.name:
            p = self.provider
            return f"{p.product}: its API {p.group} is served (listing {p.plural} is forbidden here)"
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.provider.product}: {self.provider.kind} {where}"

    def advice(self) -> str:
        """What the user does instead of installing Istio."""
        return (
            f"do not run 'meshbridge render --install' commands on this cluster (they would install a second "
            f"control plane); set the mesh settings the bridge needs through {self.provider.settings} "
            f"({self.provider.source})"
        )


def managed_control_plane(client: KubeClient) -> ManagedControlPlane | None:
    """The managed control plane declared in the cluster, or ``None``.

    A provider counts when the API server serves its group (discovery, open to every authenticated user) and
    one object of its resource exists, or when the user may not list that resource (403: the provider's API is
    installed, and a user with the bridge's minimal RBAC cannot see more). A served group with no object is a
    leftover, not a control plane.
    """
    for provider in PROVIDERS:
        found = _declared(client, provider)
        if found is not None:
            return found
    return None


def _declared(client: KubeClient, provider: Provider) -> ManagedControlPlane | None:
    try:
        group = client.request("GET", f"/apis/{provider.group}", what=provider.group, verb="discover")
    except KubeApiError as e:
        if e.status in (403, 404):
            return None
        raise
    version = str(((group or {}).get("preferredVersion") or {}).get("groupVersion") or "")
    if not version:
        return None
    try:
        listed = client.request(
            "GET",
            f"/apis/{version}/{provider.plural}",
            query=[("limit", "1")],
            what=f"{provider.plural}.{provider.group}",
            verb="list",
        )
    except KubeApiError as e:
        if e.status == 403:
            return ManagedControlPlane(provider, "", "")
        if e.status == 404:
            return None
        raise
    items = (listed or {}).get("items") or []
    if not items:
        return None
    meta = items[0].get("metadata") or {}
    return ManagedControlPlane(provider, str(meta.get("name", "")), str(meta.get("namespace", "")))
