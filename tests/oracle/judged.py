"""Everything the conformance tier judges, judged once: the corpus cases and the project's own bridges.

``python -m tests.oracle.judged`` prints the generated part of ``docs/fidelity.md`` (Markdown: the documented
differences, then the conformance table), from a fresh run of the oracle; ``--write`` puts it in the page,
between its markers. The oracle tier checks that the page holds exactly that.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from meshbridge.envoy.compare import DOCUMENTED
from meshbridge.istiod.judge import MeshVerdict, ProxyVerdict, judge_mesh
from meshbridge.local.twin import mesh_configs
from meshbridge.spec import Bridge, load_bridge
from meshbridge.world import proxies
from tests.builders import ARTICLE, HELLOWORLD, SEED, bridge_from, issued_store, seed_dict, two_exports_three_meshes
from tests.oracle.corpus import case_names, load_case

ARTICLE_ENV = {"HOST_GW_CLUSTER2": "ingress.eks.example.com"}
"""What the article's manifests read from the shell (the exporter's load-balancer name)."""

BRIDGES: dict[str, Callable[[], tuple[Bridge, Path, dict[str, list[Path]]]]] = {
    "bridge-seed": lambda: (bridge_from(seed_dict()), SEED.parent, {}),
    "bridge-multi": lambda: (bridge_from(two_exports_three_meshes()), SEED.parent, {}),
    "bridge-article": lambda: (
        load_bridge(ARTICLE / "bridge.yaml"),
        ARTICLE,
        {"eks": [ARTICLE / "eks.yaml"], "gke": [ARTICLE / "gke.yaml"]},
    ),
    "bridge-helloworld": lambda: (load_bridge(HELLOWORLD), HELLOWORLD.parent, {}),
}
"""The project's own bridges: the seed, the multi-export golden and the article's own manifests."""


def all_names() -> list[str]:
    """Every judged input: the project's bridges, then the corpus cases."""
    return [*BRIDGES, *case_names()]


def judge(name: str, binary: Path | None = None) -> list[MeshVerdict]:
    """The verdict of every mesh of one input (a corpus case is one mesh)."""
    if name not in BRIDGES:
        case = load_case(name)
        return [judge_mesh("mesh", case.cfg, case.proxies, binary)]
    bridge, base, manifests = BRIDGES[name]()
    with tempfile.TemporaryDirectory(prefix="meshbridge-oracle-") as tmp:
        store = issued_store(Path(tmp), bridge)
        configs, _ = mesh_configs(bridge, base, store, manifests, env=ARTICLE_ENV)
    return [judge_mesh(m, configs[m], [p.proxy for p in proxies(bridge, m)], binary) for m in bridge.spec.meshes]


def kinds(verdict: ProxyVerdict) -> dict[str, str]:
    """Per resource kind (listener, route, cluster, secret): ``identical``, or the FD ids that explain it."""
    found: dict[str, set[str]] = {k: set() for k in ("listener", "route", "cluster", "secret")}
    for d in verdict.differences:
        found[d.path.split(" ", 1)[0]].add(d.documented or "UNDOCUMENTED")
    return {k: ", ".join(sorted(v)) if v else "identical" for k, v in found.items()}


def table(judged: dict[str, list[MeshVerdict]]) -> str:
    """The conformance table: input × proxy × resource kind, and the totals."""
    rows = [
        "| input | proxy | facts (istiod) | identical | listeners | routes | clusters | secrets |",
        "|" + "---|" * 8,
    ]
    cells: Counter[str] = Counter()
    for name, verdicts in judged.items():
        for mv in verdicts:
            for v in mv.proxies:
                k = kinds(v)
                cells.update(
                    "identical" if val == "identical" else "undocumented" if "UNDOC" in val else "documented"
                    for val in k.values()
                )
                rows.append(
                    f"| {name} | {v.name} | {v.facts[1]} | {v.identical} | {k['listener']} | {k['route']} | "
                    f"{k['cluster']} | {k['secret']} |"
                )
    total = sum(len(mv.proxies) for vs in judged.values() for mv in vs)
    rows.append("")
    rows.append(
        f"{len(judged)} inputs, {total} proxies, {sum(cells.values())} proxy × kind cells: "
        f"{cells['identical']} identical, {cells['documented']} with documented differences only, "
        f"{cells['undocumented']} with an undocumented difference."
    )
    return "\n".join(rows) + "\n"


def documented_section() -> str:
    """Every documented difference (``meshbridge.envoy.compare.DOCUMENTED``), as Markdown."""
    parts = []
    for e in DOCUMENTED:
        where = {"router": " (gateways)", "sidecar": " (sidecars)"}.get(e.proxies or "", "")
        side = (
            {True: ", only meshbridge has it", False: ", only istiod has it"}.get(e.only_ours, "")
            if e.only_ours is not None
            else ""
        )
        parts.append(
            f"### {e.id}\n\n- **Facts:** `{e.path}`{where}{side}\n- **Why:** {e.reason}.\n"
            f"- **Consequence for traffic:** {e.consequence}.\n"
        )
    return "\n".join(parts)


def generated(judged: dict[str, list[MeshVerdict]]) -> str:
    """The generated part of docs/fidelity.md."""
    return f"{documented_section()}\n## Conformance table\n\n{table(judged)}"


BEGIN, END = "<!-- generated: python -m tests.oracle.judged --write -->\n", "<!-- end of the generated part -->\n"


def write_page(page: Path, judged: dict[str, list[MeshVerdict]]) -> None:
    """Replace the generated part of ``page`` (between its markers) with this run's."""
    text = page.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    page.write_text(f"{head}{BEGIN}{generated(judged)}{END}{tail}")


if __name__ == "__main__":
    import sys

    everything = {name: judge(name) for name in all_names()}
    if "--write" in sys.argv:
        write_page(Path(__file__).resolve().parents[2] / "docs" / "fidelity.md", everything)
    else:
        print(generated(everything), end="")
