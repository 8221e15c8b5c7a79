"""Tables as grids: parse a table block, stitch page continuations, split into row groups.

A row group is rendered with :func:`deepocr_loaders.tables.grid_to_markdown` from the header
rows plus its own rows, so every part is a valid pipe table that repeats the header, and no
part ever ends inside a row.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from deepocr_loaders.document import Block
from deepocr_loaders.tables import TableGrid, grid_to_markdown, html_table_to_grid

__all__ = ["block_grid", "parse_pipe_table", "split_table", "stitch_grids"]

_SEP_CELL_RE = re.compile(r"^\s*:?-{1,}:?\s*$")
_CELL_SPLIT_RE = re.compile(r"(?<!\\)\|")


def _pipe_cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [c.strip().replace("\\|", "|").replace("\\\\", "\\") for c in _CELL_SPLIT_RE.split(body)]


def parse_pipe_table(text: str) -> TableGrid | None:
    """A grid from a Markdown pipe table, or None when ``text`` is not one."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines or not all(ln.strip().startswith("|") for ln in lines):
        return None
    rows: list[list[str]] = []
    header_rows = 0
    for line in lines:
        cells = _pipe_cells(line)
        if not header_rows and rows and all(_SEP_CELL_RE.match(c) for c in cells):
            header_rows = len(rows)
            continue
        rows.append(cells)
    width = max(len(r) for r in rows) if rows else 0
    return TableGrid([r + [""] * (width - len(r)) for r in rows], header_rows)


def block_grid(block: Block) -> TableGrid | None:
    """The grid of a table block: from its HTML when the engine kept it, else its Markdown.

    HTML without row or column spans says nothing its pipe table does not, and the pipe table
    parses several times faster, so the HTML parser only runs for tables with spans.
    """
    html = block.html
    if html and "<table" in html.lower() and ("span" in html.lower() or "|" not in block.text):
        grid = html_table_to_grid(html)
        if grid.rows and grid.n_cols:
            return grid
    grid_or_none = parse_pipe_table(block.text)
    if grid_or_none is None or not grid_or_none.rows:
        return None
    return grid_or_none


def stitch_grids(first: TableGrid, more: TableGrid) -> TableGrid:
    """``first`` with the rows of its continuation appended; a repeated header is dropped."""
    head = max(first.header_rows, 1)
    header = first.rows[:head]
    rows = more.rows
    if rows[: len(header)] == header:
        rows = rows[len(header) :]
    return TableGrid(first.rows + rows, first.header_rows)


def split_table(
    grid: TableGrid, max_tokens: int, count: Callable[[str], int], reserved: int = 0
) -> list[tuple[str, int]]:
    """Pipe-table Markdown parts of at most ``max_tokens`` (less ``reserved`` for a caption),
    each repeating the header, with their token counts; a single row over the budget still
    makes a part of its own."""
    lines = grid_to_markdown(grid).split("\n")
    head_text = "\n".join(lines[:2])
    head_tokens = count(head_text)
    # +1 per row for the newline joining it: an upper bound, so parts never overshoot.
    costs = [count(line) + 1 for line in lines[2:]]
    budget = max_tokens - reserved
    total = head_tokens + sum(costs)
    if total <= budget or not costs:
        return [("\n".join(lines), total)]
    parts: list[tuple[str, int]] = []
    start = 0
    used = head_tokens
    for k, cost in enumerate(costs):
        if k > start and used + cost > budget:
            parts.append(("\n".join([head_text, *lines[2 + start : 2 + k]]), used))
            start, used = k, head_tokens
        used += cost
    parts.append(("\n".join([head_text, *lines[2 + start :]]), used))
    return parts
