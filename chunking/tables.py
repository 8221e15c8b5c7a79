"""Tables as pipe-table lines: read a table block, stitch page continuations, split by rows.

A table is kept as its head (header row(s) and the ``| --- |`` separator) and one Markdown line
per body row, so a row group is the head plus whole row lines: every part is a valid pipe table
that repeats the header, no part ever ends inside a row, and rows under one spanned row label
stay together where they fit. HTML with row or column spans that the block's Markdown does not
show (rows with fewer cells) goes through :func:`deepocr_loaders.tables.html_table_to_grid`
(spans spread over the cells they cover) and :func:`~deepocr_loaders.tables.grid_to_markdown`;
otherwise the Markdown, the same grid, is used as it is (parsing HTML costs several times more).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from deepocr_loaders.document import Block
from deepocr_loaders.tables import grid_to_markdown, html_table_to_grid

__all__ = [
    "TableLines",
    "block_table",
    "cells",
    "first_cell",
    "is_label_row",
    "key_column",
    "names_rows",
    "part_text",
    "row_groups",
    "split_table",
    "stitch_tables",
    "words_tell_rows_apart",
]

_SEP_LINE_RE = re.compile(r"^\|?(?:\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?$")
_CELL_SPLIT_RE = re.compile(r"(?<!\\)\|")
_NUMBER_RE = re.compile(r"[-+<>~≈]?\s*[\d.,]+\s*%?")
# A word an embedding model reads as one: three letters or more in a row.
_WORD_RE = re.compile(r"[^\W\d_]{3,}")


@dataclass
class TableLines:
    """A pipe table as its head lines (ending with the separator) and its body row lines."""

    head: list[str]
    rows: list[str]
    n_cols: int
    _firsts: list[str] | None = field(default=None, repr=False, compare=False)
    _labels: list[int] | None = field(default=None, repr=False, compare=False)

    def first_cells(self) -> list[str]:
        """The first cell of every body row (computed once: splitting, keys and labels all
        read it)."""
        if self._firsts is None:
            self._firsts = [first_cell(line) for line in self.rows]
        return self._firsts

    def label_of(self) -> list[int]:
        """Per body row, the index of the label row it sits under (itself for a label row),
        or -1; see :func:`is_label_row`."""
        if self._labels is None:
            labels, current = [], -1
            firsts = self.first_cells()
            for k, line in enumerate(self.rows):
                if self.n_cols > 1 and _is_label(line, firsts[k]):
                    current = k
                labels.append(current)
            self._labels = labels
        return self._labels


def _columns(line: str) -> int:
    return len(cells(line))


def _from_markdown(text: str) -> TableLines | None:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines or not all(ln.startswith("|") for ln in lines):
        return None
    n_cols = _columns(lines[0])
    for k in range(1, len(lines)):
        if _SEP_LINE_RE.match(lines[k]):
            return TableLines(lines[: k + 1], lines[k + 1 :], n_cols)
    # No separator: Markdown needs one, so the first row becomes the header.
    sep = "| " + " | ".join("---" for _ in range(n_cols)) + " |"
    return TableLines([lines[0], sep], lines[1:], n_cols)


def _is_regular(table: TableLines) -> bool:
    """Every line has the same number of cells: spans, if there were any, are spread already."""
    return len({ln.count("|") - ln.count("\\|") for ln in (*table.head, *table.rows)}) == 1


def block_table(block: Block) -> TableLines | None:
    """The table of a table block, or None when its text is no table.

    The block's Markdown is used when it is a regular grid (our engines write the grid of the
    HTML, spans spread); the HTML is parsed when it has spans the Markdown does not show."""
    html = block.html
    text = _from_markdown(block.text) if "|" in block.text else None
    if text is not None and (_is_regular(text) or not html or "span" not in html.lower()):
        return text
    if html and "<table" in html.lower():
        md = grid_to_markdown(html_table_to_grid(html))
        if md:
            return _from_markdown(md)
    return text


def stitch_tables(first: TableLines, more: TableLines) -> TableLines:
    """``first`` with the rows of its continuation; a repeated header is dropped, and a
    continuation printed without one keeps its first row (Markdown made it a header)."""
    same = [" ".join(h.split()) for h in more.head[:-1]] == [
        " ".join(h.split()) for h in first.head[:-1]
    ]
    extra = more.rows if same else [*more.head[:-1], *more.rows]
    return TableLines(first.head, first.rows + extra, first.n_cols)


def cells(line: str) -> list[str]:
    """The cell texts of one pipe-table line (escaped pipes kept inside their cell)."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip() for c in _CELL_SPLIT_RE.split(body)]


def first_cell(line: str) -> str:
    """The first cell text of one pipe-table line."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    end = _CELL_SPLIT_RE.search(body)
    return (body[: end.start()] if end else body).strip()


def is_label_row(line: str) -> bool:
    """A row that names the rows under it, like a segment in a financial statement: one cell
    spanning the row (which the grid repeats in every cell) or a first cell with the others
    empty, and no number in it."""
    return _is_label(line, first_cell(line))


def _is_label(line: str, label: str) -> bool:
    """:func:`is_label_row` for a line whose first cell is ``label``."""
    if not label or _is_number(label):
        return False
    # Cheap test first (most rows fail it): nothing but the label, pipes and blanks.
    if line.replace(label, "").strip(" |\t"):
        return False
    return all(cell in ("", label) for cell in cells(line)[1:])


def _is_number(cell: str) -> bool:
    return bool(_NUMBER_RE.fullmatch(cell))


def key_column(table: TableLines) -> int:
    """The column that names the rows: the first whose body cells are mostly not numbers
    (a row label, an id, a name), else the first column."""
    sample = table.rows[:50]
    firsts = table.first_cells()[:50]
    columns = [firsts]
    if not names_rows(firsts):
        split = [cells(line) for line in sample]
        columns = [[r[col] if col < len(r) else "" for r in split] for col in range(table.n_cols)]
    for col, values in enumerate(columns):
        if names_rows(values):
            return col
    return 0


def names_rows(values: list[str]) -> bool:
    """Whether mostly names, ids or labels fill ``values``, not numbers."""
    filled = [v for v in values if v]
    return bool(filled) and sum(not _is_number(v) for v in filled) * 2 > len(filled)


def words_tell_rows_apart(table: TableLines, key: int) -> bool:
    """Whether most filled body cells outside column ``key`` are words found in no other row
    of their column (an option's description, a definition): what an embedding model reads
    well and a question about the table asks for. Numbers, and words that recur from row to
    row (a site type, a grade), are noise beside the key that names the row.

    Args:
        table: the table.
        key: the key column (:func:`key_column`).
    """
    columns: dict[int, list[str]] = {}
    for line in table.rows[:50]:
        for col, cell in enumerate(cells(line)):
            if col != key and cell:
                columns.setdefault(col, []).append(cell)
    filled = sum(len(values) for values in columns.values())
    telling = 0
    for values in columns.values():
        seen = Counter(values)
        telling += sum(1 for v in values if seen[v] == 1 and _WORD_RE.search(v))
    return filled > 0 and telling * 2 > filled


def row_groups(
    table: TableLines, max_tokens: int, count: Callable[[str], int], reserved: int = 0
) -> list[tuple[int, int, int]]:
    """Row ranges ``(start, end, tokens)`` of the parts :func:`split_table` makes.

    A cut never falls inside a run of rows that share the first cell (a row label spread over
    rows by a row span) or whose first cell is empty (a continuation line), unless the run
    alone is over the budget; then it is cut between rows like any other. A label row (a
    segment name, see :func:`is_label_row`) stays with the row after it, and a part that
    starts under a label repeats it after the header (:func:`part_text`), counted here."""
    head_tokens = count("\n".join(table.head))
    # +1 per row for the newline joining it: an upper bound, so parts never overshoot.
    costs = [count(line) + 1 for line in table.rows]
    budget = max_tokens - reserved
    total = head_tokens + sum(costs)
    if total <= budget or not costs:
        return [(0, len(costs), total)]
    # Row labels that span rows sit in the first column.
    keys = table.first_cells()
    labels = table.label_of()

    def opening(k: int) -> int:
        """Tokens a part starting at row k begins with: the head, and the label it is under."""
        return head_tokens + (costs[labels[k]] if 0 <= labels[k] < k else 0)

    # Row k opens a run unless it carries on the previous row's label or follows a label row.
    opens = [
        k == 0 or not (keys[k] == "" or keys[k] == keys[k - 1] or labels[k - 1] == k - 1)
        for k in range(len(keys))
    ]
    parts: list[tuple[int, int, int]] = []
    start, used = 0, head_tokens
    k = 0
    while k < len(costs):
        end = k + 1
        while end < len(costs) and not opens[end]:
            end += 1
        run = sum(costs[k:end])
        if k > start and used + run > budget:
            parts.append((start, k, used))
            start, used = k, opening(k)
        if used + run > budget:
            # A run over the budget on its own: cut it between rows.
            for j in range(k, end):
                if j > start and used + costs[j] > budget:
                    parts.append((start, j, used))
                    start, used = j, opening(j)
                used += costs[j]
        else:
            used += run
        k = end
    parts.append((start, len(costs), used))
    return parts


def part_text(table: TableLines, start: int, end: int) -> str:
    """The pipe table of rows ``start:end`` under the table's head, and under the label row
    they sit under when the part starts below it (a segment name must not be lost)."""
    label = table.label_of()[start] if 0 < start < len(table.rows) else -1
    carried = [table.rows[label]] if 0 <= label < start else []
    return "\n".join([*table.head, *carried, *table.rows[start:end]])


def split_table(
    table: TableLines, max_tokens: int, count: Callable[[str], int], reserved: int = 0
) -> list[tuple[str, int]]:
    """Pipe-table Markdown parts of at most ``max_tokens`` (less ``reserved`` for a caption),
    each repeating the header, with their token counts; a single row over the budget still
    makes a part of its own."""
    return [
        (part_text(table, a, b), tokens)
        for a, b, tokens in row_groups(table, max_tokens, count, reserved)
    ]
