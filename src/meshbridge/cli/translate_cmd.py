"""``meshbridge translate``: the Envoy configuration istiod would push to one proxy, for review."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
import yaml

from meshbridge.cli.certs_cmd import StateDir
from meshbridge.cli.common import DEFAULT_BRIDGE, BridgeFile, err, out, read_bridge, table
from meshbridge.cli.local_cmd import Manifests, parse_manifests
from meshbridge.envoy.binary import validate as envoy_validate
from meshbridge.envoy.consistency import check_consistency
from meshbridge.envoy.translate import translate as translate_proxy
from meshbridge.errors import PkiError, TranslateError
from meshbridge.local.plan import plan_topology
from meshbridge.local.twin import candidate_subnets, mesh_configs
from meshbridge.pki import PkiStore, default_state_dir
from meshbridge.world import all_proxies, find_proxy, workloads


def translate(
    proxy: Annotated[
        str | None, typer.Option("--proxy", help="<mesh>/<workload>, e.g. eks/istio-ingressgateway.")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the proxies of the bridge and exit.")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="Also run 'envoy --mode validate' on it.")] = False,
    file: BridgeFile = DEFAULT_BRIDGE,
    manifests: Manifests = None,
    state_dir: StateDir = None,
) -> None:
    """Print, as YAML, the Envoy bootstrap a proxy runs: what istiod would push to it, placed on this machine.

    Everything is inline (listeners with their routes, clusters with their endpoints, secrets with private
    keys redacted). Names follow istiod (0.0.0.0_8443, https.443.https.<gateway>.<namespace>,
    outbound|443||<host>, kubernetes://<credentialName>). Warnings and inconsistencies (a route to a cluster
    the proxy lacks: 503 NC; a secret that is not served) go to stderr.
    """
    bridge = read_bridge(file)
    if list_:
        out.print(
            table(
                ["PROXY", "MESH", "ROLE", "NAMESPACE"],
                [(p.name, p.mesh, p.role, p.proxy.namespace) for p in all_proxies(bridge)],
            )
        )
        return
    if proxy is None:
        raise TranslateError("say which proxy: --proxy <mesh>/<workload> (see --list)")
    try:
        spec = find_proxy(bridge, proxy)
    except KeyError as e:
        raise TranslateError(str(e.args[0])) from None
    state = state_dir or default_state_dir(file)
    store: PkiStore | None = PkiStore(state)
    try:
        PkiStore(state).credentials(bridge)
    except PkiError:
        err.print("note: certificates not issued yet; secrets are left out ('meshbridge certs issue')", markup=False)
        store = None
    configs, notices = mesh_configs(bridge, file.resolve().parent, store, parse_manifests(manifests))
    plan = plan_topology(bridge, state, next(candidate_subnets(state)), os.geteuid() == 0)
    pc = translate_proxy(
        configs[spec.mesh], spec.proxy, plan.placements[spec.name], workloads(bridge, spec.mesh, plan.addresses)
    )
    for line in [*notices, *map(str, pc.warnings), *map(str, check_consistency(pc))]:
        err.print(f"note: {line}", markup=False, highlight=False)
    if validate:
        envoy_validate(pc.static_bootstrap(redact=False))
        err.print("envoy --mode validate: OK", markup=False)
    sys.stdout.write(yaml.safe_dump(pc.static_bootstrap(), sort_keys=False, width=1000))
