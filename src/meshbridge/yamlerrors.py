"""What a PyYAML error means for the person who wrote the file: the line, the problem and the fix (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class YamlProblem:
    """``line`` is 1-based (``None`` when PyYAML gives no position)."""

    line: int | None
    problem: str
    fix: str


def yaml_problem(e: yaml.YAMLError, text: str) -> YamlProblem:
    """Describe a PyYAML error on ``text``; a tab where YAML expects indentation is named as such (PyYAML says
    only "found character that cannot start any token")."""
    mark = getattr(e, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        return YamlProblem(
            line,
            f"a tab character at column {mark.column + 1}: YAML indents with spaces only",
            "replace the tab with spaces",
        )
    return YamlProblem(line, problem, "correct the YAML syntax at that line")
