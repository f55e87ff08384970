"""Aligned tables: ``format_table`` (kubectl's layout) and ``fit_table`` (the same, wrapped to a width)."""

from __future__ import annotations

from meshbridge.tabwriter import fit_table, format_table

URI = "URI:spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
ROWS = [
    ("NAME", "EKU", "SANS", "DAYS LEFT"),
    ("eks/server", "serverAuth", "DNS:lambda.external", 89),
    ("gke/client", "clientAuth", URI, 89),
]


def test_fit_table_wraps_the_named_columns_to_the_width() -> None:
    text = fit_table(ROWS, 60, wrap=[2])
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert lines[0].split() == ["NAME", "EKU", "SANS", "DAYS", "LEFT"]  # the header is never wrapped
    # the URI breaks after a '/' (else a '.', ':' or '-'), on continuation lines under its own column
    column = lines[0].index("SANS")
    sans = [line[column:].split("   ")[0].strip() for line in lines[2:]]
    assert "".join(sans) == URI and all(s[-1] in "/.:-" for s in sans[:-1])
    assert sans[:3] == ["URI:spiffe://", "gke.example.com/ns/", "istio-egress/sa/"]
    assert all(line[:column].strip() == "" for line in lines[3:])


def test_fit_table_leaves_a_table_that_fits_as_format_table_lays_it_out() -> None:
    """The negative twin: nothing to wrap, nothing changed (but trailing spaces)."""
    wide = 200
    assert fit_table(ROWS, wide, wrap=[2]).splitlines() == [line.rstrip() for line in format_table(ROWS).splitlines()]


def test_fit_table_keeps_the_line_breaks_of_a_cell() -> None:
    text = fit_table([("A", "B"), ("x", "one\ntwo")], 100, wrap=[1])
    assert text.splitlines() == ["A   B", "x   one", "    two"]


def test_fit_table_never_makes_a_wrapped_column_narrower_than_its_floor() -> None:
    text = fit_table([("NAME", "TEXT"), ("n" * 30, "a few words that must wrap somewhere")], 20, wrap=[1])
    assert all(len(line) <= 30 + 3 + 12 for line in text.splitlines())  # the fixed column alone is too wide
    assert " ".join(line[33:].strip() for line in text.splitlines()[1:]) == "a few words that must wrap somewhere"


def test_a_long_name_breaks_before_its_bracket_and_a_raised_floor_keeps_the_name_whole() -> None:
    rows = [("CHECK", "TEXT"), ("ExporterAcceptsImporterCert[lambda → gke]", "x " * 40)]
    text = fit_table(rows, 40, wrap=[0, 1], least={0: len("ExporterAcceptsImporterCert")})
    assert [line[:28].strip() for line in text.splitlines()[1:3]] == ["ExporterAcceptsImporterCert", "[lambda → gke]"]
    # the twin: without the floor the column may be narrower than the name, which then breaks inside it
    narrow = fit_table(rows, 40, wrap=[0, 1])
    assert not narrow.splitlines()[1].startswith("ExporterAcceptsImporterCert")
