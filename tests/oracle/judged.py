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
from meshbridge.istio.parse import load_documents
from meshbridge.istiod.judge import MeshVerdict, ProxyVerdict, judge_mesh
from meshbridge.lint import from_manifests, lint
from meshbridge.local.twin import mesh_configs
from meshbridge.spec import Bridge, load_bridge
from meshbridge.world import proxies
from tests.builders import (
    ARTICLE,
    HELLOWORLD,
    SEED,
    bridge_from,
    issued_store,
    seed_at,
    seed_dict,
    two_exports_three_meshes,
)
from tests.oracle.calls import judge_calls
from tests.oracle.corpus import CASES, case_names, load_case

ARTICLE_ENV = {"HOST_GW_CLUSTER2": "ingress.eks.example.com"}
"""What the article's manifests read from the shell (the exporter's load-balancer name)."""

BRIDGES: dict[str, Callable[[], tuple[Bridge, Path, dict[str, list[Path]]]]] = {
    "bridge-seed": lambda: (bridge_from(seed_dict()), SEED.parent, {}),
    "bridge-seed-1.30": lambda: (bridge_from(seed_at("1.30.4")), SEED.parent, {}),
    "bridge-multi": lambda: (bridge_from(two_exports_three_meshes()), SEED.parent, {}),
    "bridge-article": lambda: (
        load_bridge(ARTICLE / "bridge.yaml"),
        ARTICLE,
        {"eks": [ARTICLE / "eks.yaml"], "gke": [ARTICLE / "gke.yaml"]},
    ),
    "bridge-helloworld": lambda: (load_bridge(HELLOWORLD), HELLOWORLD.parent, {}),
}
"""The project's own bridges: the seed (as the article declares it, Istio 1.17, judged as 1.31; and on Istio 1.30,
judged by istiod with Istio's compatibility profile for 1.30), the multi-export golden and the article's own
manifests."""


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


def lint_codes(case: str) -> str:
    """lint's errors and warnings on a corpus case, as codes (``MB106 error``), or ``clean``."""
    report = lint(from_manifests({"mesh": load_documents([CASES / f"{case}.yaml"])}))
    found = sorted({(f.severity, f.code) for f in report.findings if f.severity in ("error", "warning")})
    return ", ".join(f"{code} {severity}" for severity, code in found) or "clean"


def calls_table(judged: dict[str, list[MeshVerdict]]) -> str:
    """Each corpus case's calls: lint's findings, the twin's answer and istiod's, and the verdict."""
    rows = ["| case | lint | call | the twin (meshbridge) | istiod | verdict |", "|" + "---|" * 6]
    verdicts: Counter[str] = Counter()
    cases = [name for name in judged if name not in BRIDGES]
    for name in cases:
        codes = lint_codes(name)
        for j in judge_calls(name, judged[name][0]):
            verdicts["same" if j.agree else "explained" if j.explained else "different"] += 1
            cells = [name, codes, f"`{j.call}`", j.twin.outcome, j.istiod.outcome, j.verdict]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    rows.append("")
    rows.append(
        f"{len(cases)} cases, {sum(verdicts.values())} calls: {verdicts['same']} answered alike, "
        f"{verdicts['explained']} differently for a documented reason, {verdicts['different']} differently "
        "without one."
    )
    return "\n".join(rows) + "\n"


def generated(judged: dict[str, list[MeshVerdict]]) -> str:
    """The generated part of docs/fidelity.md."""
    return (
        f"{documented_section()}\n## Conformance table\n\n{table(judged)}\n"
        f"## Calls: the twin and istiod side by side\n\n{CALLS_INTRO}\n{calls_table(judged)}"
    )


CALLS_INTRO = """Each corpus case declares the calls a user would try after applying it (``# call:`` lines, see
``tests/oracle/calls.py``). Each call is followed hop by hop, with meshbridge's one simulator
(``meshbridge.envoy.simulate``), through the twin's configuration (meshbridge's translation) and through istiod's
(the oracle's, as the twin would run it): the answer is the cluster the request reaches, or where and how it
stops. The secrets a pod's istio-agent serves (``default``, ``ROOTCA``, files) count as served on both sides.
The lint column is ``meshbridge lint`` on the case's manifests alone; every error it raises here is one istiod's
answer confirms (a call that stops), and the oracle tier fails on a false one.
"""


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
