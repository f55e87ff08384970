"""Test builders: a ready bridge with defaults, so each test states only what matters (STYLE 12)."""

from __future__ import annotations

import copy
import datetime as dt
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from meshbridge.pki import PkiStore
from meshbridge.spec import Bridge, parse_bridge

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed" / "bridge.yaml"
ARTICLE = ROOT / "examples" / "article"
HELLOWORLD = ROOT / "examples" / "helloworld" / "bridge.yaml"
"""Istio's helloworld shared between two clusters: importAs, egressGatewayPort, a credentialName per mesh."""


def seed_dict() -> dict[str, Any]:
    """The seed bridge as a plain dict (a fresh copy each call)."""
    return copy.deepcopy(yaml.safe_load(SEED.read_text()))


def seed_at(version: str) -> dict[str, Any]:
    """The seed bridge with every mesh on Istio ``version`` (the article's ``1.17.2`` is the seed's own)."""
    d = seed_dict()
    for mesh in d["spec"]["meshes"].values():
        mesh.setdefault("istio", {})["version"] = version
    return d


def tree_paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a YAML/JSON tree (keys and list indexes), the root ``()`` first, depth first."""
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += tree_paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += tree_paths(v, (*at, i))
    return out


def bridge_from(data: dict[str, Any]) -> Bridge:
    """Validate a bridge dict."""
    return parse_bridge(yaml.safe_dump(data), source="test.yaml")


def seed_bridge() -> Bridge:
    """The seed bridge, validated."""
    return bridge_from(seed_dict())


def two_exports_three_meshes() -> dict[str, Any]:
    """eks exports lambda (to gke, aks) and orders (to gke); aks and gke import."""
    d = seed_dict()
    spec = d["spec"]
    spec["meshes"]["aks"] = {
        "trustDomain": "aks.example.com",
        "egressGateway": {"namespace": "egress", "name": "egw", "labels": {"app": "egw"}, "gateway": "egw"},
    }
    spec["exports"][0]["to"] = ["gke", "aks"]
    orders = copy.deepcopy(spec["exports"][0])
    orders.update({"name": "orders", "host": "orders.external", "to": ["gke"]})
    orders["backend"] = {"host": "orders.internal.example.com", "port": 8080, "tls": {"mode": "DISABLE"}}
    spec["exports"].append(orders)
    del spec["aws"]
    return d


SCRATCH: Path | None = None
"""Where :func:`scratch_dir` makes its folders: a folder under pytest's temporary directory, set for the session
by ``tests/conftest.py``; ``None`` (the system's temporary directory) outside a test session."""


@contextmanager
def scratch_dir(prefix: str = "meshbridge-test-") -> Iterator[Path]:
    """A folder for a helper that has no ``tmp_path`` (a cached builder), removed with all it holds on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=SCRATCH) as tmp:
        yield Path(tmp)


def issued_store(tmp: Path, bridge: Bridge, now: dt.datetime | None = None) -> PkiStore:
    """A PKI store under ``tmp`` with every certificate of ``bridge`` issued."""
    store = PkiStore(tmp / "state")
    store.issue(bridge, now=now)
    return store
