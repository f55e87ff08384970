"""Benchmark: the reliability suite's figures, one row per scenario, measured by the suite itself.

Runs ``pytest tests/reliability -m reliability`` with ``MESHBRIDGE_FIGURES`` naming a file; each scenario
of the suite (a constant 50 rps load through the seed twin while a gateway is killed, a secret is deleted,
broken or missing, the backend hangs, leaves or CAs are rotated, trust is narrowed) appends what it measured
there once its assertions hold: requests sent and failed (with their status codes and Envoy response flags
where the test knows them), recovery times, the p99 latency of the successful requests. A scenario that
fails records nothing; the script exits with pytest's exit code (the first non-zero one).

    python benchmarks/reliability.py [--markdown] [--control-plane files|istiod|both]

``--control-plane istiod`` runs the same load's scenarios on the real control planes instead
(``pytest -m cluster tests/cluster/test_controlplane_reliability.py``: istiod per mesh on local API servers, the
gateways' Envoys fed over xDS, their Secrets over istiod's SDS, rotations with ``certs rotate --context``; needs Go
or a cached build, skips without); ``both`` runs the two suites and puts each istiod row beside the file-based row
of the same scenario. ``--markdown`` also prints the table as Markdown, for ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, write_result
from tests.reliability.conftest import FIGURES, RATE

OPTIONS = ["-q", "-p", "no:cacheprovider"]
SUITES = {
    "files": ["tests/reliability", "-m", "reliability"],
    "istiod": ["tests/cluster/test_controlplane_reliability.py", "-m", "cluster"],
}
"""The pytest arguments of each control plane's scenarios: the twin's file-based SDS, or istiod per mesh."""
LABELS = {"files": "file-based SDS", "istiod": "istiod (xDS, SDS)"}


def run_suite(mode: str) -> tuple[int, list[dict[str, Any]]]:
    """Run the scenarios of one control plane; pytest's exit code and the figures they recorded, in order, each
    with its ``control_plane``."""
    with tempfile.TemporaryDirectory(prefix="meshbridge-reliability-") as tmp:
        figures = Path(tmp) / "figures.jsonl"
        figures.touch()
        command = [sys.executable, "-m", "pytest", *SUITES[mode], *OPTIONS]
        rc = subprocess.call(command, cwd=ROOT, env={**os.environ, FIGURES: str(figures)})
        rows = [json.loads(line) for line in figures.read_text().splitlines() if line.strip()]
    return rc, [{**row, "control_plane": row.get("control_plane", mode)} for row in rows]


def beside(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows grouped by scenario (its name up to the first comma: a variant such as "..., not restarted" joins
    its scenario), in the order scenarios first appear: each istiod row after the file-based row of its scenario."""

    def family(row: dict[str, Any]) -> str:
        return str(row["scenario"]).split(",")[0]

    order = list(dict.fromkeys(family(row) for row in rows))
    return sorted(rows, key=lambda row: order.index(family(row)))


def describe(key: str, value: Any) -> str:
    """One figure as text: ``recovered_in_s=0.48`` → ``recovered in 0.48 s``."""
    if key == "errors":
        return "errors: " + (", ".join(f"{n} × {k}" for k, n in value.items()) or "none")
    if isinstance(value, dict):
        return f"{key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return f"{key.replace('_', ' ')} {'/'.join(map(str, value))}"
    name, unit = key, ""
    for suffix, u in (("_ms", " ms"), ("_s", " s")):
        if key.endswith(suffix) and isinstance(value, int | float):
            name, unit = key.removesuffix(suffix), u
    return f"{name.replace('_', ' ')} {value}{unit}"


def cells(row: dict[str, Any], *, with_mode: bool) -> list[str]:
    """Scenario, (the control plane,) sent, failed, and the other figures of one recorded row (— where the scenario
    has none)."""
    skip = ("scenario", "sent", "failed", "control_plane")
    others = [describe(k, v) for k, v in row.items() if k not in skip and v is not None]
    mode = [LABELS[row["control_plane"]]] if with_mode else []
    return [row["scenario"], *mode, str(row.get("sent", "—")), str(row.get("failed", "—")), "; ".join(others)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument(
        "--control-plane",
        choices=("files", "istiod", "both"),
        default="files",
        help="the twin's file-based SDS (default), istiod per mesh on local API servers, or both side by side",
    )
    args = parser.parse_args()

    modes = ["files", "istiod"] if args.control_plane == "both" else [args.control_plane]
    codes, rows = [], []
    for mode in modes:
        rc, found = run_suite(mode)
        codes.append(rc)
        rows += found
    rc = next((c for c in codes if c), 0)
    rows = beside(rows)
    commands = [f"python -m pytest {' '.join([*SUITES[m], *OPTIONS])}" for m in modes]
    name = "reliability" if modes == ["files"] else f"reliability-{args.control_plane}"
    path = write_result(name, {"rate_rps": RATE, "commands": commands, "pytest_exit_codes": codes, "scenarios": rows})
    with_mode = modes != ["files"]
    heads = ["Scenario", *(["Control plane"] if with_mode else []), "Sent", "Failed", "Other figures"]
    table = Table(title=f"Reliability figures ({' vs '.join(LABELS[m] for m in modes)}, {RATE:.0f} rps constant load)")
    for head in heads:
        table.add_column(head, justify="right" if head in ("Sent", "Failed") else "left")
    for row in rows:
        table.add_row(*cells(row, with_mode=with_mode))
    console = Console()
    console.print(table)
    if args.markdown:
        print(
            "| "
            + " | ".join(heads)
            + " |\n|"
            + "|".join("---:" if h in ("Sent", "Failed") else "---" for h in heads)
            + "|"
        )
        for row in rows:
            print("| " + " | ".join(c.replace("|", "\\|") for c in cells(row, with_mode=with_mode)) + " |")
    console.print(f"{len(rows)} scenarios recorded, pytest exit codes {codes} → {path}", highlight=False)
    sys.exit(rc)


if __name__ == "__main__":
    main()
