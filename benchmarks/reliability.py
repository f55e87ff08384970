"""Benchmark: the reliability suite's figures, one row per scenario, measured by the suite itself.

Runs ``pytest tests/reliability -m reliability`` with ``MESHBRIDGE_FIGURES`` naming a file; each scenario
of the suite (a constant 50 rps load through the seed twin while a gateway is killed, a secret is deleted,
broken or missing, the backend hangs, leaves or CAs are rotated, trust is narrowed) appends what it measured
there once its assertions hold: requests sent and failed (with their status codes and Envoy response flags
where the test knows them), recovery times, the p99 latency of the successful requests. A scenario that
fails records nothing; the script exits with pytest's exit code.

    python benchmarks/reliability.py [--markdown]

``--markdown`` also prints the table as Markdown, for ``benchmarks/RESULTS.md``.
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

PYTEST = ["-m", "pytest", "tests/reliability", "-m", "reliability", "-q", "-p", "no:cacheprovider"]


def run_suite() -> tuple[int, list[dict[str, Any]]]:
    """Run the reliability suite; pytest's exit code and the figures its scenarios recorded, in order."""
    with tempfile.TemporaryDirectory(prefix="meshbridge-reliability-") as tmp:
        figures = Path(tmp) / "figures.jsonl"
        figures.touch()
        rc = subprocess.call([sys.executable, *PYTEST], cwd=ROOT, env={**os.environ, FIGURES: str(figures)})
        rows = [json.loads(line) for line in figures.read_text().splitlines() if line.strip()]
    return rc, rows


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


def cells(row: dict[str, Any]) -> list[str]:
    """Scenario, sent, failed, and the other figures of one recorded row (— where the scenario has none)."""
    others = [describe(k, v) for k, v in row.items() if k not in ("scenario", "sent", "failed") and v is not None]
    return [row["scenario"], str(row.get("sent", "—")), str(row.get("failed", "—")), "; ".join(others)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args()

    rc, rows = run_suite()
    path = write_result(
        "reliability",
        {"rate_rps": RATE, "command": f"python {' '.join(PYTEST)}", "pytest_exit_code": rc, "scenarios": rows},
    )
    table = Table(title=f"Reliability figures (seed twin, {RATE:.0f} rps constant load)")
    table.add_column("Scenario")
    table.add_column("Sent", justify="right")
    table.add_column("Failed", justify="right")
    table.add_column("Other figures")
    for row in rows:
        table.add_row(*cells(row))
    console = Console()
    console.print(table)
    if args.markdown:
        print("| Scenario | Sent | Failed | Other figures |\n|---|---:|---:|---|")
        for row in rows:
            print("| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |")
    console.print(f"{len(rows)} scenarios recorded, pytest exit code {rc} → {path}", highlight=False)
    sys.exit(rc)


if __name__ == "__main__":
    main()
