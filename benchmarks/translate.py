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

    def all_proxies() -> None:
        bridge = parse_bridge(text)
        sets = render_bridge(bridge, None)
        plan = plan_topology(bridge, Path("/tmp/meshbridge-bench-state"), "127.254.1.0/24", privileged=False)
        for mesh, ms in sets.items():
            cfg = mesh_config(bridge, mesh, [("rendered", d) for d in ms])
            pods = workloads(bridge, mesh, plan.addresses)
            for name, spec in plan.proxies.items():
                if spec.mesh == mesh:
                    pc = translate(cfg, spec.proxy, plan.placements[name], pods)
                    counts[name] = len(pc.clusters)

    result = {
        "exports": args.exports,
        "translate_all_proxies": timed(all_proxies, repeat=3),
        "clusters": counts,
        "target_s": 2.0,
    }
    path = write_result("translate", result)
    t = result["translate_all_proxies"]
    print(
        f"validate + render + translate {len(counts)} proxies, {args.exports} exports: median {t['median_s']:.3f} s "
        f"(min {t['min_s']:.3f}, max {t['max_s']:.3f}); target ≤ 2 s → {path}"
    )


if __name__ == "__main__":
    main()
