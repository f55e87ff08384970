"""PyYAML errors told in the user's terms."""

from __future__ import annotations

import pytest
import yaml

from meshbridge.yamlerrors import yaml_problem


def _problem(text: str) -> tuple[int | None, str, str]:
    with pytest.raises(yaml.YAMLError) as e:
        yaml.safe_load(text)
    p = yaml_problem(e.value, text)
    return p.line, p.problem, p.fix


def test_a_tab_used_as_indentation_is_named_with_its_line_and_column() -> None:
    assert _problem("metadata:\n\tname: x\n") == (
        2,
        "a tab character at column 1: YAML indents with spaces only",
        "replace the tab with spaces",
    )


def test_other_syntax_errors_keep_pyyamls_problem_and_line() -> None:
    line, problem, fix = _problem("a: [1, 2\nb: 3\n")
    assert line is not None and "tab" not in problem and fix == "correct the YAML syntax at that line"


def test_the_spec_and_the_manifests_both_name_the_tab() -> None:
    from meshbridge.errors import IstioConfigError, SpecError
    from meshbridge.istio.parse import parse_yaml_text
    from meshbridge.spec.loader import parse_bridge

    text = "apiVersion: meshbridge.io/v1alpha1\nkind: Bridge\nmetadata:\n\tname: x\n"
    with pytest.raises(SpecError, match=r"bridge.yaml:4: .*a tab character.*replace the tab with spaces"):
        parse_bridge(text, source="bridge.yaml")
    with pytest.raises(IstioConfigError, match=r"eks.yaml:4: not valid YAML \(a tab character"):
        parse_yaml_text(text, "eks.yaml")
