"""Aligned text columns, as Go's ``text/tabwriter`` prints them (kubectl and istioctl tables).

``istioctl proxy-config`` uses ``tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)``: every cell but the last of a
line is padded to the widest cell of its column plus ``padding`` spaces; the last cell is not padded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from meshbridge.hints import with_options


def format_table(rows: Sequence[Sequence[object]], padding: int = 3) -> str:
    """Rows of cells (the first row is usually the header) → aligned lines ending in a newline.

    Columns are as wide as their widest cell (counted in characters) plus ``padding``. A row shorter than
    others simply has fewer cells. ``None`` prints as an empty cell.
    """
    cells = _texts(rows)
    widths: dict[int, int] = {}
    for row in cells:
        for i, c in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, 0), len(c))
    lines = []
    for row in cells:
        parts = [c.ljust(widths[i] + padding) for i, c in enumerate(row[:-1])]
        lines.append("".join(parts) + (row[-1] if row else ""))
    return "\n".join(lines) + ("\n" if lines else "")


TERMINAL_WIDTH = 100
"""The width tables keep within by default: a normal terminal (``--wide`` forms may be wider)."""

NOTE_INDENT = 4
"""How far :func:`fit_table`'s notes are indented under their row."""


def fit_table(
    rows: Sequence[Sequence[object]],
    width: int,
    wrap: Sequence[int],
    padding: int = 3,
    notes: Sequence[str] | None = None,
    least: Mapping[int, int] | None = None,
) -> str:
    """Like :func:`format_table`, but every line fits ``width`` characters: the columns ``wrap`` (indexes)
    wrap their text, at spaces where they can, onto continuation lines of the same row.

    A cell may hold line breaks of its own (one SAN per line, say). Columns not in ``wrap`` keep their
    natural width; the wrapped ones share what is left, the widest giving way first, down to
    ``MIN_WRAP_WIDTH`` each (a line may then be wider than ``width``: the fixed columns alone do not fit).
    The first row (the header) is never wrapped. When the natural table fits, it is :func:`format_table`'s
    layout (without trailing spaces). ``notes`` (one per row after the header, ``""`` for none) are printed under
    their row, indented by :data:`NOTE_INDENT` and wrapped to ``width``: a long message that would not fit a
    column. ``least`` raises the floor of wrapped columns (index → width): a column of names that must not
    break (a verify check's name) stays at least as wide as its longest name.
    """
    cells = _texts(rows)
    if not cells:
        return ""
    columns = max(len(row) for row in cells)
    natural = [max((_longest(row[i]) for row in cells if i < len(row)), default=0) for i in range(columns)]
    widths = list(natural)
    used = sum(natural) + padding * (columns - 1)
    if used > width and wrap:
        fixed = sum(natural[i] for i in range(columns) if i not in wrap) + padding * (columns - 1)
        header = cells[0]
        floors = {
            i: max(MIN_WRAP_WIDTH, len(header[i]) if i < len(header) else 0, (least or {}).get(i, 0)) for i in wrap
        }
        room = max(width - fixed, sum(floors.values()))
        cap = max(natural[i] for i in wrap)
        while cap > 0 and sum(min(natural[i], max(cap, floors[i])) for i in wrap) > room:
            cap -= 1
        for i in wrap:
            widths[i] = min(natural[i], max(cap, floors[i]))
    lines: list[str] = []
    for n, row in enumerate(cells):
        parts = [_wrap(c, widths[i]) if n and i in wrap else c.split("\n") for i, c in enumerate(row)]
        for k in range(max(len(p) for p in parts)):
            text = [p[k] if k < len(p) else "" for p in parts]
            line = "".join(t.ljust(widths[i] + padding) for i, t in enumerate(text[:-1])) + text[-1]
            lines.append(line.rstrip())
        note = with_options(notes[n - 1]) if notes is not None and 0 < n <= len(notes) else ""
        if note:
            lines += [" " * NOTE_INDENT + part for part in _wrap(note, max(width - NOTE_INDENT, MIN_WRAP_WIDTH))]
    return "\n".join(lines) + "\n"


MIN_WRAP_WIDTH = 12
"""The narrowest a wrapped column of :func:`fit_table` gets."""


def _texts(rows: Sequence[Sequence[object]]) -> list[list[str]]:
    """The cells as text (``None`` empty), their command hints carrying the user's ``-f``
    (:func:`~meshbridge.hints.with_options`) before the columns are measured."""
    return [["" if c is None else with_options(str(c)) for c in row] for row in rows]


def _longest(cell: str) -> int:
    return max(len(line) for line in cell.split("\n"))


def _wrap(cell: str, width: int) -> list[str]:
    """``cell``'s lines wrapped at spaces to ``width``; a word longer than that (a path, a URI) breaks after a
    ``/`` where it can, else before a ``[`` (a check's subject: ``ExporterAcceptsImporterCert`` / ``[lambda``),
    else after a ``.``, ``:`` or ``-``, else at ``width``."""
    out: list[str] = []
    for part in cell.split("\n"):
        line = ""
        for word in part.split(" "):
            for j, piece in enumerate(_pieces(word, width)):
                sep = " " if line and j == 0 else ""
                if len(line) + len(sep) + len(piece) <= width:
                    line += sep + piece
                else:
                    out.append(line)
                    line = piece
        out.append(line)
    return out


def _pieces(word: str, width: int) -> list[str]:
    pieces = []
    while len(word) > width:
        after = [max(word.rfind(c, 0, width) for c in seps) + 1 for seps in ("/", "/.:-")]
        cuts = [after[0], word.rfind("[", 1, width + 1), after[1]]
        cut = next((c for c in cuts if c > width // 3), width)  # after a '/' first: a path or URI reads best
        pieces.append(word[:cut])
        word = word[cut:]
    return [*pieces, word]
