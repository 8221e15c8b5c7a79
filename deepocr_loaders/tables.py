"""HTML tables (as the DeepSeek-OCR family emits them) to a cell grid and to GitHub Markdown.

Markdown pipe tables cannot span cells, so a spanning cell's text is repeated in every grid slot
it covers (as docling does): each row then reads correctly on its own, which is what a retriever
and a row-group splitter need. The original HTML stays on the block for exact rendering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser

__all__ = [
    "TableGrid",
    "grid_to_markdown",
    "html_table_to_grid",
    "html_tables_to_markdown",
]

_TABLE_RE = re.compile(r"<table\b[^>]*>.*?(?:</table\s*>|\Z)", re.IGNORECASE | re.DOTALL)


@dataclass
class TableGrid:
    """A table as a rectangular grid of cell texts; ``header_rows`` leading rows are headers."""

    rows: list[list[str]] = field(default_factory=list)
    header_rows: int = 0

    @property
    def n_cols(self) -> int:
        return max((len(r) for r in self.rows), default=0)


@dataclass
class _Cell:
    text: list[str] = field(default_factory=list)
    rowspan: int = 1
    colspan: int = 1
    header: bool = False


class _TableParser(HTMLParser):
    """Collects rows of cells from the first table; nested tables are flattened into the cell."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[_Cell]] = []
        self.in_thead = False
        self.thead_rows = 0
        self._cell: _Cell | None = None
        self._row: list[_Cell] | None = None
        self._depth = 0

    def _close_cell(self) -> None:
        if self._cell is not None:
            if self._row is None:
                self._row = []
            self._row.append(self._cell)
            self._cell = None

    def _close_row(self) -> None:
        self._close_cell()
        if self._row is not None:
            self.rows.append(self._row)
            if self.in_thead:
                self.thead_rows += 1
            self._row = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._depth += 1
            if self._depth > 1 and self._cell is not None:
                self._cell.text.append(" ")
            return
        if self._depth > 1:
            if tag in ("td", "th", "tr", "br") and self._cell is not None:
                self._cell.text.append(" ")
            return
        if tag == "thead":
            self.in_thead = True
        elif tag == "tr":
            self._close_row()
            self._row = []
        elif tag in ("td", "th"):
            self._close_cell()
            spans = {k: v for k, v in attrs}
            self._cell = _Cell(
                rowspan=_span(spans.get("rowspan")),
                colspan=_span(spans.get("colspan")),
                header=tag == "th",
            )
        elif tag == "br" and self._cell is not None:
            self._cell.text.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._depth -= 1
            if self._depth == 0:
                self._close_row()
            return
        if self._depth > 1:
            return
        if tag in ("td", "th"):
            self._close_cell()
        elif tag == "tr":
            self._close_row()
        elif tag == "thead":
            self._close_row()
            self.in_thead = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.text.append(data)
        elif data.strip() and self._depth >= 1:
            # Text in a row but outside any cell (malformed HTML): keep it in a cell of its own.
            if self._row is None:
                self._row = []
            self._row.append(_Cell(text=[data]))

    def close(self) -> None:
        super().close()
        self._close_row()


def _span(value: str | None) -> int:
    try:
        n = int(str(value).strip().strip("\"'"))
    except (TypeError, ValueError):
        return 1
    # A model that emits colspan="1000" must not make us allocate a huge grid.
    return min(max(n, 1), 100)


def _clean(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


def html_table_to_grid(html: str) -> TableGrid:
    """Parse one HTML table into a grid, spreading row/col spans over the slots they cover."""
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    grid: list[list[str | None]] = []
    header_rows = parser.thead_rows
    for r, row in enumerate(parser.rows):
        while len(grid) <= r:
            grid.append([])
        c = 0
        for cell in row:
            while c < len(grid[r]) and grid[r][c] is not None:
                c += 1
            text = _clean(cell.text)
            for dr in range(cell.rowspan):
                rr = r + dr
                while len(grid) <= rr:
                    grid.append([])
                for dc in range(cell.colspan):
                    cc = c + dc
                    while len(grid[rr]) <= cc:
                        grid[rr].append(None)
                    grid[rr][cc] = text
            c += cell.colspan
    if not header_rows:
        # Without <thead>, the leading rows made only of <th> cells are the header.
        for row in parser.rows:
            if not row or not all(cell.header for cell in row):
                break
            header_rows += 1
    if not header_rows and parser.rows and any(c.colspan > 1 for c in parser.rows[0]):
        # A first row that groups columns (colspan) with cells spanning down (rowspan) is a
        # multi-row header even without <th>: the rowspan says how many rows it covers.
        header_rows = max(c.rowspan for c in parser.rows[0])
    width = max((len(r) for r in grid), default=0)
    rows = [
        [cell if cell is not None else "" for cell in r] + [""] * (width - len(r)) for r in grid
    ]
    return TableGrid(rows=rows, header_rows=header_rows)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def grid_to_markdown(grid: TableGrid) -> str:
    """A GitHub pipe table: the first row is the Markdown header (with no header in the HTML,
    since Markdown requires one). Further header rows follow as ordinary rows, cell for cell,
    so each cell keeps its column; ``TableGrid.header_rows`` still says how many rows head it
    (the chunker repeats them all)."""
    if not grid.rows or grid.n_cols == 0:
        return ""
    n = grid.n_cols
    lines = ["| " + " | ".join(_md_cell(h) for h in grid.rows[0]) + " |"]
    lines.append("| " + " | ".join("---" for _ in range(n)) + " |")
    for row in grid.rows[1:]:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    return "\n".join(lines)


def html_tables_to_markdown(text: str) -> str:
    """Replace every ``<table>...</table>`` in ``text`` with a pipe table; other text is kept.

    A table cut off by truncation (no ``</table>``) is converted from what is there.
    """

    def convert(match: re.Match[str]) -> str:
        md = grid_to_markdown(html_table_to_grid(match.group(0)))
        return f"\n\n{md}\n\n" if md else unescape(re.sub(r"<[^>]+>", " ", match.group(0)))

    out = _TABLE_RE.sub(convert, text)
    return re.sub(r"\n{3,}", "\n\n", out).strip()
