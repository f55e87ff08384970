"""The calls of the corpus cases (``# call:`` lines), answered on the twin's configuration and on istiod's.

istiod is the judge three ways: the twin must answer every call as istiod's configuration does (or the
difference is one docs/fidelity.md explains, listed in ``calls.EXPLAINED``); a call a case expects to fail must
fail on istiod's configuration and every other call must get through there; and every error lint raises on a
case must show as a call istiod's configuration stops.
"""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest

from meshbridge.istiod.judge import MeshVerdict
from meshbridge.lint.codes import CODES
from tests.oracle.calls import EXPLAINED, Judged, calls, follow, judge_calls, with_agent_secrets
from tests.oracle.corpus import case_names
from tests.oracle.judged import lint_codes

pytestmark = pytest.mark.oracle

WITH_CALLS = [name for name in case_names() if calls(name)]


@pytest.fixture(scope="session")
def answered(judged: dict[str, list[MeshVerdict]]) -> dict[str, list[Judged]]:
    return {name: judge_calls(name, judged[name][0]) for name in WITH_CALLS}


def test_most_cases_declare_calls() -> None:
    assert len(WITH_CALLS) >= 40, f"only {len(WITH_CALLS)} corpus cases declare a call"


@pytest.mark.parametrize("name", WITH_CALLS)
def test_the_twin_answers_every_call_as_istiod_does(answered: dict[str, list[Judged]], name: str) -> None:
    wrong = [
        f"{j.call}: the twin {j.twin.outcome}, istiod {j.istiod.outcome}"
        for j in answered[name]
        if not j.agree and not j.explained
    ]
    assert not wrong, "calls the twin answers otherwise than istiod, for no documented reason:\n" + "\n".join(wrong)


def test_every_explained_difference_still_occurs(answered: dict[str, list[Judged]]) -> None:
    still = {(name, str(j.call)) for name, js in answered.items() for j in js if not j.agree}
    stale = sorted(set(EXPLAINED) - still)
    assert not stale, f"calls listed in calls.EXPLAINED that the twin now answers as istiod does (remove them): {stale}"


@pytest.mark.parametrize("name", WITH_CALLS)
def test_istiod_stops_exactly_the_calls_expected_to_fail(answered: dict[str, list[Judged]], name: str) -> None:
    wrong = [f"{j.call}: istiod {j.istiod.outcome}" for j in answered[name] if j.call.fails == j.istiod.ok]
    assert not wrong, "expect=fail does not match istiod's answer:\n" + "\n".join(wrong)


def traffic_errors(name: str) -> list[str]:
    """lint's errors on a case whose symptom is a request a proxy stops (404 NR, 503 NC, UF, UH), by the
    registry's symptom; errors about DNS (before any proxy) or posture (the request gets through) are left out."""
    codes = [c.split()[0] for c in lint_codes(name).split(", ") if c.endswith(" error")]
    return [c for c in codes if re.search(r"\b(NR|NC|UF|UH)\b", CODES[c].symptom)]


@pytest.mark.parametrize("name", [n for n in WITH_CALLS if traffic_errors(n)])
def test_every_lint_error_shows_as_a_call_istiod_stops(answered: dict[str, list[Judged]], name: str) -> None:
    assert any(not j.istiod.ok for j in answered[name]), (
        f"lint says {traffic_errors(name)}, yet istiod's configuration gets every call through"
    )


def test_lint_errors_about_traffic_are_judged_on_several_cases() -> None:
    assert len([n for n in WITH_CALLS if traffic_errors(n)]) >= 3


# -- negative twins: the comparison catches what it must --------------------------------------------------


def test_a_dropped_route_makes_the_twin_answer_otherwise(judged: dict[str, list[MeshVerdict]]) -> None:
    (gateway,) = [v for v in judged["ingress-https-simple"][0].proxies if v.name == "mesh/shop-ingressgateway"]
    routes = copy.deepcopy(gateway.ours.route_configs)
    for rc in routes:
        for vh in rc.get("virtual_hosts", []):
            vh["routes"] = []
    broken = {gateway.name: with_agent_secrets(dataclasses.replace(gateway.ours, route_configs=routes))}
    call = calls("ingress-https-simple")[0]
    assert follow(call, broken).outcome == "404 NR at mesh/shop-ingressgateway"
    assert follow(call, {gateway.name: with_agent_secrets(gateway.ours)}).ok


def test_a_call_expected_to_fail_that_gets_through_is_reported(answered: dict[str, list[Judged]]) -> None:
    (ok,) = [j for j in answered["ingress-https-simple"] if not j.call.fails]
    flipped = dataclasses.replace(ok.call, fails=True)
    assert flipped.fails == ok.istiod.ok  # the check above would name this call
