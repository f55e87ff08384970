"""Benchmark: lint a bridge with 1000 exports, certificates included (target ≤ 2 s on 2 cores).

Timed: render (with the gateway Secrets) + model + translation of every proxy + every check, from the
validated spec and its issued certificates to the report. Validation of the spec text is timed apart
(``benchmarks/render.py`` covers it). CPU time is given beside wall time (the machine is shared), and the same
run at a tenth of the exports, so the ratio of the two CPU times shows whether the cost grows linearly (10×).

python benchmarks/lint.py [--exports N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bridge_with_exports, timed, write_result
from meshbridge.gcpause import paused_gc
from meshbridge.lint import from_bridge, lint
from meshbridge.pki import PkiStore
from meshbridge.spec import parse_bridge


def measure(exports: int, repeat: int) -> dict[str, Any]:
    """Lint a bridge of ``exports`` exports ``repeat`` times: wall and CPU seconds, spec validation apart."""
    text = bridge_with_exports(exports)
    bridge = parse_bridge(text)
    with tempfile.TemporaryDirectory() as tmp:
        store = PkiStore(Path(tmp))
        store.issue(bridge)
        credentials = store.credentials(bridge)
    findings: list[int] = []
    cpu: list[float] = []

    def run() -> None:
        t0 = time.process_time()
        with paused_gc():  # as the CLI does: one pause around reading and checking
            report = lint(from_bridge(bridge, credentials))
        cpu.append(time.process_time() - t0)
        findings.append(len(report.findings))

    return {
        "exports": exports,
        "lint": timed(run, repeat=repeat),
        "lint_cpu_s": {"min_s": min(cpu), "median_s": statistics.median(cpu), "max_s": max(cpu)},
        "validate_spec": timed(lambda: parse_bridge(text), repeat=repeat),
        "findings": findings[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exports", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    small = measure(max(1, args.exports // 10), args.repeat)
    result = {
        **measure(args.exports, args.repeat),
        "load_average_1m": os.getloadavg()[0],
        "target_s": 2.0,
    }
    cpu, small_cpu = result["lint_cpu_s"]["median_s"], small["lint_cpu_s"]["median_s"]
    result["tenth"] = {"exports": small["exports"], "lint_cpu_s": small["lint_cpu_s"]}
    result["cpu_ratio_to_tenth"] = cpu / small_cpu
    path = write_result("lint", result)
    t, c, v = result["lint"], result["lint_cpu_s"], result["validate_spec"]
    print(
        f"lint, {args.exports} exports: median {t['median_s']:.3f} s wall "
        f"(min {t['min_s']:.3f}, max {t['max_s']:.3f}), "
        f"median {c['median_s']:.3f} s CPU, load {result['load_average_1m']:.2f}, {result['findings']} findings; "
        f"spec validation apart: median {v['median_s']:.3f} s; target ≤ 2 s; "
        f"{small['exports']} exports: median {small_cpu:.3f} s CPU ({cpu / small_cpu:.1f}× for 10× the exports) "
        f"→ {path}"
    )


if __name__ == "__main__":
    main()
