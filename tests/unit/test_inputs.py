"""meshbridge.inputs: one way to turn (spec | manifests) + credentials into each mesh's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshbridge.inputs import mesh_configs, mesh_documents
from meshbridge.render import render_bridge
from tests.builders import issued_store, seed_bridge

ROUTES = (
    "--manifests eks=vs.yaml",
    [
        (
            "vs.yaml",
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "v", "namespace": "y"},
                "spec": {"hosts": ["a.example"]},
            },
        )
    ],
)


def _secrets(docs: list[tuple[str, dict[str, Any]]]) -> dict[tuple[str, str], str]:
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): src for src, d in docs if d["kind"] == "Secret"}


def test_a_secret_the_manifests_lack_is_filled_from_the_credentials_and_said(tmp_path: Path) -> None:
    bridge = seed_bridge()
    creds = issued_store(tmp_path, bridge).credentials(bridge)
    without = [("mine.yaml", dict(d)) for d in render_bridge(bridge, None)["eks"] if d["kind"] != "Secret"]
    docs, notices = mesh_documents(bridge, creds, manifests={"eks": ("--manifests eks=mine.yaml", without)})
    filled = _secrets(docs["eks"])
    assert filled and set(filled.values()) == {"meshbridge PKI"}
    for ns, name in filled:
        assert f"eks: Secret {ns}/{name} is not in the manifests; using meshbridge's issued certificates for it" in (
            notices
        )
    assert [src for src, _ in docs["gke"]] == ["rendered"] * len(docs["gke"])  # no manifests: what the spec renders
    # negative twin: the manifests hold that Secret themselves; it is theirs, and nothing is said
    own = render_bridge(bridge, dict(creds))["eks"]
    theirs = [("mine.yaml", dict(d)) for d in own if d["kind"] == "Secret"]
    docs, notices = mesh_documents(
        bridge, creds, manifests={"eks": ("--manifests eks=mine.yaml", [*ROUTES[1], *theirs])}
    )
    assert set(_secrets(docs["eks"]).values()) == {"mine.yaml"}
    assert notices == []


def test_without_credentials_no_secret_is_filled_and_the_configs_have_none(tmp_path: Path) -> None:
    bridge = seed_bridge()
    configs, notices = mesh_configs(bridge, None, manifests={"eks": ROUTES})
    assert configs["eks"].secrets == [] and notices == []
    # negative twin: with the credentials, the ConfigSet holds the filled Secrets
    creds = issued_store(tmp_path, bridge).credentials(bridge)
    configs, _ = mesh_configs(bridge, creds, manifests={"eks": ROUTES})
    assert configs["eks"].secrets


def test_manifests_without_routing_objects_are_named_by_how_they_were_given() -> None:
    cm = (
        "--manifests eks=cm.yaml",
        [("cm.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "y"}})],
    )
    _, notices = mesh_documents(seed_bridge(), None, manifests={"eks": cm})
    assert notices == [
        "eks: --manifests eks=cm.yaml hold no Gateway, VirtualService, DestinationRule or ServiceEntry: this mesh's "
        "proxies get no routes. Fix: pass the files that hold them, or drop --manifests for this mesh to run the "
        "rendered ones"
    ]
    # negative twin: a VirtualService is a routing object
    assert mesh_documents(seed_bridge(), None, manifests={"eks": ROUTES})[1] == []


def test_a_secret_no_manifest_names_is_filled_without_a_word(tmp_path: Path) -> None:
    """The manifests' Gateway reads a Secret of their own (another credentialName): the spec's Secret is still
    filled (harmless) but not announced, since nothing reads it."""
    bridge = seed_bridge()
    creds = issued_store(tmp_path, bridge).credentials(bridge)
    own = [dict(d) for d in render_bridge(bridge, dict(creds))["eks"]]
    for d in own:
        if d["kind"] == "Gateway":
            for server in d["spec"]["servers"]:
                server["tls"]["credentialName"] = "edge-tls"
        if d["kind"] == "Secret":
            d["metadata"]["name"] = d["metadata"]["name"].replace("mtls-credential", "edge-tls")
    docs, notices = mesh_documents(
        bridge, creds, manifests={"eks": ("--manifests eks=mine.yaml", [("mine.yaml", d) for d in own])}
    )
    assert "meshbridge PKI" in set(_secrets(docs["eks"]).values())
    assert not [n for n in notices if "is not in the manifests" in n]


def test_a_secret_the_manifests_hold_in_another_namespace_is_not_filled_and_mb207_says_why(tmp_path: Path) -> None:
    """istio.io's secure-ingress task with its Secret created beside the Gateway resource (default), not in the
    gateway pods' namespace: istiod serves that gateway nothing, so the twin fills nothing either."""
    bridge = seed_bridge()
    creds = issued_store(tmp_path, bridge).credentials(bridge)
    own = [dict(d) for d in render_bridge(bridge, dict(creds))["eks"]]
    gateway_ns = {d["metadata"]["namespace"] for d in own if d["kind"] == "Secret"}
    moved = [{**d, "metadata": {**d["metadata"], "namespace": "default"}} if d["kind"] == "Secret" else d for d in own]
    docs, notices = mesh_documents(
        bridge, creds, manifests={"eks": ("--manifests eks=mine.yaml", [("mine.yaml", d) for d in moved])}
    )
    assert set(_secrets(docs["eks"])) == {("default", name) for _, name in _secrets(docs["eks"])}  # none filled
    (ns,) = gateway_ns
    assert (
        f"eks: the manifests hold Secret mtls-credential in default, not in {ns}: istiod serves a gateway only the "
        f"Secrets of its own namespace, so a gateway of {ns} that reads credentialName mtls-credential gets none, and "
        "the twin does not fill it from meshbridge's certificates either (lint MB207). Fix: create the Secret "
        f"mtls-credential in namespace {ns} (the gateway workload's namespace, not the namespace of the resource that "
        "names it)"
    ) in notices
    assert not [n for n in notices if "is not in the manifests" in n]
    # negative twin: the same Secrets in the gateway's namespace are theirs, served, and nothing is said
    docs, notices = mesh_documents(
        bridge, creds, manifests={"eks": ("--manifests eks=mine.yaml", [("mine.yaml", d) for d in own])}
    )
    assert {ns for ns, _ in _secrets(docs["eks"])} == gateway_ns and notices == []
