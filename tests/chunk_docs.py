"""Hand-built documents for the chunker tests (a helper module, not a conftest)."""

from __future__ import annotations

from typing import Any

from deepocr_loaders import BBox, Block, BlockKind, Document, Page
from deepocr_loaders.grounding import build_page
from deepocr_loaders.samples import sample_grounded_output

W, H = 612.0, 792.0

SENTENCE = "The gauge at the mill bridge recorded a steady rise through the night. "


def blk(
    kind: BlockKind,
    text: str,
    box: tuple[float, float, float, float] = (72, 100, 540, 140),
    *,
    label: str = "",
    level: int | None = None,
    html: str | None = None,
    **metadata: Any,
) -> Block:
    """A block with one box; page and order are set by :func:`doc`."""
    bbox = BBox(*box)
    return Block(
        kind=kind,
        text=text,
        label=label or kind.value,
        level=level,
        html=html,
        bbox=bbox,
        boxes=[bbox],
        metadata=dict(metadata),
    )


def heading(text: str, level: int = 2, y: float = 80) -> Block:
    kind = BlockKind.TITLE if level == 1 else BlockKind.HEADING
    return blk(kind, f"{'#' * level} {text}", (72, y, 540, y + 20), level=level)


def para(text: str, y: float = 120, x0: float = 72, x1: float = 540) -> Block:
    return blk(BlockKind.TEXT, text, (x0, y, x1, y + 40))


def doc(
    pages: list[list[Block]],
    *,
    labels: list[str] | None = None,
    source: str = "test.pdf",
    sha256: str = "0" * 64,
) -> Document:
    """A document whose page ``i`` holds ``pages[i]`` in reading order."""
    out = []
    for i, blocks in enumerate(pages):
        for order, b in enumerate(blocks):
            b.page_index = i
            b.order = order
        label = labels[i] if labels else ""
        out.append(Page(index=i, width=W, height=H, label=label, blocks=blocks, engine="test"))
    return Document(source=source, sha256=sha256, pages=out)


def header(text: str = "Northwind Field Report") -> Block:
    return blk(BlockKind.PAGE_HEADER, text, (72, 20, 400, 34))


def footer(text: str) -> Block:
    return blk(BlockKind.PAGE_FOOTER, text, (290, 760, 320, 774))


def html_table(header_row: list[str], rows: list[list[str]], th: bool = True) -> str:
    cell = "th" if th else "td"
    head = "<tr>" + "".join(f"<{cell}>{h}</{cell}>" for h in header_row) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def table(header_row: list[str], rows: list[list[str]], y: float = 200) -> Block:
    """A table block as the grounded parser makes it: HTML kept, Markdown text."""
    from deepocr_loaders.tables import grid_to_markdown, html_table_to_grid

    html = html_table(header_row, rows)
    md = grid_to_markdown(html_table_to_grid(html))
    return blk(BlockKind.TABLE, md, (72, y, 540, y + 300), html=html)


def station_rows(n: int, start: int = 0) -> list[list[str]]:
    return [[f"AC-{i:03d}", f"{i * 0.37:.2f}", f"{i * 1.13:.2f}", "ok"] for i in range(start, n)]


STATION_HEADER = ["Station", "March", "April", "Status"]


def sample_document() -> Document:
    """The bundled one-page field report, parsed from its grounded output."""
    page = build_page(sample_grounded_output(), index=0, width=W, height=H, engine="recorded")
    return Document(source="field_report.pdf", sha256="f" * 64, pages=[page])


_TERMS = ["aquifer", "baseflow", "catchment", "discharge", "ephemeral", "floodplain", "gauge"]


def glossary_document(n_pages: int, *, per_page: int = 6, full_stops: bool = False) -> Document:
    """A glossary of ``n_pages`` pages, ``per_page`` entries a page, none ending a sentence
    (unless ``full_stops``): every entry continues the one before, across pages, so the whole
    glossary is one paragraph unit for the chunker."""
    stop = "." if full_stops else ""
    pages = []
    for p in range(n_pages):
        blocks = []
        for k in range(per_page):
            term = f"{_TERMS[(p + k) % len(_TERMS)]} {p}-{k}"
            text = (
                f"{term} the measured or estimated quantity of water recorded at the station "
                f"during the survey period and kept in the field register of page {p}{stop}"
            )
            y = 60 + 110 * k
            blocks.append(blk(BlockKind.TEXT, text, (72, y, 540, y + 90)))
        pages.append(blocks)
    return doc(pages, source="glossary.pdf")
