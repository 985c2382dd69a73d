"""Plain-text tables for terminal output (``Frontier.to_table``, ``ecad-hub browse``, ``ecad-hub search``).

    >>> print(format_table([["ecad-1.00x", "1.00x"], ["ecad-2.68x", "2.68x"]], ["schedule", "speedup"], align="lr"))
    schedule    speedup
    ecad-1.00x    1.00x
    ecad-2.68x    2.68x
"""

from __future__ import annotations

from typing import Iterable, Sequence


def format_table(rows: Iterable[Sequence[str]], header: Sequence[str], *, align: str = "l", sep: str = "  ") -> str:
    """``header`` and ``rows`` as text columns, each as wide as its widest cell, one line per row.

    ``align`` is one letter per column, ``l`` (left) or ``r`` (right); a shorter string's last
    letter applies to the remaining columns (the default: everything left-aligned). Columns are
    separated by ``sep``; trailing spaces are stripped from every line. No trailing newline.
    """
    table = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    ncols = len(table[0])
    for row in table:
        if len(row) != ncols:
            raise ValueError(f"format_table: a row has {len(row)} cells, the header {ncols}")
    if not align or set(align) - {"l", "r"}:
        raise ValueError(f"format_table: align must be letters 'l' or 'r', got {align!r}")
    aligns = [align[min(i, len(align) - 1)] for i in range(ncols)]
    widths = [max(len(row[i]) for row in table) for i in range(ncols)]
    return "\n".join(
        sep.join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, aligns)).rstrip()
        for row in table
    )
