"""The JSON tree walk shared by the xDS writers and readers."""

from __future__ import annotations

from meshbridge.jsontree import mappings


def test_mappings_yields_every_dict_parents_first() -> None:
    doc = {"a": [{"b": {"c": 1}}, 2, "x"], "d": {"e": []}}
    assert mappings(doc).__next__() is doc
    assert [sorted(d) for d in mappings(doc)] == [["a", "d"], ["b"], ["c"], ["e"]]
    assert list(mappings([1, "x", None])) == []


def test_a_yielded_dict_may_be_changed_before_its_values_are_walked() -> None:
    doc = {"drop": {"inner": {}}, "keep": {}}
    seen = []
    for d in mappings(doc):
        d.pop("drop", None)
        seen.append(d)
    assert doc == {"keep": {}} and len(seen) == 2  # the dropped subtree was never walked
