"""Tables as pipe-table lines: read a table block, stitch page continuations, split by rows.

A table is kept as its head (header row(s) and the ``| --- |`` separator) and one Markdown line
per body row, so a row group is the head plus whole row lines: every part is a valid pipe table
that repeats the header, and no part ever ends inside a row. HTML with row or column spans goes
through :func:`deepocr_loaders.tables.html_table_to_grid` (spans spread over the cells they
cover) and :func:`~deepocr_loaders.tables.grid_to_markdown`; a table without spans already has
the same Markdown, which is used as it is (parsing HTML costs several times more).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from deepocr_loaders.document import Block
from deepocr_loaders.tables import grid_to_markdown, html_table_to_grid

__all__ = ["TableLines", "block_table", "split_table", "stitch_tables"]

_SEP_LINE_RE = re.compile(r"^\|?(?:\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?$")
_CELL_SPLIT_RE = re.compile(r"(?<!\\)\|")


@dataclass
class TableLines:
    """A pipe table as its head lines (ending with the separator) and its body row lines."""

    head: list[str]
    rows: list[str]
    n_cols: int


def _columns(line: str) -> int:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return len(_CELL_SPLIT_RE.split(body))


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


def block_table(block: Block) -> TableLines | None:
    """The table of a table block, or None when its text is no table."""
    html = block.html
    if html and "<table" in html.lower() and ("span" in html.lower() or "|" not in block.text):
        md = grid_to_markdown(html_table_to_grid(html))
        if md:
            return _from_markdown(md)
    return _from_markdown(block.text)


def stitch_tables(first: TableLines, more: TableLines) -> TableLines:
    """``first`` with the rows of its continuation; a repeated header is dropped, and a
    continuation printed without one keeps its first row (Markdown made it a header)."""
    same = [" ".join(h.split()) for h in more.head[:-1]] == [
        " ".join(h.split()) for h in first.head[:-1]
    ]
    extra = more.rows if same else [*more.head[:-1], *more.rows]
    return TableLines(first.head, first.rows + extra, first.n_cols)


def split_table(
    table: TableLines, max_tokens: int, count: Callable[[str], int], reserved: int = 0
) -> list[tuple[str, int]]:
    """Pipe-table Markdown parts of at most ``max_tokens`` (less ``reserved`` for a caption),
    each repeating the header, with their token counts; a single row over the budget still
    makes a part of its own."""
    head_text = "\n".join(table.head)
    head_tokens = count(head_text)
    # +1 per row for the newline joining it: an upper bound, so parts never overshoot.
    costs = [count(line) + 1 for line in table.rows]
    budget = max_tokens - reserved
    total = head_tokens + sum(costs)
    if total <= budget or not costs:
        return [("\n".join([head_text, *table.rows]), total)]
    parts: list[tuple[str, int]] = []
    start = 0
    used = head_tokens
    for k, cost in enumerate(costs):
        if k > start and used + cost > budget:
            parts.append(("\n".join([head_text, *table.rows[start:k]]), used))
            start, used = k, head_tokens
        used += cost
    parts.append(("\n".join([head_text, *table.rows[start:]]), used))
    return parts
