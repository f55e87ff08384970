"""Benchmark: translate every proxy of a bridge with 1000 exports (target ≤ 2 s on 2 cores).

Validation and rendering are included (the translation reads the rendered manifests), as ``local up`` and
``translate`` do; certificates are left out (they do not change the translation's cost).

    python benchmarks/translate.py [--exports N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bridge_with_exports, timed, write_result
from meshbridge.envoy.translate import translate
from meshbridge.gcpause import paused_gc
from meshbridge.local.plan import plan_topology
from meshbridge.render import render_bridge
from meshbridge.spec import parse_bridge
from meshbridge.world import mesh_config, workloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exports", type=int, default=1000)
    args = parser.parse_args()
    text = bridge_with_exports(args.exports)
    counts: dict[str, int] = {}
    bridge = parse_bridge(text)
    plan = plan_topology(bridge, Path("/tmp/meshbridge-bench-state"), "127.254.1.0/24", privileged=False)
    configs = {
        m: mesh_config(bridge, m, [("rendered", d) for d in ms]) for m, ms in render_bridge(bridge, None).items()
    }

    def translate_only() -> None:
        with paused_gc():  # as the CLI does, around the whole command
            for name, spec in plan.proxies.items():
                pc = translate(
                    configs[spec.mesh], spec.proxy, plan.placements[name], workloads(bridge, spec.mesh, plan.addresses)
                )
                counts[name] = len(pc.clusters)

    def end_to_end() -> None:
        with paused_gc():
            b = parse_bridge(text)
            for mesh, ms in render_bridge(b, None).items():
                cfg = mesh_config(b, mesh, [("rendered", d) for d in ms])
                for name, spec in plan.proxies.items():
                    if spec.mesh == mesh:
                        translate(cfg, spec.proxy, plan.placements[name], workloads(b, mesh, plan.addresses))

    result = {
        "exports": args.exports,
        "translate_all_proxies": timed(translate_only, repeat=3),
        "validate_render_model_translate": timed(end_to_end, repeat=3),
        "clusters": counts,
        "target_s": 2.0,
    }
    path = write_result("translate", result)
    t, e = result["translate_all_proxies"], result["validate_render_model_translate"]
    print(
        f"translate {len(counts)} proxies, {args.exports} exports: median {t['median_s']:.3f} s "
        f"(min {t['min_s']:.3f}); with spec validation, render and the Istio model: median {e['median_s']:.3f} s "
        f"(min {e['min_s']:.3f}); target ≤ 2 s → {path}"
    )


if __name__ == "__main__":
    main()
