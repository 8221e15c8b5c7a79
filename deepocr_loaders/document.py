"""The document model every engine produces and every consumer reads: Document -> Page -> Block.

Coordinates: ``Block.bbox`` is in PDF points with a top-left origin (PyMuPDF's convention), so
it can be drawn straight onto the PDF page; ``Block.norm_boxes`` keep the model's 0-999 grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "NORM_MAX",
    "BBox",
    "Block",
    "BlockKind",
    "Document",
    "Page",
    "PageStatus",
    "blocks_to_markdown",
]

#: Largest coordinate of the models' normalised box grid (boxes are x / 999 * width).
NORM_MAX = 999

SCHEMA_VERSION = 1


class BlockKind(str, Enum):
    """What a block is, independent of which engine found it."""

    TITLE = "title"
    HEADING = "heading"
    TEXT = "text"
    LIST_ITEM = "list_item"
    TABLE = "table"
    FIGURE = "figure"
    CAPTION = "caption"
    EQUATION = "equation"
    CODE = "code"
    PAGE_HEADER = "page_header"
    PAGE_FOOTER = "page_footer"
    FOOTNOTE = "footnote"
    OTHER = "other"

    @property
    def is_furniture(self) -> bool:
        """Page headers and footers: repeated on every page, usually left out of chunk text."""
        return self in (BlockKind.PAGE_HEADER, BlockKind.PAGE_FOOTER)


class PageStatus(str, Enum):
    """Outcome of processing one page; pages are never dropped, they carry a status instead."""

    OK = "ok"
    FAILED = "failed"
    TRUNCATED = "truncated"  # no end-of-sequence, or stopped by the repetition guard
    NEEDS_OCR = "needs_ocr"  # the page needs an OCR engine that was not available
    SKIPPED = "skipped"


@dataclass(frozen=True)
class BBox:
    """An axis-aligned box ``(x0, y0, x1, y1)``, top-left origin, x0 <= x1 and y0 <= y1."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def union(self, other: BBox) -> BBox:
        """The smallest box holding both boxes."""
        return BBox(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )

    def scale(self, sx: float, sy: float) -> BBox:
        """This box with x multiplied by ``sx`` and y by ``sy`` (e.g. points -> pixels)."""
        return BBox(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy)

    @classmethod
    def from_norm(
        cls, norm: tuple[int, int, int, int], page_width: float, page_height: float
    ) -> BBox:
        """Map a box on the 0-999 grid to the page's own units, as the reference scripts do."""
        x0, y0, x1, y1 = norm
        return cls(
            x0 / NORM_MAX * page_width,
            y0 / NORM_MAX * page_height,
            x1 / NORM_MAX * page_width,
            y1 / NORM_MAX * page_height,
        )


@dataclass
class Block:
    """One layout region of a page, in reading order."""

    kind: BlockKind
    text: str
    """The block's Markdown (a heading keeps its ``#`` marks, a table is a pipe table)."""
    page_index: int = 0
    order: int = 0
    """Reading order on the page, 0-based."""
    label: str = ""
    """The engine's raw label (``sub_title``, ``image_caption``, ``section-header``...)."""
    level: int | None = None
    """Heading level (1 = title) for titles and headings, else None."""
    html: str | None = None
    """Tables: the HTML the model emitted (it keeps row/col spans that Markdown cannot)."""
    bbox: BBox | None = None
    """Union of all boxes, PDF points, top-left origin; None when the engine gave no box."""
    boxes: list[BBox] = field(default_factory=list)
    """Every box of the block in PDF points (a ref may carry several)."""
    norm_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    """The same boxes on the model's 0-999 grid, as emitted."""
    source_span: tuple[int, int] | None = None
    """``(start, end)`` of this block's content in ``Page.raw_output``, when parsed from it."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Extras: figure crop path, a figure description, confidence..."""

    @property
    def id(self) -> str:
        """Stable id within a document: ``p<page>-b<order>``."""
        return f"p{self.page_index}-b{self.order}"

    @property
    def plain_text(self) -> str:
        """The text without heading marks; what a heading path shows."""
        if self.kind in (BlockKind.TITLE, BlockKind.HEADING):
            return self.text.lstrip("#").strip()
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "text": self.text,
            "page_index": self.page_index,
            "order": self.order,
            "label": self.label,
            "level": self.level,
            "html": self.html,
            "bbox": list(self.bbox.as_tuple()) if self.bbox else None,
            "boxes": [list(b.as_tuple()) for b in self.boxes],
            "norm_boxes": [list(b) for b in self.norm_boxes],
            "source_span": list(self.source_span) if self.source_span else None,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        bbox = data.get("bbox")
        span = data.get("source_span")
        return cls(
            kind=BlockKind(data["kind"]),
            text=data["text"],
            page_index=data.get("page_index", 0),
            order=data.get("order", 0),
            label=data.get("label", ""),
            level=data.get("level"),
            html=data.get("html"),
            bbox=BBox(*bbox) if bbox is not None else None,
            boxes=[BBox(*b) for b in data.get("boxes", [])],
            norm_boxes=[
                (int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in data.get("norm_boxes", [])
            ],
            source_span=(int(span[0]), int(span[1])) if span is not None else None,
            metadata=dict(data.get("metadata", {})),
        )


def blocks_to_markdown(
    blocks: list[Block], *, exclude: frozenset[BlockKind] | set[BlockKind] = frozenset()
) -> str:
    """Render blocks in reading order as Markdown, blocks separated by a blank line.

    A figure without text becomes ``![caption-less figure](crop)`` when it has a crop, else the
    ``<!-- image -->`` placeholder, so a reader of the Markdown can see a figure was there.
    """
    parts: list[str] = []
    for block in sorted(blocks, key=lambda b: b.order):
        if block.kind in exclude:
            continue
        text = block.text.strip()
        if block.kind is BlockKind.FIGURE and not text:
            crop = block.metadata.get("image_path")
            text = f"![figure]({crop})" if crop else "<!-- image -->"
        if text:
            parts.append(text)
    return "\n\n".join(parts)


@dataclass
class Page:
    """One page of a document and what the engine made of it."""

    index: int
    """0-based position in the source document."""
    width: float
    """Page width in PDF points (1/72 inch)."""
    height: float
    label: str = ""
    """The printed page label (``iv``, ``12``); defaults to ``str(index + 1)``."""
    dpi: float | None = None
    """Resolution the page was rasterised at for the engine (None when never rasterised)."""
    blocks: list[Block] = field(default_factory=list)
    markdown: str = ""
    raw_output: str | None = None
    """The engine's output before parsing (model text with grounding tags), for auditing."""
    status: PageStatus = PageStatus.OK
    error: str | None = None
    """Why the page is not ``ok``: the exception or the detector's reason."""
    engine: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What may be wrong with the page's content although it was read, one sentence each (e.g.
    the PDF was damaged and repaired by MuPDF). A page whose text was lost is also not ``ok``;
    its ``error`` says so and these name what MuPDF reported."""

    def __post_init__(self) -> None:
        if not self.label:
            self.label = str(self.index + 1)

    @property
    def ok(self) -> bool:
        return self.status is PageStatus.OK

    def render_markdown(
        self, *, exclude: frozenset[BlockKind] | set[BlockKind] = frozenset()
    ) -> str:
        """Markdown rebuilt from the blocks, optionally leaving some kinds out."""
        return blocks_to_markdown(self.blocks, exclude=exclude)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "label": self.label,
            "width": self.width,
            "height": self.height,
            "dpi": self.dpi,
            "status": self.status.value,
            "error": self.error,
            "engine": self.engine,
            "markdown": self.markdown,
            "raw_output": self.raw_output,
            "blocks": [b.to_dict() for b in self.blocks],
            "metadata": self.metadata,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Page:
        return cls(
            index=data["index"],
            width=data["width"],
            height=data["height"],
            label=data.get("label", ""),
            dpi=data.get("dpi"),
            blocks=[Block.from_dict(b) for b in data.get("blocks", [])],
            markdown=data.get("markdown", ""),
            raw_output=data.get("raw_output"),
            status=PageStatus(data.get("status", "ok")),
            error=data.get("error"),
            engine=data.get("engine"),
            metadata=dict(data.get("metadata", {})),
            warnings=[str(w) for w in data.get("warnings") or ()],
        )


@dataclass
class Document:
    """A converted source: its pages in order, each with a status, plus provenance."""

    source: str
    """Path or name of the input."""
    sha256: str = ""
    """sha256 of the input bytes, hex; the basis of stable chunk and node ids."""
    page_count: int = 0
    """Pages in the source, which may exceed ``len(pages)`` when a page range was asked for."""
    pages: list[Page] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.page_count:
            self.page_count = len(self.pages)

    @property
    def blocks(self) -> list[Block]:
        """All blocks of all pages, in page then reading order."""
        return [b for p in self.pages for b in sorted(p.blocks, key=lambda b: b.order)]

    @property
    def problem_pages(self) -> list[Page]:
        """Pages whose status is not ``ok``: report these, never hide them."""
        return [p for p in self.pages if not p.ok]

    def to_markdown(
        self,
        *,
        page_separator: str | None = None,
        exclude: frozenset[BlockKind] | set[BlockKind] | None = None,
        status_notes: bool = True,
    ) -> str:
        """The whole document as Markdown.

        ``page_separator`` goes between pages; ``{index}`` (0-based) and ``{label}`` in it are
        filled in, e.g. ``"\\n\\n<!-- page {label} -->\\n\\n"``. ``exclude`` rebuilds each page
        from its blocks without the given kinds (e.g. headers and footers). With
        ``status_notes``, a page that is not ``ok`` gets an HTML comment saying so, which renders
        invisibly but is never lost; so does an ``ok`` page with ``warnings``.
        """
        parts: list[str] = []
        for i, page in enumerate(self.pages):
            if i and page_separator is not None:
                parts.append(page_separator.format(index=page.index, label=page.label))
            elif i:
                parts.append("\n\n")
            body = page.render_markdown(exclude=exclude) if exclude is not None else page.markdown
            if status_notes and not page.ok:
                # "--" would end the HTML comment early.
                reason = f": {page.error}".replace("--", "- -") if page.error else ""
                note = f"<!-- page {page.label} {page.status.value}{reason} -->"
                body = f"{note}\n\n{body}" if body else note
            elif status_notes and page.warnings:
                warned = "; ".join(page.warnings).replace("--", "- -")
                note = f"<!-- page {page.label} warning: {warned} -->"
                body = f"{note}\n\n{body}" if body else note
            parts.append(body)
        return "".join(parts).strip() + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "sha256": self.sha256,
            "page_count": self.page_count,
            "metadata": self.metadata,
            "pages": [p.to_dict() for p in self.pages],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(
            source=data["source"],
            sha256=data.get("sha256", ""),
            page_count=data.get("page_count", 0),
            pages=[Page.from_dict(p) for p in data.get("pages", [])],
            metadata=dict(data.get("metadata", {})),
        )

    def to_json(self, *, indent: int | None = None) -> str:
        """Lossless JSON: ``Document.from_json(doc.to_json()) == doc``."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Document:
        return cls.from_dict(json.loads(text))
