"""Shared benchmark helpers: a large bridge, timing, and result files under benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def bridge_with_exports(n: int) -> str:
    """The seed bridge with ``n`` exports from eks to gke (hosts svc-<i>.external), as YAML text."""
    data = yaml.safe_load((ROOT / "examples" / "seed" / "bridge.yaml").read_text())
    template = data["spec"]["exports"][0]
    exports = []
    for i in range(n):
        ex = json.loads(json.dumps(template))
        ex["name"] = f"svc-{i}"
        ex["host"] = f"svc-{i}.external"
        ex["backend"]["host"] = f"alb-{i}.internal.example.com"
        if i:
            del ex["backend"]["local"]  # one local ALB is enough: a /24 holds ~240 local components
        exports.append(ex)
    data["spec"]["exports"] = exports
    data["spec"]["aws"]["export"] = "svc-0"
    return yaml.safe_dump(data, sort_keys=False)


def timed(fn: Callable[[], Any], repeat: int = 5) -> dict[str, float]:
    """Run ``fn`` ``repeat`` times; seconds: min, median, max."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"min_s": min(samples), "median_s": statistics.median(samples), "max_s": max(samples)}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write ``result`` (plus the machine) to ``benchmarks/results/<name>.json``."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2, default=str) + "\n")
    return path
