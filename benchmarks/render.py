"""Benchmark: validate and render a bridge with 1000 exports (target ≤ 2 s on 2 cores).

python benchmarks/render.py [--exports N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bridge_with_exports, timed, write_result
from meshbridge.gcpause import paused_gc
from meshbridge.render import render_bridge
from meshbridge.spec import parse_bridge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exports", type=int, default=1000)
    args = parser.parse_args()
    text = bridge_with_exports(args.exports)

    def validate_and_render() -> None:
        with paused_gc():  # as the CLI does, around the whole command
            render_bridge(parse_bridge(text), None)

    result = {"exports": args.exports, "validate_and_render": timed(validate_and_render), "target_s": 2.0}
    path = write_result("render", result)
    t = result["validate_and_render"]
    print(
        f"validate + render, {args.exports} exports: median {t['median_s']:.3f} s (min {t['min_s']:.3f}, "
        f"max {t['max_s']:.3f}); target ≤ 2 s → {path}"
    )


if __name__ == "__main__":
    main()
