"""Aligned text columns, as Go's ``text/tabwriter`` prints them (kubectl and istioctl tables).

``istioctl proxy-config`` uses ``tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)``: every cell but the last of a
line is padded to the widest cell of its column plus ``padding`` spaces; the last cell is not padded.
"""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: Sequence[Sequence[object]], padding: int = 3) -> str:
    """Rows of cells (the first row is usually the header) → aligned lines ending in a newline.

    Columns are as wide as their widest cell (counted in characters) plus ``padding``. A row shorter than
    others simply has fewer cells. ``None`` prints as an empty cell.
    """
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    widths: dict[int, int] = {}
    for row in cells:
        for i, c in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, 0), len(c))
    lines = []
    for row in cells:
        parts = [c.ljust(widths[i] + padding) for i, c in enumerate(row[:-1])]
        lines.append("".join(parts) + (row[-1] if row else ""))
    return "\n".join(lines) + ("\n" if lines else "")
