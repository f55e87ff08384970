"""Where one proxy runs on this machine: its loopback address, port mappings, DNS and config files.

A ``Placement`` is what separates a translation for the local twin from what istiod would push to a pod:
names, matches and policies are istiod's; only addresses and ports differ, and only as listed here
(``meshbridge local status`` prints every mapping).

Configuration reaches Envoy the way xDS would, but from files: LDS, CDS, RDS, EDS and SDS resources are
``path_config_source`` files under ``xds_dir``. Secrets are swapped atomically (a ``..data`` symlink, as
Kubernetes mounts them), so rotation needs no restart. Files a Gateway or DestinationRule names by their path in
the pod (``serverCertificate``, ``clientCertificate``, ``caCertificates``, ``caCrl``, ...) are read from the
copies :attr:`Placement.mounts` names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
TWIN_SOURCE = "127.0.0.1"
"""The address every proxy of the twin connects from, whatever loopback address it dials: Envoy binds no source
address (no ``upstream_bind_config``), and Linux picks 127.0.0.1 for a route to 127.0.0.0/8 (``ip route get
127.0.3.7``: ``src 127.0.0.1``). What the exporter's ``ipBlocks`` judge on the twin."""
WORKLOAD_FILES = ("cert-chain.pem", "key.pem", "root-cert.pem")
"""The files of :attr:`Placement.workload_certs`: the certificate chain, its private key (0600) and the mesh's root,
named as the istio-agent names them when it writes certificates to files (``OUTPUT_CERTS``)."""


@dataclass(frozen=True)
class Placement:
    """One proxy's place on this machine.

    Attributes:
        address: its own loopback IP; listeners and the admin interface bind here.
        xds_dir: folder of its configuration files (bootstrap, lds/cds/rds/eds/sds).
        admin_port: the admin interface port (Envoy's 15000).
        low_port_offset: added to ports below 1024, which an unprivileged process cannot bind (0 as root).
        endpoint_ports: (endpoint host or IP, port) → local port, for endpoints whose port is remapped (a
            load balancer's 443 in front of a gateway's 8443, an ALB's 443 when not root).
        endpoint_addresses: endpoint IP → local IP, for endpoints given as IPs (a load balancer's public IP).
        resolver: (IP, port) of the DNS server that plays this mesh's cloud DNS, for DNS clusters.
        system_ca: the PEM bundle the proxy trusts as the OS bundle (``file-root:system``).
        workload_certs: the folder of the proxy's workload certificate and its mesh's root, which SDS ``default``
            and ``ROOTCA`` serve as a pod's istio-agent does (files named as :data:`WORKLOAD_FILES`); ``None``
            where no mesh CA issued one (lint, the oracle's judge): those two names are then not served.
        access_log: the access log file.
        node_id, node_cluster: the Envoy node identity (file-based SDS requires both).
        mounts: path in the pod → the file on this machine that holds it (``local up --cert PATH=FILE``); a path
            not here is not mounted: the SDS secret that reads it is not served.
    """

    address: str
    xds_dir: Path
    admin_port: int = 15000
    low_port_offset: int = 0
    endpoint_ports: Mapping[tuple[str, int], int] = field(default_factory=dict)
    endpoint_addresses: Mapping[str, str] = field(default_factory=dict)
    resolver: tuple[str, int] | None = None
    system_ca: Path | None = None
    workload_certs: Path | None = None
    access_log: Path | None = None
    node_id: str = "local"
    node_cluster: str = "local"
    mounts: Mapping[str, Path] = field(default_factory=dict)

    def pod_file(self, path: str) -> str:
        """Where Envoy reads the pod's file ``path``: its mounted copy, else the path itself (as in the pod)."""
        mounted = self.mounts.get(path)
        return str(mounted) if mounted is not None else path

    def listen_port(self, port: int) -> int:
        """The local port a listener on container ``port`` binds."""
        return port + self.low_port_offset if port < 1024 else port

    def endpoint(self, host: str, port: int) -> tuple[str, int]:
        """The local address and port that reach endpoint ``host:port``."""
        return self.endpoint_addresses.get(host, host), self.endpoint_ports.get((host, port), port)

    def file(self, kind: str, name: str) -> Path:
        """The file of one xDS resource: ``<xds_dir>/<kind>/<safe name>.yaml`` (``lds``/``cds`` are single files)."""
        return Path(_file(str(self.xds_dir), kind, name)[0])

    def config_source(self, kind: str, name: str = "") -> dict[str, Any]:
        """A ``path_config_source`` for one resource file; SDS files are watched through their folder."""
        path, parent = _file(str(self.xds_dir), kind, name)
        source: dict[str, Any] = {"path": path}
        if kind == "sds":
            source["watched_directory"] = {"path": parent}
        return {"path_config_source": source, "resource_api_version": "V3", "initial_fetch_timeout": "1s"}


@functools.lru_cache(maxsize=16384)
def _file(xds_dir: str, kind: str, name: str) -> tuple[str, str]:
    """(path, folder) of one xDS resource file, as strings (translations ask for thousands: no Path objects)."""
    base = _normalized(xds_dir)
    if kind in ("lds", "cds"):
        return f"{base}{kind}.yaml", str(Path(xds_dir))
    return f"{base}{kind}/{_UNSAFE.sub('_', name)}.yaml", f"{base}{kind}"


@functools.lru_cache(maxsize=64)
def _normalized(xds_dir: str) -> str:
    """``xds_dir`` as ``Path`` spells it, with one trailing separator."""
    return str(Path(xds_dir)).rstrip("/") + "/"
