"""``meshbridge translate``: the Envoy configuration istiod would push to one proxy, for review."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Annotated

import typer
import yaml

from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    BridgeFile,
    Manifests,
    StateDir,
    err,
    out,
    parse_manifests,
    read_bridge,
    table,
)
from meshbridge.envoy.binary import validate as envoy_validate
from meshbridge.envoy.consistency import check_consistency
from meshbridge.envoy.pathsim import trace_exports
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.translate import translate as translate_proxy
from meshbridge.errors import PkiError, TranslateError
from meshbridge.istiod.judge import MeshVerdict, judge_mesh
from meshbridge.istiod.oracle import ensure_oracle
from meshbridge.local.exportpath import export_paths
from meshbridge.local.meshca import write_workload_certs
from meshbridge.local.plan import plan_topology
from meshbridge.local.twin import candidate_subnets, mesh_configs, write_system_ca
from meshbridge.pki import PkiStore, default_state_dir
from meshbridge.spec.models import Bridge
from meshbridge.world import all_proxies, find_proxy, workloads

ProxyName = Annotated[str | None, typer.Option("--proxy", help="<mesh>/<workload>, e.g. eks/istio-ingressgateway.")]
ListProxies = Annotated[bool, typer.Option("--list", help="List the proxies of the bridge and exit.")]
Validate = Annotated[bool, typer.Option("--validate", help="Also run 'envoy --mode validate' on it.")]
AgainstIstiod = Annotated[
    bool,
    typer.Option(
        "--against-istiod",
        help="Compare with istiod's own translation (Istio's code, built with Go) instead of printing; "
        "exit 1 on a difference docs/fidelity.md does not explain. Without --proxy: every proxy.",
    ),
]
JsonOutput = Annotated[
    bool,
    typer.Option(
        "--json", help="JSON: the bootstrap, the --list of proxies, or with --against-istiod the differences."
    ),
]
Wide = Annotated[bool, typer.Option("--wide", help="With --against-istiod: whole fact paths and values, however wide.")]


def translate(
    proxy: ProxyName = None,
    list_: ListProxies = False,
    validate: Validate = False,
    against_istiod: AgainstIstiod = False,
    json_output: JsonOutput = False,
    wide: Wide = False,
    file: BridgeFile = DEFAULT_BRIDGE,
    manifests: Manifests = None,
    state_dir: StateDir = None,
) -> None:
    """Print, as YAML, a static Envoy bootstrap of one proxy: what istiod would push to it, placed on this machine.

    The printed bootstrap is static: everything inline in one document (listeners with their routes,
    clusters with their endpoints, secrets as static secrets with private keys redacted), so it can be read,
    diffed and checked with 'envoy --mode validate' on its own. The local twin ('meshbridge local up') runs
    the same resources split the way istiod delivers them: a bootstrap plus file-based xDS (LDS, CDS, RDS,
    EDS and SDS files under the state folder), so that secrets rotate without a restart. The resources and
    their names are the same in both forms; only the delivery differs.

    Names follow istiod (0.0.0.0_8443, https.443.https.<gateway>.<namespace>, outbound|443||<host>,
    kubernetes://<credentialName>). The OS trust bundle the bootstrap names (SIMPLE TLS without
    caCertificates verifies against it) is written to the state folder if missing, as 'local up' does.
    On stderr: translation warnings, inconsistencies (a route to a cluster the proxy lacks: 503 NC; a
    secret that is not served), and, for each export path this proxy is on (app's sidecar → egress gateway
    → exporter's ingress gateway), every hop that would stop the request, with the proxy, the request and
    Envoy's response flag (a simulation in the style of istio's pilot/pkg/simulation).
    """
    bridge = read_bridge(file)
    if wide and not against_istiod:
        raise TranslateError("--wide goes with --against-istiod (the bootstrap is printed whole anyway)")
    if list_:
        _print_proxies(bridge, json_output)
        return
    if proxy is None and not against_istiod:
        raise TranslateError("say which proxy: --proxy <mesh>/<workload> (see --list)")
    try:
        spec = find_proxy(bridge, proxy) if proxy is not None else None
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
    if against_istiod:
        for line in notices:
            err.print(f"note: {line}", markup=False, highlight=False)
        binary = ensure_oracle(progress=lambda line: err.print(line, markup=False, highlight=False))
        meshes = [spec.mesh] if spec is not None else list(bridge.spec.meshes)
        verdicts = [
            judge_mesh(m, configs[m], [p.proxy for p in all_proxies(bridge) if p.mesh == m], binary) for m in meshes
        ]
        raise typer.Exit(_report(verdicts, spec.name if spec is not None else None, json_output, wide))
    assert spec is not None
    plan = plan_topology(bridge, state, next(candidate_subnets(state)), os.geteuid() == 0)
    write_system_ca(plan)
    write_workload_certs(plan, {mesh: cfg.settings.trust_domain for mesh, cfg in configs.items()})
    pcs = {
        p.name: translate_proxy(
            configs[p.mesh], p.proxy, plan.placements[p.name], workloads(bridge, p.mesh, plan.addresses)
        )
        for p in all_proxies(bridge)  # all of them: the path of an export crosses three proxies
    }
    pc = pcs[spec.name]
    _print_notes(bridge, spec.name, pcs, notices)
    if validate:
        _validate(spec.name, pc)
    if json_output:
        sys.stdout.write(json.dumps(pc.static_bootstrap(), indent=1) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(pc.static_bootstrap(), sort_keys=False, width=1000))


def _print_notes(bridge: Bridge, name: str, pcs: dict[str, ProxyConfig], notices: list[str]) -> None:
    """On stderr: the inputs' ``notices``, proxy ``name``'s warnings and inconsistencies, and each hop that would
    stop a request on an export path it is on (simulated across every proxy of ``pcs``, each export asked on its
    own path, as 'local up' asks it: :func:`~meshbridge.local.exportpath.export_paths`)."""
    pc = pcs[name]
    try:
        hops = trace_exports(bridge, pcs, {n: chosen.path for n, chosen in export_paths(bridge, pcs).items()})
    except re.error as e:  # an RE2 route regex Python's re cannot read: Envoy (--validate, local up) judges it
        notices.append(f"the routes hold a regex this path simulation cannot read ({e}): Envoy alone judges them")
        hops = []
    through = {(h.export, h.app) for h in hops if h.proxy == name}
    findings = [h for h in hops if not h.ok and (h.export, h.app) in through]
    for line in [*notices, *map(str, pc.warnings), *map(str, check_consistency(pc)), *map(str, findings)]:
        err.print(f"note: {line}", markup=False, highlight=False)


def _print_proxies(bridge: Bridge, as_json: bool) -> None:
    """``--list``: the bridge's proxies, as a table or JSON."""
    rows = [(p.name, p.mesh, p.role, p.proxy.namespace) for p in all_proxies(bridge)]
    if as_json:
        keys = ("name", "mesh", "role", "namespace")
        out.print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
    else:
        out.print(table(["PROXY", "MESH", "ROLE", "NAMESPACE"], rows))


def _validate(name: str, pc: ProxyConfig) -> None:
    """``--validate``: Envoy's own ``--mode validate`` of the proxy's bootstrap (with its keys).

    Raises:
        TranslateError: the proxy uses a secret nothing here serves (Envoy would refuse the bootstrap).
    """
    missing = sorted(n for n, secret in pc.secrets.items() if secret is None)
    if missing:
        files = pc.unmounted_files()
        raise TranslateError(
            f"--validate: {name} uses secret(s) {', '.join(missing)} that nothing here serves, and Envoy "
            "refuses a bootstrap that names an unknown secret. Fix: 'meshbridge certs issue' for the bridge's "
            "own credentials, or add the Secret to the --manifests of that mesh"
            + (
                f"; files in the pod ({', '.join(files)}) are mounted only by 'local up --cert PATH=FILE', which "
                "runs Envoy on them"
                if files
                else ""
            )
        )
    envoy_validate(pc.static_bootstrap(redact=False))
    err.print("envoy --mode validate: OK", markup=False)


def _report(verdicts: list[MeshVerdict], only: str | None, as_json: bool, wide: bool) -> int:
    """Print the differences with istiod; 1 when one is not explained by docs/fidelity.md."""
    proxies = [v for mv in verdicts for v in mv.proxies if only is None or v.name == only]
    if as_json:
        doc = {
            "istio": verdicts[0].istio if verdicts else "",
            "proxies": [
                {
                    "name": v.name,
                    "facts": {"meshbridge": v.facts[0], "istiod": v.facts[1], "identical": v.identical},
                    "differences": [
                        {"path": d.path, "meshbridge": d.ours, "istiod": d.istiod, "fidelity": d.documented or None}
                        for d in v.differences
                    ],
                }
                for v in proxies
            ],
        }
        out.print(json.dumps(doc, indent=2, default=str))
    else:
        for mv in verdicts:
            if mv.note:
                err.print(f"note: {mv.note}", markup=False, highlight=False)
        for v in proxies:
            if not v.differences:
                continue
            widths = (None, None) if wide else (46, 16)
            rows = [
                (
                    _shown(d.path, widths[0], keep_end=True),
                    _shown(d.ours, widths[1]),
                    _shown(d.istiod, widths[1]),
                    d.documented or "UNDOCUMENTED",
                )
                for d in v.differences
            ]
            out.print(f"{v.name}:")
            out.print(table(["FACT", "MESHBRIDGE", "ISTIOD", "FIDELITY"], rows) + "\n")
        if not wide and any(v.differences for v in proxies):
            err.print("values cut to fit: add --wide, or --json", markup=False, highlight=False)
        for v in proxies:
            err.print(
                f"{v.name}: {v.identical} of istiod's {v.facts[1]} facts identical; the other "
                f"{v.facts[1] - v.identical} fall under {len(v.differences)} difference(s) (an object only one side "
                f"has is one difference, its facts with it), {len(v.undocumented)} not explained by docs/fidelity.md",
                markup=False,
                highlight=False,
            )
    return 1 if any(v.undocumented for v in proxies) else 0


def _shown(value: object, width: int | None, *, keep_end: bool = False) -> str:
    """``value`` as text, cut to ``width`` (``None``: whole); a fact path keeps its end, the specific part."""
    text = "-" if value is None else value if isinstance(value, str) else json.dumps(value, default=str)
    if width is None or len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if keep_end else text[: width - 1] + "…"
