"""Writing a proxy's configuration files: bootstrap, LDS/CDS/RDS/EDS, and SDS with atomic swaps.

SDS files live behind a ``..data`` symlink, the way Kubernetes mounts Secrets: a new set of files is
written into a fresh folder, then ``..data`` is renamed onto it in one step. Envoy watches the folder
(``watched_directory``) and reloads the secrets on the move, with no restart and no half-written file
ever visible (Envoy SDS docs; hashicorp/consul#8198 on why only atomic swaps are seen).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from meshbridge.envoy.placement import Placement
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.fsutil import write_atomic
from meshbridge.jsontree import mappings

DATA = "..data"


def write_proxy_config(pc: ProxyConfig) -> Path:
    """Write everything ``pc`` needs and return the bootstrap's path.

    xDS files are JSON (valid YAML) in ``.yaml`` files; SDS files (private keys) are 0600.
    """
    root = pc.placement.xds_dir
    for path, doc in pc.xds_files().items():
        write_atomic(path, _json(doc))
    swap_secrets(root / "sds", pc.sds_files())
    bootstrap = root / "bootstrap.yaml"
    write_atomic(bootstrap, _json(pc.bootstrap()))
    return bootstrap


def swap_secrets(folder: Path, files: dict[str, dict[str, Any]]) -> None:
    """Replace the SDS files in ``folder`` at once: a new data folder, then an atomic ``..data`` rename.

    Args:
        folder: the SDS folder Envoy watches.
        files: file name → SDS DiscoveryResponse; files not named are dropped from the new set.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = folder / f"..{time.time_ns()}"
    fresh.mkdir(mode=0o700)
    for name, doc in files.items():
        write_atomic(fresh / name, _json(doc), mode=0o600)
    link = folder / DATA
    previous = link.resolve() if link.is_symlink() else None
    tmp = folder / f"{DATA}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(fresh.name)
    os.replace(tmp, link)
    for name in files:
        entry = folder / name
        if not entry.is_symlink():
            entry.unlink(missing_ok=True)
            entry.symlink_to(f"{DATA}/{name}")
    if previous is not None and previous != fresh.resolve():
        shutil.rmtree(previous, ignore_errors=True)


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1)


def drain_connections(placement: Placement, secrets: set[str]) -> int:
    """Make the proxy drain the connections that trusted ``secrets``, downstream and upstream, without a restart.

    Rewrites its LDS and CDS files with a new ``meshbridge`` metadata generation on each filter chain and each
    cluster whose transport socket names one of the SDS ``secrets`` (e.g. ``kubernetes://cred-cacert``). Envoy
    treats them as updated in place: connections of the old filter chains and the old clusters' pools are
    drained (new requests use new connections; in-flight ones finish within ``--drain-time-s``); filter chains
    and clusters that do not use the secrets keep their connections. Envoy docs: "filter chain only update"
    (listeners) and cluster warming.

    Returns:
        How many filter chains and clusters were bumped.
    """
    bumped = 0
    for kind, key in (("lds", "filter_chains"), ("cds", None)):
        path = placement.file(kind, "")
        doc = json.loads(path.read_text())
        for resource in doc.get("resources", []):
            for item in resource.get(key, []) if key else [resource]:
                if not _names_secret(item.get("transport_socket"), secrets):
                    continue
                meta = item.setdefault("metadata", {}).setdefault("filter_metadata", {}).setdefault("meshbridge", {})
                meta["generation"] = int(meta.get("generation", 0)) + 1
                bumped += 1
        write_atomic(path, _json(doc))
    return bumped


def _names_secret(node: Any, secrets: set[str]) -> bool:
    """Whether a transport socket (any depth) holds an SDS secret config named one of ``secrets``."""
    return any("sds_config" in d and d.get("name") in secrets for d in mappings(node))
