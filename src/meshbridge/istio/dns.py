"""What an app's DNS lookup returns inside the mesh: the istio-agent DNS proxy's name table (NDS).

Sources (istio/istio): ``pkg/dns/server/name_table.go``, ``pilot/pkg/model/service.go``
(``nodeUsesAutoallocatedIPs``), ``pilot/pkg/serviceregistry/serviceentry/auto_allocation.go``.

* Without ``ISTIO_META_DNS_CAPTURE`` the agent answers nothing: the app asks the cluster's DNS, which
  knows Kubernetes Services but not a made-up host such as ``lambda.external`` (lint MB101).
* With capture, ServiceEntry hosts resolve to their ``addresses``, or to an auto-allocated VIP from
  ``240.240.0.0/16`` when auto-allocation is on; a host without any address is forwarded upstream.
"""

from __future__ import annotations

import ipaddress

from meshbridge.istio.config import MeshSettings
from meshbridge.istio.visibility import MeshService

AUTO_ALLOCATE_PREFIX = ipaddress.ip_network("240.240.0.0/16")
OPT_OUT_LABEL = "networking.istio.io/enable-autoallocate-ip"


def allocatable(service: MeshService) -> bool:
    """Whether istiod would auto-allocate a VIP for ``service``: a ServiceEntry host, not a wildcard, without
    ``addresses``, resolution ≠ NONE, and not opted out with the label
    ``networking.istio.io/enable-autoallocate-ip: "false"``."""
    entry = service.entry
    return (
        entry is not None
        and not service.addresses
        and service.resolution != "NONE"
        and not service.hostname.startswith("*")
        and entry.metadata.labels.get(OPT_OUT_LABEL, "").lower() != "false"
    )


def auto_allocated(services: list[MeshService]) -> dict[str, str]:
    """VIPs istiod hands out to :func:`allocatable` hosts, in host order (skipping .0 and .255)."""
    hosts = sorted({s.hostname for s in services if allocatable(s)})
    base = int(AUTO_ALLOCATE_PREFIX.network_address)
    usable = (
        ipaddress.IPv4Address(base + n)
        for n in range(1, AUTO_ALLOCATE_PREFIX.num_addresses - 1)
        if n % 256 not in (0, 255)
    )
    return {host: str(address) for host, address in zip(hosts, usable, strict=False)}


def name_table(settings: MeshSettings, services: list[MeshService]) -> dict[str, list[str]]:
    """Host → addresses the agent answers for a proxy that sees ``services``; empty without DNS capture.

    Kubernetes Services are left out: the cluster DNS answers those whether or not the agent captures.
    """
    if not settings.dns_capture:
        return {}
    vips = auto_allocated(services) if settings.dns_auto_allocate else {}
    table: dict[str, list[str]] = {}
    for s in services:
        if s.entry is None:
            continue
        addresses = list(s.addresses) or ([vips[s.hostname]] if s.hostname in vips else [])
        if addresses:
            table[s.hostname] = addresses
    return table


SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
"""The ClusterIP range the twin's cluster DNS answers from (a common ``--service-cluster-ip-range``)."""


def cluster_dns(services: list[MeshService], namespace: str) -> dict[str, list[str]]:
    """What the cluster's DNS (kube-dns) answers an app in ``namespace`` for Kubernetes Services: each Service's
    FQDN, ``<name>.<ns>.svc``, ``<name>.<ns>``, and ``<name>`` from its own namespace (the pod's search path),
    each to one ClusterIP (numbered in order; the app's sidecar routes by Host header and port, not by the IP).
    """
    kube = sorted({s.hostname for s in services if s.kube is not None and s.kube.spec.type != "ExternalName"})
    base = int(SERVICE_CIDR.network_address)
    out: dict[str, list[str]] = {}
    for n, fqdn in enumerate(kube, start=10):
        ip = str(ipaddress.IPv4Address(base + n))
        name, ns = fqdn.split(".")[:2]
        names = [fqdn, f"{name}.{ns}.svc", f"{name}.{ns}"] + ([name] if ns == namespace else [])
        for host in names:
            out.setdefault(host, [ip])
    return out
